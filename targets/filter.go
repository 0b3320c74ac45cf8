package targets

import (
	"path"
	"strings"
)

// DefaultExcludes are left out of every release tarball: version control,
// Python caches, local databases, environment files, uploads and anything
// that looks like a secret or a private key. A site adds patterns with
// source.exclude and puts files back with source.include.
var DefaultExcludes = []string{
	".git/", ".hg/", ".svn/",
	"__pycache__/", "*.pyc", "*.pyo",
	"*.sqlite3", "*.sqlite3-journal", "*.sqlite3-wal", "*.sqlite3-shm", "*.sqlite", "*.db",
	".env", ".env.*", "*.env",
	"/media/",
	"secrets.*", "*.secrets", "*.secrets.*", "*.age",
	"*.key", "*.p12", "*.pfx", "id_rsa*", "id_ecdsa*", "id_ed25519*",
	".DS_Store", "*.swp", "*~",
	"/dist/", "/node_modules/",
}

// filter decides which files of a source tree go into the tarball. Its
// patterns follow .gitignore in a small way: a pattern without / matches a
// name at any depth, a pattern with / matches the path from the top, a
// trailing / matches folders only. A folder left out takes its contents
// with it.
type filter struct {
	exclude []string
	include []string
}

func newFilter(exclude, include []string) filter {
	return filter{
		exclude: append(append([]string{}, DefaultExcludes...), exclude...),
		include: include,
	}
}

// excluded reports whether rel (slash-separated, relative to the source
// top) stays out of the tarball.
func (f filter) excluded(rel string, isDir bool) bool {
	if matchAny(f.include, rel, isDir) {
		return false
	}
	return matchAny(f.exclude, rel, isDir)
}

func matchAny(patterns []string, rel string, isDir bool) bool {
	for _, p := range patterns {
		if match(p, rel, isDir) {
			return true
		}
	}
	return false
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
