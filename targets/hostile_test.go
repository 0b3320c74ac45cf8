package targets

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/djship/djship/internal/testenv"
)

// probeCode is Python that leaves a marker named after the probe and the
// effective user it ran as; it never fails.
func probeCode(dir, name string) string {
	return fmt.Sprintf("import os\ntry:\n    open(os.path.join(%q, %q + '.uid%%d' %% os.geteuid()), 'a').close()\nexcept Exception:\n    pass\n", dir, name)
}

// probeWheel is a wheel whose .pth file runs probe code at every start of
// an interpreter that has it installed, as any package on an index may.
func probeWheel(t *testing.T, dir, name string) []byte {
	t.Helper()
	files := map[string]string{
		name + ".pth":                    "import os; exec(" + fmt.Sprintf("%q", probeCode(dir, name)) + ")\n",
		name + "-1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: " + strings.ReplaceAll(name, "_", "-") + "\nVersion: 1.0\n",
		name + "-1.0.dist-info/WHEEL":    "Wheel-Version: 1.0\nGenerator: djship-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
	}
	var names []string
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	var buf bytes.Buffer
	w := zip.NewWriter(&buf)
	var record strings.Builder
	for _, n := range names {
		f, _ := w.Create(n)
		f.Write([]byte(files[n]))
		sum := sha256.Sum256([]byte(files[n]))
		fmt.Fprintf(&record, "%s,sha256=%s,%d\n", n, base64.RawURLEncoding.EncodeToString(sum[:]), len(files[n]))
	}
	rec := name + "-1.0.dist-info/RECORD"
	fmt.Fprintf(&record, "%s,,\n", rec)
	f, _ := w.Create(rec)
	f.Write([]byte(record.String()))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// probeSetup is a setup.py that acts when pip installs it, and leaves a
// process behind that outlives the install.
func probeSetup(dir, name string) string {
	return "from setuptools import setup\n" + probeCode(dir, name) +
		"os.system('setsid sleep 300 </dev/null >/dev/null 2>&1 &')\n" +
		fmt.Sprintf("setup(name=%q, version='1.0', py_modules=[])\n", name)
}

// probeSdist is a source distribution whose setup.py acts at install.
func probeSdist(t *testing.T, dir, name string) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for n, body := range map[string]string{
		"setup.py": probeSetup(dir, name),
		"PKG-INFO": "Metadata-Version: 1.0\nName: " + name + "\nVersion: 1.0\n",
	} {
		tw.WriteHeader(&tar.Header{Name: name + "-1.0/" + n, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg})
		tw.Write([]byte(body))
	}
	tw.Close()
	gz.Close()
	return buf.Bytes()
}

// markers lists the probe markers left in dir.
func markers(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// buildUserProcesses lists the processes of the build user still alive.
func buildUserProcesses(t *testing.T) string {
	t.Helper()
	return sh(t, `uid=$(id -u "$1") || exit 0
for s in /proc/[0-9]*/status; do
  awk -v u="$uid" '/^State:/ && $2 == "Z" { exit } /^Uid:/ { if ($2 == u || $3 == u) print FILENAME; exit }' "$s" 2>/dev/null
done; true`, buildUser)
}

// TestHostileProjectRunsNothingAsRoot ships, over SSH, a Django project
// written by someone who can commit to the application but holds no
// other right: every way its code can run during a ship leaves a marker
// with the user it ran as. A wheel of the wheelhouse with a .pth file, a
// source distribution whose setup.py acts at install (and leaves a
// process behind), requirements.txt with -e . and a local path, a
// sitecustomize.py and a manage.py that act at import; then a
// requirements.txt that names an index of its own; then a ship that
// reuses the virtualenv. None may ever run as root, and the build user
// keeps no process once its release is taken over.
func TestHostileProjectRunsNothingAsRoot(t *testing.T) {
	needExample(t)
	sshd := testenv.StartSSHD(t)
	exec := func(script string, args ...string) string { return sh(t, script, args...) }
	dir, err := os.MkdirTemp("/tmp", "djship-probe-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o1777)
	t.Cleanup(func() { os.RemoveAll(dir) })

	site, src := exampleSite(t, shipCase{web: "nginx", app: "uwsgi", db: "sqlite", connection: "ssh"}, 95, sshd)
	host := &site.Environments["test"].Hosts[0].Settings
	host.Django.PipInstallRequirements = true
	host.Django.Wheelhouse = "wheels"

	os.MkdirAll(filepath.Join(src, "wheels"), 0o755)
	os.WriteFile(filepath.Join(src, "wheels", "probe_pth-1.0-py3-none-any.whl"), probeWheel(t, dir, "probe_pth"), 0o644)
	os.WriteFile(filepath.Join(src, "wheels", "probe_sdist-1.0.tar.gz"), probeSdist(t, dir, "probe_sdist"), 0o644)
	os.WriteFile(filepath.Join(src, "setup.py"), []byte(probeSetup(dir, "probe_editable")), 0o644)
	os.MkdirAll(filepath.Join(src, "probe_local"), 0o755)
	os.WriteFile(filepath.Join(src, "probe_local", "setup.py"), []byte(probeSetup(dir, "probe_local")), 0o644)
	os.WriteFile(filepath.Join(src, "sitecustomize.py"), []byte(probeCode(dir, "probe_sitecustomize")), 0o644)
	manage := must(os.ReadFile(filepath.Join(src, "manage.py")))
	os.WriteFile(filepath.Join(src, "manage.py"), append([]byte(probeCode(dir, "probe_manage")), manage...), 0o755)
	requirements := "Django>=3.2\nprobe-pth\nprobe-sdist\n-e .\n./probe_local\n"
	os.WriteFile(filepath.Join(src, "requirements.txt"), []byte(requirements), 0o644)

	_, _, out, err := shipRevision(t, site, "v1")
	if err != nil {
		t.Fatalf("the project did not ship: %v\n%s", err, out)
	}
	page(t, site, "v1")
	found := strings.Join(markers(t, dir), " ")
	t.Logf("markers after the first ship: %s", found)
	for _, probe := range []string{"probe_pth", "probe_sdist", "probe_editable", "probe_local", "probe_manage"} {
		if !strings.Contains(found, probe+".uid") {
			t.Errorf("%s never ran: the probe proves nothing", probe)
		}
	}
	if strings.Contains(found, ".uid0") {
		t.Errorf("the project's code ran as root: %s", found)
	}
	if left := buildUserProcesses(t); left != "" {
		t.Errorf("processes of the build user outlived the build:\n%s", left)
	}
	live := NewPaths(site.Settings).Current
	if owners := exec(`find "$1/" "$1/venv" "$1/src" -maxdepth 0 ! -user root`, live); owners != "" {
		t.Errorf("the live release is not root's: %s", owners)
	}

	// An index of the project's own, named in requirements.txt.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	wheel := probeWheel(t, dir, "probe_index")
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/simple/probe-index/":
			fmt.Fprint(w, `<html><body><a href="/files/probe_index-1.0-py3-none-any.whl">probe_index-1.0-py3-none-any.whl</a></body></html>`)
		case "/files/probe_index-1.0-py3-none-any.whl":
			w.Write(wheel)
		default:
			http.NotFound(w, r)
		}
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	host.Django.Wheelhouse = ""
	os.WriteFile(filepath.Join(src, "requirements.txt"), []byte(fmt.Sprintf("--index-url http://%s/simple/\nDjango>=3.2\nprobe-index\n", ln.Addr())), 0o644)
	for _, revision := range []string{"v2", "v3"} { // v3 reuses v2's virtualenv
		_, _, out, err := shipRevision(t, site, revision)
		if err != nil {
			t.Fatalf("%s did not ship: %v\n%s", revision, err, out)
		}
		page(t, site, revision)
		if reused := strings.Contains(out, "virtualenv reused"); reused != (revision == "v3") {
			t.Errorf("%s: virtualenv reused is %v", revision, reused)
		}
	}
	found = strings.Join(markers(t, dir), " ")
	t.Logf("markers after the index and the reuse: %s", found)
	if !strings.Contains(found, "probe_index.uid") {
		t.Errorf("the index's package never ran: the probe proves nothing")
	}
	if strings.Contains(found, ".uid0") {
		t.Errorf("the project's code ran as root: %s", found)
	}
	if left := buildUserProcesses(t); left != "" {
		t.Errorf("processes of the build user outlived the build:\n%s", left)
	}
}
