package targets

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/djship/djship/internal/paint"
	"github.com/djship/djship/sites"
)

// Plan shows what Provision would change on every host of the
// environment, with a diff of every file, and changes nothing.
func Plan(ctx context.Context, site *sites.Site, env string, opts Options) ([]*Deploy, error) {
	return onHosts(ctx, site, env, opts, hostRun{action: actionPlan, check: true, work: func(ctx context.Context, d *Deploy) ([]StepResult, error) {
		return RunSteps(ctx, d, ProvisionSteps())
	}})
}

// printPlan prints what a host's steps would do.
func printPlan(w io.Writer, d *Deploy) {
	fmt.Fprintf(w, "\n%s %s\n", paint.Bold("plan for"), paint.Bold(d.Host.Name()))
	if len(d.Planned) == 0 {
		fmt.Fprintln(w, "  nothing to change")
		return
	}
	for _, p := range d.Planned {
		if strings.HasPrefix(p, "--- ") {
			for _, l := range strings.Split(p, "\n") {
				switch {
				case strings.HasPrefix(l, "+") && !strings.HasPrefix(l, "+++"):
					l = paint.Green(l)
				case strings.HasPrefix(l, "-") && !strings.HasPrefix(l, "---"):
					l = paint.Red(l)
				}
				fmt.Fprintf(w, "    %s\n", l)
			}
			continue
		}
		fmt.Fprintf(w, "  %s %s\n", paint.Yellow("~"), p)
	}
}
