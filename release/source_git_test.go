package release

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/djship/djship/internal/testsite"
	"github.com/djship/djship/sites"
)

// plantRepository makes dir, a folder of the project, hold a git
// repository of its own as the project's contents can: HEAD, config,
// objects and refs at its top, as in a bare repository. Its config runs
// a command that writes marker whenever git refreshes an index in it
// (core.fsmonitor), and names worktree (relative to dir) as its work
// tree, so that git log and git status run from dir work in it. When
// from is not "", the repository holds from's commits (pushed from that
// repository); otherwise one empty commit on main.
func plantRepository(t *testing.T, dir, worktree, marker, from string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	gitRun(t, filepath.Dir(dir), "init", "-q", "--bare", "-b", "main", dir)
	if from != "" {
		gitRun(t, from, "push", "-q", dir, "HEAD:refs/heads/main")
	} else {
		gitDir := "--git-dir=" + dir
		tree := gitRun(t, dir, gitDir, "mktree")
		commit := gitRun(t, dir, gitDir, "commit-tree", tree, "-m", "planted")
		gitRun(t, dir, gitDir, "update-ref", "refs/heads/main", commit)
	}
	os.RemoveAll(filepath.Join(dir, "hooks"))
	config := "[core]\n\trepositoryformatversion = 0\n\tbare = false\n"
	if worktree != "" {
		config += "\tworktree = " + worktree + "\n"
	}
	config += "\tfsmonitor = \"touch '" + marker + "'\"\n"
	write(t, filepath.Join(dir, "config"), config)
	// Git commits no empty folder: a .keep in each makes the planted
	// repository come out of a checkout whole.
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			if ents, _ := os.ReadDir(p); len(ents) == 0 {
				write(t, filepath.Join(p, ".keep"), "")
			}
		}
		return nil
	})
}

// noMarker fails the test when a planted command or hook ran.
func noMarker(t *testing.T, marker string) {
	t.Helper()
	if _, err := os.Stat(marker); err == nil {
		t.Errorf("git ran a command on the build machine that djship did not mean to run: %s exists", marker)
	}
}

// commitProject makes the project root a git checkout with everything
// in it committed, and returns HEAD's full and short hashes.
func commitProject(t *testing.T, root string) (full, short string) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(root, ".git")); err != nil {
		gitRun(t, root, "init", "-q", "-b", "main")
		write(t, filepath.Join(root, ".gitignore"), "dist/\n")
	}
	gitRun(t, root, "add", "-A")
	gitRun(t, root, "commit", "-q", "-m", "project")
	return gitRun(t, root, "rev-parse", "HEAD"), gitRun(t, root, "rev-parse", "--short", "HEAD")
}

// The source folder, committed in the project's repository, is made to
// look like a repository of its own whose config runs a command: git
// must not take it for a repository, the release must record the
// project's commit, and the command must not run.
func TestReleaseSourcePathHoldingARepository(t *testing.T) {
	needGit(t)
	site, src := project(t, "")
	marker := filepath.Join(t.TempDir(), "marker")
	// The work tree is the project's sites/ folder: outside the source
	// folder, so that HEAD there is no file of the work tree.
	plantRepository(t, src, "../sites", marker, "")
	full, short := commitProject(t, site.Root)

	a, err := release(t, site, nil)
	noMarker(t, marker)
	if err != nil {
		t.Fatal(err)
	}
	if want := "path:src@" + full; a.Manifest.Source != want || a.Manifest.Revision != short {
		t.Errorf("manifest records %s, revision %s; want the project's commit: %s, %s", a.Manifest.Source, a.Manifest.Revision, want, short)
	}
	if _, ok := readTarball(t, a.Path)["config"]; !ok {
		t.Error("the source's file named config was not packaged")
	}
}

// A source folder below a repository-looking folder: git refuses the
// folder and djship finds the project's repository from its root.
func TestReleaseSourcePathBelowARepository(t *testing.T) {
	needGit(t)
	root := t.TempDir()
	src := filepath.Join(root, "app", "src")
	testsite.CopyTree(t, filepath.Join("..", "example"), src)
	marker := filepath.Join(t.TempDir(), "marker")
	plantRepository(t, filepath.Join(root, "app"), "../sites", marker, "")
	site := testsite.WriteSite(t, root, "shop", strings.Replace(testsite.SiteYAML, "path: src", "path: app/src", 1))
	full, _ := commitProject(t, root)

	a, err := release(t, site, nil)
	noMarker(t, marker)
	if err != nil {
		t.Fatal(err)
	}
	if want := "path:app/src@" + full; a.Manifest.Source != want {
		t.Errorf("manifest records %s, want %s", a.Manifest.Source, want)
	}
}

// The build machine's environment names another repository and adds
// configuration: djship's git calls ignore both.
func TestReleaseGitIgnoresEnvironment(t *testing.T) {
	needGit(t)
	site, _ := project(t, "")
	full, _ := commitProject(t, site.Root)
	decoy := t.TempDir()
	gitRun(t, decoy, "init", "-q", "-b", "main")
	write(t, filepath.Join(decoy, "x"), "x\n")
	gitRun(t, decoy, "add", "x")
	gitRun(t, decoy, "commit", "-q", "-m", "decoy")
	marker := filepath.Join(t.TempDir(), "marker")
	for k, v := range map[string]string{
		"GIT_DIR": filepath.Join(decoy, ".git"), "GIT_WORK_TREE": decoy, "GIT_INDEX_FILE": filepath.Join(decoy, ".git", "index"),
		"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "core.fsmonitor", "GIT_CONFIG_VALUE_0": "touch '" + marker + "'",
		"GIT_CEILING_DIRECTORIES": site.Root,
	} {
		t.Setenv(k, v)
	}
	a, err := release(t, site, nil)
	noMarker(t, marker)
	if err != nil {
		t.Fatal(err)
	}
	if want := "path:src@" + full; a.Manifest.Source != want {
		t.Errorf("manifest records %s, want %s", a.Manifest.Source, want)
	}
}

// source.git names a local repository whose contents hold a repository
// with a command in its config, or names such a planted repository
// itself, or a transport that runs a command: nothing of it runs.
func TestReleaseSourceGitRunsNothingOfTheRepository(t *testing.T) {
	needGit(t)
	tests := []struct {
		name string
		// plant makes the repository in the project at root and returns
		// source.git.
		plant func(t *testing.T, root, marker string) string
		fails bool
	}{
		{"checkout holds a planted repository", func(t *testing.T, root, marker string) string {
			repo := filepath.Join(root, "upstream")
			testsite.CopyTree(t, filepath.Join("..", "example"), repo)
			gitRun(t, repo, "init", "-q", "-b", "main")
			plantRepository(t, filepath.Join(repo, "notes"), "../exampleproject", marker, "")
			gitRun(t, repo, "add", "-A")
			gitRun(t, repo, "commit", "-q", "-m", "v1")
			return "upstream"
		}, false},
		{"source.git is a planted repository", func(t *testing.T, root, marker string) string {
			upstream := t.TempDir()
			testsite.CopyTree(t, filepath.Join("..", "example"), upstream)
			gitRun(t, upstream, "init", "-q", "-b", "main")
			gitRun(t, upstream, "add", "-A")
			gitRun(t, upstream, "commit", "-q", "-m", "v1")
			plantRepository(t, filepath.Join(root, "vendor", "app"), "../../sites", marker, upstream)
			commitProject(t, root)
			return "vendor/app"
		}, false},
		{"ext transport", func(t *testing.T, root, marker string) string {
			return "ext::sh -c touch% " + marker
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			site, _ := project(t, "")
			marker := filepath.Join(t.TempDir(), "marker")
			site.Settings.Source = sites.Source{Git: tt.plant(t, site.Root, marker)}
			a, err := release(t, site, nil)
			noMarker(t, marker)
			if tt.fails {
				if err == nil {
					t.Errorf("source.git %q was released", site.Settings.Source.Git)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := readTarball(t, a.Path)["notes/views.py"]; !ok {
				t.Error("the checkout was not packaged")
			}
		})
	}
}

// The build machine's own git configuration names hooks: the checkout of
// source.git runs none of them.
func TestReleaseSourceGitCheckoutRunsNoHooks(t *testing.T) {
	repo := exampleRepository(t)
	marker := filepath.Join(t.TempDir(), "marker")
	hooks := t.TempDir()
	if err := os.WriteFile(filepath.Join(hooks, "post-checkout"), []byte("#!/bin/sh\ntouch '"+marker+"'\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	global := filepath.Join(t.TempDir(), "gitconfig")
	write(t, global, "[core]\n\thooksPath = "+hooks+"\n")
	t.Setenv("GIT_CONFIG_GLOBAL", global)

	site, _ := project(t, "")
	site.Settings.Source = sites.Source{Git: repo}
	if _, err := release(t, site, nil); err != nil {
		t.Fatal(err)
	}
	noMarker(t, marker)
}
