package targets

import (
	"context"

	"github.com/djship/djship/sites"
)

// Unlock breaks the deploy lock of every host of the environment, after
// saying who held it.
func Unlock(ctx context.Context, site *sites.Site, envName string, opts Options) error {
	_, err := onHosts(ctx, site, envName, opts, hostRun{action: actionUnlock, work: func(ctx context.Context, d *Deploy) ([]StepResult, error) {
		broken, err := d.breakLock(ctx)
		return []StepResult{{Name: "unlock", Changed: broken}}, err
	}})
	return err
}
