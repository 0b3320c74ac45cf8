package targets

import (
	"strings"
	"testing"
)

// withAdded runs f with only the given insertions registered.
func withAdded(t *testing.T, add func()) {
	t.Helper()
	insertionsMu.Lock()
	saved := insertions
	insertions = nil
	insertionsMu.Unlock()
	t.Cleanup(func() {
		insertionsMu.Lock()
		insertions = saved
		insertionsMu.Unlock()
	})
	add()
}

func TestStepsAddedBeforeAndAfter(t *testing.T) {
	withAdded(t, func() {
		AddStepBefore("migrate", ShellStep("extension", "true"))
		AddStepAfter("migrate", ManageStep("cache table", "createcachetable"))
		AddStepAfter("migrate", ManageStep("second", "check"))
		AddStepBefore("facts", ShellStep("first", "true"))
	})
	steps, err := withInsertions(UpgradeSteps())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range steps {
		names = append(names, s.Name())
	}
	got := strings.Join(names, ", ")
	for _, want := range []string{"first, facts, upload", "deploy checks, database snapshot, extension, migrate, second, cache table, start new workers"} {
		if !strings.Contains(got, want) {
			t.Errorf("the sequence %s lacks %q", got, want)
		}
	}
	if len(steps) != len(UpgradeSteps())+4 {
		t.Errorf("%d steps", len(steps))
	}
}

func TestStepAddedToAStepThatIsNotThere(t *testing.T) {
	withAdded(t, func() { AddStepAfter("migrations", ManageStep("x", "check")) })
	_, err := withInsertions(UpgradeSteps())
	if err == nil || !strings.Contains(err.Error(), `the step "x" was added after "migrations", which is not a step of the upgrade: name one of facts, upload`) {
		t.Fatalf("error: %v", err)
	}
}

func TestShellStepGetsTheReleaseAsArguments(t *testing.T) {
	h := &fakeHost{rules: []fakeRule{{}}}
	d, _ := fakeDeploy(h, 5)
	d.Release = "r7"
	if _, err := ShellStep("marker", `touch "$1/hooked"`).Run(t.Context(), d); err != nil {
		t.Fatal(err)
	}
	if len(h.ran) != 1 || !strings.HasSuffix(h.ran[0], "' marker /srv/www/shop/releases/r7 /srv/www/shop") {
		t.Errorf("ran %q", h.ran)
	}
}
