package testdeps

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"testing"
)

func TestMissingFrom(t *testing.T) {
	pkgs := []string{"nginx", "uwsgi", "python3-django", "gnupg"}
	for _, c := range []struct {
		name, output string
		want         []string
	}{
		{"all installed", "nginx installed\nuwsgi installed\npython3-django installed\ngnupg installed\n", nil},
		{"none listed", "", pkgs},
		{"unknown to dpkg", "nginx installed\nuwsgi installed\n", []string{"python3-django", "gnupg"}},
		{"removed, configuration kept", "nginx config-files\nuwsgi installed\npython3-django installed\ngnupg installed\n", []string{"nginx"}},
		{"half installed", "nginx installed\nuwsgi half-configured\npython3-django unpacked\ngnupg installed\n", []string{"uwsgi", "python3-django"}},
		{"multi-arch names", "nginx:amd64 installed\nuwsgi:amd64 installed\npython3-django installed\ngnupg:amd64 installed\n", nil},
		{"a package of the same prefix", "nginx-common installed\nuwsgi installed\npython3-django installed\ngnupg installed\n", []string{"nginx"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := missingFrom(c.output, pkgs); !reflect.DeepEqual(got, c.want) {
				t.Errorf("missingFrom = %q, want %q", got, c.want)
			}
		})
	}
}

// TestGuardPolicy checks that the script denying service starts is in
// place while installing and that whatever was there before comes back,
// also after a run that died before restoring it.
func TestGuardPolicy(t *testing.T) {
	const original = "#!/bin/sh\nexit 101\n"
	for _, c := range []struct {
		name string
		// before sets the folder up; after is the file's content once
		// restored, "" for no file.
		before func(t *testing.T, path string)
		after  string
	}{
		{"no file", func(t *testing.T, path string) {}, ""},
		{"an original", func(t *testing.T, path string) {
			writeScript(t, path, original)
		}, original},
		{"a dead run's script, the original beside it", func(t *testing.T, path string) {
			writeScript(t, path+".djship-testdeps", original)
			writeScript(t, path, policyScript)
		}, original},
		{"a dead run's script and no original", func(t *testing.T, path string) {
			writeScript(t, path, policyScript)
		}, ""},
		{"a run that died between moving the original aside and writing its own", func(t *testing.T, path string) {
			writeScript(t, path+".djship-testdeps", original)
		}, original},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "policy-rc.d")
			c.before(t, path)
			restore, err := guardPolicy(path)
			if err != nil {
				t.Fatal(err)
			}
			if got := readOrEmpty(t, path); got != policyScript {
				t.Errorf("while installing, policy-rc.d is %q, want %q", got, policyScript)
			}
			if err := exec.Command(path).Run(); err == nil || err.(*exec.ExitError).ExitCode() != 101 {
				t.Errorf("while installing, policy-rc.d exits with %v, want exit status 101 (action forbidden)", err)
			}
			if err := restore(); err != nil {
				t.Fatal(err)
			}
			if got := readOrEmpty(t, path); got != c.after {
				t.Errorf("after installing, policy-rc.d is %q, want %q", got, c.after)
			}
			if c.after != "" {
				if info, err := os.Stat(path); err != nil {
					t.Error(err)
				} else if info.Mode().Perm() != 0o755 {
					t.Errorf("the restored policy-rc.d has mode %v, want 0755", info.Mode().Perm())
				}
			}
			if entries, _ := os.ReadDir(dir); len(entries) > 1 || (len(entries) == 1 && c.after == "") {
				t.Errorf("left in the folder after restoring: %v", entries)
			}
		})
	}
}

func writeScript(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o755); err != nil {
		t.Fatal(err)
	}
}

func readOrEmpty(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}
