package targets

import (
	"fmt"
	"strings"
)

// A sequence is a target's work on a host, built as its phases: each
// stage names the phase its steps belong to. On one host the stages run
// in order; on several (fleet.go) each phase runs on the hosts it
// concerns, all of them before the next phase starts. Where a step runs
// is decided by the stage it is in, never by its display name.

// phase is one part of an upgrade or a rollback, as the fleet runs it.
type phase int

// The phases of the upgrade and rollback sequences, in the order a
// fleet runs them.
const (
	// phaseFacts finds what each host is like; every application host.
	phaseFacts phase = iota
	// phaseUpload sends the tarball, at most fleet.uploads hosts at once.
	phaseUpload
	// phaseBuild makes the release folder ready, at most fleet.builds
	// hosts at once; nothing a visitor sees changes.
	phaseBuild
	// phaseSnapshot saves the database: once, on the db host or where
	// migrate runs. It holds the snapshot alone.
	phaseSnapshot
	// phaseMigrate runs migrate once for a shared database, on each host
	// that has a database of its own otherwise.
	phaseMigrate
	// phaseReady starts the new workers beside the live ones.
	phaseReady
	// phaseSwitch makes the release live: every host at once, or in
	// rolling batches out of the load balancer.
	phaseSwitch
	// phaseFinish stops the old workers and records the run.
	phaseFinish

	// phaseChoose finds the release to go back to on every application
	// host (rollback).
	phaseChoose
	// phaseRestore restores the database, once where the snapshots are
	// kept (rollback).
	phaseRestore
)

var phaseNames = map[phase]string{
	phaseFacts: "facts", phaseUpload: "upload", phaseBuild: "build", phaseSnapshot: "snapshot",
	phaseMigrate: "migrate", phaseReady: "ready", phaseSwitch: "switch", phaseFinish: "finish",
	phaseChoose: "choose", phaseRestore: "restore",
}

func (p phase) String() string { return phaseNames[p] }

// stage is the steps of one phase, in order.
type stage struct {
	phase phase
	steps []Step
}

// sequence is a target's work on a host as its stages, in order.
type sequence []stage

// steps is the sequence as one list, in order: what one host runs.
func (s sequence) steps() []Step {
	var out []Step
	for _, st := range s {
		out = append(out, st.steps...)
	}
	return out
}

// of is the steps of phase p, none when the sequence has no such phase.
func (s sequence) of(p phase) []Step {
	for _, st := range s {
		if st.phase == p {
			return st.steps
		}
	}
	return nil
}

// without is the sequence without the stages of phases ps.
func (s sequence) without(ps ...phase) sequence {
	var out sequence
	for _, st := range s {
		drop := false
		for _, p := range ps {
			drop = drop || st.phase == p
		}
		if !drop {
			out = append(out, st)
		}
	}
	return out
}

// clone is a copy of s whose stages can be changed without changing s.
func (s sequence) clone() sequence {
	out := make(sequence, len(s))
	for i, st := range s {
		out[i] = stage{st.phase, append([]Step{}, st.steps...)}
	}
	return out
}

// mapSteps is the sequence with every step replaced by f(step), each in
// its stage.
func (s sequence) mapSteps(f func(Step) Step) sequence {
	out := s.clone()
	for _, st := range out {
		for i, step := range st.steps {
			st.steps[i] = f(step)
		}
	}
	return out
}

// find is where the first step named name is: its stage and index.
func (s sequence) find(name string) (stageIndex, stepIndex int, ok bool) {
	for i, st := range s {
		for j, step := range st.steps {
			if step.Name() == name {
				return i, j, true
			}
		}
	}
	return 0, 0, false
}

// insert places step before or after the step named anchor, in the
// phase of the step it then follows: after a step, in that step's phase;
// before the first step of a phase, at the end of the phase before. The
// snapshot phase holds the snapshot alone (the db host takes it), so a
// step next to it runs where migrate does; a step before the very first
// step runs in the first phase.
func (s sequence) insert(anchor string, after bool, step Step) (sequence, error) {
	i, j, ok := s.find(anchor)
	if !ok {
		return nil, fmt.Errorf("no step %q", anchor)
	}
	out := s.clone()
	if after {
		j++
	}
	switch {
	case after && out[i].phase == phaseSnapshot && i+1 < len(out):
		i, j = i+1, 0 // after the snapshot: where migrate runs
	case j == 0 && i > 0 && out[i-1].phase == phaseSnapshot:
		// before migrate's first step: still where migrate runs
	case j == 0 && i > 0:
		i, j = i-1, len(out[i-1].steps)
	}
	st := &out[i]
	st.steps = append(st.steps[:j], append([]Step{step}, st.steps[j:]...)...)
	return out, nil
}

// stepNames lists the names of steps, comma-separated.
func stepNames(steps []Step) string {
	var n []string
	for _, s := range steps {
		n = append(n, s.Name())
	}
	return strings.Join(n, ", ")
}
