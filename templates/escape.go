package templates

import (
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"

	"github.com/djship/djship/internal/shquote"
)

// One rule per output syntax. Every value a host template writes goes
// through exactly one of these functions, named after the syntax it is
// written in; TestEveryValueIsEscaped checks that no template writes a
// value any other way. A function either escapes the value for its
// syntax or refuses it, so that a value can never become a second word,
// directive or command, whatever the site validation let through.

// word is what nginx, Apache and unquoted systemd words may hold: no
// whitespace, quotes, $, %, ;, {}, <>, #, \ or control characters.
var word = regexp.MustCompile(`^[A-Za-z0-9._/:@+,=-]+$`)

// refuse is the error of a value that a syntax cannot hold.
func refuse(syntax, value string) error {
	return fmt.Errorf("%q cannot be written into %s: it may hold letters, digits and . _ / : @ + , = - only", value, syntax)
}

// nginxWord writes a value as one word of an nginx directive.
func nginxWord(v string) (string, error) {
	if !word.MatchString(v) {
		return "", refuse("an nginx configuration", v)
	}
	return v, nil
}

// nginxHostPort writes host:port as one word of an nginx directive, an
// IPv6 address in brackets.
func nginxHostPort(host string, port int) (string, error) {
	if port < 1 || port > 65535 {
		return "", fmt.Errorf("port %d is not from 1 to 65535", port)
	}
	if ip := net.ParseIP(host); ip != nil && strings.Contains(host, ":") {
		return "[" + ip.String() + "]:" + strconv.Itoa(port), nil
	}
	if !hostWord.MatchString(host) {
		return "", refuse("an nginx address", host)
	}
	return host + ":" + strconv.Itoa(port), nil
}

// hostWord is a host name or an IPv4 address.
var hostWord = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$`)

// apacheWord writes a value as one word of an Apache directive.
func apacheWord(v string) (string, error) {
	if !word.MatchString(v) {
		return "", refuse("an Apache configuration", v)
	}
	return v, nil
}

// systemdWord writes a value as one word of a systemd directive, where
// systemd would split on spaces and expand $VAR and % specifiers.
func systemdWord(v string) (string, error) {
	if !word.MatchString(v) {
		return "", refuse("a systemd unit", v)
	}
	return v, nil
}

// controlChar reports whether s holds a control character.
func controlChar(s string) bool {
	return strings.IndexFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0
}

// uwsgiValue writes the value of a uWSGI ini option: one line, with %
// doubled so that uWSGI expands no magic variable (%n, %d, …). uWSGI has
// no escape for $(ENV), @(file) and %(option), which it looks up after
// turning %% into %: values holding $(, @( or %(, and values it would
// trim, cannot be written.
func uwsgiValue(v string) (string, error) {
	if controlChar(v) || strings.Contains(v, "$(") || strings.Contains(v, "@(") || strings.Contains(v, "%(") || strings.TrimSpace(v) != v {
		return "", fmt.Errorf("%q cannot be written into a uWSGI ini file: it must be one line without $(, @( or %%( and without spaces around it", v)
	}
	return strings.ReplaceAll(v, "%", "%%"), nil
}

// uwsgiOptionName is the name of a uWSGI option.
var uwsgiOptionName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)

// uwsgiOption writes one of the site's own uWSGI options, "name = value":
// the site file's author chose the option and its value on purpose (a
// Celery attach-daemon runs a command by design), so the value is not
// escaped; it must still be one line with a valid option name.
func uwsgiOption(line string) (string, error) {
	name, value, ok := strings.Cut(line, "=")
	name, value = strings.TrimSpace(name), strings.TrimSpace(value)
	if !ok || !uwsgiOptionName.MatchString(name) || controlChar(value) {
		return "", fmt.Errorf("%q cannot be written into a uWSGI ini file: write one line, name = value", line)
	}
	return name + " = " + value, nil
}

// systemdValue quotes the value of an Environment= assignment: double
// quotes with \ and " escaped, % doubled so that systemd expands no
// specifier (systemd does not expand $ in Environment=). Control
// characters cannot be written.
func systemdValue(s string) (string, error) {
	if controlChar(s) {
		return "", fmt.Errorf("%q cannot be written into a systemd unit: it must be one line", s)
	}
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "%", "%%")
	return `"` + r.Replace(s) + `"`, nil
}

// systemdExecArg writes one argument of a systemd ExecStart= line: a
// quoted word, with the escapes of systemdValue and $ doubled, since
// systemd expands $VAR there.
func systemdExecArg(s string) (string, error) {
	v, err := systemdValue(s)
	return strings.ReplaceAll(v, "$", "$$"), err
}

// shellWord writes a value as one word of a POSIX shell script.
func shellWord(s string) (string, error) {
	if strings.ContainsRune(s, 0) {
		return "", fmt.Errorf("%q cannot be written into a shell script: it holds a NUL byte", s)
	}
	return shquote.Quote(s), nil
}

// shellComment writes a value into a comment of a shell script (an init
// script's LSB header), where a newline would end the comment.
func shellComment(v string) (string, error) {
	if !word.MatchString(v) {
		return "", refuse("a shell comment", v)
	}
	return v, nil
}
