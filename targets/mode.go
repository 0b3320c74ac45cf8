package targets

import (
	"context"

	"github.com/djship/djship/remote"
	"github.com/djship/djship/sites"
)

// runMode is how the site's application runs on its hosts, chosen once
// from the site file (mode:) when a host's work is prepared (NewDeploy):
// as programs of the host's init system, in a virtualenv (process mode,
// processRuntime below), or as containers of the release's image under
// Docker Compose (container mode, containerRuntime in container.go).
//
// Each mode brings its own sequences, so a step of one mode is never in
// the other's list, and the steps a magefile adds are placed in the
// sequence the environment will run. The steps both modes run (the
// slots, the health check, the switch back, the logs, the deploy log)
// ask the mode for what differs through the methods below; none of them
// asks which mode it is.
type runMode interface {
	// name is the mode as the site file names it.
	name() string
	// upgrade is the upgrade sequence, before the steps a magefile adds.
	upgrade() sequence
	// provision is the provision list.
	provision() []Step
	// packages are the Debian packages the mode's steps use on d's host.
	packages(d *Deploy) []string
	// slotted reports whether the application runs in two slots that
	// app.sock switches between (slots.go).
	slotted(d *Deploy) bool
	// appServer names the parts of the application server on d's host.
	appServer(d *Deploy) appServer
	// appFiles are the host-level files of the application server that
	// djship writes: the claims step checks that no other site has them.
	appFiles(d *Deploy) []string
	// appLogs are the application server's logs as logs.sh takes them.
	appLogs(d *Deploy) []string
	// slotLog is the end of a slot's log and where the rest is.
	slotLog(ctx context.Context, d *Deploy, slot string) (tail, where string)
	// slotProtocol is how the web server speaks to a slot: "uwsgi" or
	// "http".
	slotProtocol() string
	// startSlot starts release in slot, beside the live one.
	startSlot(ctx context.Context, d *Deploy, release, slot string) error
	// stopSlot is the script that stops slot, after its requests are done
	// when drain is set.
	stopSlot(d *Deploy, slot string, drain bool) string
	// drainSlot is the script that stops slot in the background once its
	// requests are done.
	drainSlot(d *Deploy, slot string) string
	// afterWebReload brings the application server to the live release
	// once the web server runs its configuration (the services step).
	afterWebReload(ctx context.Context, d *Deploy) (bool, error)
	// manage is manage.py of release, with extra NAME=VALUE words in its
	// environment.
	manage(d *Deploy, release string, extra []string, args ...string) remote.Command
	// image is the image release runs, "" when it runs none.
	image(ctx context.Context, d *Deploy, release string) string
	// pruneOutside removes what releases leave outside their folders
	// once prune removes them.
	pruneOutside(ctx context.Context, d *Deploy, releases []string)
	// processNames are the site's processes that run as services of the
	// host's init system, sorted.
	processNames(d *Deploy) []string
	// tarballImage is the image a release tarball names for the
	// settings' image repository, "" when the mode runs none.
	tarballImage(tarball string, s sites.Settings) (string, error)
	// socket is where the application server listens, as the web
	// server's configuration names it.
	socket(d *Deploy) string
}

// runModeOf is the mode the settings choose.
func runModeOf(s sites.Settings) runMode {
	if s.Container() {
		return containerRuntime{}
	}
	return processRuntime{}
}

// upgradeSequence is the upgrade sequence of a mode with the steps a
// magefile added in place for project; tests put failures into it.
var upgradeSequence = func(m runMode, project string) (sequence, error) {
	return withInsertions(m.upgrade(), project)
}

// slotted reports whether the application runs in two slots that
// app.sock switches between: uWSGI instances, or containers.
func (d *Deploy) slotted() bool { return d.mode.slotted(d) }

// processRuntime is process mode: a virtualenv per release, uWSGI (two
// slots) or gunicorn (one service) under the host's init system, and the
// site's processes as services of their own.
type processRuntime struct{}

func (processRuntime) name() string         { return "process" }
func (processRuntime) upgrade() sequence    { return processUpgrade() }
func (processRuntime) provision() []Step    { return processProvision() }
func (processRuntime) slotProtocol() string { return "uwsgi" }

func (processRuntime) packages(d *Deploy) []string { return d.processPackages() }

func (processRuntime) slotted(d *Deploy) bool { return d.Settings.AppServer == "uwsgi" }

func (processRuntime) appServer(d *Deploy) appServer { return d.newAppServer(false) }

func (processRuntime) appFiles(d *Deploy) []string {
	a := d.app()
	if a.uwsgi() {
		var files []string
		for _, slot := range uwsgiSlots {
			available, _ := a.ini(slot)
			files = append(files, available)
		}
		return files
	}
	return []string{a.systemdUnit("socket"), a.systemdUnit("service"), a.initScript()}
}

func (processRuntime) appLogs(d *Deploy) []string {
	a := d.app()
	switch {
	case a.uwsgi():
		var logs []string
		for _, slot := range uwsgiSlots {
			logs = append(logs, a.log(slot))
		}
		return logs
	case a.init == "systemd":
		return []string{"unit:" + a.unit() + ".service"}
	default:
		return []string{a.log("")}
	}
}

func (processRuntime) slotLog(ctx context.Context, d *Deploy, slot string) (string, string) {
	log := d.app().log(slot)
	return d.logTail(ctx, log), log
}

func (processRuntime) startSlot(ctx context.Context, d *Deploy, release, slot string) error {
	return d.startUWSGISlot(ctx, release, slot)
}

func (processRuntime) stopSlot(d *Deploy, slot string, drain bool) string {
	a := d.app()
	_, enabled := a.ini(slot)
	return a.stopScript(a.instance(slot), enabled, drain)
}

func (processRuntime) drainSlot(d *Deploy, slot string) string {
	a := d.app()
	_, enabled := a.ini(slot)
	return shScript("detach", append([]string{script("stop-instance.sh"), "stop-instance"}, a.stopArgs(a.instance(slot), enabled, true)...)...)
}

// afterWebReload removes the single uWSGI instance of earlier djship
// versions, or reloads gunicorn gracefully when its configuration or
// release changed; then it starts the site's processes.
func (processRuntime) afterWebReload(ctx context.Context, d *Deploy) (bool, error) {
	var changed bool
	var err error
	if d.slotted() {
		changed, err = d.removeLegacyUWSGI(ctx)
	} else {
		changed, err = d.control(ctx, d.app().service(d.slots.serving), d.reload["app"])
	}
	if err != nil {
		return changed, err
	}
	p, err := d.startProcesses(ctx, false)
	return changed || p, err
}

func (processRuntime) manage(d *Deploy, release string, extra []string, args ...string) remote.Command {
	return d.venvManage(release, extra, args...)
}

func (processRuntime) image(context.Context, *Deploy, string) string { return "" }

func (processRuntime) tarballImage(string, sites.Settings) (string, error) { return "", nil }

func (processRuntime) pruneOutside(context.Context, *Deploy, []string) {}

func (processRuntime) processNames(d *Deploy) []string { return d.configuredProcesses() }

func (processRuntime) socket(d *Deploy) string {
	if d.slotted() {
		return d.Paths.AppSocket
	}
	return d.app().runDir() + "/socket"
}
