package targets

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/djship/djship/sites"
)

// LastRelease is the file in dist/ that names the tarball mage release
// wrote last; upgrade ships it.
const LastRelease = ".last-release"

// LatestTarball returns the tarball mage release wrote last into dist.
func LatestTarball(dist string) (string, error) {
	name, err := os.ReadFile(filepath.Join(dist, LastRelease))
	if err != nil {
		return "", fmt.Errorf("no release in %s/: run mage release first", dist)
	}
	p := filepath.Join(dist, strings.TrimSpace(string(name)))
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("%s names %s, which is gone: run mage release again", filepath.Join(dist, LastRelease), p)
	}
	return p, nil
}

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
