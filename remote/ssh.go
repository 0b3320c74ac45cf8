package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/melbahja/goph"
	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
	"golang.org/x/term"
)

// SSHOptions say how to reach a host over SSH. Values left empty come from
// ~/.ssh/config (HostName, User, Port, IdentityFile, ProxyJump), then from
// OpenSSH's defaults.
type SSHOptions struct {
	// Address is a host name, an IP address or a ~/.ssh/config alias.
	Address string
	// User is the login user.
	User string
	// Port is the SSH port.
	Port int
	// IdentityFiles are private keys to offer after ssh-agent's.
	IdentityFiles []string
	// KnownHosts are extra known_hosts files, such as the site's.
	KnownHosts []string
	// UserKnownHosts is the user's known_hosts file, where trusted new keys
	// are recorded; ~/.ssh/known_hosts when empty.
	UserKnownHosts string
	// ProxyJump is a bastion to connect through: user@host:port, or a
	// comma-separated chain of them.
	ProxyJump string
	// TrustNewHosts records the key of a host missing from known_hosts
	// instead of refusing it.
	TrustNewHosts bool
	// ConnectTimeout bounds connecting and the SSH handshake; 10 s when 0.
	ConnectTimeout time.Duration
	// KeepAlive is the interval of keepalive requests; 15 s when 0. Three
	// unanswered requests close the connection.
	KeepAlive time.Duration
	// ConfigFile is the ssh_config to read; ~/.ssh/config when empty,
	// nothing when "none".
	ConfigFile string
	// Output prints the host's progress; nothing is printed when nil.
	Output *Output
	// Passphrase asks for a key's passphrase; on a terminal it prompts,
	// elsewhere encrypted keys are left to ssh-agent.
	Passphrase func(keyFile string) ([]byte, error)
	// SessionPerCommand runs every command in a session of its own
	// instead of a host shell (shell.go): sudo logs each command apart,
	// and each command waits for the network more often.
	SessionPerCommand bool
}

// SSH is a host reached over one SSH connection; commands run in host
// shells on it (shell.go), or each in a session of its own.
type SSH struct {
	name     string
	user     string
	redial   func(context.Context) (*goph.Client, error)
	alive    time.Duration
	connMu   sync.RWMutex
	client   *goph.Client
	out      *Output
	done     chan struct{}
	mu       sync.Mutex
	sftp     *sftp.Client
	stageDir string
	sessions atomic.Int64
	commands atomic.Int64
	shells   shells
	// shellProgram is the interpreter of host shells: perl, or none
	// when every command runs in a session of its own.
	shellProgram string
}

// Sessions counts the sessions opened on the connection so far: one per
// host shell (shell.go) or command run outside one, and one for the SFTP
// subsystem once a file was uploaded.
func (h *SSH) Sessions() int { return int(h.sessions.Load()) }

// Commands counts the commands run on the connection so far, in host
// shells or sessions of their own.
func (h *SSH) Commands() int { return int(h.commands.Load()) }

// DialSSH connects to a host, checking its key against known_hosts.
func DialSSH(ctx context.Context, opts SSHOptions) (*SSH, error) {
	if opts.ConnectTimeout == 0 {
		opts.ConnectTimeout = 10 * time.Second
	}
	if opts.KeepAlive == 0 {
		opts.KeepAlive = 15 * time.Second
	}
	if opts.Passphrase == nil {
		opts.Passphrase = terminalPassphrase
	}
	cfg, err := loadSSHConfig(opts.ConfigFile)
	if err != nil {
		return nil, err
	}
	target := cfg.resolve(endpoint{alias: opts.Address, user: opts.User, port: opts.Port, identities: opts.IdentityFiles, proxyJump: opts.ProxyJump})
	keys, err := newHostKeys(opts)
	if err != nil {
		return nil, err
	}
	redial := func(ctx context.Context) (*goph.Client, error) {
		client, err := dialEndpoint(ctx, cfg, keys, opts, target, 0)
		if err != nil {
			return nil, err
		}
		return &goph.Client{Client: client, Config: &goph.Config{User: target.user, Addr: target.host, Port: uint(target.port), Timeout: opts.ConnectTimeout}}, nil
	}
	client, err := redial(ctx)
	if err != nil {
		return nil, err
	}
	h := &SSH{
		name:   target.String(),
		user:   target.user,
		redial: redial,
		alive:  opts.KeepAlive,
		client: client,
		out:    opts.Output,
		done:   make(chan struct{}),

		shellProgram: "perl",
	}
	if opts.SessionPerCommand {
		h.shellProgram = ""
	}
	go h.keepAlive(client, opts.KeepAlive)
	return h, nil
}

// conn is the connection in use.
func (h *SSH) conn() *goph.Client {
	h.connMu.RLock()
	defer h.connMu.RUnlock()
	return h.client
}

// reconnectWaits are the pauses before each attempt to connect again.
var reconnectWaits = []time.Duration{0, time.Second, 2 * time.Second, 4 * time.Second}

// Reconnect replaces a lost connection with a new one to the same host,
// as it was dialled (keys checked, ProxyJump followed), trying a few
// times over about seven seconds. Commands that ran on the lost
// connection are not resumed.
func (h *SSH) Reconnect(ctx context.Context) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	select {
	case <-h.done:
		return fmt.Errorf("%s: the connection was closed", h.name)
	default:
	}
	h.conn().Close()
	h.closeShells()
	if h.sftp != nil {
		h.sftp.Close()
		h.sftp = nil
	}
	var err error
	for _, wait := range reconnectWaits {
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: reconnecting: %w", h.name, ctx.Err())
		case <-time.After(wait):
		}
		var client *goph.Client
		if client, err = h.redial(ctx); err == nil {
			h.connMu.Lock()
			h.client = client
			h.connMu.Unlock()
			go h.keepAlive(client, h.alive)
			if h.stageDir != "" {
				// The lost connection's staging folder: nothing uses it now.
				h.Run(ctx, Command{Script: Sh("rm", "-rf", "--", h.stageDir), Quiet: true})
				h.stageDir = ""
			}
			return nil
		}
	}
	return fmt.Errorf("%s: reconnecting, %d attempts: %w", h.name, len(reconnectWaits), err)
}

// dialEndpoint connects to e, through its ProxyJump chain when it has one.
func dialEndpoint(ctx context.Context, cfg *sshConfig, keys *hostKeys, opts SSHOptions, e endpoint, depth int) (*ssh.Client, error) {
	if depth > 5 {
		return nil, fmt.Errorf("ProxyJump chain to %s is longer than 5 hops", e)
	}
	auth, tried, err := authMethods(e, opts.Passphrase)
	if err != nil {
		return nil, err
	}
	addr := net.JoinHostPort(e.host, strconv.Itoa(e.port))
	config := &ssh.ClientConfig{
		User:              e.user,
		Auth:              auth,
		HostKeyCallback:   keys.callback(),
		HostKeyAlgorithms: keys.algorithms(addr),
		Timeout:           opts.ConnectTimeout,
	}

	var conn net.Conn
	if e.proxyJump != "" && e.proxyJump != "none" {
		hops := strings.Split(e.proxyJump, ",")
		last := hops[len(hops)-1]
		jump, problem := parseEndpoint(last)
		if problem != "" {
			return nil, fmt.Errorf("ProxyJump %q: %s", last, problem)
		}
		if len(jump.identities) == 0 {
			jump.identities = opts.IdentityFiles // like ssh -i, the keys serve every hop
		}
		jump = cfg.resolve(jump)
		jump.proxyJump = strings.Join(hops[:len(hops)-1], ",")
		bastion, err := dialEndpoint(ctx, cfg, keys, opts, jump, depth+1)
		if err != nil {
			return nil, fmt.Errorf("through ProxyJump %s: %w", jump, err)
		}
		conn, err = bastion.DialContext(ctx, "tcp", addr)
		if err != nil {
			bastion.Close()
			return nil, fmt.Errorf("cannot reach %s from the bastion %s: %w", addr, jump, err)
		}
	} else {
		d := net.Dialer{Timeout: opts.ConnectTimeout}
		conn, err = d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("cannot reach %s: %w (check the host and port in the site file, and that sshd runs there)", e, err)
		}
	}
	conn.SetDeadline(time.Now().Add(opts.ConnectTimeout))
	c, chans, reqs, err := ssh.NewClientConn(conn, addr, config)
	if err != nil {
		conn.Close()
		var hk *HostKeyError
		if errors.As(err, &hk) {
			return nil, hk
		}
		if strings.Contains(err.Error(), "unable to authenticate") {
			return nil, fmt.Errorf("%s refused the login of %q (tried %s): add the public key to ~%s/.ssh/authorized_keys on the host, load the key into ssh-agent, or set ssh.identity in the site file", e, e.user, strings.Join(tried, ", "), e.user)
		}
		return nil, fmt.Errorf("ssh handshake with %s: %w", e, err)
	}
	conn.SetDeadline(time.Time{})
	return ssh.NewClient(c, chans, reqs), nil
}

// keepAlive sends keepalive requests and closes a connection that stops
// answering, so that a command on it fails instead of hanging.
func (h *SSH) keepAlive(client *goph.Client, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	missed := 0
	for {
		select {
		case <-h.done:
			return
		case <-t.C:
		}
		reply := make(chan error, 1)
		go func() {
			_, _, err := client.SendRequest("keepalive@openssh.com", true, nil)
			reply <- err
		}()
		select {
		case err := <-reply:
			if err != nil {
				client.Close()
				return
			}
			missed = 0
		case <-time.After(interval):
			if missed++; missed >= 3 {
				client.Close()
				return
			}
		case <-h.done:
			return
		}
	}
}

// Name is user@host:port.
func (h *SSH) Name() string { return h.name }

// Run runs the command in a host shell (shell.go) or, for a command
// with a terminal or on a host where no shell starts, in a new session of
// the host's connection.
func (h *SSH) Run(ctx context.Context, c Command) (*Result, error) {
	h.commands.Add(1)
	if c.Terminal == nil && h.shellProgram != "" {
		if res, err, handled := h.runInShell(ctx, c); handled {
			return res, err
		}
	}
	line, err := commandLine(c, h.user == "root")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", h.name, err)
	}
	if c.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.Timeout)
		defer cancel()
	}
	h.sessions.Add(1)
	sess, err := h.conn().NewSession()
	if err != nil {
		return nil, fmt.Errorf("%s: new session: %w (%w)", h.name, err, ErrConnectionLost)
	}
	defer sess.Close()
	s := newStreams(h.out, h.name, c.Quiet)
	sess.Stdout, sess.Stderr = s.stdoutW, s.stderrW
	if c.Stdin != nil {
		sess.Stdin = c.Stdin
	}
	if t := c.Terminal; t != nil {
		sess.Stdin = t.In
		sess.Stdout, sess.Stderr = t.writers()
		if t.TTY {
			restore, err := requestPty(sess, t.In)
			if err != nil {
				return nil, fmt.Errorf("%s: a terminal for the command: %w", h.name, err)
			}
			defer restore()
		}
	}
	start := time.Now()
	if err := sess.Start(line); err != nil {
		return nil, fmt.Errorf("%s: start command: %w", h.name, err)
	}
	done := make(chan error, 1)
	go func() { done <- sess.Wait() }()
	select {
	case err = <-done:
	case <-ctx.Done():
		sess.Signal(ssh.SIGTERM)
		select {
		case <-done:
		case <-time.After(gracePeriod):
			sess.Signal(ssh.SIGKILL)
			sess.Close()
		}
		res := s.result()
		res.Duration = time.Since(start)
		return res, fmt.Errorf("%s: %s: %w", h.name, short(s.redactor.Redact(c.Script)), ctx.Err())
	}
	res := s.result()
	res.Duration = time.Since(start)
	var exit *ssh.ExitError
	switch {
	case err == nil:
		return res, nil
	case errors.As(err, &exit) && exit.Signal() == "":
		return res, s.exitError(c.Script, exit.ExitStatus(), h.user)
	case errors.As(err, &exit):
		return res, fmt.Errorf("%s: command killed by SIG%s: %s", h.name, exit.Signal(), short(s.redactor.Redact(c.Script)))
	}
	return res, fmt.Errorf("%s: %w while running %s: the command's outcome on the host is unknown (%v)", h.name, ErrConnectionLost, short(s.redactor.Redact(c.Script)), err)
}

// Upload writes a file atomically unless it is already there.
func (h *SSH) Upload(ctx context.Context, u Upload) (bool, error) {
	return upload(ctx, h, u)
}

// ReadFile returns a file's content.
func (h *SSH) ReadFile(ctx context.Context, p string, become bool) ([]byte, error) {
	return readFile(ctx, h, p, become)
}

// stage sends r over SFTP into a file only the login user can read, in a
// folder only it can enter, made for this connection.
func (h *SSH) stage(ctx context.Context, r io.Reader) (string, func(), error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.sftp == nil {
		h.sessions.Add(1)
		c, err := h.conn().NewSftp()
		if err != nil {
			return "", nil, fmt.Errorf("%s: sftp: %w", h.name, err)
		}
		h.sftp = c
	}
	if h.stageDir == "" {
		res, err := h.Run(ctx, Command{Script: `umask 077 && d=$(mktemp -d "${TMPDIR:-/tmp}/djship-stage-XXXXXXXX") && chmod 0700 -- "$d" && printf '%s\n' "$d"`, Quiet: true})
		if err != nil {
			return "", nil, err
		}
		h.stageDir = strings.TrimSpace(string(res.Stdout))
	}
	p := path.Join(h.stageDir, fmt.Sprintf("upload-%d", time.Now().UnixNano()))
	f, err := h.sftp.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL)
	if err != nil {
		return "", nil, fmt.Errorf("%s: sftp create %s: %w", h.name, p, err)
	}
	cleanup := func() { h.sftp.Remove(p) }
	// pkg/sftp's OpenFile sends no permissions, so the server creates the
	// file 0666 less its umask: make it private before a byte is written.
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		cleanup()
		return "", nil, fmt.Errorf("%s: sftp chmod 0600 %s: %w", h.name, p, err)
	}
	if _, err := io.Copy(f, contextReader{ctx, r}); err != nil {
		f.Close()
		cleanup()
		return "", nil, fmt.Errorf("%s: sftp write: %w", h.name, err)
	}
	if err := f.Close(); err != nil {
		cleanup()
		return "", nil, fmt.Errorf("%s: sftp write: %w", h.name, err)
	}
	return p, cleanup, nil
}

// Close removes the staging folder and ends the connection.
func (h *SSH) Close() error {
	select {
	case <-h.done:
		return nil
	default:
		close(h.done)
	}
	if h.stageDir != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		h.Run(ctx, Command{Script: Sh("rm", "-rf", "--", h.stageDir), Quiet: true})
		cancel()
	}
	h.closeShells()
	if h.sftp != nil {
		h.sftp.Close()
	}
	return h.conn().Close()
}

// terminalPassphrase prompts for a key's passphrase when standard input is
// a terminal.
func terminalPassphrase(keyFile string) ([]byte, error) {
	fd := int(os.Stdin.Fd())
	if !term.IsTerminal(fd) {
		return nil, fmt.Errorf("%s is encrypted and there is no terminal to ask for its passphrase: add it to ssh-agent (ssh-add %s)", keyFile, keyFile)
	}
	fmt.Fprintf(os.Stderr, "Passphrase for %s: ", keyFile)
	defer fmt.Fprintln(os.Stderr)
	return term.ReadPassword(fd)
}

// requestPty asks the host for a pseudo-terminal sized as in's terminal
// (80x24 when in is none), and puts that terminal in raw mode, so that
// keys reach the command as typed; restore puts it back.
func requestPty(sess *ssh.Session, in io.Reader) (restore func(), err error) {
	width, height, restore := 80, 24, func() {}
	if f, ok := in.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		if w, h, err := term.GetSize(int(f.Fd())); err == nil {
			width, height = w, h
		}
		state, err := term.MakeRaw(int(f.Fd()))
		if err != nil {
			return nil, err
		}
		restore = func() { term.Restore(int(f.Fd()), state) }
	}
	name := os.Getenv("TERM")
	if name == "" {
		name = "xterm"
	}
	if err := sess.RequestPty(name, height, width, ssh.TerminalModes{ssh.ECHO: 1}); err != nil {
		restore()
		return nil, err
	}
	return restore, nil
}
