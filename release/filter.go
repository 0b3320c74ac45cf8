package release

import (
	"path"
	"strings"
)

// DefaultExcludes are left out of every release tarball: version control,
// Python caches, local databases, environment files, uploads, secrets
// files, private keys and the files where tools keep passwords and tokens.
// A site adds patterns with source.exclude and puts files back with
// source.include. Private keys and tokens under other names are found by
// their content (see scanTree) and refuse the release.
var DefaultExcludes = []string{
	".git/", ".hg/", ".svn/",
	"__pycache__/", "*.pyc", "*.pyo",
	"*.sqlite3", "*.sqlite3-journal", "*.sqlite3-wal", "*.sqlite3-shm", "*.sqlite", "*.db",
	".env", ".env.*", "*.env",
	"/media/",
	"secrets.*", "*.secrets", "*.secrets.*", "*.age",
	"*.key", "*.p12", "*.pfx", "*.ppk", "id_rsa*", "id_dsa*", "id_ecdsa*", "id_ed25519*",
	".pgpass", ".netrc", "_netrc", ".git-credentials", ".pypirc", ".aws/", ".ssh/", ".gnupg/",
	".DS_Store", "*.swp", "*~",
	"/dist/", "/node_modules/",
}

// filter decides which files of a source tree go into the tarball. Its
// patterns follow .gitignore in a small way: a pattern without / matches a
// name at any depth, a pattern with / matches the path from the top, a
// trailing / matches folders only. A folder left out takes its contents
// with it.
type filter struct {
	defaults []string
	exclude  []string
	include  []string
}

func newFilter(exclude, include []string) filter {
	return filter{
		defaults: append([]string{}, DefaultExcludes...),
		exclude:  exclude,
		include:  include,
	}
}

// excluded reports whether rel (slash-separated, relative to the source
// top) stays out of the tarball.
func (f filter) excluded(rel string, isDir bool) bool {
	return f.leftOutBy(rel, isDir) != ""
}

// leftOutBy says why rel stays out of the tarball: "default: P" or
// "source.exclude: P" with the first pattern P that matches it, or ""
// when it is packaged.
func (f filter) leftOutBy(rel string, isDir bool) string {
	if f.includedBy(rel, isDir) != "" {
		return ""
	}
	if p := firstMatch(f.defaults, rel, isDir); p != "" {
		return "default: " + p
	}
	if p := firstMatch(f.exclude, rel, isDir); p != "" {
		return "source.exclude: " + p
	}
	return ""
}

// includedBy is the source.include pattern that names rel, or "".
func (f filter) includedBy(rel string, isDir bool) string {
	return firstMatch(f.include, rel, isDir)
}

func firstMatch(patterns []string, rel string, isDir bool) string {
	for _, p := range patterns {
		if match(p, rel, isDir) {
			return p
		}
	}
	return ""
}

func match(pattern, rel string, isDir bool) bool {
	dirOnly := strings.HasSuffix(pattern, "/")
	pattern = strings.TrimSuffix(pattern, "/")
	if dirOnly && !isDir {
		return false
	}
	if strings.Contains(pattern, "/") {
		ok, _ := path.Match(strings.TrimPrefix(pattern, "/"), rel)
		return ok
	}
	ok, _ := path.Match(pattern, path.Base(rel))
	return ok
}
