package targets

import (
	"context"

	"github.com/djship/djship/sites"
)

// Ship prepares every host of the environment and upgrades it to the
// tarball: Provision, then Upgrade, over one connection per host.
func Ship(ctx context.Context, site *sites.Site, envName, tarball string, opts Options) ([]*Deploy, error) {
	if opts.Connections == nil {
		opts.Connections = &Connections{}
		defer opts.Connections.Close()
	}
	// A step added in a wrong place stops the ship before provision.
	if _, err := withInsertions(upgradeSequence()); err != nil {
		return nil, err
	}
	if err := Provision(ctx, site, envName, opts); err != nil {
		return nil, err
	}
	return Upgrade(ctx, site, envName, tarball, opts)
}
