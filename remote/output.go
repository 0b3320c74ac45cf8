package remote

import (
	"bytes"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"sync"
	"time"

	"github.com/fatih/color"
)

// Output prints the progress of every host: each line prefixed with the
// host's name in its own colour, secrets redacted, lines from several
// hosts never mixed within a line. Colour follows fatih/color: off for
// NO_COLOR, TERM=dumb and when standard output is not a terminal.
type Output struct {
	mu       sync.Mutex
	w        io.Writer
	redactor *Redactor
}

// NewOutput prints to w (os.Stdout when nil) through redactor.
func NewOutput(w io.Writer, redactor *Redactor) *Output {
	if w == nil {
		w = os.Stdout
	}
	return &Output{w: w, redactor: redactor}
}

var hostColors = []*color.Color{
	color.New(color.FgCyan), color.New(color.FgMagenta), color.New(color.FgBlue),
	color.New(color.FgYellow), color.New(color.FgGreen), color.New(color.FgHiCyan),
}

func prefix(host string) string {
	h := fnv.New32a()
	h.Write([]byte(host))
	return hostColors[h.Sum32()%uint32(len(hostColors))].Sprint("[" + host + "]")
}

// Line prints one line for host.
func (o *Output) Line(host, text string) {
	if o == nil {
		return
	}
	text = o.redactor.Redact(text)
	o.mu.Lock()
	defer o.mu.Unlock()
	fmt.Fprintf(o.w, "%s %s\n", prefix(host), text)
}

// Step statuses.
const (
	StatusOK      = "ok"
	StatusChanged = "changed"
	StatusFailed  = "failed"
	StatusSkipped = "skipped"
)

var statusColor = map[string]*color.Color{
	StatusOK:      color.New(color.FgGreen),
	StatusChanged: color.New(color.FgYellow),
	StatusFailed:  color.New(color.FgRed, color.Bold),
	StatusSkipped: color.New(color.Faint),
}

// Step prints a finished step of host: its name, duration and status,
// and the error when it failed.
func (o *Output) Step(host, name string, d time.Duration, status string, err error) {
	if o == nil {
		return
	}
	c := statusColor[status]
	if c == nil {
		c = color.New()
	}
	if status == StatusSkipped {
		o.Line(host, fmt.Sprintf("%-8s %s", c.Sprint(status), name))
	} else {
		o.Line(host, fmt.Sprintf("%-8s %s %s", c.Sprint(status), name, color.New(color.Faint).Sprintf("(%s)", d.Round(time.Millisecond))))
	}
	if err != nil {
		for _, l := range bytes.Split([]byte(err.Error()), []byte("\n")) {
			o.Line(host, "         "+color.RedString("%s", l))
		}
	}
}

// lineWriter turns a stream into Output lines for one host.
type lineWriter struct {
	out  *Output
	host string
	buf  []byte
}

func (l *lineWriter) Write(p []byte) (int, error) {
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			break
		}
		l.out.Line(l.host, string(bytes.TrimRight(l.buf[:i], "\r")))
		l.buf = l.buf[i+1:]
	}
	return len(p), nil
}

// Flush prints a last line without a newline.
func (l *lineWriter) Flush() {
	if len(l.buf) > 0 {
		l.out.Line(l.host, string(l.buf))
		l.buf = nil
	}
}
