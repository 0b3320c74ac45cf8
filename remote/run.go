package remote

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/djship/djship/internal/fileutil"
)

// streams collects a command's output and, unless quiet, prints it live
// with the host's prefix.
type streams struct {
	stdout      bytes.Buffer
	stderr      tail
	liveOut     *lineWriter
	liveErr     *lineWriter
	stdoutW     io.Writer
	stderrW     io.Writer
	redactor    *Redactor
	hostName    string
	commandText string
}

func newStreams(out *Output, host string, quiet bool) *streams {
	s := &streams{stderr: tail{max: 64 << 10}, hostName: host}
	s.stdoutW, s.stderrW = &s.stdout, &s.stderr
	if out != nil {
		s.redactor = out.redactor
		if !quiet {
			s.liveOut = &lineWriter{out: out, host: host}
			s.liveErr = &lineWriter{out: out, host: host}
			s.stdoutW = io.MultiWriter(&s.stdout, s.liveOut)
			s.stderrW = io.MultiWriter(&s.stderr, s.liveErr)
		}
	}
	return s
}

// result flushes the live output and returns what was collected.
func (s *streams) result() *Result {
	if s.liveOut != nil {
		s.liveOut.Flush()
		s.liveErr.Flush()
	}
	return &Result{Stdout: s.stdout.Bytes(), Stderr: s.stderr.buf}
}

// exitError builds the error for a non-zero exit, redacted, recognising
// sudo asking for a password.
func (s *streams) exitError(script string, code int, loginUser string) error {
	stderr := string(s.stderr.buf)
	if code == 1 && (strings.Contains(stderr, "sudo: a password is required") || strings.Contains(stderr, "sudo: a terminal is required")) {
		return sudoError(s.hostName, loginUser)
	}
	if strings.TrimSpace(stderr) == "" {
		// Some tools (init scripts) say what went wrong on standard output.
		stderr = lastLines(s.stdout.String(), 10)
	}
	return &ExitError{
		Host:     s.hostName,
		Script:   s.redactor.Redact(script),
		ExitCode: code,
		Stderr:   s.redactor.Redact(stderr),
	}
}

// runner is what the shared upload code needs from a host.
type runner interface {
	Host
	// stage copies r to a new private file on the host and returns its
	// path; the file is gone after cleanup.
	stage(ctx context.Context, r io.Reader) (path string, cleanup func(), err error)
}

// upload is Upload for every kind of host: compare the checksum, mode and
// owner of what is there; if they differ, stage the content, copy it next
// to the destination into a new private file, set owner and mode, verify
// the checksum and rename it into place.
func upload(ctx context.Context, h runner, u Upload) (bool, error) {
	if u.Path == "" || !strings.HasPrefix(u.Path, "/") {
		return false, fmt.Errorf("upload to %q: the destination must be an absolute path", u.Path)
	}
	open := func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(u.Data)), nil }
	if u.LocalPath != "" {
		open = func() (io.ReadCloser, error) { return os.Open(u.LocalPath) }
	}
	sum, err := checksum(open)
	if err != nil {
		return false, fmt.Errorf("upload %s: %w", u.Path, err)
	}
	mode := fmt.Sprintf("%o", u.Mode.Perm())
	owner := ""
	if u.Owner != "" || u.Group != "" {
		owner = u.Owner + ":" + u.Group
	}
	if u.LocalPath == "" && len(u.Data) <= inlineUpload {
		return uploadInline(ctx, h, u, mode, owner, sum)
	}

	probe := `f=$1
if [ -f "$f" ] && [ ! -L "$f" ]; then
  set -- $(sha256sum < "$f")
  printf '%s ' "$1"
  stat -c '%a %U %G' -- "$f"
fi`
	res, err := h.Run(ctx, Command{Script: Sh("sh", "-c", probe, "probe", u.Path), Become: u.Become, Quiet: true})
	if err != nil {
		return false, fmt.Errorf("upload %s: %w", u.Path, err)
	}
	if fields := strings.Fields(string(res.Stdout)); len(fields) == 4 && fields[0] == sum && fields[1] == mode &&
		(u.Owner == "" || fields[2] == u.Owner) && (u.Group == "" || fields[3] == u.Group) {
		return false, nil
	}

	r, err := open()
	if err != nil {
		return false, fmt.Errorf("upload %s: %w", u.Path, err)
	}
	staged, cleanup, err := h.stage(ctx, r)
	r.Close()
	if err != nil {
		return false, fmt.Errorf("upload %s: %w", u.Path, err)
	}
	defer cleanup()
	// The copy next to the destination is born private (mktemp makes it
	// 0600 under umask 077), gets its owner, and only then its mode: it
	// is never readable by anyone the final file would not let in.
	install := `set -e
staged=$1 dest=$2 mode=$3 owner=$4 sum=$5
umask 077
tmp=
trap '[ -z "$tmp" ] || rm -f -- "$tmp"' EXIT
tmp=$(mktemp -- "$(dirname -- "$dest")/.$(basename -- "$dest").djship-XXXXXXXX")
cat -- "$staged" > "$tmp"
if [ -n "$owner" ]; then chown -- "$owner" "$tmp"; fi
chmod "$mode" -- "$tmp"
set -- $(sha256sum < "$tmp")
if [ "$1" != "$sum" ]; then echo "checksum mismatch after upload: got $1, want $sum" >&2; exit 1; fi
mv -f -- "$tmp" "$dest"
trap - EXIT`
	if _, err := h.Run(ctx, Command{Script: Sh("sh", "-c", install, "install", staged, u.Path, mode, owner, sum), Become: u.Become, Quiet: true}); err != nil {
		return false, fmt.Errorf("upload %s: %w", u.Path, err)
	}
	return true, nil
}

// inlineUpload is the largest content sent with the command that
// compares and writes it: a small file costs one command whether it
// changes or not, a larger one is compared first and only sent over
// SFTP when it differs.
const inlineUpload = 256 << 10

// uploadInline is upload in one command for small content: the content
// travels on standard input; the host compares the file that is there
// with its checksum, mode and owner, and writes it only when they differ,
// as upload does.
func uploadInline(ctx context.Context, h runner, u Upload, mode, owner, sum string) (bool, error) {
	script := `set -e
dest=$1 mode=$2 owner=$3 sum=$4 user=$5 group=$6
if [ -f "$dest" ] && [ ! -L "$dest" ]; then
  set -- $(sha256sum < "$dest")
  have=$1
  set -- $(stat -c '%a %U %G' -- "$dest")
  if [ "$have" = "$sum" ] && [ "$1" = "$mode" ] && { [ -z "$user" ] || [ "$2" = "$user" ]; } && { [ -z "$group" ] || [ "$3" = "$group" ]; }; then
    cat > /dev/null
    echo unchanged
    exit 0
  fi
fi
umask 077
tmp=
trap '[ -z "$tmp" ] || rm -f -- "$tmp"' EXIT
tmp=$(mktemp -- "$(dirname -- "$dest")/.$(basename -- "$dest").djship-XXXXXXXX")
cat > "$tmp"
if [ -n "$owner" ]; then chown -- "$owner" "$tmp"; fi
chmod "$mode" -- "$tmp"
set -- $(sha256sum < "$tmp")
if [ "$1" != "$sum" ]; then echo "checksum mismatch after upload: got $1, want $sum" >&2; exit 1; fi
mv -f -- "$tmp" "$dest"
trap - EXIT
echo written`
	res, err := h.Run(ctx, Command{Script: Sh("sh", "-c", script, "upload", u.Path, mode, owner, sum, u.Owner, u.Group), Stdin: bytes.NewReader(u.Data), Become: u.Become, Quiet: true})
	if err != nil {
		return false, fmt.Errorf("upload %s: %w", u.Path, err)
	}
	return strings.TrimSpace(string(res.Stdout)) == "written", nil
}

func checksum(open func() (io.ReadCloser, error)) (string, error) {
	r, err := open()
	if err != nil {
		return "", err
	}
	defer r.Close()
	return fileutil.SHA256(r)
}

// readFile is ReadFile for every kind of host.
func readFile(ctx context.Context, h Host, path string, become bool) ([]byte, error) {
	res, err := h.Run(ctx, Command{Script: Sh("cat", "--", path), Become: become, Quiet: true})
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return res.Stdout, nil
}
