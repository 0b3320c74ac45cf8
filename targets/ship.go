package targets

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/djship/djship/remote"
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

// Upgrade ships a release tarball to every host of the environment: the
// upgrade sequence on each host in parallel, with the same release name
// everywhere. The tarball is checked here first; on any failure the live
// site keeps (or gets back) its previous release.
func Upgrade(ctx context.Context, site *sites.Site, envName, tarball string, opts Options) ([]*Deploy, error) {
	env, err := site.Environment(envName)
	if err != nil {
		return nil, err
	}
	// Check the archives that any host unpacks (a host may name its own).
	check := env.Settings
	for _, h := range env.Hosts {
		if h.Settings.Django.SourceFolder == check.Django.SourceFolder {
			check.Django.ArchivesToDeflate = append(check.Django.ArchivesToDeflate, h.Settings.Django.ArchivesToDeflate...)
		}
	}
	t, err := InspectTarball(tarball, check)
	if err != nil {
		return nil, err
	}
	if t.Manifest.Project != site.Settings.Project {
		return nil, fmt.Errorf("%s is a release of %q, not of %q", tarball, t.Manifest.Project, site.Settings.Project)
	}
	before := func(ctx context.Context, deploys []*Deploy) error {
		name, err := releaseName(ctx, deploys, t.Manifest.Revision)
		if err != nil {
			return err
		}
		for _, d := range deploys {
			d.Tarball, d.Release, d.Revision = t, name, t.Manifest.Revision
		}
		return nil
	}
	return onHosts(ctx, site, envName, "upgrade", opts, false, before, func(ctx context.Context, d *Deploy) ([]StepResult, error) {
		results, err := RunSteps(ctx, d, UpgradeSteps())
		if err != nil {
			d.recover(ctx, err)
		}
		return results, err
	})
}

// releaseName is the revision, with the time appended when a release of
// that revision already exists on any host: one name for all hosts.
func releaseName(ctx context.Context, deploys []*Deploy, revision string) (string, error) {
	name := revision
	for _, d := range deploys {
		out, err := d.probe(ctx, remote.Sh("sh", "-c", `[ -e "$1" ] && echo exists || true`, "probe", path.Join(d.Paths.Releases, revision)))
		if err != nil {
			return "", fmt.Errorf("%s: %w", d.Host.Name(), err)
		}
		if out == "exists" {
			return revision + "-" + time.Now().UTC().Format("20060102T150405Z"), nil
		}
	}
	return name, nil
}

// recover puts the host back as it was after a failed upgrade: current
// back to the previous release (reloaded and checked) if the switch had
// happened, and the half-built release marked failed so that it never
// counts among the kept releases. It runs even after Ctrl-C.
func (d *Deploy) recover(ctx context.Context, cause error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	if d.Release == "" {
		return
	}
	if d.switched {
		if d.previous != "" {
			d.note("switching back to %s", d.previous)
			if err := d.switchTo(ctx, d.previous); err != nil {
				d.note("error: could not switch back to %s: %v", d.previous, err)
			} else if err := d.reloadApp(ctx); err != nil {
				d.note("error: could not reload the application server: %v", err)
			} else if err := d.checkHealth(ctx, ""); err != nil {
				d.note("error: the previous release does not answer either: %v", err)
			} else {
				d.note("%s is live again and answers", d.previous)
			}
		} else {
			// The first release failed: nothing was live before, nothing is now.
			d.run(ctx, remote.Sh("rm", "-f", "--", d.Paths.Current))
			d.run(ctx, d.appService().stop)
		}
	}
	if d.Action == "rollback" {
		// The rollback target stays as it was: complete, kept.
	} else if _, err := d.run(ctx, remote.Sh("sh", "-c", `[ -d "$1" ] && printf 'failed\n' > "$1/.djship-state"; true`, "state", d.releaseDir())); err != nil {
		d.note("warning: could not mark %s failed: %v", d.Release, err)
	}
	if d.lockInfo != "" {
		result := "failed"
		if errors.Is(cause, context.Canceled) {
			result = "cancelled"
		}
		action := "deploy"
		if d.Action == "rollback" {
			action = "rollback"
		}
		d.logDeploy(ctx, action, d.Release, d.Revision, result)
	}
}
