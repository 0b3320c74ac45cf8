// Package shquote quotes words for a POSIX shell. It is a leaf: the
// templates (shell scripts written on hosts) and remote (commands run on
// hosts) both quote with it, and a package that must not reach hosts can
// import templates without remote.
package shquote

import (
	"regexp"
	"strings"
)

var plainWord = regexp.MustCompile(`^[A-Za-z0-9_@%+=:,./-]+$`)

// Quote makes s one word for a POSIX shell: the shell passes it to the
// command unchanged, whatever it contains (spaces, quotes, $(), `, globs,
// newlines, unicode). Only a NUL byte cannot be passed.
func Quote(s string) string {
	if plainWord.MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'"'"'`) + "'"
}
