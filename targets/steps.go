package targets

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/djship/djship/release"
	"github.com/djship/djship/remote"
	"github.com/djship/djship/sites"
)

// Step is one small piece of work on a host. Provisioning and the upgrade
// sequence are ordered lists of steps; one runner times, prints and stops
// them, and plan walks the same list in check mode.
type Step interface {
	// Name is what the progress output calls the step.
	Name() string
	// Run does the step, or in check mode (d.Check) only works out what it
	// would change, and reports whether anything changed (or would).
	Run(ctx context.Context, d *Deploy) (changed bool, err error)
}

// Skipper is a Step that does not apply to some hosts (a step of one
// application server only): RunSteps does not run it there, and prints
// it as skipped.
type Skipper interface {
	Skip(d *Deploy) bool
}

// Deploy is the work on one host. Its exported fields are the run's
// inputs; the rest is what the steps learn and do, in four parts with
// one job each: the facts found on the host before anything changed, the
// lock, the uWSGI slots, and the sequence's progress (with a rollback's
// own choices beside it).
type Deploy struct {
	// Site is the site being worked on.
	Site *sites.Site
	// Env is the environment the host belongs to.
	Env *sites.Environment
	// Entry is the host as the site file lists it: its address, roles
	// and settings. Work over several hosts tells them apart by it.
	Entry sites.Host
	// Settings are the host's settings.
	Settings sites.Settings
	// Host is the connection.
	Host remote.Host
	// Roles are what the host does (sites.RoleWeb, ...); web and worker
	// when empty.
	Roles []string
	// Out prints progress.
	Out *remote.Output
	// Check asks steps to change nothing and record what they would do.
	Check bool
	// Secrets are the decrypted secret values for the environment.
	Secrets map[string]string
	// Paths is where everything lives on the host.
	Paths Paths
	// Action is what this run does to the host (actionUpgrade,
	// actionRollback, ...): the lock and the deploy log name it.
	Action string
	// LockWait is how long to wait for another run's lock.
	LockWait time.Duration
	// Tarball is the release an upgrade ships.
	Tarball *release.Tarball

	// Release is the release this run makes live: the new one an upgrade
	// builds (named before the sequence starts), or the one a rollback
	// returns to (chosen by its first steps); Revision is its revision.
	Release, Revision string
	// Image is the image of the release an upgrade ships in container
	// mode: its reference pinned by digest.
	Image string
	// Planned holds, in check mode, what the steps would do: one line per
	// action and a unified diff per file.
	Planned []string

	// facts is what the facts step found before this run changed anything.
	facts hostFacts
	// lockHeld is the info this run wrote into the lock it holds, "" when
	// it holds none.
	lockHeld string
	// slots is which uWSGI slot serves and which this run starts or retires.
	slots slotState
	// progress is how far the sequence got: what recover undoes.
	progress progress
	// rollback is what a rollback was asked for and what it found.
	rollback rollbackState
	// reload names the services whose configuration provision changed.
	reload map[string]bool
	// mode is how the application runs (mode.go), chosen once from the
	// settings.
	mode runMode
}

// The actions of a run: the lock's info and the deploy log name them.
const (
	actionUpgrade   = "upgrade"
	actionRollback  = "rollback"
	actionProvision = "provision"
	actionPlan      = "plan"
	actionStatus    = "status"
	actionReleases  = "releases"
	actionUnlock    = "unlock"
	actionLogs      = "logs"
	actionManage    = "manage"
)

// hostFacts is what a host is like before this run changes it.
type hostFacts struct {
	// init is "systemd" or "sysv".
	init string
	// live is the release current points to when its virtualenv is
	// there, "" when no release is live.
	live string
}

// slotState is the uWSGI slots (a or b, see slots.go) as this run moves
// them: serving is the one visitors reach ("" when none), started the
// one this run started a release in and has not switched to yet,
// retiring the one that served before the switch until it is stopped.
type slotState struct {
	serving, started, retiring string
}

// progress is what the upgrade or rollback sequence has done so far.
type progress struct {
	// built is set once the upgrade has made the release's folder: only
	// that folder is marked failed when the run fails.
	built bool
	// switched is set once current points to Release, at switchedAt.
	switched   bool
	switchedAt time.Time
	// processes is set once the site's processes were restarted onto
	// Release.
	processes bool
	// lost is set when the host could not be reached again to put it
	// back after a failure.
	lost bool
}

// rollbackState is a rollback's request and what it found.
type rollbackState struct {
	// to is the release asked for, "" for the one live before.
	to string
	// restoreDB asks to restore the matching database snapshot.
	restoreDB bool
	// replacedBy is the release that replaced Release when it was live;
	// the snapshot taken before its migrations matches Release's schema.
	replacedBy string
	// beforeRestore is the snapshot of the database as it was before the
	// rollback restored Release's; set once that restore is done, so that
	// a failed rollback restores it again.
	beforeRestore string
}

// NewDeploy prepares the work on one host of env.
func NewDeploy(site *sites.Site, env *sites.Environment, settings sites.Settings, host remote.Host, out *remote.Output) *Deploy {
	if settings.Instance == "" { // settings made in Go rather than loaded
		settings.Instance = settings.Project
	}
	return &Deploy{
		Site: site, Env: env, Settings: settings, Host: host, Out: out,
		Paths:   NewPaths(settings),
		Secrets: map[string]string{},
		reload:  map[string]bool{},
		mode:    runModeOf(settings),
	}
}

// Paths are the places of the host layout (README, "Host layout").
type Paths struct {
	Base, Releases, Current, Shared, Media, Logs, DB, Snapshots, Versions string
	SecretPy, Environment, Lock, Log                                      string
	// AppSocket is the link the web server connects through: to the
	// socket of the uWSGI instance that serves the live release.
	AppSocket string
}

// NewPaths computes the host layout of a site.
func NewPaths(s sites.Settings) Paths {
	instance := s.Instance
	if instance == "" {
		instance = s.Project
	}
	base := path.Join(s.Root, instance)
	return Paths{
		Base:        base,
		Releases:    path.Join(base, "releases"),
		Current:     path.Join(base, "current"),
		Shared:      path.Join(base, "shared"),
		Media:       path.Join(base, "shared", "media"),
		Logs:        path.Join(base, "shared", "logs"),
		DB:          path.Join(base, "shared", "db"),
		Snapshots:   path.Join(base, "snapshots"),
		Versions:    path.Join(base, "versions"),
		SecretPy:    path.Join(base, "secrets.py"),
		Environment: path.Join(base, "environment.json"),
		Lock:        path.Join(base, "deploy.lock"),
		Log:         path.Join(base, "deploy.log"),
		AppSocket:   path.Join(base, "app.sock"),
	}
}

// slot is the link a uWSGI slot's instance starts from (see slots.go).
func (p Paths) slot(name string) string { return path.Join(p.Base, "slot-"+name) }

// StepResult is how one step ended.
type StepResult struct {
	Name     string
	Skipped  bool
	Changed  bool
	Err      error
	Duration time.Duration
}

// RunSteps runs steps in order on d's host, printing each with its
// duration and status, and stops at the first failure.
func RunSteps(ctx context.Context, d *Deploy, steps []Step) ([]StepResult, error) {
	var results []StepResult
	for _, s := range steps {
		if k, ok := s.(Skipper); ok && k.Skip(d) {
			d.Out.Step(d.Host.Name(), s.Name(), 0, remote.StatusSkipped, nil)
			results = append(results, StepResult{Name: s.Name(), Skipped: true})
			continue
		}
		start := time.Now()
		changed, err := s.Run(ctx, d)
		if err != nil {
			err = diskFull(ctx, d, err)
		}
		r := StepResult{Name: s.Name(), Changed: changed, Err: err, Duration: time.Since(start)}
		results = append(results, r)
		status := remote.StatusOK
		switch {
		case err != nil:
			status = remote.StatusFailed
		case changed && d.Check:
			status = "planned"
		case changed:
			status = remote.StatusChanged
		}
		d.Out.Step(d.Host.Name(), s.Name(), r.Duration, status, err)
		if err != nil {
			return results, fmt.Errorf("%s: step %q: %w", d.Host.Name(), s.Name(), err)
		}
	}
	return results, nil
}

// diskFull says what to do when err comes from a full disk, which the
// programs on a host say each in their own words (dash's printf only
// says "I/O error"): when the host's message says so, or when df finds
// a file system the upgrade writes to (the releases, the site's folder,
// /tmp) with under diskFullKB left once the step has failed.
func diskFull(ctx context.Context, d *Deploy, err error) error {
	if errors.Is(err, remote.ErrConnectionLost) || ctx.Err() != nil {
		return err
	}
	where := d.Paths.Base
	if !strings.Contains(err.Error(), "No space left on device") {
		out, _ := d.probe(ctx, remote.Sh("df", "-Pk", "--", d.Paths.Releases, d.Paths.Base, "/tmp")+" 2>/dev/null | awk 'NR > 1 {print $4, $6}'")
		full := ""
		for _, line := range strings.Split(out, "\n") {
			free, mount, _ := strings.Cut(line, " ")
			if kb, err := strconv.Atoi(free); err == nil && kb < diskFullKB && mount != "" {
				full = mount
				break
			}
		}
		if full == "" {
			return err
		}
		where = full
	}
	return fmt.Errorf("the disk of %s is full (%w): free space on %s (df -h %s shows how much is left; a lower keep_releases keeps fewer releases), then ship again", d.Host.Name(), err, where, where)
}

// diskFullKB is the space left, in KiB, under which a failed step is put
// down to a full disk.
const diskFullKB = 4096

// Changed counts the steps that changed something.
func Changed(results []StepResult) int {
	n := 0
	for _, r := range results {
		if r.Changed {
			n++
		}
	}
	return n
}

// run runs a script as root without printing its output.
func (d *Deploy) run(ctx context.Context, script string) (*remote.Result, error) {
	return d.Host.Run(ctx, remote.Command{Script: script, Become: true, Quiet: true})
}

// probe runs a read-only script and returns its trimmed output.
func (d *Deploy) probe(ctx context.Context, script string) (string, error) {
	res, err := d.run(ctx, script)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(res.Stdout)), nil
}

// asUser is the command line that runs words as a system user: runuser
// as root, with no login and no password.
func asUser(user string, words ...string) string {
	return remote.Sh(append([]string{"runuser", "-u", user, "--"}, words...)...)
}

// asUserOnly is the command line that runs words as a system user with
// an environment of its own (PATH and LANG only): nothing of root's
// environment reaches it.
func asUserOnly(user string, words ...string) string {
	return asUser(user, append([]string{"env", "-i", "PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8"}, words...)...)
}

// asApp is the command line that runs words as the application's user,
// with an environment of its own: PATH, LANG, HOME (the site's folder),
// the terminal's TERM, DJSHIP_ENVIRONMENT naming the application's
// environment (which the launchers read) and extra NAME=VALUE words;
// nothing else of root's environment reaches the release's Python.
func (d *Deploy) asApp(extra []string, words ...string) string {
	head := remote.Sh("runuser", "-u", d.Settings.App.User, "--", "env", "-i", "PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8", "HOME="+d.Paths.Base)
	env := append([]string{"DJSHIP_ENVIRONMENT=" + d.Paths.Environment}, extra...)
	return head + ` "TERM=${TERM:-dumb}" ` + remote.Sh(append(env, words...)...)
}

// plan records an action that check mode would take.
func (d *Deploy) plan(format string, args ...any) {
	d.Planned = append(d.Planned, fmt.Sprintf(format, args...))
}

// do runs an action's script, or records it in check mode.
func (d *Deploy) do(ctx context.Context, description, script string) error {
	if d.Check {
		d.plan("%s", description)
		return nil
	}
	if _, err := d.run(ctx, script); err != nil {
		return fmt.Errorf("%s: %w", description, err)
	}
	return nil
}

// note prints an informational line for the host.
func (d *Deploy) note(format string, args ...any) {
	d.Out.Line(d.Host.Name(), fmt.Sprintf(format, args...))
}
