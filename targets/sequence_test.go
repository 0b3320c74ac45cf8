package targets

import "testing"

// withSequence makes the upgrades of the test run change(sequence)
// instead of the sequence of their mode; restore (also called when the
// test ends) puts the sequence back.
func withSequence(t *testing.T, change func(sequence) sequence) (restore func()) {
	t.Helper()
	orig := upgradeSequence
	upgradeSequence = func(m runMode) (sequence, error) {
		seq, err := orig(m)
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
