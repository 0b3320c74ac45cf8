package targets

import (
	"context"
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/djship/djship/sites"
)

// RollbackOptions tune Rollback.
type RollbackOptions struct {
	Options
	// To is the release to go back to; the previous live one when empty.
	To string
	// RestoreDB snapshots the current database, then restores the one
	// taken before the release that replaced the target was migrated.
	RestoreDB bool
}

// RollbackSteps switch current back to a release that was live before,
// chosen from the deploy log, never from the folder listing.
func RollbackSteps() []Step { return rollbackSequence().steps() }

// rollbackSequence is the rollback as its phases, once the run holds
// the lock of every host (lockFirst): the choice of the release, the database restored once, then the
// start, the switch and the finish of an upgrade.
func rollbackSequence() sequence {
	return sequence{
		{phaseChoose, []Step{factsStep{}, rollbackTargetStep{}, migrationsStep{}}},
		{phaseRestore, []Step{restoreDBStep{}}},
		{phaseReady, []Step{startStep{}}},
		{phaseSwitch, []Step{switchStep{}, reloadStep{}, healthStep{}, restartProcessesStep{}}},
		{phaseFinish, []Step{retireStep{}, rollbackRecordStep{}}},
	}
}

// rollbackTarget is the release a rollback goes back to, as a host
// chose it: its name, its revision and the release that replaced it.
type rollbackTarget struct{ release, revision, replacedBy string }

// chosenTarget is the release this host chose to go back to.
func (d *Deploy) chosenTarget() rollbackTarget {
	return rollbackTarget{d.Release, d.Revision, d.rollback.replacedBy}
}

// adoptTarget makes t the release this host goes back to: the db host
// restores the snapshot that the application hosts' choice names.
func (d *Deploy) adoptTarget(t rollbackTarget) {
	d.Release, d.Revision, d.rollback.replacedBy = t.release, t.revision, t.replacedBy
}

// Rollback makes the previous live release (or opts.To) live again on
// every host of the environment, reloads and checks it; on failure the
// release that was live stays or comes back. On several hosts it runs in
// phases as an upgrade does (fleet.go): every host must choose the same
// release, the database is restored once, and the hosts switch together
// or in rolling batches.
func Rollback(ctx context.Context, site *sites.Site, envName string, opts RollbackOptions) ([]*Deploy, error) {
	prepare := func(d *Deploy) { d.rollback.to, d.rollback.restoreDB = opts.To, opts.RestoreDB }
	return onHosts(ctx, site, envName, opts.Options, hostRun{action: actionRollback, lockFirst: true, prepare: prepare, phased: func(ctx context.Context, deploys []*Deploy) map[*Deploy]hostOutcome {
		return newFleet(deploys, opts.Parallel).rollBack(ctx, rollbackSequence())
	}})
}

// rollbackTargetStep picks the release to go back to from the deploy log:
// the one live before the current one, walking back (a second rollback
// goes further back, not forward to the release the first one left), or
// the one asked for if it was ever live and is still complete on the
// host.
type rollbackTargetStep struct{}

func (rollbackTargetStep) Name() string { return "choose target" }

func (rollbackTargetStep) Run(ctx context.Context, d *Deploy) (bool, error) {
	if d.facts.live == "" {
		return false, fmt.Errorf("no release is live: there is nothing to roll back from")
	}
	current := d.facts.live // factsStep's name for what is live now
	entries, err := d.readLog(ctx)
	if err != nil {
		return false, err
	}
	live := liveHistory(entries)
	candidates := walkBack(live)
	if d.rollback.to != "" {
		candidates = live
	}
	var target *logEntry
	for i := len(candidates) - 1; i >= 0; i-- {
		e := candidates[i]
		if d.rollback.to != "" && e.Release != d.rollback.to {
			continue
		}
		if e.Release == current {
			if d.rollback.to != "" {
				return false, fmt.Errorf("%s is already live", current)
			}
			continue
		}
		state, err := d.probe(ctx, shScript("read-file", path.Join(d.Paths.Releases, e.Release, ".djship-state")))
		if err != nil {
			return false, err
		}
		if state != "complete" {
			if d.rollback.to != "" {
				return false, fmt.Errorf("release %s is no longer on the host (pruned or incomplete)", e.Release)
			}
			continue
		}
		target = &candidates[i]
		break
	}
	if target == nil {
		if d.rollback.to != "" {
			return false, fmt.Errorf("release %s was never live here according to %s: choose one that mage releases lists", d.rollback.to, d.Paths.Log)
		}
		msg := fmt.Sprintf("%s records no release live before %s that is still on the host", d.Paths.Log, current)
		if left := lastLeft(live, current); left != "" {
			msg += fmt.Sprintf("; to go forward again to %s, the release a rollback left, use -to=%s", left, left)
		}
		return false, errors.New(msg)
	}
	// The snapshot that matches the target's schema was taken just before
	// the release that replaced it was migrated.
	for _, e := range live {
		if e.Previous == target.Release && e.Action == actionUpgrade {
			d.rollback.replacedBy = e.Release
		}
	}
	d.Release, d.Revision = target.Release, target.Revision
	d.note("rolling back from %s to %s (revision %s, live since %s)", current, target.Release, target.Revision, target.Time)
	return false, nil
}

// migrationsStep warns when the database has migrations that the target
// release does not know: its code will meet a newer schema.
type migrationsStep struct{}

func (migrationsStep) Name() string { return "migrations" }

// applied lists the migrations a release's manage.py shows as [X]
// (applied) or all it knows.
func (d *Deploy) migrations(ctx context.Context, release string, appliedOnly bool) (map[string]bool, error) {
	c := d.manageCommand(release, nil, "showmigrations", "--plan")
	c.Quiet = true
	res, err := d.Host.Run(ctx, c)
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, l := range strings.Split(string(res.Stdout), "\n") {
		l = strings.TrimSpace(l)
		if len(l) < 4 || l[0] != '[' {
			continue
		}
		name := strings.Fields(l[3:])
		if len(name) == 0 || (appliedOnly && l[1] != 'X') {
			continue
		}
		out[name[0]] = true
	}
	return out, nil
}

func (migrationsStep) Run(ctx context.Context, d *Deploy) (bool, error) {
	applied, err := d.migrations(ctx, d.facts.live, true)
	if err != nil {
		d.note("warning: could not list the applied migrations: %v", err)
		return false, nil
	}
	known, err := d.migrations(ctx, d.Release, false)
	if err != nil {
		d.note("warning: could not list the migrations of %s: %v", d.Release, err)
		return false, nil
	}
	var newer []string
	for m := range applied {
		if !known[m] {
			newer = append(newer, m)
		}
	}
	if len(newer) == 0 {
		return false, nil
	}
	sort.Strings(newer)
	if d.rollback.restoreDB {
		d.note("the database has migrations %s does not know: %s; the database snapshot will be restored", d.Release, strings.Join(newer, ", "))
	} else {
		d.note("warning: the database has migrations %s does not know: %s. Its code runs against the newer schema; with DJSHIP_RESTORE_DB=1 the rollback restores the snapshot taken before them (a snapshot of the current database is kept)", d.Release, strings.Join(newer, ", "))
	}
	return false, nil
}

// restoreDBStep, when asked, snapshots the current database into
// snapshots/before-rollback-<time>.*, then restores the snapshot that
// matches the target release. Should the rollback fail after that,
// recover restores the before-rollback snapshot again.
type restoreDBStep struct{}

func (restoreDBStep) Name() string { return "restore database" }

// Skip leaves the database as it is unless the rollback was asked to
// restore it.
func (restoreDBStep) Skip(d *Deploy) bool { return !d.rollback.restoreDB }

func (restoreDBStep) Run(ctx context.Context, d *Deploy) (bool, error) {
	if d.rollback.replacedBy == "" {
		return false, fmt.Errorf("no snapshot matches %s: the deploy log names no release that replaced it", d.Release)
	}
	ext := ".dump"
	if d.Settings.Database.Engine == "sqlite" {
		ext = ".sqlite3"
	}
	from := path.Join(d.Paths.Snapshots, d.rollback.replacedBy+ext)
	keep := path.Join(d.Paths.Snapshots, "before-rollback-"+time.Now().UTC().Format("20060102T150405Z")+ext)
	if err := d.saveDatabase(ctx, from, keep); err != nil {
		return false, fmt.Errorf("saving the database into %s before restoring %s: %w", keep, from, err)
	}
	if err := d.restoreDatabase(ctx, from); err != nil {
		return true, fmt.Errorf("restoring the database from %s: %w (the database as it was before is kept in %s)", from, err, keep)
	}
	d.rollback.beforeRestore = keep
	d.note("restored %s from %s; the database as it was is kept in %s", d.databaseName(), from, keep)
	return true, nil
}

// rollbackRecordStep logs the rollback.
type rollbackRecordStep struct{}

func (rollbackRecordStep) Name() string { return "record" }

func (rollbackRecordStep) Run(ctx context.Context, d *Deploy) (bool, error) {
	if err := d.logResult(ctx, "ok"); err != nil {
		d.note("warning: could not write %s: %v", d.Paths.Log, err)
	}
	return true, nil
}
