package targets

import (
	"bytes"
	"context"
	"os/exec"
	"strings"
	"testing"

	"github.com/djship/djship/internal/testenv"
)

// TestDemo runs the README's first command as a newcomer would, twice:
// the example site answers over https on this machine, and the second
// run ships a new release and says which.
func TestDemo(t *testing.T) {
	needStack(t)
	testenv.Django(t)
	t.Cleanup(stopWebServers)
	exec.Command("service", "apache2", "stop").Run()
	t.Chdir("..")
	var out bytes.Buffer
	if err := Demo(context.Background(), &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	first := out.String()
	if !strings.Contains(first, "open https://localhost:8443/") {
		t.Fatalf("the demo does not say where it answers:\n%s", first)
	}
	body, err := exec.Command("curl", "-sk", "https://localhost:8443/").Output()
	if err != nil || !strings.Contains(string(body), "Hello from the djship demo") || !strings.Contains(string(body), `<code id="revision">`) {
		t.Fatalf("the demo page: %v\n%s", err, body)
	}
	out.Reset()
	if err := Demo(context.Background(), &out); err != nil {
		t.Fatalf("second demo: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "this new release carries the time in its name") || !strings.Contains(out.String(), "is kept for rollback") {
		t.Errorf("the second demo does not say it shipped a new release:\n%s", out.String())
	}
}
