package remote

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/djship/djship/internal/shquote"
)

// Quote makes s one word for a POSIX shell: the shell passes it to the
// command unchanged, whatever it contains (spaces, quotes, $(), `, globs,
// newlines, unicode). Only a NUL byte cannot be passed; Run refuses it.
func Quote(s string) string { return shquote.Quote(s) }

// Sh quotes each word and joins them into one shell command:
// Sh("mkdir", "-p", "--", dir).
func Sh(words ...string) string {
	quoted := make([]string, len(words))
	for i, w := range words {
		quoted[i] = Quote(w)
	}
	return strings.Join(quoted, " ")
}

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// wrapper runs a script so that cancelling it stops everything it started:
// the script runs in the background with the caller's standard input, and
// a TERM, INT or HUP to the wrapper is passed on to its whole process
// group. Its exit status is the script's.
const wrapper = `exec 3<&0
trap 'trap - TERM INT HUP; kill -TERM 0 2>/dev/null; exit 143' TERM INT HUP
sh -c "$1" djship <&3 3<&- &
exec 3<&-
wait $!`

// commandLine is the one shell command a host runs for c: sudo when c
// asks to become root and the login user is not root, the environment,
// the working folder and the cancellation wrapper.
func commandLine(c Command, loginIsRoot bool) (string, error) {
	if strings.ContainsRune(c.Script, 0) || strings.ContainsRune(c.Dir, 0) {
		return "", fmt.Errorf("command contains a NUL byte, which no shell can receive; send such data on standard input")
	}
	script := c.Script
	if c.Dir != "" {
		script = "cd " + Quote(c.Dir) + " && " + script
	}
	var words []string
	if c.Become && !loginIsRoot {
		words = append(words, "sudo", "-n", "-H", "--")
	}
	if len(c.Env) > 0 {
		keys := make([]string, 0, len(c.Env))
		for k, v := range c.Env {
			if !envName.MatchString(k) {
				return "", fmt.Errorf("environment variable name %q: use letters, digits and _", k)
			}
			if strings.ContainsRune(v, 0) {
				return "", fmt.Errorf("environment variable %s contains a NUL byte", k)
			}
			keys = append(keys, k)
		}
		sort.Strings(keys)
		words = append(words, "env")
		for _, k := range keys {
			words = append(words, k+"="+c.Env[k])
		}
	}
	words = append(words, "sh", "-c", wrapper, "djship", script)
	return Sh(words...), nil
}
