package release

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/djship/djship/internal/testarchive"
	"github.com/djship/djship/internal/testenv"
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
		files []testarchive.Entry
		want  string // the Dockerfile starts with it
	}{
		{"djship's Dockerfile", []testarchive.Entry{testarchive.File("site/manage.py", "#")}, "# Written by djship: the image of release r1 of shop.\nFROM registry.example.com/base/python:3.11\n"},
		{"the project's own", []testarchive.Entry{testarchive.File("site/manage.py", "#"), testarchive.File("Dockerfile", own)}, own},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			tarball := testarchive.WriteRelease(t, t.TempDir(), "shop", tt.files)
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

// TestBuildContextDeflatesArchives unpacks django.archives_to_deflate
// into the image's sources, as the hosts' unpack step does in process
// mode, and refuses an archive whose file would replace a folder of the release.
func TestBuildContextDeflatesArchives(t *testing.T) {
	testenv.Command(t, "unzip", "unzip")
	zipped := testarchive.Zip(t, []testarchive.Entry{testarchive.File("vendor/vendor.css", "body { color: teal }\n")})
	s := sites.Settings{Project: "shop", BaseImage: "python:3.11", Django: sites.Django{SourceFolder: "site", SettingsModule: "shop.settings",
		ArchivesToDeflate: []sites.Deflate{{Archive: "assets/vendor.zip", Into: "static"}}}}
	dist := t.TempDir()
	tarball := testarchive.WriteRelease(t, dist, "shop", []testarchive.Entry{testarchive.File("site/manage.py", "#"), testarchive.File("site/assets/vendor.zip", string(zipped))})
	ctx := filepath.Join(t.TempDir(), "ctx")
	tb := &Tarball{Path: tarball}
	tb.Manifest.Revision = "r1"
	if err := writeBuildContext(ctx, tarball, tb, s); err != nil {
		t.Fatal(err)
	}
	if css, err := os.ReadFile(filepath.Join(ctx, "src", "site", "static", "vendor", "vendor.css")); err != nil || !strings.Contains(string(css), "teal") {
		t.Errorf("the archive is not unpacked into static/: %q %v", css, err)
	}
	if _, err := os.Stat(filepath.Join(ctx, "unpack")); err == nil {
		t.Error("the scratch folder is left in the build context")
	}

	// A file of the archive where the release has a folder.
	zipped = testarchive.Zip(t, []testarchive.Entry{testarchive.File("vendor", "a file")})
	testarchive.WriteRelease(t, dist, "shop", []testarchive.Entry{testarchive.File("site/manage.py", "#"), testarchive.File("site/assets/vendor.zip", string(zipped)),
		testarchive.File("site/static/vendor/old.css", "old")})
	ctx = filepath.Join(t.TempDir(), "ctx")
	err := writeBuildContext(ctx, tarball, tb, s)
	if err == nil || !strings.Contains(err.Error(), "would replace") || !strings.Contains(err.Error(), "django.archives_to_deflate") {
		t.Errorf("an archive that would replace a file of the release: %v", err)
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

// TestVirtualenvBuiltApartFromTheSource checks when the image's
// virtualenv is built before the source is copied in: only when pip
// reads nothing of the source but the requirements file and the
// wheelhouse.
func TestVirtualenvBuiltApartFromTheSource(t *testing.T) {
	tests := []struct {
		name         string
		requirements string // "" for no requirements file
		dependencies []string
		apart        bool
	}{
		{"no requirements", "", nil, true},
		{"packages of an index", "# pinned\nDjango==4.2.7 --hash=sha256:abc \\\n    --hash=sha256:def\npsycopg2-binary>=2.9 ; python_version >= \"3.8\"\n-i https://pypi.example.com/simple\n", nil, true},
		{"a remote URL", "shop-theme @ https://example.com/shop-theme-1.0.tar.gz\n", []string{"whitenoise==6.6"}, true},
		{"another requirements file", "-r base.txt\n", nil, false},
		{"constraints", "--constraint constraints.txt\nDjango\n", nil, false},
		{"an editable project", "-e .\n", nil, false},
		{"a local wheel", "dist/shop-1.0-py3-none-any.whl\n", nil, false},
		{"a path", "./vendor/lib\n", nil, false},
		{"a file URL", "lib @ file:///app/src/lib\n", nil, false},
		{"find-links", "--find-links=vendor\nlib\n", nil, false},
		{"a dependency from the source", "Django\n", []string{"./plugins/shop-extra"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := t.TempDir()
			s := sites.Settings{Django: sites.Django{SourceFolder: ".", PipInstallRequirements: true, Wheelhouse: "wheels", Dependencies: tt.dependencies}}
			if tt.requirements != "" {
				if err := os.WriteFile(filepath.Join(src, "requirements.txt"), []byte(tt.requirements), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			args, inputs, apart := imageVenv(src, s)
			if apart != tt.apart {
				t.Errorf("built apart: %v, want %v (arguments %q)", apart, tt.apart, args)
			}
			want := []string{"wheels/"}
			if tt.requirements != "" {
				want = []string{"requirements.txt", "wheels/"}
			}
			if strings.Join(inputs, " ") != strings.Join(want, " ") {
				t.Errorf("inputs %q, want %q", inputs, want)
			}
		})
	}
}
