// Package release is the release side of djship: on the machine that runs
// mage release it packages a site's Django source into a reproducible
// tarball (Build), inspects a tarball before any host is touched
// (Inspect) and, in container mode, builds and pushes the release's image
// (BuildImage). It never reaches a host: it imports neither remote nor
// targets, and a test keeps it so.
//
// What it returns is the contract between the two sides. Build returns an
// *Artifact: the tarball written, its checksum and manifest, and what was
// left out or let in. Inspect returns a *Tarball: a tarball judged safe
// to unpack on every host whose settings it was given, which the host
// side (targets) uploads and unpacks by its Name, Path and TarFlag, and
// whose Manifest names the release. The host side relies on nothing else
// of a tarball.
package release

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/djship/djship/internal/fileutil"
	"github.com/djship/djship/sites"
	"github.com/djship/djship/templates"
)

// Options tune Build.
type Options struct {
	// Dist is the folder the tarball is written to; "dist" when empty.
	Dist string
	// Getenv looks up ${VAR} values and SOURCE_DATE_EPOCH; os.LookupEnv
	// when nil.
	Getenv func(string) (string, bool)
	// Out receives the progress lines; nothing is printed when nil.
	Out io.Writer
}

// Artifact is a release tarball written by Build.
type Artifact struct {
	// Path is where the tarball is, e.g. dist/example-r1a2b3c4.tar.gz.
	Path string
	// Size is the tarball's size in bytes.
	Size int64
	// SHA256 is the tarball's sha256, hex-encoded.
	SHA256 string
	// Manifest is the manifest packaged at the tarball's top.
	Manifest templates.Manifest
	// LeftOut lists what the excludes kept out of the tarball, in path
	// order; a folder left out is one entry.
	LeftOut []LeftOut
	// Credentials are the files holding credentials that went into the
	// tarball because source.include names them.
	Credentials []Credential
	// Unscanned are packaged files the credential scan could not read
	// whole within its bounds (a compressed or archived content past
	// 64 MiB, nested past two layers), with what it left unread.
	Unscanned []LeftOut
}

// LeftOut is a file or folder of the source kept out of the tarball.
type LeftOut struct {
	// Path is slash-separated from the source's top; a folder's ends
	// with /.
	Path string
	// Reason is the pattern that leaves it out, as "default: .git/" or
	// "source.exclude: *.log".
	Reason string
}

// defaultEpoch is the entries' time when neither SOURCE_DATE_EPOCH nor a
// git commit gives one.
var defaultEpoch = time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)

// afterScan, when not nil, runs between the scan of the source and the
// writing of the tarball, with the source folder; tests change the tree
// there. It is nil in production.
var afterScan func(dir string)

// Build packages the site's Django source into a reproducible tarball in
// dist/ (what mage release does): the same files give a byte-identical
// tarball, whatever their times, owners or the order the disk lists them
// in.
func Build(ctx context.Context, site *sites.Site, opts Options) (*Artifact, error) {
	if opts.Dist == "" {
		opts.Dist = "dist"
	}
	if opts.Getenv == nil {
		opts.Getenv = os.LookupEnv
	}
	out := opts.Out
	if out == nil {
		out = io.Discard
	}
	src := site.Settings.Source
	f := newFilter(src.Exclude, src.Include)
	source, err := openSource(ctx, site, f)
	if err != nil {
		return nil, fmt.Errorf("release %s: %w", site.Name, err)
	}
	defer source.cleanup()

	t, err := scanTree(ctx, source.dir, f)
	if err != nil {
		return nil, fmt.Errorf("release %s: %w", site.Name, err)
	}
	defer t.close()
	if t.files() == 0 {
		return nil, fmt.Errorf("release %s: source %s has no files to package", site.Name, source.dir)
	}
	listHash := t.listHash()

	revision, err := revisionOf(source, listHash, opts.Getenv)
	if err != nil {
		return nil, fmt.Errorf("release %s: %w", site.Name, err)
	}
	name, err := Expand(site.Settings.RevisionPattern, revision, opts.Getenv)
	if err != nil {
		return nil, fmt.Errorf("release %s: %s: %w", site.Name, site.File, err)
	}
	mtime, err := entryTime(source, opts.Getenv)
	if err != nil {
		return nil, fmt.Errorf("release %s: %w", site.Name, err)
	}

	manifest := templates.Manifest{
		Project:     site.Settings.Project,
		Revision:    revision,
		Source:      source.ref,
		Files:       t.files(),
		FilesSHA256: listHash,
		Created:     mtime.Format(time.RFC3339),
	}
	manifestJSON, err := templates.RenderManifest(manifest)
	if err != nil {
		return nil, err
	}

	if err := os.MkdirAll(opts.Dist, 0o755); err != nil {
		return nil, fmt.Errorf("release %s: %w", site.Name, err)
	}
	dest := filepath.Join(opts.Dist, name)
	if afterScan != nil {
		afterScan(source.dir)
	}
	// The tarball is hashed and counted as it is written, never read back
	// by its name.
	h := sha256.New()
	var size int64
	if err := fileutil.WriteAtomic(dest, 0o644, func(w io.Writer) error {
		return writeArchive(ctx, io.MultiWriter(w, h, countWriter{&size}), name, t, manifestJSON, mtime)
	}); err != nil {
		return nil, fmt.Errorf("release %s: write %s: %w", site.Name, dest, err)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	// Everything in dist/ is written to a new file and renamed into place:
	// a link planted at one of these names is replaced, not written
	// through. .last-release comes last: it names a tarball whose sha256
	// file is there.
	for _, f := range []struct{ path, content string }{
		{dest + ".sha256", sum + "  " + name + "\n"},
		{filepath.Join(opts.Dist, LatestFile), name + "\n"},
	} {
		if err := fileutil.WriteAtomic(f.path, 0o644, func(w io.Writer) error {
			_, err := io.WriteString(w, f.content)
			return err
		}); err != nil {
			return nil, fmt.Errorf("release %s: write %s: %w", site.Name, f.path, err)
		}
	}
	a := &Artifact{Path: dest, Size: size, SHA256: sum, Manifest: manifest, LeftOut: t.leftOut, Credentials: t.credentials, Unscanned: t.unscanned}
	printArtifact(out, a, source.dirty)
	return a, nil
}

// LatestFile is the file in dist/ that names the tarball Build wrote
// last; upgrade ships it.
const LatestFile = ".last-release"

// Latest returns the tarball Build wrote last into dist.
func Latest(dist string) (string, error) {
	name, err := os.ReadFile(filepath.Join(dist, LatestFile))
	if err != nil {
		return "", fmt.Errorf("no release in %s/: run mage release first", dist)
	}
	p := filepath.Join(dist, strings.TrimSpace(string(name)))
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("%s names %s, which is gone: run mage release again", filepath.Join(dist, LatestFile), p)
	}
	return p, nil
}

// countWriter counts the bytes written to it into *n.
type countWriter struct{ n *int64 }

func (c countWriter) Write(p []byte) (int, error) {
	*c.n += int64(len(p))
	return len(p), nil
}

// revisionOf is ${REVISION}: the REVISION variable when set, else the
// commit's short hash (with -dirty and a content hash when packaged files
// differ from it), else the first 12 hex digits of the content hash.
func revisionOf(s *source, listHash string, getenv func(string) (string, bool)) (string, error) {
	if v, ok := getenv("REVISION"); ok && v != "" {
		if !safeName.MatchString(v) {
			return "", fmt.Errorf("REVISION=%q: use letters, digits, ., _ and - only", v)
		}
		return v, nil
	}
	switch {
	case s.gitRevision != "" && s.dirty:
		return s.gitRevision + "-dirty-" + listHash[:7], nil
	case s.gitRevision != "":
		return s.gitRevision, nil
	}
	return listHash[:12], nil
}

// entryTime is the time given to every entry: SOURCE_DATE_EPOCH when set,
// else the commit's time, else 1980-01-01.
func entryTime(s *source, getenv func(string) (string, bool)) (time.Time, error) {
	if v, ok := getenv("SOURCE_DATE_EPOCH"); ok && v != "" {
		sec, err := strconv.ParseInt(v, 10, 64)
		if err != nil || sec < 0 {
			return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH=%q must be seconds since 1970", v)
		}
		return time.Unix(sec, 0).UTC(), nil
	}
	if !s.commitTime.IsZero() {
		return s.commitTime, nil
	}
	return defaultEpoch, nil
}

var (
	variable = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)
	safeName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+-]*$`)
)

// Expand turns a revision pattern into a tarball name: ${REVISION} becomes
// revision, any other ${VAR} the environment's value. Every unset variable
// is named in the error, and the result must be a safe file name.
func Expand(pattern, revision string, getenv func(string) (string, bool)) (string, error) {
	if problems := sites.PatternProblems(pattern); len(problems) > 0 {
		return "", fmt.Errorf("revision_pattern %q %s", pattern, strings.Join(problems, "; "))
	}
	missing := map[string]bool{}
	name := variable.ReplaceAllStringFunc(pattern, func(ref string) string {
		key := ref[2 : len(ref)-1]
		if key == "REVISION" {
			return revision
		}
		v, ok := getenv(key)
		if !ok || v == "" {
			missing[key] = true
		}
		return v
	})
	if len(missing) > 0 {
		keys := make([]string, 0, len(missing))
		for k := range missing {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		return "", fmt.Errorf("revision_pattern %q needs %s from the environment: set it (CI usually provides it) or change revision_pattern", pattern, strings.Join(keys, ", "))
	}
	if !safeName.MatchString(name) || strings.Contains(name, "..") {
		return "", fmt.Errorf("revision_pattern %q expands to %q, which is not a safe file name: the variables may hold only letters, digits, ., _, + and -", pattern, name)
	}
	return name, nil
}
