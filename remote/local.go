package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"syscall"
	"time"
)

// Local is this machine, for connection: local. It behaves as an SSH host
// does: the same command line, sudo, uploads and output.
type Local struct {
	out      *Output
	user     string
	root     bool
	stageDir string
}

// NewLocal returns this machine as a Host that prints to out.
func NewLocal(out *Output) *Local {
	name := "unknown"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	return &Local{out: out, user: name, root: os.Geteuid() == 0}
}

// Name is "local".
func (l *Local) Name() string { return "local" }

// gracePeriod is how long a cancelled command has to stop after TERM.
const gracePeriod = 3 * time.Second

// Run runs the command in a new process group, so that cancelling it
// signals everything it started.
func (l *Local) Run(ctx context.Context, c Command) (*Result, error) {
	line, err := commandLine(c, l.root)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", l.Name(), err)
	}
	if c.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.Timeout)
		defer cancel()
	}
	s := newStreams(l.out, l.Name(), c.Quiet)
	cmd := exec.Command("/bin/sh", "-c", line)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = c.Stdin, s.stdoutW, s.stderrW
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if t := c.Terminal; t != nil {
		cmd.Stdin = t.In
		cmd.Stdout, cmd.Stderr = t.writers()
		if t.TTY {
			// The command shares this terminal: it stays in this process
			// group, which the terminal lets read.
			cmd.SysProcAttr = nil
		}
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: start: %w", l.Name(), err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-ctx.Done():
		group := -cmd.Process.Pid
		if cmd.SysProcAttr == nil {
			group = cmd.Process.Pid
		}
		syscall.Kill(group, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(gracePeriod):
			syscall.Kill(group, syscall.SIGKILL)
			<-done
		}
		res := s.result()
		res.Duration = time.Since(start)
		return res, fmt.Errorf("%s: %s: %w", l.Name(), short(s.redactor.Redact(c.Script)), ctx.Err())
	}
	res := s.result()
	res.Duration = time.Since(start)
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return res, s.exitError(c.Script, exit.ExitCode(), l.user)
	}
	if err != nil {
		return res, fmt.Errorf("%s: %w", l.Name(), err)
	}
	return res, nil
}

// Upload writes a file atomically unless it is already there.
func (l *Local) Upload(ctx context.Context, u Upload) (bool, error) {
	return upload(ctx, l, u)
}

// ReadFile returns a file's content.
func (l *Local) ReadFile(ctx context.Context, path string, become bool) ([]byte, error) {
	return readFile(ctx, l, path, become)
}

// stage writes r into a private temporary folder: os.MkdirTemp makes it
// 0700 and os.CreateTemp the file 0600 before a byte is written, whatever
// the umask.
func (l *Local) stage(ctx context.Context, r io.Reader) (string, func(), error) {
	if l.stageDir == "" {
		dir, err := os.MkdirTemp("", "djship-stage-")
		if err != nil {
			return "", nil, err
		}
		l.stageDir = dir
	}
	f, err := os.CreateTemp(l.stageDir, "upload-")
	if err != nil {
		return "", nil, err
	}
	cleanup := func() { os.Remove(f.Name()) }
	if _, err := io.Copy(f, contextReader{ctx, r}); err != nil {
		f.Close()
		cleanup()
		return "", nil, err
	}
	if err := f.Close(); err != nil {
		cleanup()
		return "", nil, err
	}
	// A become upload is copied by root; the staged file itself stays
	// private to the login user.
	return f.Name(), cleanup, nil
}

// Close removes the staging folder.
func (l *Local) Close() error {
	if l.stageDir != "" {
		return os.RemoveAll(l.stageDir)
	}
	return nil
}

// contextReader stops a copy when its context ends.
type contextReader struct {
	ctx context.Context
	r   io.Reader
}

func (c contextReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
