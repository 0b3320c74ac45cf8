package targets

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

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
	top, err := git(ctx, dir, "rev-parse", "--show-toplevel")
	if err != nil {
		return s, nil // not a git checkout: the revision is a content hash
	}
	if err := s.readCommit(ctx, dir); err != nil {
		return s, nil // a repository without commits yet
	}
	s.ref += "@" + headHash(ctx, dir)
	s.dirty, err = dirtyFiles(ctx, dir, top, f)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// headHash returns the full commit hash of HEAD in dir.
func headHash(ctx context.Context, dir string) string {
	full, _ := git(ctx, dir, "rev-parse", "HEAD")
	return full
}

// readCommit records HEAD's short hash and commit time.
func (s *source) readCommit(ctx context.Context, dir string) error {
	out, err := git(ctx, dir, "log", "-1", "--format=%h %ct", "HEAD")
	if err != nil {
		return err
	}
	hash, ts, ok := strings.Cut(out, " ")
	sec, perr := strconv.ParseInt(ts, 10, 64)
	if !ok || perr != nil {
		return fmt.Errorf("read commit of %s: unexpected %q", dir, out)
	}
	s.gitRevision, s.commitTime = hash, time.Unix(sec, 0).UTC()
	return nil
}

// dirtyFiles reports whether any file that would be packaged differs from
// the commit (modified, added or untracked and not ignored).
func dirtyFiles(ctx context.Context, dir, top string, f filter) (bool, error) {
	out, err := git(ctx, dir, "status", "--porcelain=v1", "-z", "--untracked-files=all", "--", ".")
	if err != nil {
		return false, err
	}
	rel, err := filepath.Rel(top, dir)
	if err != nil {
		return false, err
	}
	prefix := filepath.ToSlash(rel) + "/"
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

// checkoutGit clones repo and checks out ref into a temporary folder.
func checkoutGit(ctx context.Context, site *sites.Site, repo, ref string) (*source, error) {
	if !strings.Contains(repo, "://") && !strings.Contains(repo, "@") {
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
	if _, err := git(ctx, "", "clone", "--quiet", "--no-checkout", "--", repo, tmp); err != nil {
		cleanup()
		return nil, fmt.Errorf("source.git %q: %w", repo, err)
	}
	commit := ""
	for _, candidate := range []string{ref, "origin/" + ref} {
		if out, err := git(ctx, tmp, "rev-parse", "--verify", "--quiet", "--end-of-options", candidate+"^{commit}"); err == nil {
			commit = out
			break
		}
	}
	if commit == "" {
		cleanup()
		return nil, fmt.Errorf("source.ref %q: no such branch, tag or commit in %s", ref, repo)
	}
	if _, err := git(ctx, tmp, "-c", "advice.detachedHead=false", "checkout", "--quiet", "--detach", commit); err != nil {
		cleanup()
		return nil, fmt.Errorf("check out %s of %s: %w", ref, repo, err)
	}
	s := &source{dir: tmp, ref: fmt.Sprintf("git:%s@%s", site.Settings.Source.Git, commit), cleanup: cleanup}
	if ref != "HEAD" {
		s.ref = fmt.Sprintf("git:%s@%s (%s)", site.Settings.Source.Git, commit, ref)
	}
	if err := s.readCommit(ctx, tmp); err != nil {
		cleanup()
		return nil, err
	}
	return s, nil
}

// git runs git with arguments (never through a shell) and returns its
// trimmed output.
func git(ctx context.Context, dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0", "LC_ALL=C")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = err.Error()
		}
		return "", fmt.Errorf("git %s: %s", args[0], msg)
	}
	return strings.TrimRight(stdout.String(), "\n"), nil
}
