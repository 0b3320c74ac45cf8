package targets

import (
	"os"
	"os/exec"
	"testing"

	"github.com/djship/djship/internal/testenv"
)

// TestMain runs the tests, then starts again the web servers that ran
// before them. Tests stop nginx and Apache to free the ports they share;
// a site of the machine's own (the one mage demo ships) must not stay
// down because the tests ran.
func TestMain(m *testing.M) {
	var running []string
	if os.Geteuid() == 0 {
		for _, w := range []string{"nginx", "apache2"} {
			if _, err := os.Stat("/etc/init.d/" + w); err == nil && exec.Command("service", w, "status").Run() == nil {
				running = append(running, w)
			}
		}
	}
	code := m.Run()
	testenv.StopShared()
	for _, w := range running {
		if exec.Command("service", w, "status").Run() != nil {
			exec.Command("service", w, "start").Run()
		}
	}
	os.Exit(code)
}
