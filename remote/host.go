// Package remote is how djship reaches hosts: it runs commands and writes
// files over one SSH connection per host (on goph and x/crypto/ssh), or on
// this machine for connection: local. It owns quoting, sudo, host-key
// checks, redaction of secrets, per-host output and cancellation; no other
// package builds a shell command by hand or imports ssh.
package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"reflect"
	"strings"
	"sync"
	"time"
)

// Host is one machine djship works on.
type Host interface {
	// Name is how the host appears in output: user@address:port or local.
	Name() string
	// Run runs a command and waits for it. A non-zero exit is an
	// *ExitError carrying the command, exit code and stderr's tail.
	Run(ctx context.Context, c Command) (*Result, error)
	// Upload writes a file atomically (temporary name, checksum check,
	// rename) unless a file with the same content, mode and owner is
	// already there; changed says whether it wrote.
	Upload(ctx context.Context, u Upload) (changed bool, err error)
	// ReadFile returns a file's content; become reads it as root.
	ReadFile(ctx context.Context, path string, become bool) ([]byte, error)
	// Close ends the connection.
	Close() error
}

// Command is one shell command for a host.
type Command struct {
	// Script is a POSIX shell script; build it with Sh and Quote.
	Script string
	// Stdin, when set, is copied to the command's standard input; a host
	// shell reads it whole before the command starts, so a stream that
	// never ends needs a Terminal. Secrets travel this way, never in
	// Script or Env.
	Stdin io.Reader
	// Env sets environment variables (not for secrets: they are argv).
	Env map[string]string
	// Dir is the working folder.
	Dir string
	// Become runs the command as root through sudo -n.
	Become bool
	// Timeout ends the command after this long; none when zero.
	Timeout time.Duration
	// Quiet keeps the command's output out of the live progress output.
	Quiet bool
	// Terminal, when set, connects the command to the caller's streams
	// instead of capturing its output: for interactive commands such as
	// manage.py shell. Their output is the user's, shown unmasked.
	Terminal *Terminal
}

// Terminal is the caller's side of an interactive command.
type Terminal struct {
	// In, Out and Err are the command's standard streams.
	In       io.Reader
	Out, Err io.Writer
	// TTY asks for a pseudo-terminal on the host, sized as In's terminal
	// when In is one, which is put in raw mode meanwhile.
	TTY bool
}

// writers returns the writers for the command's output and errors. When
// Out and Err are one writer, both streams share one that takes a write
// at a time: a host copies them concurrently, and most writers (a
// bytes.Buffer among them) lose data when written from two goroutines.
func (t *Terminal) writers() (out, errs io.Writer) {
	if t.Out == nil || t.Err == nil || !sameWriter(t.Out, t.Err) {
		return t.Out, t.Err
	}
	shared := NewLockedWriter(t.Out)
	return shared, shared
}

// sameWriter reports whether a and b are one writer, without the panic
// that == gives on writers of a type that cannot be compared.
func sameWriter(a, b io.Writer) bool {
	ta, tb := reflect.TypeOf(a), reflect.TypeOf(b)
	return ta == tb && ta.Comparable() && a == b
}

// NewLockedWriter is w for writers in several goroutines: it passes
// writes on one at a time, each whole. It offers Write alone, so io.Copy
// writes through it rather than into the writer's own buffer.
func NewLockedWriter(w io.Writer) io.Writer { return &lockedWriter{w: w} }

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// Result is what a finished command gave back.
type Result struct {
	// Stdout is the command's standard output.
	Stdout []byte
	// Stderr is the command's standard error, at most its last 64 KiB.
	Stderr []byte
	// Duration is how long it ran.
	Duration time.Duration
}

// Upload describes a file to write on a host.
type Upload struct {
	// Path is the destination on the host.
	Path string
	// Data is the content, when LocalPath is empty.
	Data []byte
	// LocalPath is a local file to send instead of Data.
	LocalPath string
	// Mode is the file's permission bits.
	Mode fs.FileMode
	// Owner and Group set the file's owner (root is needed to change
	// them); empty keeps the login user's.
	Owner, Group string
	// Become writes the file as root.
	Become bool
}

// ExitError is a command that ran and failed.
type ExitError struct {
	Host     string
	Script   string
	ExitCode int
	Stderr   string
}

// Error names the host, the command, the exit code and the last lines of
// standard error.
func (e *ExitError) Error() string {
	msg := fmt.Sprintf("%s: command exited with %d: %s", e.Host, e.ExitCode, short(e.Script))
	if tail := lastLines(e.Stderr, 10); tail != "" {
		msg += "\n" + indent(tail)
	}
	return msg
}

// ErrSudoPassword means sudo wanted a password that djship cannot give.
var ErrSudoPassword = errors.New("sudo needs a password")

// sudoError explains how to allow passwordless sudo for user.
func sudoError(host, user string) error {
	return fmt.Errorf("%s: %w: djship runs sudo -n and cannot type one; allow %s passwordless sudo with a sudoers line such as\n    %s ALL=(root) NOPASSWD: ALL\n  in /etc/sudoers.d/djship (edit it with visudo -f /etc/sudoers.d/djship)", host, ErrSudoPassword, user, user)
}

// ErrConnectionLost means the connection to the host broke while a
// command ran: its outcome on the host is unknown.
var ErrConnectionLost = errors.New("connection lost")

func short(script string) string {
	script = strings.TrimSpace(script)
	if i := strings.IndexByte(script, '\n'); i >= 0 {
		script = script[:i] + " …"
	}
	if len(script) > 200 {
		script = script[:200] + " …"
	}
	return script
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.TrimSpace(strings.Join(lines, "\n"))
}

func indent(s string) string {
	return "    " + strings.ReplaceAll(s, "\n", "\n    ")
}

// tail keeps the last max bytes written to it.
type tail struct {
	max int
	buf []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = append([]byte(nil), t.buf[len(t.buf)-t.max:]...)
	}
	return len(p), nil
}
