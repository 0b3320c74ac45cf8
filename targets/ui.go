package targets

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/djship/djship/internal/paint"
)

// PrintSummary prints the table that ends every target working on hosts:
// host, release, steps changed, duration and result.
func PrintSummary(w io.Writer, title string, rows []SummaryRow, check bool) {
	changedHeader := "CHANGED"
	if check {
		changedHeader = "TO CHANGE"
	}
	fmt.Fprintf(w, "\n%s\n", paint.Bold(title))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "HOST\tRELEASE\tREVISION\t%s\tDURATION\tRESULT\n", changedHeader)
	for _, r := range rows {
		result := paint.Green("ok")
		if r.Err != nil {
			result = paint.Red("failed")
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
