package release

import (
	"bytes"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/djship/djship/internal/testarchive"
	"github.com/djship/djship/internal/testsite"
	"golang.org/x/sys/unix"
)

// testKeyBlock is a private key block as the credential scan finds it:
// BEGIN and END lines around 160 base64 characters.
func testKeyBlock(label string) string {
	body := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0x5a, 0x01, 0xf3}, 40))
	return "-----BEGIN " + label + "-----\n" + body[:64] + "\n" + body[64:128] + "\n" + body[128:] + "\n-----END " + label + "-----\n"
}

// distFiles lists every name in the project's dist/, hidden ones
// included.
func distFiles(t *testing.T, root string) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(root, "dist"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// withAfterScan sets the hook that runs between the scan and the write
// for the test's length.
func withAfterScan(t *testing.T, hook func(dir string)) {
	afterScan = hook
	t.Cleanup(func() { afterScan = nil })
}

// The tree changes between the scan and the write, as another process
// can change it: a file becomes a link to a key outside the source, a
// folder a link to a folder outside, a file another content or a named
// pipe. The release fails and writes nothing; nothing from outside the
// tree is ever packaged.
func TestReleaseTreeChangedAfterScan(t *testing.T) {
	key := testKeyBlock("OPENSSH PRIVATE KEY")
	tests := []struct {
		name string
		// change changes the source src; outside is a folder outside it
		// that holds key in key.pem and a copy of notes/ whose views.py
		// is key.
		change func(t *testing.T, src, outside string)
		err    string
	}{
		{"file becomes a link to a key outside", func(t *testing.T, src, outside string) {
			p := filepath.Join(src, "notes", "views.py")
			os.Remove(p)
			if err := os.Symlink(filepath.Join(outside, "key.pem"), p); err != nil {
				t.Fatal(err)
			}
		}, "notes/views.py changed while packaging: it is no longer a regular file"},
		{"folder becomes a link to a folder outside", func(t *testing.T, src, outside string) {
			p := filepath.Join(src, "notes")
			if err := os.RemoveAll(p); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(filepath.Join(outside, "notes"), p); err != nil {
				t.Fatal(err)
			}
		}, "changed while packaging: a symbolic link stands in its path"},
		{"file gets other content of the same size", func(t *testing.T, src, outside string) {
			p := filepath.Join(src, "notes", "views.py")
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			write(t, p, strings.Repeat("#", len(b)))
		}, "notes/views.py changed while packaging; nothing was written"},
		{"file gets longer", func(t *testing.T, src, outside string) {
			p := filepath.Join(src, "notes", "views.py")
			b, _ := os.ReadFile(p)
			write(t, p, string(b)+key)
		}, "notes/views.py changed while packaging"},
		{"file becomes a named pipe", func(t *testing.T, src, outside string) {
			p := filepath.Join(src, "notes", "views.py")
			os.Remove(p)
			if err := unix.Mkfifo(p, 0o644); err != nil {
				t.Fatal(err)
			}
		}, "notes/views.py changed while packaging: it is no longer a regular file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			site, src := project(t, "")
			outside := t.TempDir()
			write(t, filepath.Join(outside, "key.pem"), key)
			testsite.CopyTree(t, filepath.Join(src, "notes"), filepath.Join(outside, "notes"))
			write(t, filepath.Join(outside, "notes", "views.py"), key)
			withAfterScan(t, func(dir string) { tt.change(t, dir, outside) })

			type result struct {
				a   *Artifact
				err error
			}
			done := make(chan result, 1)
			go func() {
				a, err := release(t, site, nil)
				done <- result{a, err}
			}()
			var r result
			select {
			case r = <-done:
			case <-time.After(30 * time.Second):
				t.Fatal("the release hangs")
			}
			if r.err == nil {
				for name, e := range readTarball(t, r.a.Path) {
					if strings.Contains(e.Body, "PRIVATE KEY") {
						t.Errorf("%s in the tarball holds the key from outside the source", name)
					}
				}
				t.Fatal("the release of a tree changed after its scan succeeded")
			}
			if !strings.Contains(r.err.Error(), tt.err) {
				t.Errorf("error does not say %q:\n%v", tt.err, r.err)
			}
			if !errors.Is(r.err, errSourceChanged) {
				t.Errorf("error does not say to run mage release again:\n%v", r.err)
			}
			if files := distFiles(t, site.Root); len(files) > 0 {
				t.Errorf("a failed release left files in dist: %v", files)
			}
		})
	}
}

// Links planted in dist/ at the names the release writes: the release
// replaces them with files and writes nothing through them.
func TestReleaseReplacesLinksInDist(t *testing.T) {
	site, _ := project(t, "")
	first, err := release(t, site, nil)
	if err != nil {
		t.Fatal(err)
	}
	name := filepath.Base(first.Path)
	dist := filepath.Join(site.Root, "dist")
	outside := t.TempDir()
	for _, n := range []string{name, name + ".sha256", LatestFile} {
		p := filepath.Join(dist, n)
		victim := filepath.Join(outside, n)
		write(t, victim, "keep\n")
		os.Remove(p)
		if err := os.Symlink(victim, p); err != nil {
			t.Fatal(err)
		}
	}
	a, err := release(t, site, nil)
	if err != nil {
		t.Fatal(err)
	}
	for n, want := range map[string]string{
		name + ".sha256": a.SHA256 + "  " + name + "\n",
		LatestFile:       name + "\n",
	} {
		p := filepath.Join(dist, n)
		info, err := os.Lstat(p)
		if err != nil || !info.Mode().IsRegular() {
			t.Errorf("%s is not a regular file: %v, %v", n, info, err)
		}
		if b, _ := os.ReadFile(p); string(b) != want {
			t.Errorf("%s holds %q, want %q", n, b, want)
		}
	}
	if info, err := os.Lstat(a.Path); err != nil || !info.Mode().IsRegular() {
		t.Errorf("the tarball is not a regular file: %v, %v", info, err)
	}
	for _, n := range []string{name, name + ".sha256", LatestFile} {
		if b, _ := os.ReadFile(filepath.Join(outside, n)); string(b) != "keep\n" {
			t.Errorf("the release wrote through the link %s into the file it points at: %q", n, b)
		}
	}
}

// The manifest's name at the source's top is djship's, whatever stands
// there: a file, a folder or a link.
func TestReleaseRefusesManifestName(t *testing.T) {
	tests := []struct {
		kind  string
		plant func(t *testing.T, p string)
	}{
		{"file", func(t *testing.T, p string) { write(t, p, "{}\n") }},
		{"folder", func(t *testing.T, p string) { write(t, filepath.Join(p, "x.json"), "{}\n") }},
		{"link", func(t *testing.T, p string) {
			if err := os.Symlink("notes/views.py", p); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.kind, func(t *testing.T) {
			site, src := project(t, "")
			tt.plant(t, filepath.Join(src, ManifestName))
			a, err := release(t, site, nil)
			if err == nil {
				n := 0
				for _, name := range testarchive.Names(readTarball(t, a.Path)) {
					if strings.TrimSuffix(name, "/") == ManifestName {
						n++
					}
				}
				t.Fatalf("a %s named %s was released (%d entries of that name)", tt.kind, ManifestName, n)
			}
			if want := ManifestName + ": djship writes this file into every release; rename yours"; !strings.Contains(err.Error(), want) {
				t.Errorf("error does not say %q:\n%v", want, err)
			}
		})
	}
}
