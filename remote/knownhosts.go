package remote

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/skeema/knownhosts"
	"golang.org/x/crypto/ssh"
)

// HostKeyError is a host key that djship refused: unknown, or different
// from the one known_hosts records.
type HostKeyError struct {
	// Host is the address as known_hosts writes it.
	Host string
	// Key is the type and SHA256 fingerprint of the key the host offered.
	Key string
	// Changed is true when known_hosts records another key for the host.
	Changed bool
	// Files are the known_hosts files consulted.
	Files []string
	// Fix is the command that resolves it once the key is verified.
	Fix string
}

func (e *HostKeyError) Error() string {
	if e.Changed {
		return fmt.Sprintf("HOST KEY CHANGED for %s: it now offers %s, which is not the key in %s.\n"+
			"Someone may be intercepting the connection, or the host was reinstalled. djship refuses to connect.\n"+
			"Once you have verified the new key with the host's administrator, remove the old one with:\n    %s",
			e.Host, e.Key, strings.Join(e.Files, ", "), e.Fix)
	}
	return fmt.Sprintf("unknown host key for %s: it offers %s, and no known_hosts file (%s) lists it.\n"+
		"Verify the fingerprint with the host's administrator, then trust it with:\n    %s\n"+
		"or let djship record it: DJSHIP_TRUST_NEW_HOSTS=1",
		e.Host, e.Key, strings.Join(e.Files, ", "), e.Fix)
}

// hostKeys checks host keys against the known_hosts files.
type hostKeys struct {
	db      *knownhosts.HostKeyDB
	files   []string
	record  string
	trust   bool
	mu      sync.Mutex
	trusted map[string]ssh.PublicKey
	notify  func(host, message string)
}

func newHostKeys(opts SSHOptions) (*hostKeys, error) {
	record := opts.UserKnownHosts
	if record == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return nil, fmt.Errorf("find ~/.ssh/known_hosts: %w", err)
		}
		record = filepath.Join(home, ".ssh", "known_hosts")
	}
	all := append([]string{record}, opts.KnownHosts...)
	var existing []string
	for _, f := range all {
		if _, err := os.Stat(f); err == nil {
			existing = append(existing, f)
		} else if f != record {
			return nil, fmt.Errorf("known_hosts file %s: %w", f, err)
		}
	}
	db, err := knownhosts.NewDB(existing...)
	if err != nil {
		return nil, fmt.Errorf("read known_hosts: %w", err)
	}
	notify := func(host, message string) { fmt.Fprintf(os.Stderr, "[%s] %s\n", host, message) }
	if opts.Output != nil {
		notify = opts.Output.Line
	}
	return &hostKeys{db: db, files: all, record: record, trust: opts.TrustNewHosts, trusted: map[string]ssh.PublicKey{}, notify: notify}, nil
}

// algorithms restricts the handshake to the key types known_hosts has for
// addr, so that a host offering another type is not mistaken for a
// changed key.
func (k *hostKeys) algorithms(addr string) []string {
	return k.db.HostKeyAlgorithms(addr)
}

func (k *hostKeys) callback() ssh.HostKeyCallback {
	check := k.db.HostKeyCallback()
	return func(hostname string, remote net.Addr, key ssh.PublicKey) error {
		err := check(hostname, remote, key)
		if err == nil {
			return nil
		}
		host := knownhosts.Normalize(hostname)
		fingerprint := key.Type() + " " + ssh.FingerprintSHA256(key)
		if knownhosts.IsHostKeyChanged(err) {
			return &HostKeyError{Host: host, Key: fingerprint, Changed: true, Files: k.files,
				Fix: fmt.Sprintf("ssh-keygen -R %s -f %s", Quote(host), Quote(k.record))}
		}
		if !knownhosts.IsHostUnknown(err) {
			return err
		}
		k.mu.Lock()
		defer k.mu.Unlock()
		if prev, ok := k.trusted[host]; ok && string(prev.Marshal()) == string(key.Marshal()) {
			return nil
		}
		if !k.trust {
			return &HostKeyError{Host: host, Key: fingerprint, Files: k.files, Fix: keyscan(hostname, key.Type(), k.record)}
		}
		if err := appendKnownHost(k.record, host, key); err != nil {
			return fmt.Errorf("record the key of %s: %w", host, err)
		}
		k.trusted[host] = key
		k.notify(host, fmt.Sprintf("trusted a new host key (%s), recorded in %s", fingerprint, k.record))
		return nil
	}
}

func keyscan(hostname, keyType, file string) string {
	host, port, err := net.SplitHostPort(hostname)
	if err != nil {
		host, port = hostname, "22"
	}
	cmd := "ssh-keyscan"
	if p, _ := strconv.Atoi(port); p != 22 {
		cmd += " -p " + port
	}
	return fmt.Sprintf("%s -t %s %s >> %s", cmd, strings.TrimPrefix(keyType, "ssh-"), Quote(host), Quote(file))
}

func appendKnownHost(file, host string, key ssh.PublicKey) error {
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(file, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintln(f, knownhosts.Line([]string{host}, key)); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
