package targets

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/djship/djship/sites"
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
	seq, err := withInsertions(processUpgrade(), "shop")
	if err != nil {
		t.Fatal(err)
	}
	steps := seq.steps()
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
	_, err := withInsertions(processUpgrade(), "shop")
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

// TestStepAddedOutsideTheModesSequenceStopsTheShip adds a step next to a
// step that the environment's mode does not run (collectstatic runs in
// the image's build in container mode; pulling an image is container
// mode's alone): the ship stops with the names the mode has, before it
// opens a connection to any host.
func TestStepAddedOutsideTheModesSequenceStopsTheShip(t *testing.T) {
	for _, c := range []struct {
		mode, anchor, names string
	}{
		{"mode: container\nimage: shop\nregistry: {url: 'https://registry.example.com', username: ci}\n", "collectstatic", "facts, release folder, pull image"},
		{"", "pull image", "facts, upload, release folder, unpack"},
	} {
		t.Run(c.anchor, func(t *testing.T) {
			withAdded(t, func() { AddStepAfter(c.anchor, ShellStep("compress", "true")) })
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			var accepted atomic.Int32
			go func() {
				for {
					conn, err := ln.Accept()
					if err != nil {
						return
					}
					accepted.Add(1)
					conn.Close()
				}
			}()
			port := ln.Addr().(*net.TCPAddr).Port
			file := filepath.Join(t.TempDir(), "shop.yaml")
			yaml := fmt.Sprintf("project: shop\nurl: shop.example.com\nroot: /srv/www\nsource: {path: src}\ndjango: {source_folder: ., settings_folder: shop, settings_module: shop.settings}\n%senvironments:\n  production:\n    hosts: [\"deploy@127.0.0.1:%d\"]\n", c.mode, port)
			if err := os.WriteFile(file, []byte(yaml), 0o644); err != nil {
				t.Fatal(err)
			}
			site, err := sites.Load(file)
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			_, err = Ship(context.Background(), site, "production", filepath.Join(t.TempDir(), "none.tar.gz"), Options{Out: &out})
			want := fmt.Sprintf("the step \"compress\" was added after %q, which is not a step of the upgrade: name one of %s", c.anchor, c.names)
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("ship: %v; want an error saying %q", err, want)
			}
			if n := accepted.Load(); n != 0 {
				t.Errorf("the ship opened %d connections before it refused the step", n)
			}
		})
	}
}
