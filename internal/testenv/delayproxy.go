package testenv

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// DelayProxy is a TCP forwarder on 127.0.0.1 that holds every chunk it
// passes for a fixed time in each direction, as a distant network does:
// a round trip through it costs twice the delay more. It limits no
// bandwidth and keeps the order of the bytes.
type DelayProxy struct {
	// Port is the port it listens on, on 127.0.0.1.
	Port int
	// Delay is what it adds in each direction.
	Delay time.Duration

	listener net.Listener
	target   string
	mu       sync.Mutex
	conns    map[net.Conn]bool
}

// StartDelayProxy forwards connections on a free port of 127.0.0.1 to
// target, delaying each direction by delay, until the test ends.
func StartDelayProxy(t testing.TB, target string, delay time.Duration) *DelayProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("delay proxy: %v", err)
	}
	p := &DelayProxy{Port: l.Addr().(*net.TCPAddr).Port, Delay: delay, listener: l, target: target, conns: map[net.Conn]bool{}}
	go p.serve()
	t.Cleanup(p.close)
	return p
}

// Addr is the proxy's host:port.
func (p *DelayProxy) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(p.Port)) }

// close stops listening and cuts every connection still open.
func (p *DelayProxy) close() {
	p.listener.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// track keeps c to be cut by close; false when the proxy is closed.
func (p *DelayProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conns == nil {
		return false
	}
	p.conns[c] = true
	return true
}

func (p *DelayProxy) forget(c net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.conns, c)
	c.Close()
}

func (p *DelayProxy) serve() {
	for {
		in, err := p.listener.Accept()
		if err != nil {
			return
		}
		out, err := net.Dial("tcp", p.target)
		if err != nil || !p.track(in) || !p.track(out) {
			in.Close()
			if out != nil {
				out.Close()
			}
			continue
		}
		go func() {
			var both sync.WaitGroup
			both.Add(2)
			go func() { defer both.Done(); p.pass(in, out) }()
			go func() { defer both.Done(); p.pass(out, in) }()
			both.Wait()
			p.forget(in)
			p.forget(out)
		}()
	}
}

// chunk is what one read returned, and when it may be written on.
type chunk struct {
	data []byte
	due  time.Time
}

// pass copies from src to dst, each chunk once its delay has passed;
// the end of src, after what came before it, ends dst's writing side.
func (p *DelayProxy) pass(src, dst net.Conn) {
	queue := make(chan chunk, 4096)
	go func() {
		defer close(queue)
		for {
			buf := make([]byte, 32<<10)
			n, err := src.Read(buf)
			if n > 0 {
				queue <- chunk{data: buf[:n], due: time.Now().Add(p.Delay)}
			}
			if err != nil {
				return
			}
		}
	}()
	for c := range queue {
		time.Sleep(time.Until(c.due))
		if _, err := dst.Write(c.data); err != nil {
			src.Close()
			for range queue {
			}
			return
		}
	}
	if tc, ok := dst.(*net.TCPConn); ok {
		tc.CloseWrite()
	}
}

// KnownHosts writes a known_hosts file that lists the host key of sshd
// at the proxy's address, for a client that connects through it.
func (p *DelayProxy) KnownHosts(t testing.TB, sshd *SSHD) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "known_hosts")
	line := fmt.Sprintf("[127.0.0.1]:%d %s", p.Port, ssh.MarshalAuthorizedKey(sshd.HostKey))
	if err := os.WriteFile(file, []byte(line), 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}
