package targets

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/fatih/color"
)

// Colours of progress output. fatih/color turns them off for NO_COLOR,
// TERM=dumb and when standard output is not a terminal.
var (
	bold   = color.New(color.Bold).SprintFunc()
	green  = color.New(color.FgGreen).SprintFunc()
	yellow = color.New(color.FgYellow).SprintFunc()
	red    = color.New(color.FgRed).SprintFunc()
	faint  = color.New(color.Faint).SprintFunc()
)

// PrintSummary prints the table that ends every target working on hosts:
// host, release, steps changed, duration and result.
func PrintSummary(w io.Writer, title string, rows []SummaryRow, check bool) {
	changedHeader := "CHANGED"
	if check {
		changedHeader = "TO CHANGE"
	}
	fmt.Fprintf(w, "\n%s\n", bold(title))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "HOST\tRELEASE\tREVISION\t%s\tDURATION\tRESULT\n", changedHeader)
	for _, r := range rows {
		result := green("ok")
		if r.Err != nil {
			result = red("failed")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", r.Host, r.Release, r.Revision, r.Changed, r.Duration.Round(time.Millisecond), result)
	}
	tw.Flush()
	total := 0
	for _, r := range rows {
		total += r.Changed
	}
	if check {
		fmt.Fprintf(w, "%d to change\n", total)
	} else {
		fmt.Fprintf(w, "%d changed\n", total)
	}
}
