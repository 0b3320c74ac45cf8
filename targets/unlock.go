package targets

import (
	"context"
	"os"
	"strings"

	"github.com/djship/djship/sites"
)

// Unlock breaks the deploy lock of every host of the environment, after
// saying who held it.
func Unlock(ctx context.Context, site *sites.Site, envName string, opts Options) error {
	if opts.Out == nil {
		opts.Out = os.Stdout
	}
	_, err := onHosts(ctx, site, envName, opts, hostRun{action: actionUnlock, work: func(ctx context.Context, d *Deploy) ([]StepResult, error) {
		out, err := d.probe(ctx, shScript("break-lock", d.Paths.Lock))
		if err != nil {
			return nil, err
		}
		if !strings.HasSuffix(out, "removed") {
			d.note("no lock was held")
			return nil, nil
		}
		d.note("removed the lock held by %s", describeHolder(strings.TrimSpace(strings.TrimSuffix(out, "removed"))))
		return []StepResult{{Name: "unlock", Changed: true}}, nil
	}})
	return err
}
