package targets

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/djship/djship/sites"
	"github.com/djship/djship/templates"
)

// TestBuildContext checks what docker build gets: the tarball unpacked in
// src/, djship's launchers and virtualenv script in djship/, a build-time
// environment without secrets, and the project's own Dockerfile when its
// source has one, else djship's.
func TestBuildContext(t *testing.T) {
	own := "FROM python:3.11-slim\nCOPY src/ /app/src/\n"
	s := sites.Settings{Project: "shop", BaseImage: "registry.example.com/base/python:3.11", Django: sites.Django{
		SourceFolder: "site", SettingsModule: "shop.settings", Environment: map[string]string{"SHOP_MODE": "live"}}}
	tests := []struct {
		name  string
		files map[string]string
		want  string // the Dockerfile starts with it
	}{
		{"djship's Dockerfile", map[string]string{"site/manage.py": "#", "DJSHIP-MANIFEST.json": "{}"}, "# Written by djship: the image of release r1 of shop.\nFROM registry.example.com/base/python:3.11\n"},
		{"the project's own", map[string]string{"site/manage.py": "#", "Dockerfile": own}, own},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			tarball := filepath.Join(t.TempDir(), "shop-r1.tar.gz")
			writeTarball(t, tarball, tt.files)
			ctx := filepath.Join(dir, "ctx")
			tb := &Tarball{Path: tarball}
			tb.Manifest.Revision = "r1"
			if err := writeBuildContext(ctx, tarball, tb, s); err != nil {
				t.Fatal(err)
			}
			dockerfile, err := os.ReadFile(filepath.Join(ctx, "Dockerfile"))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(string(dockerfile), tt.want) {
				t.Errorf("Dockerfile:\n%s\nwant it to start with:\n%s", dockerfile, tt.want)
			}
			if _, err := os.Stat(filepath.Join(ctx, "src", "site", "manage.py")); err != nil {
				t.Errorf("the source is not in src/: %v", err)
			}
			for p := range templates.Launchers {
				if _, err := os.Stat(filepath.Join(ctx, "djship", filepath.Base(p))); err != nil {
					t.Errorf("launcher missing: %v", err)
				}
			}
			env, err := os.ReadFile(filepath.Join(ctx, "djship", filepath.Base(templates.ImageBuildEnvironment)))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(env), `"SHOP_MODE": "live"`) || !strings.Contains(string(env), `"DJANGO_SETTINGS_MODULE": "shop.settings"`) {
				t.Errorf("build environment:\n%s", env)
			}
		})
	}
}

// TestImageTag keeps a revision a valid tag.
func TestImageTag(t *testing.T) {
	for in, want := range map[string]string{"v1": "v1", "shop-r1a2b3c4": "shop-r1a2b3c4", "a+b/c": "a-b-c", "-x": "r-x", strings.Repeat("x", 200): strings.Repeat("x", 128)} {
		if got := imageTag(in); got != want {
			t.Errorf("imageTag(%q) = %q, want %q", in, got, want)
		}
	}
}
