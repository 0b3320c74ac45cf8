package remote

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// A host shell is one long-lived session on a host that runs commands
// one after another, so that a command waits for the network once
// instead of three times (open a session, start the command, read its
// end). Through it djship runs every command that has no terminal: its
// script line is the same one a session of its own would run (the
// environment, the working folder and the cancellation wrapper), sudo is
// asked once for the shell that runs commands as root, and each command
// still gets its own output, exit code, timeout and cancellation.
//
// The shell is a small Perl program (perl-base is Essential on Debian
// and Ubuntu, so every host has it), given on the command line. It reads
// frames on its standard input and writes frames on its standard output.
// A frame is a letter, a space, a decimal length, a newline and that many
// bytes. Frames to the host:
//
//	R <n> <m>\n<command line: n bytes><standard input: m bytes>
//	T\n   (TERM to the running command)
//	K\n   (KILL to the running command's process group)
//
// Frames from the host: H (the shell is ready), O and E (output and
// errors as they come), X (the command ended: its exit code, or s and
// the signal's number).
//
// A command gets its own standard streams and no other open file: it
// cannot read or write the shell's channel, whatever it runs as.
//
// A host without perl, or where sudo refuses the shell, runs each command
// in a session of its own, as before.
const hostShell = `use strict; use POSIX (); use Fcntl;
$SIG{PIPE} = 'IGNORE'; binmode STDIN; binmode STDOUT;
my $in = '';
sub fill { my $r = sysread(STDIN, $in, 65536, length $in); return defined($r) && $r > 0 }
sub put { my ($t, $d) = @_; my $b = $t . ' ' . length($d) . "\n" . $d;
  while (length $b) { my $w = syswrite(STDOUT, $b); exit 0 unless defined $w; substr($b, 0, $w) = '' } }
sub nb { my $f = fcntl($_[0], F_GETFL, 0); fcntl($_[0], F_SETFL, $f | O_NONBLOCK) }
put('H', '1');
while (1) {
  while ($in !~ /\n/) { fill() or exit 0 }
  $in =~ s/^([^\n]*)\n//; my @h = split / /, $1;
  next unless $h[0] eq 'R';
  my ($n, $m) = ($h[1], $h[2]);
  while (length($in) < $n + $m) { fill() or exit 0 }
  my $cmd = substr($in, 0, $n); my $pending = substr($in, $n, $m); substr($in, 0, $n + $m) = '';
  pipe(my $ir, my $iw) or die; pipe(my $or, my $ow) or die; pipe(my $er, my $ew) or die;
  my $pid = fork();
  if (!defined $pid) { put('E', "djship host shell: fork: $!\n"); put('X', '255'); next }
  if ($pid == 0) {
    POSIX::setpgid(0, 0); $SIG{PIPE} = 'DEFAULT';
    open(STDIN, '<&', $ir); open(STDOUT, '>&', $ow); open(STDERR, '>&', $ew);
    my @fds = (3 .. 255);
    if (opendir(my $dh, '/proc/self/fd')) { @fds = grep { /^\d+$/ && $_ > 2 } readdir($dh); closedir($dh) }
    POSIX::close($_) for @fds;
    exec('/bin/sh', '-c', $cmd) or POSIX::_exit(127);
  }
  close $ir; close $ow; close $ew; nb($iw); nb($or); nb($er);
  my %open = (O => $or, E => $er); my $win = 1; my $st;
  if (!length $pending) { close $iw; $win = 0 }
  while (1) {
    my ($rv, $wv) = ('', '');
    vec($rv, fileno(STDIN), 1) = 1;
    vec($rv, fileno($open{$_}), 1) = 1 for keys %open;
    vec($wv, fileno($iw), 1) = 1 if $win;
    my ($r, $w) = ($rv, $wv);
    my $k = select($r, $w, undef, defined($st) ? 0 : 0.05);
    next if $k < 0;
    for my $t (sort keys %open) {
      next unless vec($r, fileno($open{$t}), 1);
      my $got = sysread($open{$t}, my $b, 65536);
      if ($got) { put($t, $b) } elsif (defined $got || !$!{EAGAIN}) { close $open{$t}; delete $open{$t} }
    }
    if ($win && vec($w, fileno($iw), 1)) {
      my $got = syswrite($iw, $pending);
      if (defined $got) { substr($pending, 0, $got) = '' }
      if ((!defined($got) && !$!{EAGAIN}) || !length $pending) { close $iw; $win = 0 }
    }
    if (vec($r, fileno(STDIN), 1)) {
      if (!fill()) { kill('KILL', -$pid); exit 0 }
      while ($in =~ s/^([TK])\n//) { if ($1 eq 'T') { kill('TERM', $pid) } else { kill('KILL', -$pid) } }
    }
    if (!defined $st && waitpid($pid, POSIX::WNOHANG()) == $pid) { $st = $? }
    if (!%open) { $st = (waitpid($pid, 0), $?)[1] unless defined $st; last }
    last if defined($st) && $k == 0;
  }
  close $_ for values %open; close $iw if $win;
  put('X', ($st & 127) ? 's' . ($st & 127) : ($st >> 8));
}`

// errShellUnavailable means a host shell could not start: the command
// runs in a session of its own instead, and so do the next ones.
var errShellUnavailable = errors.New("host shell unavailable")

// shell is one host shell: its session, the two streams it reads and
// writes frames on, and whether it said it was ready.
type shell struct {
	client *ssh.Client
	sess   *ssh.Session
	in     io.WriteCloser
	out    *bufio.Reader
	ready  bool
}

// shells are a connection's idle host shells, one list for the login
// user and one for root; a shell that cannot start is not tried again.
type shells struct {
	mu     sync.Mutex
	idle   map[bool][]*shell
	absent map[bool]bool
}

// takeShell returns an idle shell of the kind asked for, or starts one.
func (h *SSH) takeShell(root bool) (*shell, error) {
	client := h.conn().Client
	h.shells.mu.Lock()
	if h.shells.absent[root] {
		h.shells.mu.Unlock()
		return nil, errShellUnavailable
	}
	for len(h.shells.idle[root]) > 0 {
		list := h.shells.idle[root]
		sh := list[len(list)-1]
		h.shells.idle[root] = list[:len(list)-1]
		if sh.client == client {
			h.shells.mu.Unlock()
			return sh, nil
		}
		sh.close()
	}
	h.shells.mu.Unlock()

	h.sessions.Add(1)
	sess, err := client.NewSession()
	if err != nil {
		return nil, fmt.Errorf("%s: new session: %w (%w)", h.name, err, ErrConnectionLost)
	}
	sh := &shell{client: client, sess: sess}
	in, err1 := sess.StdinPipe()
	out, err2 := sess.StdoutPipe()
	if err := errors.Join(err1, err2); err != nil {
		sess.Close()
		return nil, fmt.Errorf("%s: host shell: %w", h.name, err)
	}
	sh.in, sh.out = in, bufio.NewReaderSize(out, 64<<10)
	line := Sh(h.shellProgram, "-e", hostShell)
	if root {
		line = Sh("sudo", "-n", "-H", "--", h.shellProgram, "-e", hostShell)
	}
	if err := sess.Start(line); err != nil {
		sess.Close()
		return nil, fmt.Errorf("%s: start the host shell: %w (%w)", h.name, err, ErrConnectionLost)
	}
	return sh, nil
}

// idleShells is how many idle shells of each kind a connection keeps:
// commands run at once start more, which end once they are done, so that
// sessions stay well under sshd's MaxSessions (10 by default).
const idleShells = 2

// giveBack keeps a shell whose command ended for the next command.
func (h *SSH) giveBack(root bool, sh *shell) {
	h.shells.mu.Lock()
	defer h.shells.mu.Unlock()
	if h.shells.idle == nil {
		h.shells.idle = map[bool][]*shell{}
	}
	if len(h.shells.idle[root]) >= idleShells {
		sh.close()
		return
	}
	h.shells.idle[root] = append(h.shells.idle[root], sh)
}

// shellAbsent records that shells of a kind cannot start on this host.
func (h *SSH) shellAbsent(root bool) {
	h.shells.mu.Lock()
	defer h.shells.mu.Unlock()
	if h.shells.absent == nil {
		h.shells.absent = map[bool]bool{}
	}
	h.shells.absent[root] = true
}

// closeShells ends every idle shell: the connection is closing or was
// replaced.
func (h *SSH) closeShells() {
	h.shells.mu.Lock()
	defer h.shells.mu.Unlock()
	for _, list := range h.shells.idle {
		for _, sh := range list {
			sh.close()
		}
	}
	h.shells.idle = nil
}

func (sh *shell) close() {
	sh.in.Close()
	sh.sess.Close()
}

// shellEnd is how a command in a host shell ended: its exit code, the
// signal that killed it, or why its end never came.
type shellEnd struct {
	code    int
	signal  string
	started bool
	err     error
}

// runInShell runs c in a host shell. handled is false when no shell
// could start: the caller runs c in a session of its own, and c has not
// run.
func (h *SSH) runInShell(ctx context.Context, c Command) (res *Result, err error, handled bool) {
	root := c.Become && h.user != "root"
	line, err := commandLine(Command{Script: c.Script, Env: c.Env, Dir: c.Dir}, true)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", h.name, err), true
	}
	var stdin []byte
	if c.Stdin != nil {
		if stdin, err = io.ReadAll(c.Stdin); err != nil {
			return nil, fmt.Errorf("%s: read the command's standard input: %w", h.name, err), true
		}
	}
	if c.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.Timeout)
		defer cancel()
	}
	sh, err := h.takeShell(root)
	if errors.Is(err, errShellUnavailable) {
		return nil, nil, false
	}
	if err != nil {
		return nil, err, true
	}
	s := newStreams(h.out, h.name, c.Quiet)
	start := time.Now()
	// exec: the wrapper itself is the process the shell signals.
	line = "exec " + line
	frame := fmt.Sprintf("R %d %d\n", len(line), len(stdin))
	done := make(chan shellEnd, 1)
	go func() { done <- sh.read(s) }()
	var writeErr error
	if _, writeErr = io.WriteString(sh.in, frame+line); writeErr == nil && len(stdin) > 0 {
		_, writeErr = sh.in.Write(stdin)
	}
	var end shellEnd
	select {
	case end = <-done:
	case <-ctx.Done():
		io.WriteString(sh.in, "T\n")
		select {
		case end = <-done:
		case <-time.After(gracePeriod):
			io.WriteString(sh.in, "K\n")
			select {
			case end = <-done:
			case <-time.After(gracePeriod):
			}
		}
		sh.close()
		res := s.result()
		res.Duration = time.Since(start)
		return res, fmt.Errorf("%s: %s: %w", h.name, short(s.redactor.Redact(c.Script)), ctx.Err()), true
	}
	res = s.result()
	res.Duration = time.Since(start)
	if !end.started {
		// The shell ended before it was ready: perl is missing, or sudo
		// refused it. The command did not run; a session of its own
		// runs it and says why sudo refused, if it did.
		sh.close()
		if _, _, err := h.conn().Client.SendRequest("keepalive@openssh.com", true, nil); err != nil {
			return nil, fmt.Errorf("%s: %w: the host shell ended before it was ready (%v)", h.name, ErrConnectionLost, err), true
		}
		h.shellAbsent(root)
		return nil, nil, false
	}
	if end.err != nil {
		sh.close()
		if writeErr != nil {
			end.err = errors.Join(end.err, writeErr)
		}
		return res, fmt.Errorf("%s: %w while running %s: the command's outcome on the host is unknown (%v)", h.name, ErrConnectionLost, short(s.redactor.Redact(c.Script)), end.err), true
	}
	h.giveBack(root, sh)
	switch {
	case end.signal != "":
		return res, fmt.Errorf("%s: command killed by SIG%s: %s", h.name, end.signal, short(s.redactor.Redact(c.Script))), true
	case end.code != 0:
		return res, s.exitError(c.Script, end.code, h.user), true
	}
	return res, nil, true
}

// read takes the host shell's frames for one command, into s, until the
// command ends.
func (sh *shell) read(s *streams) shellEnd {
	for {
		kind, data, err := sh.frame()
		if err != nil {
			return shellEnd{started: sh.ready, err: err}
		}
		switch kind {
		case 'H':
			sh.ready = true
		case 'O':
			s.stdoutW.Write(data)
		case 'E':
			s.stderrW.Write(data)
		case 'X':
			text := string(data)
			if sig, ok := strings.CutPrefix(text, "s"); ok {
				return shellEnd{started: true, signal: signalName(sig)}
			}
			code, err := strconv.Atoi(text)
			if err != nil {
				return shellEnd{started: true, err: fmt.Errorf("host shell: exit frame %q", text)}
			}
			return shellEnd{started: true, code: code}
		default:
			return shellEnd{started: sh.ready, err: fmt.Errorf("host shell: unknown frame %q", kind)}
		}
	}
}

// frame reads one frame from the host shell.
func (sh *shell) frame() (byte, []byte, error) {
	header, err := sh.out.ReadString('\n')
	if err != nil {
		return 0, nil, err
	}
	kind, size, ok := strings.Cut(strings.TrimSuffix(header, "\n"), " ")
	n, err := strconv.Atoi(size)
	if !ok || len(kind) != 1 || err != nil || n < 0 || n > 1<<20 {
		return 0, nil, fmt.Errorf("host shell: bad frame header %q", header)
	}
	data := make([]byte, n)
	if _, err := io.ReadFull(sh.out, data); err != nil {
		return 0, nil, err
	}
	return kind[0], data, nil
}

// signalName is a signal's name as ssh reports it (KILL, TERM), from its
// number on Linux.
func signalName(number string) string {
	names := map[string]string{"1": "HUP", "2": "INT", "3": "QUIT", "6": "ABRT", "9": "KILL", "11": "SEGV", "13": "PIPE", "14": "ALRM", "15": "TERM"}
	if name, ok := names[number]; ok {
		return name
	}
	return number
}
