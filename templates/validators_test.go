package templates

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/djship/djship/internal/testenv"
)

// TestRenderedConfigsPassRealValidators checks rendered files with the
// tools that will read them: uWSGI in strict mode (unknown options are
// errors), systemd-analyze verify for the units, and sh -n for the init
// script. nginx -t and apache2ctl configtest run in the provision tests,
// where the files are installed.
func TestRenderedConfigsPassRealValidators(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "srv", "shop")
	venv := filepath.Join(base, "current", "venv", "bin")
	if err := os.MkdirAll(venv, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Symlink("/usr/bin/python3", filepath.Join(venv, "python"))
	site := sample("uwsgi", true)
	site.Base, site.Venv, site.Src = base, filepath.Join(base, "current", "venv"), filepath.Join(base, "current", "src")
	site.UWSGIOptions = []string{"cheaper = 1"}

	t.Run("uwsgi --strict", func(t *testing.T) {
		uwsgi := testenv.Command(t, "uwsgi", "uwsgi uwsgi-plugin-python3")
		ini := write(t, dir, "shop.ini", UWSGIApp, site)
		if out, err := exec.Command(uwsgi, "--strict", "--ini", ini, "--get", "chdir").CombinedOutput(); err != nil {
			t.Errorf("uwsgi refused the rendered ini: %v\n%s", err, out)
		}
		broken := site
		broken.UWSGIOptions = []string{"cheapr = 1"}
		ini = write(t, dir, "broken.ini", UWSGIApp, broken)
		out, err := exec.Command(uwsgi, "--strict", "--ini", ini, "--get", "chdir").CombinedOutput()
		if err == nil || !strings.Contains(string(out), "unknown config directive: cheapr") {
			t.Errorf("uwsgi accepted a misspelt option: %v\n%s", err, out)
		}
	})
	t.Run("systemd-analyze verify", func(t *testing.T) {
		analyze := testenv.Command(t, "systemd-analyze", "systemd")
		site := site
		site.AppServer = "gunicorn"
		socket := write(t, dir, "gunicorn-shop.socket", GunicornSocket, site)
		service := write(t, dir, "gunicorn-shop.service", GunicornUnit, site)
		cmd := exec.Command(analyze, "verify", "--man=no", socket, service)
		cmd.Env = append(os.Environ(), "SYSTEMD_LOG_LEVEL=warning")
		if out, err := cmd.CombinedOutput(); err != nil || strings.Contains(string(out), "gunicorn-shop") {
			t.Errorf("systemd-analyze verify: %v\n%s", err, out)
		}
	})
	t.Run("sh -n init script", func(t *testing.T) {
		script := write(t, dir, "gunicorn-shop", GunicornInit, site)
		if out, err := exec.Command("sh", "-n", script).CombinedOutput(); err != nil {
			t.Errorf("init script: %v\n%s", err, out)
		}
	})
}

func write(t *testing.T, dir, name, template string, site Site) string {
	t.Helper()
	data, err := Render(template, site)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
