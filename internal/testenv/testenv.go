// Package testenv is the shared harness of djship's tests: it finds the
// real services and tools the tests need and decides what happens when
// one is missing. By hand a missing tool skips the test with the package
// to install; under CI=true it fails it, so nothing is skipped silently.
package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// CI reports whether the tests run under continuous integration.
func CI() bool { return os.Getenv("CI") == "true" }

// EndToEnd skips a test that works with this machine's services, fresh
// machines or Docker when go test runs with -short: the fast tier
// (go test -short ./...) leaves them to the full test command (go tool
// mage test), which never runs with -short.
func EndToEnd(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("end to end: go tool mage test runs it")
	}
}

// Missing stops the test because something it needs is absent: a failure
// under CI, a skip otherwise. hint says how to install it.
func Missing(t testing.TB, what, hint string) {
	t.Helper()
	if CI() {
		t.Fatalf("%s is missing (CI=true, so this fails instead of skipping): %s", what, hint)
	}
	t.Skipf("%s is missing: %s", what, hint)
}

// Command returns the path of a program, or stops the test as Missing.
func Command(t testing.TB, name, debianPackage string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Missing(t, name, "apt-get install "+debianPackage)
	}
	return p
}

// DjangoPython is the interpreter with Debian's Django: /usr/bin/python3,
// not whatever python3 comes first on PATH.
const DjangoPython = "/usr/bin/python3"

// Django returns DjangoPython after checking that it can import Django,
// or stops the test as Missing.
func Django(t testing.TB) string {
	t.Helper()
	if err := exec.Command(DjangoPython, "-c", "import django").Run(); err != nil {
		Missing(t, "Django for "+DjangoPython, "apt-get install python3-django")
	}
	return DjangoPython
}
