package targets

import (
	"context"
	"errors"
	"fmt"
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

// fleet is one phased run over the hosts of an environment.
type fleet struct {
	deploys []*Deploy
	// parallel bounds the builds when fleet.builds does not (Options).
	parallel int
	results  []hostOutcome
	// failed is the first error of the run, with the host it came from.
	failed   error
	failedOn string
	mu       sync.Mutex
}

func newFleet(deploys []*Deploy, parallel int) *fleet {
	return &fleet{deploys: deploys, parallel: parallel, results: make([]hostOutcome, len(deploys))}
}

// hosts are the indexes of the hosts for which keep holds.
func (f *fleet) hosts(keep func(*Deploy) bool) []int {
	var idx []int
	for i, d := range f.deploys {
		if keep(d) {
			idx = append(idx, i)
		}
	}
	return idx
}

// ok reports whether no host failed so far.
func (f *fleet) ok() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.failed == nil
}

// run runs steps on host i and records the outcome; the first failure
// of the run is kept.
func (f *fleet) run(ctx context.Context, i int, steps []Step) error {
	start := time.Now()
	res, err := RunSteps(ctx, f.deploys[i], steps)
	f.mu.Lock()
	defer f.mu.Unlock()
	o := &f.results[i]
	o.steps = append(o.steps, res...)
	o.duration += time.Since(start)
	if err != nil {
		o.err = err
		if f.failed == nil {
			f.failed, f.failedOn = err, f.deploys[i].Host.Name()
		}
	}
	return err
}

// phase runs steps on the hosts idx in parallel, at most limit at once
// (all when limit < 1), and returns when all have finished.
func (f *fleet) phase(ctx context.Context, idx []int, limit int, steps []Step) {
	if len(steps) == 0 || len(idx) == 0 {
		return
	}
	sem := newSemaphore(limit)
	f.each(idx, func(i int) {
		if err := sem.acquire(ctx); err != nil {
			f.run(ctx, i, []Step{failStep{"wait for a turn", err}})
			return
		}
		defer sem.release()
		f.run(ctx, i, steps)
	})
}

// each runs work for every host of idx in parallel and waits for all.
func (f *fleet) each(idx []int, work func(i int)) {
	var wg sync.WaitGroup
	for _, i := range idx {
		wg.Add(1)
		go func() {
			defer wg.Done()
			work(i)
		}()
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

// limited is a step that waits for a turn of sem before it runs.
type limited struct {
	Step
	sem semaphore
}

func (l limited) Run(ctx context.Context, d *Deploy) (bool, error) {
	if err := l.sem.acquire(ctx); err != nil {
		return false, err
	}
	defer l.sem.release()
	return l.Step.Run(ctx, d)
}

func (l limited) Skip(d *Deploy) bool {
	k, ok := l.Step.(Skipper)
	return ok && k.Skip(d)
}

// failStep is a step that fails with err: a host that never got its turn.
type failStep struct {
	name string
	err  error
}

func (s failStep) Name() string                               { return s.name }
func (s failStep) Run(context.Context, *Deploy) (bool, error) { return false, s.err }

// upgradePhases splits the upgrade sequence (with the steps a magefile
// added) into its phases: each phase starts at its first step's name,
// and an added step belongs to the phase of the step it follows, except
// that the snapshot phase is the snapshot alone: a step added before
// migrate runs where migrate does.
type upgradePhases struct {
	upload, build, snapshot, migrate, ready, switchOver, finish []Step
}

func splitUpgrade(steps []Step) upgradePhases {
	var p upgradePhases
	current := &p.upload
	starts := map[string]*[]Step{
		"release folder": &p.build, "database snapshot": &p.snapshot, "migrate": &p.migrate,
		"start new workers": &p.ready, "switch": &p.switchOver, "stop old workers": &p.finish,
	}
	for _, s := range steps {
		if next, ok := starts[s.Name()]; ok && len(*next) == 0 {
			current = next
		}
		*current = append(*current, s)
		if current == &p.snapshot {
			// The snapshot is one step; what follows it migrates.
			current = &p.migrate
		}
	}
	return p
}

// upgrade runs the upgrade sequence in phases over every host and
// returns each host's outcome.
func (f *fleet) upgrade(ctx context.Context, steps []Step) []hostOutcome {
	p := splitUpgrade(steps)
	apps, webs := f.hosts((*Deploy).runsSite), f.hosts((*Deploy).serves)
	fl := f.settings()
	uploads := newSemaphore(fl.Uploads)
	for i, s := range p.upload {
		if s.Name() == "upload" {
			p.upload[i] = limited{s, uploads}
		}
	}
	// Phase 1: every host uploads, then builds once it has a turn; an
	// upload does not wait for the builds.
	if fl.Builds == 0 {
		fl.Builds = f.parallel
	}
	builds := newSemaphore(fl.Builds)
	f.each(apps, func(i int) {
		if f.run(ctx, i, p.upload) != nil {
			return
		}
		if err := builds.acquire(ctx); err != nil {
			f.run(ctx, i, []Step{failStep{"wait for a turn to build", err}})
			return
		}
		defer builds.release()
		f.run(ctx, i, p.build)
	})
	migrating := f.migrateHosts(apps)
	if f.ok() {
		f.phase(ctx, f.snapshotHosts(migrating), 0, p.snapshot)
	}
	if f.ok() {
		f.phase(ctx, migrating, 0, p.migrate)
	}
	if f.ok() {
		f.phase(ctx, apps, 0, p.ready)
	}
	if f.ok() {
		f.switchOver(ctx, apps, webs, p.switchOver)
	}
	if f.ok() {
		f.phase(ctx, apps, 0, p.finish)
	}
	if !f.ok() {
		f.recoverAll(ctx)
	}
	return f.results
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
func (f *fleet) sharedDatabase(apps []int) bool {
	for _, i := range apps {
		if d := f.deploys[i]; d.Settings.Database.Engine != "postgres" || d.localDatabase() {
			return false
		}
	}
	return true
}

// migrateHosts are the hosts that run migrate: the one the site names
// (or the first web host) when the hosts share the database, every
// application host when each has its own.
func (f *fleet) migrateHosts(apps []int) []int {
	if len(apps) <= 1 || !f.sharedDatabase(apps) {
		return apps
	}
	name := f.settings().MigrateHost
	for _, i := range apps {
		if name != "" && f.deploys[i].Env.Hosts[i].Matches(name) {
			return []int{i}
		}
	}
	for _, i := range apps {
		if f.deploys[i].serves() {
			return []int{i}
		}
	}
	return apps[:1]
}

// snapshotHosts are where the snapshot is taken: the db host, which
// keeps it beside the database, or else where migrate runs.
func (f *fleet) snapshotHosts(migrating []int) []int {
	if db := f.hosts(func(d *Deploy) bool { return d.hasRole(sites.RoleDB) && !d.runsSite() }); len(db) == 1 && f.sharedDatabase(migrating) {
		return db
	}
	return migrating
}

// batches are the hosts in the order they switch: every host at once,
// or with fleet.rolling the web hosts in batches, then the worker
// hosts.
func (f *fleet) batches(apps, webs []int) [][]int {
	r := f.settings().Rolling
	if r.Batch == "" {
		return [][]int{apps}
	}
	size, err := sites.BatchSize(r.Batch, len(webs))
	if err != nil || size < 1 {
		return [][]int{apps}
	}
	var out [][]int
	for start := 0; start < len(webs); start += size {
		out = append(out, webs[start:min(start+size, len(webs))])
	}
	var workers []int
	for _, i := range apps {
		if !f.deploys[i].serves() {
			workers = append(workers, i)
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
func (f *fleet) switchOver(ctx context.Context, apps, webs []int, steps []Step) {
	batches := f.batches(apps, webs)
	pause := time.Duration(f.settings().Rolling.Pause) * time.Second
	lbs := f.hosts(func(d *Deploy) bool { return d.hasRole(sites.RoleLB) })
	start := time.Now()
	for n, batch := range batches {
		drain := len(lbs) > 0 && len(batches) > 1 && f.deploys[batch[0]].serves()
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

// note prints a line on the first host of idx.
func (f *fleet) note(idx []int, format string, args ...any) {
	if len(idx) > 0 {
		f.deploys[idx[0]].note(format, args...)
	}
}

// reportWindow prints how far apart the first and the last switch were:
// while it lasts, some hosts serve the old release and some the new.
func (f *fleet) reportWindow(apps []int, batches int, total time.Duration) {
	if len(apps) < 2 {
		return
	}
	var first, last time.Time
	for _, i := range apps {
		at := f.deploys[i].progress.switchedAt
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
func (f *fleet) drain(ctx context.Context, lbs, batch []int) bool {
	down := map[string]bool{}
	var names []string
	for _, i := range batch {
		h := f.deploys[i].Env.Hosts[i]
		down[h.String()] = true
		names = append(names, h.String())
	}
	name := "drain " + strings.Join(names, ", ")
	if batch == nil {
		name = "all web hosts in"
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
	cause, on := f.failed, f.failedOn
	f.mu.Unlock()
	var wg sync.WaitGroup
	for i, d := range f.deploys {
		if d.Release == "" {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			own := f.results[i].err
			if own == nil {
				if !d.progress.built && !d.progress.switched && !d.runsSite() {
					d.recover(ctx, cause)
					return
				}
				own = fmt.Errorf("%s: put back because %s failed: %w", d.Host.Name(), on, errOtherHost)
			}
			err := d.recover(ctx, own)
			f.mu.Lock()
			f.results[i].err = err
			f.mu.Unlock()
		}()
	}
	wg.Wait()
	if lbs := f.hosts(func(d *Deploy) bool { return d.hasRole(sites.RoleLB) }); len(lbs) > 0 {
		for _, i := range lbs {
			d := f.deploys[i]
			if _, err := d.writeBalancer(ctx, nil); err != nil {
				d.note("error: could not put every web host back into the load balancer: %v", err)
			}
		}
	}
}

// errOtherHost marks the hosts put back because another host failed.
var errOtherHost = errors.New("another host failed")

// rollBack runs the rollback sequence in phases: every host takes its
// lock, and every application host chooses its target, which must be
// the same release everywhere; the database is restored once (where
// snapshots are kept); then the hosts start, switch and finish as in an
// upgrade.
func (f *fleet) rollBack(ctx context.Context, steps []Step) []hostOutcome {
	var lock, choose, restore, ready, switchOver, finish []Step
	current := &lock
	starts := map[string]*[]Step{
		"facts": &choose, "restore database": &restore, "start new workers": &ready,
		"switch": &switchOver, "stop old workers": &finish,
	}
	for _, s := range steps {
		if next, ok := starts[s.Name()]; ok && len(*next) == 0 {
			current = next
		}
		*current = append(*current, s)
	}
	all := f.hosts(func(*Deploy) bool { return true })
	apps, webs := f.hosts((*Deploy).runsSite), f.hosts((*Deploy).serves)
	f.phase(ctx, all, 0, lock)
	if f.ok() {
		f.phase(ctx, apps, 0, choose)
	}
	if f.ok() {
		f.agree(apps)
	}
	if f.ok() {
		restoring := f.migrateHosts(apps)
		at := f.snapshotHosts(restoring)
		if len(at) == 1 && len(restoring) == 1 && at[0] != restoring[0] {
			// The db host restores what the release's host chose.
			from, to := f.deploys[restoring[0]], f.deploys[at[0]]
			to.Release, to.Revision, to.rollback.replacedBy = from.Release, from.Revision, from.rollback.replacedBy
		}
		f.phase(ctx, at, 0, restore)
	}
	if f.ok() {
		f.phase(ctx, apps, 0, ready)
	}
	if f.ok() {
		f.switchOver(ctx, apps, webs, switchOver)
	}
	if f.ok() {
		f.phase(ctx, apps, 0, finish)
	}
	if !f.ok() {
		f.recoverAll(ctx)
	}
	return f.results
}

// agree fails the run unless every application host chose the same
// release to go back to.
func (f *fleet) agree(apps []int) {
	if len(apps) < 2 {
		return
	}
	want := f.deploys[apps[0]].Release
	var chose []string
	differ := false
	for _, i := range apps {
		d := f.deploys[i]
		chose = append(chose, d.Host.Name()+" "+d.Release)
		differ = differ || d.Release != want
	}
	if differ {
		f.run(context.Background(), apps[0], []Step{failStep{"same target everywhere", fmt.Errorf("the hosts would go back to different releases (%s), so none switched: choose one with -to=RELEASE", strings.Join(chose, ", "))}})
	}
}
