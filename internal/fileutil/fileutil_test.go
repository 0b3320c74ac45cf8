package fileutil

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// mustWrite writes a file, making its folders.
func mustWrite(t *testing.T, p, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// OpenBeneath opens what is inside root, and fails on a symbolic link in
// any component, with openat2 and with the component-by-component open of
// kernels without it.
func TestOpenBeneath(t *testing.T) {
	dir := t.TempDir()
	outside := t.TempDir()
	mustWrite(t, filepath.Join(outside, "secret"), "outside\n")
	mustWrite(t, filepath.Join(dir, "a", "b", "file"), "inside\n")
	for link, target := range map[string]string{
		"a/link-out":  filepath.Join(outside, "secret"),
		"a/link-in":   "b/file",
		"a/dir-out":   outside,
		"a/dir-in":    "b",
		"a/b/up-link": "..",
	} {
		if err := os.Symlink(target, filepath.Join(dir, link)); err != nil {
			t.Fatal(err)
		}
	}
	if err := unix.Mkfifo(filepath.Join(dir, "a", "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		rel, body string
		flags     int
	}{
		{"a/b/file", "inside\n", 0},
		{"a/fifo", "", unix.O_NONBLOCK}, // opens without blocking; not read
		{"a/link-out", "", 0},
		{"a/link-in", "", 0},
		{"a/dir-out/secret", "", 0},
		{"a/dir-in/file", "", 0},
		{"a/b/up-link/b/file", "", 0},
		{"a/../a/b/file", "", 0},
		{"../" + filepath.Base(dir) + "/a/b/file", "", 0},
		{"/etc/hostname", "", 0},
		{"", "", 0},
	}
	for _, kernel := range []string{"openat2", "no openat2"} {
		t.Run(kernel, func(t *testing.T) {
			if kernel == "no openat2" {
				openat2 = func(int, string, *unix.OpenHow) (int, error) { return -1, unix.ENOSYS }
				t.Cleanup(func() { openat2 = unix.Openat2 })
			}
			root, err := os.Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer root.Close()
			for _, tt := range tests {
				f, err := OpenBeneath(root, tt.rel, tt.flags)
				opens := tt.body != "" || tt.rel == "a/fifo"
				if !opens {
					if err == nil {
						f.Close()
						t.Errorf("OpenBeneath(%q) opened it", tt.rel)
					}
					continue
				}
				if err != nil {
					t.Errorf("OpenBeneath(%q): %v", tt.rel, err)
					continue
				}
				if tt.body != "" {
					if b, _ := io.ReadAll(f); string(b) != tt.body {
						t.Errorf("OpenBeneath(%q) read %q", tt.rel, b)
					}
				}
				f.Close()
			}
			d, err := OpenBeneath(root, ".", unix.O_DIRECTORY)
			if err != nil {
				t.Fatalf("OpenBeneath(.): %v", err)
			}
			names, _ := d.Readdirnames(-1)
			d.Close()
			if len(names) != 1 || names[0] != "a" {
				t.Errorf("OpenBeneath(.) lists %v", names)
			}
		})
	}
}

// WriteAtomic replaces a symbolic link planted at its name instead of
// writing through it, and leaves nothing when the write fails.
func TestWriteAtomic(t *testing.T) {
	dir := t.TempDir()
	victim := filepath.Join(t.TempDir(), "victim")
	mustWrite(t, victim, "keep\n")
	dest := filepath.Join(dir, "out")
	if err := os.Symlink(victim, dest); err != nil {
		t.Fatal(err)
	}
	if err := WriteAtomic(dest, 0o640, func(w io.Writer) error {
		_, err := io.WriteString(w, "new\n")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(victim); string(b) != "keep\n" {
		t.Errorf("the link's target was written: %q", b)
	}
	info, err := os.Lstat(dest)
	if err != nil || !info.Mode().IsRegular() || info.Mode().Perm() != 0o640 {
		t.Fatalf("%s: %v, %v; want a regular file of mode 640", dest, info, err)
	}
	if b, _ := os.ReadFile(dest); string(b) != "new\n" {
		t.Errorf("%s holds %q", dest, b)
	}

	failed := errors.New("no")
	if err := WriteAtomic(filepath.Join(dir, "fails"), 0o644, func(w io.Writer) error {
		io.WriteString(w, "half")
		return failed
	}); !errors.Is(err, failed) {
		t.Errorf("WriteAtomic returned %v, want the write's error", err)
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if e.Name() != "out" {
			t.Errorf("%s left behind", e.Name())
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "fails")); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("a failed write left its file: %v", err)
	}
}
