package targets

import (
	"context"

	"github.com/djship/djship/sites"
)

// Ship prepares every host of the environment and upgrades it to the
// tarball: provision, then the upgrade, in one run with one connection
// and one Deploy per host, so that the facts are found once and the lock
// provision takes is held until the upgrade ends. The tarball and the
// steps a magefile added are checked before any host is reached; when
// provision fails on any host, no host is upgraded.
func Ship(ctx context.Context, site *sites.Site, envName, tarball string, opts Options) ([]*Deploy, error) {
	u, err := prepareUpgrade(site, envName, tarball)
	if err != nil {
		return nil, err
	}
	return onHosts(ctx, site, envName, opts, hostRun{action: actionUpgrade, title: "ship", prepare: u.prepare,
		phased: func(ctx context.Context, deploys []*Deploy) map[*Deploy]hostOutcome {
			f := newFleet(deploys, opts.Parallel)
			f.eachHost(ctx, opts.Parallel, func(ctx context.Context, d *Deploy) ([]StepResult, error) {
				return RunSteps(ctx, d, d.mode.provision())
			})
			if !f.ok() {
				return f.results()
			}
			// Provision took every host's lock (its lock step) and found
			// the facts the upgrade starts from.
			if err := u.nameRelease(ctx, deploys); err != nil {
				f.record(deploys[0], nil, err, 0)
				return f.results()
			}
			return f.upgrade(ctx, u.sequence.without(phaseFacts))
		}})
}
