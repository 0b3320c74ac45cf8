package targets

import (
	"context"
	"fmt"
	"os"
	"text/tabwriter"

	"github.com/djship/djship/internal/paint"
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
		fmt.Fprintf(opts.Out, "%s\n", paint.Bold(d.Host.Name()))
		if r.err != nil {
			fmt.Fprintf(opts.Out, "  %s %s\n", paint.Red("cannot read the deploy log:"), firstLine(r.err.Error()))
			continue
		}
		tw := tabwriter.NewWriter(opts.Out, 0, 4, 2, ' ', 0)
		// RELEASE is what the action made live (or tried to), FROM what
		// was live before it: for a rollback, the release it left.
		images := false
		for _, e := range entries {
			images = images || e.Image != ""
		}
		if images {
			fmt.Fprintln(tw, "  TIME\tACTION\tRELEASE\tFROM\tREVISION\tUSER\tRESULT\tIMAGE\t")
		} else {
			fmt.Fprintln(tw, "  TIME\tACTION\tRELEASE\tFROM\tREVISION\tUSER\tRESULT\t")
		}
		liveAt := -1
		for i, e := range entries {
			if e.Result == "ok" && (e.Action == actionUpgrade || e.Action == actionRollback) {
				liveAt = i
			}
		}
		for i, e := range entries {
			mark, from := "", e.Previous
			if i == liveAt && e.Release == d.facts.live {
				mark = "(live)"
			}
			if from == "" {
				from = "-"
			}
			if images {
				image := e.Image
				if image == "" {
					image = "-"
				}
				fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Time, e.Action, e.Release, from, e.Revision, e.User, e.Result, image, mark)
				continue
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Time, e.Action, e.Release, from, e.Revision, e.User, e.Result, mark)
		}
		tw.Flush()
	}
	return err
}
