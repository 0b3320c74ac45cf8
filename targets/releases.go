package targets

import (
	"context"
	"fmt"
	"os"
	"text/tabwriter"

	"github.com/djship/djship/sites"
)

// Releases prints the deploy log of every host: what was deployed or
// rolled back, when, by whom, and how it ended. A host that cannot be
// reached or read says why among the others; the error names them.
func Releases(ctx context.Context, site *sites.Site, envName string, opts Options) error {
	if opts.Out == nil {
		opts.Out = os.Stdout
	}
	reports, err := report(ctx, site, envName, actionReleases, opts, func(ctx context.Context, d *Deploy) ([]logEntry, error) {
		return d.readLog(ctx)
	})
	for _, r := range reports {
		d, entries := r.d, r.found
		fmt.Fprintf(opts.Out, "%s\n", bold(d.Host.Name()))
		if r.err != nil {
			fmt.Fprintf(opts.Out, "  %s %s\n", red("cannot read the deploy log:"), firstLine(r.err.Error()))
			continue
		}
		tw := tabwriter.NewWriter(opts.Out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  TIME\tACTION\tRELEASE\tREVISION\tUSER\tRESULT\t")
		for _, e := range entries {
			mark := ""
			if e.Release == d.facts.live && e.Result == "ok" {
				mark = "(live)"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Time, e.Action, e.Release, e.Revision, e.User, e.Result, mark)
		}
		tw.Flush()
	}
	return err
}
