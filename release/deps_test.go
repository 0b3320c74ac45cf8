package release

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/djship/djship/internal/testenv"
)

// TestReleaseNeverImportsTheHostSide: packaging and inspection run on the
// machine that runs mage release and never reach a host, so nothing of
// remote (connections to hosts) nor targets (the host targets) may be
// among this package's dependencies, however indirect.
func TestReleaseNeverImportsTheHostSide(t *testing.T) {
	goCmd := testenv.Command(t, "go", "golang-go")
	out, err := exec.Command(goCmd, "list", "-deps", "github.com/djship/djship/release").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list -deps listed only %q", deps)
	}
	for _, dep := range deps {
		for _, forbidden := range []string{"github.com/djship/djship/remote", "github.com/djship/djship/targets"} {
			if dep == forbidden || strings.HasPrefix(dep, forbidden+"/") {
				t.Errorf("release depends on %s", dep)
			}
		}
	}
}
