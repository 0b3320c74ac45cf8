package targets

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
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

// Ship prepares every host of the environment and upgrades it to the
// tarball: Provision, then Upgrade, over one connection per host.
func Ship(ctx context.Context, site *sites.Site, envName, tarball string, opts Options) ([]*Deploy, error) {
	if opts.Connections == nil {
		opts.Connections = &Connections{}
		defer opts.Connections.Close()
	}
	if err := Provision(ctx, site, envName, opts); err != nil {
		return nil, err
	}
	return Upgrade(ctx, site, envName, tarball, opts)
}

// Upgrade ships a release tarball to every host of the environment: it
// takes the lock on every host, names the release (one new name for all
// hosts, chosen under the lock), then runs the upgrade sequence on each
// host in parallel. The tarball is checked here first; on any failure the
// live site keeps (or gets back) its previous release.
func Upgrade(ctx context.Context, site *sites.Site, envName, tarball string, opts Options) ([]*Deploy, error) {
	env, err := site.Environment(envName)
	if err != nil {
		return nil, err
	}
	// Check the tarball as every host unpacks it: each with its own
	// source folder and archives.
	var check []sites.Settings
	for _, h := range env.Hosts {
		check = append(check, h.Settings)
	}
	if len(check) == 0 {
		check = append(check, env.Settings)
	}
	t, err := InspectTarball(tarball, check...)
	if err != nil {
		return nil, err
	}
	if t.Manifest.Project != site.Settings.Project {
		return nil, fmt.Errorf("%s is a release of %q, not of %q", tarball, t.Manifest.Project, site.Settings.Project)
	}
	before := func(ctx context.Context, deploys []*Deploy) error {
		for _, d := range deploys {
			d.Tarball, d.Revision = t, t.Manifest.Revision
		}
		if err := lockAll(ctx, deploys); err != nil {
			return err
		}
		name, err := releaseName(ctx, deploys, t.Manifest.Revision)
		if err != nil {
			for _, d := range deploys {
				d.unlock(ctx)
			}
			return fmt.Errorf("naming the release, nothing changed on any host: %w", err)
		}
		for _, d := range deploys {
			d.Release = name
		}
		return nil
	}
	return onHosts(ctx, site, envName, "upgrade", opts, false, before, func(ctx context.Context, d *Deploy) ([]StepResult, error) {
		results, err := RunSteps(ctx, d, upgradeSequence())
		if err != nil {
			err = d.recover(ctx, err)
		}
		return results, err
	})
}

// upgradeSequence is the list Upgrade runs; tests put failures into it.
var upgradeSequence = UpgradeSteps

// lockAll takes the lock on every host at once (each waits up to
// LockWait). When any host refuses, the locks taken are released again
// and nothing has changed anywhere.
func lockAll(ctx context.Context, deploys []*Deploy) error {
	errs := make([]error, len(deploys))
	var wg sync.WaitGroup
	for i, d := range deploys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = RunSteps(ctx, d, []Step{lockStep{}})
		}()
	}
	wg.Wait()
	var failed []error
	for _, err := range errs {
		if err != nil {
			failed = append(failed, err)
		}
	}
	if len(failed) == 0 {
		return nil
	}
	for _, d := range deploys {
		d.unlock(ctx)
	}
	return fmt.Errorf("the lock could not be taken on %d of %d hosts, nothing changed on any host:\n%w", len(failed), len(deploys), errors.Join(failed...))
}

// releaseName is the revision, or, when any host ever used that name,
// the revision with the time appended (and a counter when that is used
// too): one name for all hosts, never used before on any of them. A name
// is used when a folder of releases/ has it or deploy.log records it,
// whatever the result. It runs under the lock of every host.
func releaseName(ctx context.Context, deploys []*Deploy, revision string) (string, error) {
	used := map[string]bool{}
	for _, d := range deploys {
		if err := d.usedNames(ctx, used); err != nil {
			return "", fmt.Errorf("%s: %w", d.Host.Name(), err)
		}
	}
	if !used[revision] {
		return revision, nil
	}
	stamped := revision + "-" + time.Now().UTC().Format("20060102T150405Z")
	name := stamped
	for i := 2; used[name]; i++ {
		name = fmt.Sprintf("%s-%d", stamped, i)
	}
	return name, nil
}

// switchBack makes the release that was live before this run live again:
// current back, and for uWSGI app.sock back to its instance, which still
// runs (or, when it is gone, a fresh one); gunicorn reloads.
func (d *Deploy) switchBack(ctx context.Context) error {
	if err := d.switchTo(ctx, d.previous); err != nil {
		return err
	}
	if d.Settings.AppServer != "uwsgi" {
		return d.reloadApp(ctx)
	}
	if back, err := d.switchSlotBack(ctx); back || err != nil {
		return err
	}
	// app.sock never left the old instance: it serves if it runs.
	if _, err := d.run(ctx, d.slotService(d.slot).status); d.slot != "" && err == nil {
		return nil
	}
	failed := d.slot
	if err := d.startSlot(ctx, d.previous, ""); err != nil {
		return err
	}
	if err := d.switchSlot(ctx); err != nil {
		return err
	}
	d.retiring = failed
	return d.retire(ctx)
}

// usedNames adds the release names the host has used to names: the
// folders of releases/ and every release deploy.log records.
func (d *Deploy) usedNames(ctx context.Context, names map[string]bool) error {
	out, err := d.probe(ctx, shScript("list-folder", d.Paths.Releases))
	if err != nil {
		return fmt.Errorf("listing %s: %w", d.Paths.Releases, err)
	}
	for _, n := range strings.Split(out, "\n") {
		if n != "" {
			names[n] = true
		}
	}
	entries, err := d.readLog(ctx)
	if err != nil {
		return fmt.Errorf("reading %s: %w", d.Paths.Log, err)
	}
	for _, e := range entries {
		names[e.Release] = true
	}
	return nil
}

// recover puts the host back as it was after a failed upgrade or
// rollback: the database as it was before a rollback restored it, current
// back to the previous release (reloaded and checked) if the switch had
// happened, and the release folder this run built marked failed so that
// it never counts among the kept releases. It runs even after Ctrl-C, and
// returns cause with what it could not put back, or did, when the error
// alone would mislead.
func (d *Deploy) recover(ctx context.Context, cause error) error {
	ctx = context.WithoutCancel(ctx)
	if d.Release == "" {
		return cause
	}
	if d.beforeRollback != "" {
		cause = d.undoRestore(ctx, cause)
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	d.stopStarted(ctx, false) // started beside the live release, never switched to
	if d.switched {
		if d.previous != "" {
			d.note("switching back to %s", d.previous)
			if err := d.switchBack(ctx); err != nil {
				d.note("error: could not switch back to %s: %v", d.previous, err)
			} else if err := d.checkHealth(ctx, ""); err != nil {
				d.note("error: the previous release does not answer either: %v", err)
			} else {
				d.note("%s is live again and answers", d.previous)
			}
		} else {
			// The first release failed: nothing was live before, nothing is now.
			d.run(ctx, remote.Sh("rm", "-f", "--", d.Paths.Current, d.Paths.AppSocket))
			if d.Settings.AppServer == "uwsgi" {
				d.started = d.slot
				d.stopStarted(ctx, true)
			} else {
				d.run(ctx, d.appService().stop)
			}
		}
	}
	if d.built {
		if _, err := d.run(ctx, shScript("mark-release", d.releaseDir(), "failed")); err != nil {
			d.note("warning: could not mark %s failed: %v", d.Release, err)
		}
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
	return cause
}
