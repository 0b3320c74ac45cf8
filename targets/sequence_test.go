package targets

import (
	"slices"
	"testing"
)

// withSequence makes the upgrades of the test run change(sequence)
// instead of the sequence of their mode; restore (also called when the
// test ends) puts the sequence back.
func withSequence(t *testing.T, change func(sequence) sequence) (restore func()) {
	t.Helper()
	orig := upgradeSequence
	upgradeSequence = func(m runMode, project string) (sequence, error) {
		seq, err := orig(m, project)
		if err != nil {
			return nil, err
		}
		return change(seq), nil
	}
	restore = func() { upgradeSequence = orig }
	t.Cleanup(restore)
	return restore
}

// replaced is seq with the step named name replaced by step, in its
// phase.
func replaced(t testing.TB, seq sequence, name string, step Step) sequence {
	t.Helper()
	if _, _, ok := seq.find(name); !ok {
		t.Fatalf("no step %q in the sequence", name)
	}
	return seq.mapSteps(func(s Step) Step {
		if s.Name() == name {
			return step
		}
		return s
	})
}

// addStepFor adds step before or after anchor to the upgrades of project
// only, until remove: the other tests
// sites ship beside it without the step.
func addStepFor(project, anchor string, after bool, step Step) (remove func()) {
	insertionsMu.Lock()
	insertions = append(insertions, insertion{anchor: anchor, after: after, step: step, project: project})
	insertionsMu.Unlock()
	return func() {
		insertionsMu.Lock()
		defer insertionsMu.Unlock()
		insertions = slices.DeleteFunc(insertions, func(in insertion) bool { return in.step == step && in.project == project })
	}
}
