package targets

import (
	"context"
	"fmt"
	"path"
	"sync"

	"github.com/djship/djship/remote"
	"github.com/djship/djship/sites"
)

// A magefile extends the upgrade sequence with steps of its own, placed
// before or after a step of the README's table by its name, usually from
// an init function:
//
//	func init() {
//		targets.AddStepBefore("migrate", targets.ShellStep("pg_trgm",
//			`runuser -u postgres -- psql -d shop -c 'CREATE EXTENSION IF NOT EXISTS pg_trgm'`))
//		targets.AddStepAfter("migrate", targets.ManageStep("cache table", "createcachetable"))
//	}
//
// Every later upgrade (and ship) of the process runs them; a step whose
// anchor is not in the sequence stops the upgrade before it changes
// anything.

// insertion is one added step and where it goes.
type insertion struct {
	anchor string
	after  bool
	step   Step
	// project, when set, limits the step to the upgrades of that project
	// (the tests add steps to one site while others ship beside it).
	project string
}

var (
	insertionsMu sync.Mutex
	insertions   []insertion
)

// AddStepBefore runs step right before the upgrade step named anchor.
func AddStepBefore(anchor string, step Step) { addStep(anchor, false, step) }

// AddStepAfter runs step right after the upgrade step named anchor.
func AddStepAfter(anchor string, step Step) { addStep(anchor, true, step) }

func addStep(anchor string, after bool, step Step) {
	insertionsMu.Lock()
	defer insertionsMu.Unlock()
	insertions = append(insertions, insertion{anchor: anchor, after: after, step: step})
}

// withInsertions is seq with the steps added for every project and for
// project in place, in the order they were added, each in the phase of
// the step it follows (sequence.insert).
func withInsertions(seq sequence, project string) (sequence, error) {
	insertionsMu.Lock()
	defer insertionsMu.Unlock()
	out := seq
	for _, in := range insertions {
		if in.project != "" && in.project != project {
			continue
		}
		next, err := out.insert(in.anchor, in.after, in.step)
		if err != nil {
			return nil, fmt.Errorf("the step %q was added %s %q, which is not a step of the upgrade: name one of %s", in.step.Name(), where(in.after), in.anchor, stepNames(seq.steps()))
		}
		out = next
	}
	return out, nil
}

func where(after bool) string {
	if after {
		return "after"
	}
	return "before"
}

// ManageStep is a step that runs manage.py with args in the release being
// shipped, as migrate does: the application's user, its environment.
func ManageStep(name string, args ...string) Step { return manageStep{name, args} }

type manageStep struct {
	name string
	args []string
}

func (s manageStep) Name() string { return s.name }

func (s manageStep) Run(ctx context.Context, d *Deploy) (bool, error) {
	return true, d.manage(ctx, s.args...)
}

// ShellStep is a step that runs a shell script as root on each host,
// with the release's folder as $1 and the site's folder as $2: build any
// other value into it with remote.Quote.
func ShellStep(name, script string) Step { return shellStep{name, script} }

type shellStep struct{ name, script string }

func (s shellStep) Name() string { return s.name }

func (s shellStep) Run(ctx context.Context, d *Deploy) (bool, error) {
	_, err := d.Host.Run(ctx, remote.Command{Script: remote.Sh("sh", "-c", s.script, s.name, d.releaseDir(), d.Paths.Base), Become: true})
	return true, err
}

// OnHosts runs work on every host of the environment in parallel, over
// djship's connections, and prints the summary table: the way for a
// magefile's own target to act on the hosts (a database backup, a cache
// flush). action names the run in the table and the errors.
func OnHosts(ctx context.Context, site *sites.Site, envName, action string, opts Options, work func(context.Context, *Deploy) error) error {
	_, err := onHosts(ctx, site, envName, opts, hostRun{action: action, work: func(ctx context.Context, d *Deploy) ([]StepResult, error) {
		if _, err := (factsStep{}).Run(ctx, d); err != nil {
			return nil, err
		}
		return []StepResult{{Name: action, Changed: true}}, work(ctx, d)
	}})
	return err
}

// LiveRelease is the folder of the release that was live when the run
// began, "" when none was.
func (d *Deploy) LiveRelease() string {
	if d.facts.live == "" {
		return ""
	}
	return path.Join(d.Paths.Releases, d.facts.live)
}
