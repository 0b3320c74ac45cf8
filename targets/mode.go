package targets

import "github.com/djship/djship/sites"

// runMode is how the site's application runs on its hosts, chosen once
// from the site file (mode:) when a host's work is prepared (NewDeploy):
// as programs of the host's init system, in a virtualenv (process mode),
// or as containers of the release's image under Docker Compose
// (container mode, container.go). Each mode brings its own sequences, so
// a step of one mode is never in the other's list, and the steps a
// magefile adds are placed in the sequence the environment will run.
type runMode struct {
	// name is the mode as the site file names it.
	name string
	// containers is set in container mode: the few helpers that both
	// modes share (the slots, the health check, the logs) ask it.
	containers bool
	// upgrade is the upgrade sequence, before the steps a magefile adds.
	upgrade func() sequence
	// provision is the provision list.
	provision func() []Step
}

var (
	processMode   = runMode{name: "process", upgrade: processUpgrade, provision: processProvision}
	containerMode = runMode{name: "container", containers: true, upgrade: containerUpgrade, provision: containerProvision}
)

// runModeOf is the mode the settings choose.
func runModeOf(s sites.Settings) runMode {
	if s.Container() {
		return containerMode
	}
	return processMode
}

// upgradeSequence is the upgrade sequence of a mode with the steps a
// magefile added in place for project; tests put failures into it.
var upgradeSequence = func(m runMode, project string) (sequence, error) {
	return withInsertions(m.upgrade(), project)
}
