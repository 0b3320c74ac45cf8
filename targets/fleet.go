package targets

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
	"time"

	"github.com/djship/djship/sites"
)

// An upgrade of several hosts runs the sequence in phases, each on the
// hosts it concerns, and goes on to the next phase only when every host
// finished the one before:
//
//  1. build, on every web and worker host: upload (at most fleet.uploads
//     at once), unpack, virtualenv, collectstatic, permissions, deploy
//     checks (at most fleet.builds hosts at once);
//  2. snapshot, once: on the db host, or where migrate runs;
//  3. migrate, once when the hosts share the database (on
//     fleet.migrate_host or the first web host), on each host that has a
//     database of its own otherwise (sqlite, a local PostgreSQL);
//  4. ready: every web host starts its new workers beside the live ones
//     and checks that they answer;
//  5. switch: every host at once, or in rolling batches (each batch out
//     of the load balancer while it switches), then reload, health check
//     and the processes;
//  6. finish: old workers stopped, the release recorded, old ones pruned.
//
// A failure anywhere puts every host back: before phase 5 nothing was
// live, so every host keeps its release; in phase 5 every host that
// switched switches back, the batches before as well.

// hostOutcome is how one host's part of a phased run ended.
type hostOutcome struct {
	steps    []StepResult
	err      error
	duration time.Duration
}

// fleet is one phased run over the hosts of an environment. Every host
// is its Deploy: the fleet keeps each host's outcome under it, and never
// finds a host by its place in a list.
type fleet struct {
	deploys []*Deploy
	// parallel bounds the builds when fleet.builds does not (Options).
	parallel int
	outcomes map[*Deploy]*hostOutcome
	// failed is the first error of the run, with the host it came from.
	failed   error
	failedOn string
	// heldOut are the web hosts (by Entry) the balancers had marked down
	// when this run began: an earlier run left them out. They stay out
	// until they switch.
	heldOut map[string]bool
	mu      sync.Mutex
}

func newFleet(deploys []*Deploy, parallel int) *fleet {
	f := &fleet{deploys: deploys, parallel: parallel, outcomes: map[*Deploy]*hostOutcome{}}
	for _, d := range deploys {
		f.outcomes[d] = &hostOutcome{}
	}
	return f
}

// results is each host's outcome so far.
func (f *fleet) results() map[*Deploy]hostOutcome {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[*Deploy]hostOutcome, len(f.outcomes))
	for d, o := range f.outcomes {
		out[d] = *o
	}
	return out
}

// hosts are the hosts for which keep holds, in the environment's order.
func (f *fleet) hosts(keep func(*Deploy) bool) []*Deploy {
	var out []*Deploy
	for _, d := range f.deploys {
		if keep(d) {
			out = append(out, d)
		}
	}
	return out
}

// ok reports whether no host failed so far.
func (f *fleet) ok() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.failed == nil
}

// run runs steps on host d and records the outcome; the first failure
// of the run is kept.
func (f *fleet) run(ctx context.Context, d *Deploy, steps []Step) error {
	start := time.Now()
	res, err := RunSteps(ctx, d, steps)
	f.record(d, res, err, time.Since(start))
	return err
}

// record adds what a host did to its outcome; the first failure of the
// run is kept.
func (f *fleet) record(d *Deploy, steps []StepResult, err error, took time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	o := f.outcomes[d]
	o.steps = append(o.steps, steps...)
	o.duration += took
	if err != nil {
		o.err = err
		if f.failed == nil {
			f.failed, f.failedOn = err, d.Host.Name()
		}
	}
}

// eachHost runs work on every host in parallel, at most limit at once
// (all when limit < 1), and records each host's outcome; a failing host
// does not stop the others.
func (f *fleet) eachHost(ctx context.Context, limit int, work hostWork) {
	sem := newSemaphore(limit)
	f.each(f.deploys, func(d *Deploy) {
		if err := sem.acquire(ctx); err != nil {
			f.record(d, nil, err, 0)
			return
		}
		defer sem.release()
		start := time.Now()
		steps, err := work(ctx, d)
		f.record(d, steps, err, time.Since(start))
	})
}

// phase runs steps on the hosts ds in parallel, at most limit at once
// (all when limit < 1), and returns when all have finished.
func (f *fleet) phase(ctx context.Context, ds []*Deploy, limit int, steps []Step) {
	if len(steps) == 0 || len(ds) == 0 {
		return
	}
	sem := newSemaphore(limit)
	f.each(ds, func(d *Deploy) {
		if err := sem.acquire(ctx); err != nil {
			f.run(ctx, d, []Step{failStep{"wait for a turn", err}})
			return
		}
		defer sem.release()
		f.run(ctx, d, steps)
	})
}

// each runs work for every host of ds in parallel and waits for all.
func (f *fleet) each(ds []*Deploy, work func(d *Deploy)) {
	var wg sync.WaitGroup
	for _, d := range ds {
		wg.Go(func() { work(d) })
	}
	wg.Wait()
}

// semaphore bounds how many hosts do something at once; nil is no bound.
type semaphore chan struct{}

func newSemaphore(limit int) semaphore {
	if limit < 1 {
		return nil
	}
	return make(semaphore, limit)
}

func (s semaphore) acquire(ctx context.Context) error {
	if s == nil {
		return nil
	}
	select {
	case s <- struct{}{}:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

func (s semaphore) release() {
	if s != nil {
		<-s
	}
}

// failStep is a step that fails with err: a host that never got its turn.
type failStep struct {
	name string
	err  error
}

func (s failStep) Name() string                               { return s.name }
func (s failStep) Run(context.Context, *Deploy) (bool, error) { return false, s.err }

// upgrade runs an upgrade sequence in its phases over every host and
// returns each host's outcome.
func (f *fleet) upgrade(ctx context.Context, seq sequence) map[*Deploy]hostOutcome {
	apps, webs := f.hosts((*Deploy).runsSite), f.hosts((*Deploy).serves)
	fl := f.settings()
	// Phase 1: every host finds its facts and uploads (at most
	// fleet.uploads at once), then builds once it has a turn; an upload
	// does not wait for the builds.
	if fl.Builds == 0 {
		fl.Builds = f.parallel
	}
	uploads, builds := newSemaphore(fl.Uploads), newSemaphore(fl.Builds)
	f.each(apps, func(d *Deploy) {
		if f.run(ctx, d, seq.of(phaseFacts)) != nil {
			return
		}
		if f.limited(ctx, d, uploads, "wait for a turn to upload", seq.of(phaseUpload)) != nil {
			return
		}
		f.limited(ctx, d, builds, "wait for a turn to build", seq.of(phaseBuild))
	})
	migrating := f.migrateHosts(apps)
	if f.ok() {
		f.phase(ctx, f.snapshotHosts(migrating), 0, seq.of(phaseSnapshot))
	}
	if f.ok() {
		f.phase(ctx, migrating, 0, seq.of(phaseMigrate))
	}
	return f.goLive(ctx, apps, webs, seq)
}

// goLive runs the phases that end an upgrade or a rollback once every
// host is ready for them: every web host starts its new workers, the
// hosts switch (at once or in batches) and finish; on any failure so far
// or now, every host is put back.
func (f *fleet) goLive(ctx context.Context, apps, webs []*Deploy, seq sequence) map[*Deploy]hostOutcome {
	lbs := f.hosts(func(d *Deploy) bool { return d.hasRole(sites.RoleLB) })
	f.heldOut = map[string]bool{}
	for _, lb := range lbs {
		maps.Copy(f.heldOut, lb.balancerDown(ctx))
	}
	if f.ok() {
		f.phase(ctx, apps, 0, seq.of(phaseReady))
	}
	if f.ok() {
		f.switchOver(ctx, apps, webs, seq.of(phaseSwitch))
	}
	if f.ok() {
		f.phase(ctx, apps, 0, seq.of(phaseFinish))
	}
	if !f.ok() {
		f.recoverAll(ctx)
	} else if len(f.heldOut) > 0 {
		// Every host switched: the ones left out are in line again.
		f.drain(ctx, lbs, nil)
	}
	return f.results()
}

// limited runs steps on d once it has a turn of sem.
func (f *fleet) limited(ctx context.Context, d *Deploy, sem semaphore, waiting string, steps []Step) error {
	if len(steps) == 0 {
		return nil
	}
	if err := sem.acquire(ctx); err != nil {
		return f.run(ctx, d, []Step{failStep{waiting, err}})
	}
	defer sem.release()
	return f.run(ctx, d, steps)
}

// settings are the environment's fleet settings.
func (f *fleet) settings() sites.Fleet {
	if len(f.deploys) == 0 || f.deploys[0].Env == nil {
		return sites.Fleet{}
	}
	return f.deploys[0].Env.Settings.Fleet
}

// sharedDatabase reports whether the hosts share one database: a
// PostgreSQL server on the db host or elsewhere, not on each host.
func (f *fleet) sharedDatabase(apps []*Deploy) bool {
	for _, d := range apps {
		if d.Settings.Database.Engine != "postgres" || d.localDatabase() {
			return false
		}
	}
	return true
}

// migrateHosts are the hosts that run migrate: the one the site names
// (or the first web host) when the hosts share the database, every
// application host when each has its own.
func (f *fleet) migrateHosts(apps []*Deploy) []*Deploy {
	if len(apps) <= 1 || !f.sharedDatabase(apps) {
		return apps
	}
	name := f.settings().MigrateHost
	for _, d := range apps {
		if name != "" && d.Entry.Matches(name) {
			return []*Deploy{d}
		}
	}
	for _, d := range apps {
		if d.serves() {
			return []*Deploy{d}
		}
	}
	return apps[:1]
}

// snapshotHosts are where the snapshot is taken: the db host, which
// keeps it beside the database, or else where migrate runs.
func (f *fleet) snapshotHosts(migrating []*Deploy) []*Deploy {
	if db := f.hosts(func(d *Deploy) bool { return d.hasRole(sites.RoleDB) && !d.runsSite() }); len(db) == 1 && f.sharedDatabase(migrating) {
		return db
	}
	return migrating
}

// batches are the hosts in the order they switch: every host at once,
// or with fleet.rolling the web hosts in batches, then the worker
// hosts.
func (f *fleet) batches(apps, webs []*Deploy) [][]*Deploy {
	r := f.settings().Rolling
	if r.Batch == "" {
		return [][]*Deploy{apps}
	}
	size, err := sites.BatchSize(r.Batch, len(webs))
	if err != nil || size < 1 {
		return [][]*Deploy{apps}
	}
	var out [][]*Deploy
	for start := 0; start < len(webs); start += size {
		out = append(out, webs[start:min(start+size, len(webs))])
	}
	var workers []*Deploy
	for _, d := range apps {
		if !d.serves() {
			workers = append(workers, d)
		}
	}
	if len(workers) > 0 {
		out = append(out, workers)
	}
	return out
}

// switchOver switches the hosts batch by batch (one batch of every host
// without fleet.rolling): each batch of web hosts out of the load
// balancer while it switches, reloads and answers its health check, and
// back in before the next. It stops at the first failure.
func (f *fleet) switchOver(ctx context.Context, apps, webs []*Deploy, steps []Step) {
	batches := f.batches(apps, webs)
	pause := time.Duration(f.settings().Rolling.Pause) * time.Second
	lbs := f.hosts(func(d *Deploy) bool { return d.hasRole(sites.RoleLB) })
	start := time.Now()
	for n, batch := range batches {
		drain := len(lbs) > 0 && len(batches) > 1 && batch[0].serves()
		if drain {
			if !f.drain(ctx, lbs, batch) {
				return
			}
		}
		f.phase(ctx, batch, 0, steps)
		if !f.ok() {
			return
		}
		if drain && !f.drain(ctx, lbs, nil) {
			return
		}
		if len(batches) > 1 {
			f.note(batch, "batch %d of %d switched", n+1, len(batches))
		}
		if pause > 0 && n < len(batches)-1 {
			select {
			case <-time.After(pause):
			case <-ctx.Done():
				f.run(ctx, batch[0], []Step{failStep{"pause between batches", context.Cause(ctx)}})
				return
			}
		}
	}
	f.reportWindow(apps, len(batches), time.Since(start))
}

// note prints a line on the first host of ds.
func (f *fleet) note(ds []*Deploy, format string, args ...any) {
	if len(ds) > 0 {
		ds[0].note(format, args...)
	}
}

// reportWindow prints how far apart the first and the last switch were:
// while it lasts, some hosts serve the old release and some the new.
func (f *fleet) reportWindow(apps []*Deploy, batches int, total time.Duration) {
	if len(apps) < 2 {
		return
	}
	var first, last time.Time
	for _, d := range apps {
		at := d.progress.switchedAt
		if first.IsZero() || at.Before(first) {
			first = at
		}
		if at.After(last) {
			last = at
		}
	}
	window := last.Sub(first).Round(time.Millisecond)
	if batches > 1 {
		f.note(apps, "%d hosts switched in %d batches over %s (switch window %s)", len(apps), batches, total.Round(time.Millisecond), window)
		return
	}
	f.note(apps, "%d hosts switched within %s (switch window)", len(apps), window)
}

// drain takes the web hosts of batch out of every load balancer (none
// for a nil batch: all back in), and waits until the balancers' old
// workers have finished the requests they had sent there.
func (f *fleet) drain(ctx context.Context, lbs, batch []*Deploy) bool {
	down := map[string]bool{}
	var names []string
	for _, d := range batch {
		down[d.Entry.String()] = true
		names = append(names, d.Entry.String())
	}
	name := "drain " + strings.Join(names, ", ")
	if batch == nil {
		name = "all web hosts in"
	}
	// A host an earlier run left out comes back in once it has switched.
	for _, d := range f.hosts((*Deploy).serves) {
		if f.heldOut[d.Entry.String()] && !d.progress.switched {
			down[d.Entry.String()] = true
			if batch == nil {
				name = "web hosts in but those not switched yet"
			}
		}
	}
	f.phase(ctx, lbs, 0, []Step{balancerDrainStep{name: name, down: down}})
	return f.ok()
}

// balancerDrainStep writes an lb host's balancer with some web hosts
// marked down, reloads nginx gracefully and waits for the workers of the
// old configuration to finish their requests.
type balancerDrainStep struct {
	name string
	down map[string]bool
}

func (s balancerDrainStep) Name() string { return s.name }

func (s balancerDrainStep) Run(ctx context.Context, d *Deploy) (bool, error) {
	changed, err := d.writeBalancer(ctx, s.down)
	if err != nil || !changed {
		return changed, err
	}
	_, err = d.run(ctx, shScript("wait-nginx-workers", fmt.Sprint(d.Settings.App.Timeout)))
	return true, err
}

// recoverAll puts every host back after a failure: the host that failed
// and every other, each in parallel, then every web host back into the
// load balancers.
func (f *fleet) recoverAll(ctx context.Context) {
	ctx = context.WithoutCancel(ctx)
	f.mu.Lock()
	on := f.failedOn
	f.mu.Unlock()
	f.each(f.hosts(func(d *Deploy) bool { return d.Release != "" }), func(d *Deploy) {
		f.mu.Lock()
		own := f.outcomes[d].err
		f.mu.Unlock()
		if own == nil {
			// Another host's failure: this host's connection was not lost.
			own = fmt.Errorf("%s: put back because %s failed: %w", d.Host.Name(), on, errOtherHost)
			if !d.progress.built && !d.progress.switched && !d.runsSite() {
				d.recover(ctx, fmt.Errorf("%s failed: %w", on, errOtherHost))
				return
			}
		}
		err := d.recover(ctx, own)
		f.mu.Lock()
		f.outcomes[d].err = err
		f.mu.Unlock()
	})
	// A web host that could not be put back serves what it served when
	// it was lost, maybe the release the others left: it stays out of
	// the balancers until a run switches it.
	out := map[string]bool{}
	var names []string
	for _, d := range f.hosts((*Deploy).serves) {
		if d.progress.lost || f.heldOut[d.Entry.String()] {
			out[d.Entry.String()] = true
			names = append(names, d.Entry.String())
		}
	}
	for _, d := range f.hosts(func(d *Deploy) bool { return d.hasRole(sites.RoleLB) }) {
		if _, err := d.writeBalancer(ctx, out); err != nil {
			d.note("error: could not put the web hosts back into the load balancer: %v", err)
		} else if len(names) > 0 {
			d.note("%s left out of the load balancer until a ship or rollback brings every host to one release", strings.Join(names, ", "))
		}
	}
}

// errOtherHost marks the hosts put back because another host failed.
var errOtherHost = errors.New("another host failed")

// rollBack runs a rollback sequence in its phases, every host locked:
// every application host chooses its target, which must be
// the same release everywhere; the database is restored once (where
// snapshots are kept); then the hosts start, switch and finish as in an
// upgrade.
func (f *fleet) rollBack(ctx context.Context, seq sequence) map[*Deploy]hostOutcome {
	apps, webs := f.hosts((*Deploy).runsSite), f.hosts((*Deploy).serves)
	f.phase(ctx, apps, 0, seq.of(phaseChoose))
	var target rollbackTarget
	if f.ok() {
		target = f.agree(apps)
	}
	if f.ok() {
		at := f.snapshotHosts(f.migrateHosts(apps))
		for _, d := range at {
			if !d.runsSite() {
				// The db host restores what the application hosts chose.
				d.adoptTarget(target)
			}
		}
		f.phase(ctx, at, 0, seq.of(phaseRestore))
	}
	return f.goLive(ctx, apps, webs, seq)
}

// agree fails the run unless every application host chose the same
// release to go back to, and returns that choice.
func (f *fleet) agree(apps []*Deploy) rollbackTarget {
	if len(apps) == 0 {
		return rollbackTarget{}
	}
	want := apps[0].chosenTarget()
	var chose []string
	differ := false
	for _, d := range apps {
		chose = append(chose, d.Host.Name()+" "+d.Release)
		differ = differ || d.Release != want.release
	}
	if differ {
		f.run(context.Background(), apps[0], []Step{failStep{"same target everywhere", fmt.Errorf("the hosts would go back to different releases (%s), so none switched: choose one with -to=RELEASE", strings.Join(chose, ", "))}})
	}
	return want
}
