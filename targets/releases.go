package targets

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"
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
	quiet := opts
	quiet.Out = io.Discard
	logs := map[*Deploy][]logEntry{}
	failed := map[*Deploy]error{}
	var mu sync.Mutex
	deploys, err := onHosts(ctx, site, envName, quiet, hostRun{action: actionReleases, check: true, readOnly: true, work: func(ctx context.Context, d *Deploy) ([]StepResult, error) {
		_, err := (factsStep{}).Run(ctx, d)
		var entries []logEntry
		if err == nil {
			entries, err = d.readLog(ctx)
		}
		mu.Lock()
		logs[d], failed[d] = entries, err
		mu.Unlock()
		return nil, err
	}})
	if deploys == nil {
		return err
	}
	for _, d := range deploys {
		entries := logs[d]
		fmt.Fprintf(opts.Out, "%s\n", bold(d.Host.Name()))
		if why := failed[d]; why != nil {
			fmt.Fprintf(opts.Out, "  %s %s\n", red("cannot read the deploy log:"), firstLine(why.Error()))
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
