// Package confparse reads the configuration files djship renders the way
// the servers that load them do: nginx, Apache httpd, uWSGI, systemd and a
// POSIX shell. Each parser follows the server's own reader (named in its
// doc comment) and returns the directives in file order, so that two
// renderings of one template can be compared: a site value that adds,
// removes or splits a directive, or that the server would expand, shows
// up as a difference.
//
// The parsers see syntax only. They do not follow includes, do not know
// which directives a server or module defines, and do not evaluate
// conditional sections; each file's doc comment lists what else it
// leaves out.
package confparse

import (
	"fmt"
	"strconv"
	"strings"
)

// Directive is one directive as the server splits it.
type Directive struct {
	// Context holds the enclosing blocks (nginx), sections (Apache) or
	// the [section] (uWSGI, systemd), outermost first.
	Context []string
	// Name is the directive's name or key as written.
	Name string
	// Args are the argument words after the server's quote and escape
	// processing.
	Args []string
	// Raw is the argument text before it is split into words (Apache,
	// uWSGI, systemd); empty for nginx, whose tokenizer has no such step.
	Raw string
	// Line is the line the server names in its messages about the
	// directive: for nginx the line of the ";" or "{" that ends it, for
	// Apache and systemd the last physical line of a continued line, for
	// uWSGI the line of the key.
	Line int
	// Block reports a directive that opens a block ({ for nginx,
	// <Section> for Apache); the directives inside name it in Context.
	Block bool
	// Expands reports that the server substitutes something in the
	// directive before using it: uWSGI's %x, %(opt), $(ENV), @(file),
	// systemd's %x specifiers and $VAR in command lines, Apache's ${VAR}.
	Expands bool
	// Prefix holds the special characters (-@:+!) in front of a systemd
	// command line; Args then start with the executable's path.
	Prefix string
}

// Path is the context and the name joined with "/", such as
// "server/location/alias".
func (d Directive) Path() string {
	return strings.Join(append(append([]string(nil), d.Context...), d.Name), "/")
}

// String renders the directive on one line: its path, its prefix if any,
// its quoted arguments, and markers for a block and for an expansion.
func (d Directive) String() string {
	var b strings.Builder
	b.WriteString(d.Path())
	if d.Prefix != "" {
		b.WriteString(" prefix=" + strconv.Quote(d.Prefix))
	}
	for _, a := range d.Args {
		b.WriteString(" " + strconv.Quote(a))
	}
	if d.Block {
		b.WriteString(" {")
	}
	if d.Expands {
		b.WriteString(" (expands)")
	}
	return b.String()
}

// SyntaxError is a file the server would refuse to load, with the line and
// the server's own words for the problem where it has them.
type SyntaxError struct {
	// Syntax is the parser that failed: nginx, apache, uwsgi, systemd or
	// shell.
	Syntax string
	// Line is the line the server would report.
	Line int
	// Msg says what is wrong.
	Msg string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("%s: line %d: %s", e.Syntax, e.Line, e.Msg)
}

func syntaxErr(syntax string, line int, format string, args ...any) error {
	return &SyntaxError{Syntax: syntax, Line: line, Msg: fmt.Sprintf(format, args...)}
}

// Strings renders each directive with [Directive.String], for comparing
// two parses or printing one.
func Strings(ds []Directive) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.String()
	}
	return out
}
