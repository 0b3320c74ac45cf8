package sites

import (
	"fmt"
	"net/netip"
	"path"
	"regexp"
	"strings"
	"unicode"
)

// The grammars of values that reach the host. djship writes site values
// into nginx and Apache sites, uWSGI ini files, systemd units, init
// scripts and shell commands that run as root. A value that one of those
// syntaxes could read as more than one word or directive is refused here,
// at load, with the key and the fix; the templates check the same again
// when they render (templates/escape.go), so that nothing slips through
// a key this file forgets.

// pathComponent is one folder or file name of a path on the host:
// letters, digits and . _ + -, not starting with -.
var pathComponent = regexp.MustCompile(`^[A-Za-z0-9._+][A-Za-z0-9._+-]*$`)

// pathProblem says why p is not a clean path of safe names, or "".
// absolute chooses between an absolute path and one relative to the
// release.
func pathProblem(p string, absolute bool) string {
	switch {
	case p == "":
		return "is empty"
	case absolute && !strings.HasPrefix(p, "/"):
		return "must be an absolute path"
	case !absolute && strings.HasPrefix(p, "/"):
		return "must be a path inside the release"
	}
	if c := unsafeChar(p); c != "" {
		return fmt.Sprintf("contains %s, which cannot be written safely into the web server, uWSGI, systemd and shell configuration; use letters, digits and . _ + - in folder names", c)
	}
	if p == "/" || (!absolute && p == ".") {
		return ""
	}
	clean := path.Clean(p)
	if clean != p {
		return fmt.Sprintf("is not a clean path: write %q", clean)
	}
	for _, part := range strings.Split(strings.TrimPrefix(p, "/"), "/") {
		if part == ".." {
			return "climbs out with .."
		}
		if !pathComponent.MatchString(part) {
			return fmt.Sprintf("has the name %q: names may not start with -", part)
		}
	}
	return ""
}

// unsafeChar describes the first character of s outside letters, digits
// and . _ + - /, or "" when there is none.
func unsafeChar(s string) string {
	for _, r := range s {
		switch {
		case r < 0x80 && (unicode.IsLetter(r) || unicode.IsDigit(r)):
		case strings.ContainsRune("._+-/", r):
		default:
			return describeRune(r)
		}
	}
	return ""
}

// describeRune names a character for a message.
func describeRune(r rune) string {
	switch {
	case r == ' ':
		return "a space"
	case r == '\n':
		return "a newline"
	case r == '\t':
		return "a tab"
	case r < 0x20 || r == 0x7f:
		return fmt.Sprintf("the control character %U", r)
	case r >= 0x80:
		return fmt.Sprintf("the non-ASCII character %q", r)
	}
	return fmt.Sprintf("%q", string(r))
}

// hostLabel is one label of a host name (RFC 1123).
var hostLabel = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$`)

// isHostName reports whether s is a host name by RFC 1123: dot-separated
// labels of letters, digits and -, each 1 to 63 long, 253 in all.
func isHostName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(strings.TrimSuffix(s, "."), ".") {
		if !hostLabel.MatchString(label) {
			return false
		}
	}
	return true
}

// isIPv4 reports whether s is a dotted IPv4 address.
func isIPv4(s string) bool {
	a, err := netip.ParseAddr(s)
	return err == nil && a.Is4()
}

// isIPv6 reports whether s is an IPv6 address, without brackets and
// without a zone.
func isIPv6(s string) bool {
	a, err := netip.ParseAddr(s)
	return err == nil && a.Is6() && a.Zone() == ""
}

// systemName is a user or group name as Debian's useradd and groupadd
// accept them by default.
var systemName = regexp.MustCompile(`^[a-z_][a-z0-9_-]{0,31}$`)

// loginName is an SSH login name; only the SSH client reads it.
var loginName = regexp.MustCompile(`^[a-z_][a-z0-9_.-]{0,31}$`)

// systemAccounts are the users and groups of a Debian system that an
// application must never run as or share: giving one to the application
// hands it the files and powers of that account.
var systemAccounts = map[string]bool{
	"root": true, "daemon": true, "bin": true, "sys": true, "adm": true, "tty": true, "disk": true,
	"lp": true, "mail": true, "news": true, "uucp": true, "man": true, "proxy": true, "kmem": true,
	"dialout": true, "fax": true, "voice": true, "cdrom": true, "floppy": true, "tape": true,
	"sudo": true, "audio": true, "dip": true, "www-data": true, "backup": true, "operator": true,
	"list": true, "irc": true, "src": true, "gnats": true, "shadow": true, "utmp": true, "video": true,
	"sasl": true, "plugdev": true, "staff": true, "games": true, "users": true, "nogroup": true,
	"nobody": true, "sync": true, "wheel": true, "_apt": true, "messagebus": true, "sshd": true,
	"postgres": true, "ssl-cert": true, "crontab": true, "netdev": true, "input": true, "kvm": true,
	"render": true, "systemd-journal": true, "systemd-network": true, "systemd-resolve": true,
	"systemd-timesync": true, "mysql": true, "redis": true, "memcache": true, "postfix": true,
	"uwsgi": true, "nginx": true, "apache": true, "docker": true,
}

// privilegedGroups give their members root's powers or root's files;
// not even the web server may run with one.
var privilegedGroups = map[string]bool{
	"root": true, "sudo": true, "adm": true, "shadow": true, "disk": true, "kmem": true,
	"wheel": true, "staff": true, "docker": true, "ssl-cert": true,
}

// valueProblem says why a value for the application's environment cannot
// be written into every file that carries it (uWSGI ini, systemd unit,
// init script), or "".
func valueProblem(v string) string {
	for _, r := range v {
		if r < 0x20 || r == 0x7f {
			return "contains " + describeRune(r) + " (put multi-line values in the secrets)"
		}
	}
	if strings.TrimSpace(v) != v {
		return "starts or ends with a space, which uWSGI would drop"
	}
	return ""
}

// uwsgiOptionName is the name of a uWSGI option.
var uwsgiOptionName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)

// headerName is an HTTP header name (an RFC 9110 token, letters, digits
// and - only).
var headerName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9-]*$`)

// urlPath is the path of the health check URL: printable ASCII without
// spaces.
var urlPath = regexp.MustCompile(`^/[\x21-\x7e]*$`)
