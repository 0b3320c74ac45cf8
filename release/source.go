package release

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/djship/djship/internal/gitsafe"
	"github.com/djship/djship/sites"
)

// source is a Django source tree ready to be packaged.
type source struct {
	// dir is the folder whose contents become the tarball's top.
	dir string
	// ref describes where the tree came from, for the manifest.
	ref string
	// gitRevision is the commit's short hash; empty outside git.
	gitRevision string
	// dirty means the folder differs from its commit in packaged files.
	dirty bool
	// commitTime is the commit's time; zero outside git.
	commitTime time.Time
	// cleanup removes a temporary checkout.
	cleanup func()
}

// openSource finds the site's source: a local folder (which may sit in a
// git checkout) or a git repository checked out at a ref into a temporary
// folder.
func openSource(ctx context.Context, site *sites.Site, f filter) (*source, error) {
	src := site.Settings.Source
	if src.Git != "" {
		return checkoutGit(ctx, site, src.Git, src.Ref)
	}
	dir := site.Path(src.Path)
	info, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("source.path %q in %s: %w", src.Path, site.File, err)
	}
	if !info.IsDir() {
		return nil, fmt.Errorf("source.path %q in %s is not a folder", src.Path, site.File)
	}
	s := &source{dir: dir, ref: "path:" + src.Path, cleanup: func() {}}
	repo, rel := findRepository(ctx, dir, site.Root)
	if repo == nil {
		return s, nil // not a git checkout: the revision is a content hash
	}
	if err := s.readCommit(ctx, repo); err != nil {
		return s, nil // a repository without commits yet
	}
	s.ref += "@" + repo.headHash(ctx)
	s.dirty, err = dirtyFiles(ctx, repo, rel, f)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// gitRepository is a git repository found once and named explicitly in
// every later call (--git-dir and --work-tree), so that no git call looks
// for a repository in the project's folders again: the project's contents
// can hold folders that git would take for a repository, with a config
// whose commands would run on the build machine.
type gitRepository struct {
	// gitDir is the repository's absolute git directory.
	gitDir string
	// workTree is the absolute top of its checkout.
	workTree string
}

// run runs git in the repository's work tree with the repository named
// explicitly.
func (r *gitRepository) run(ctx context.Context, args ...string) (string, error) {
	return runGit(ctx, r.workTree, false, append([]string{"--git-dir=" + r.gitDir, "--work-tree=" + r.workTree}, args...)...)
}

// headHash returns the full commit hash of HEAD.
func (r *gitRepository) headHash(ctx context.Context) string {
	full, _ := r.run(ctx, "rev-parse", "--verify", "--end-of-options", "HEAD^{commit}")
	return full
}

// errNotCheckout is a folder that git would take for a repository but
// that is no checkout's .git: one that looks like a bare repository,
// which djship never uses unless it names it.
var errNotCheckout = errors.New("a folder that looks like a git repository but is no checkout's .git")

// findRepository finds the git checkout that holds dir, and dir's
// slash-separated path from the checkout's top ("." at the top). Git
// looks from dir up, taking no bare repository it finds on the way (one
// at dir or above, like a folder of the project made to look like one,
// nor any repository that is not the .git of its work tree's top); when
// it finds such a folder, it looks again from the project root root.
// findRepository returns nil when dir is in no checkout.
func findRepository(ctx context.Context, dir, root string) (*gitRepository, string) {
	repo, err := discoverRepository(ctx, dir)
	if errors.Is(err, errNotCheckout) {
		repo, err = discoverRepository(ctx, root)
	}
	if err != nil {
		return nil, ""
	}
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return nil, ""
	}
	rel, err := filepath.Rel(repo.workTree, real)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return nil, "" // dir is outside the checkout found from root
	}
	return repo, filepath.ToSlash(rel)
}

// discoverRepository asks git which repository holds dir, refusing a bare
// repository found by looking (safe.bareRepository=explicit).
func discoverRepository(ctx context.Context, dir string) (*gitRepository, error) {
	out, err := runGit(ctx, dir, false, "rev-parse", "--absolute-git-dir", "--show-toplevel")
	if err != nil {
		if strings.Contains(err.Error(), "cannot use bare repository") {
			return nil, fmt.Errorf("%s: %w", dir, errNotCheckout)
		}
		return nil, err
	}
	lines := strings.Split(out, "\n")
	if len(lines) != 2 || !filepath.IsAbs(lines[0]) || !filepath.IsAbs(lines[1]) {
		return nil, fmt.Errorf("find the git repository of %s: unexpected %q", dir, out)
	}
	repo := &gitRepository{gitDir: lines[0], workTree: lines[1]}
	if err := repo.checkout(); err != nil {
		return nil, err
	}
	return repo, nil
}

// checkout makes sure the repository is a checkout's: its git directory
// is .git at the top of its work tree, or what a .git file there (a
// linked work tree, a submodule) points at. It holds where git is too old
// to know safe.bareRepository and would take any folder that looks like
// a repository for one.
func (r *gitRepository) checkout() error {
	dotGit := filepath.Join(r.workTree, ".git")
	info, err := os.Lstat(dotGit)
	if err != nil {
		return fmt.Errorf("%s (its work tree %s has no .git): %w", r.gitDir, r.workTree, errNotCheckout)
	}
	if info.Mode().IsRegular() {
		return nil // a .git file, which only git's own commands write
	}
	gitDir, err := os.Stat(r.gitDir)
	if err != nil || !info.IsDir() || !os.SameFile(info, gitDir) {
		return fmt.Errorf("%s (not %s): %w", r.gitDir, dotGit, errNotCheckout)
	}
	return nil
}

// readCommit records HEAD's short hash and commit time.
func (s *source) readCommit(ctx context.Context, repo *gitRepository) error {
	out, err := repo.run(ctx, "log", "-1", "--format=%h %ct", "HEAD", "--")
	if err != nil {
		return err
	}
	hash, ts, ok := strings.Cut(out, " ")
	sec, perr := strconv.ParseInt(ts, 10, 64)
	if !ok || perr != nil {
		return fmt.Errorf("read commit of %s: unexpected %q", repo.workTree, out)
	}
	s.gitRevision, s.commitTime = hash, time.Unix(sec, 0).UTC()
	return nil
}

// dirtyFiles reports whether any file that would be packaged differs from
// the commit (modified, added or untracked and not ignored); rel is the
// source folder's path from the checkout's top.
func dirtyFiles(ctx context.Context, repo *gitRepository, rel string, f filter) (bool, error) {
	out, err := repo.run(ctx, "--literal-pathspecs", "--no-optional-locks", "status", "--porcelain=v1", "-z", "--untracked-files=all", "--", rel)
	if err != nil {
		return false, err
	}
	prefix := rel + "/"
	if rel == "." {
		prefix = ""
	}
	for _, entry := range strings.Split(out, "\x00") {
		if len(entry) < 4 {
			continue // rename sources and the empty tail
		}
		p := strings.TrimPrefix(entry[3:], prefix)
		if !excludedPath(f, p) {
			return true, nil
		}
	}
	return false, nil
}

// excludedPath reports whether a file path, or any folder above it, is
// left out by f.
func excludedPath(f filter, p string) bool {
	parts := strings.Split(p, "/")
	for i := range parts {
		if f.excluded(strings.Join(parts[:i+1], "/"), i < len(parts)-1) {
			return true
		}
	}
	return false
}

// localRepository reports whether source.git names a repository on this
// machine (a path, or a file:// URL) rather than one reached over https,
// ssh or git.
func localRepository(repo string) bool {
	return strings.HasPrefix(repo, "file://") || !strings.Contains(repo, "://") && !strings.Contains(repo, "@")
}

// checkoutGit clones repo and checks out ref into a temporary folder. A
// local repository is cloned as a remote one is (--no-local): through
// git's transport, which copies only the objects it sends, never the
// repository's files.
func checkoutGit(ctx context.Context, site *sites.Site, repo, ref string) (*source, error) {
	local := localRepository(repo)
	if local && !strings.HasPrefix(repo, "file://") {
		repo = site.Path(repo) // a local repository, relative to the project root
	}
	tmp, err := os.MkdirTemp("", "djship-source-")
	if err != nil {
		return nil, err
	}
	cleanup := func() { os.RemoveAll(tmp) }
	if ref == "" {
		ref = "HEAD"
	}
	clone := []string{"clone", "--quiet", "--no-checkout", "--template="}
	if local {
		clone = append(clone, "--no-local")
	}
	if _, err := runGit(ctx, tmp, local, append(clone, "--", repo, tmp)...); err != nil {
		cleanup()
		return nil, fmt.Errorf("source.git %q: %w", repo, err)
	}
	r := &gitRepository{gitDir: filepath.Join(tmp, ".git"), workTree: tmp}
	commit := ""
	for _, candidate := range []string{ref, "origin/" + ref} {
		if out, err := r.run(ctx, "rev-parse", "--verify", "--quiet", "--end-of-options", candidate+"^{commit}"); err == nil {
			commit = out
			break
		}
	}
	if commit == "" {
		cleanup()
		return nil, fmt.Errorf("source.ref %q: no such branch, tag or commit in %s", ref, repo)
	}
	if _, err := r.run(ctx, "-c", "advice.detachedHead=false", "checkout", "--quiet", "--detach", commit); err != nil {
		cleanup()
		return nil, fmt.Errorf("check out %s of %s: %w", ref, repo, err)
	}
	s := &source{dir: tmp, ref: fmt.Sprintf("git:%s@%s", site.Settings.Source.Git, commit), cleanup: cleanup}
	if ref != "HEAD" {
		s.ref = fmt.Sprintf("git:%s@%s (%s)", site.Settings.Source.Git, commit, ref)
	}
	if err := s.readCommit(ctx, r); err != nil {
		cleanup()
		return nil, err
	}
	return s, nil
}

// runGit runs git in dir with arguments (never through a shell), with
// gitsafe's guards, and returns its trimmed output. allowFile lets git
// reach a repository on this machine (the file transport), for a
// source.git that names one.
func runGit(ctx context.Context, dir string, allowFile bool, args ...string) (string, error) {
	return gitsafe.Run(ctx, dir, allowFile, args...)
}
