package remote

import (
	"fmt"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/kevinburke/ssh_config"
)

// endpoint is one SSH server to log in to.
type endpoint struct {
	alias      string // the name as written (may be a ~/.ssh/config alias)
	host       string // the address to connect to
	user       string
	port       int
	identities []string
	proxyJump  string
}

func (e endpoint) String() string {
	s := e.host
	if s == "" {
		s = e.alias
	}
	if strings.Contains(s, ":") {
		s = "[" + s + "]"
	}
	if e.user != "" {
		s = e.user + "@" + s
	}
	if e.port != 0 && e.port != 22 {
		s += ":" + strconv.Itoa(e.port)
	}
	return s
}

// parseEndpoint reads user@host:port (IPv6 in brackets).
func parseEndpoint(s string) (endpoint, string) {
	var e endpoint
	s = strings.TrimSpace(s)
	if at := strings.LastIndex(s, "@"); at >= 0 {
		e.user, s = s[:at], s[at+1:]
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		host, port = strings.Trim(s, "[]"), ""
	}
	if host == "" {
		return e, "no host"
	}
	e.alias = host
	if port != "" {
		p, err := strconv.Atoi(port)
		if err != nil || p < 1 || p > 65535 {
			return e, fmt.Sprintf("port %q must be a number from 1 to 65535", port)
		}
		e.port = p
	}
	return e, ""
}

// sshConfig is the user's ssh_config, or nothing.
type sshConfig struct {
	cfg  *ssh_config.Config
	home string
}

func loadSSHConfig(file string) (*sshConfig, error) {
	home, _ := os.UserHomeDir()
	c := &sshConfig{home: home}
	if file == "none" {
		return c, nil
	}
	if file == "" {
		file = filepath.Join(home, ".ssh", "config")
	}
	f, err := os.Open(file)
	if os.IsNotExist(err) {
		return c, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", file, err)
	}
	defer f.Close()
	c.cfg, err = ssh_config.Decode(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return c, nil
}

// resolve fills what e leaves empty from ssh_config, then from OpenSSH's
// defaults (the local user name, port 22, ~/.ssh/id_* keys).
func (c *sshConfig) resolve(e endpoint) endpoint {
	get := func(key string) string {
		if c.cfg == nil {
			return ""
		}
		v, _ := c.cfg.Get(e.alias, key)
		return v
	}
	e.host = e.alias
	if v := get("HostName"); v != "" {
		e.host = strings.ReplaceAll(v, "%h", e.alias)
	}
	if e.user == "" {
		e.user = get("User")
	}
	if e.user == "" {
		if u, err := user.Current(); err == nil {
			e.user = u.Username
		}
	}
	if e.port == 0 {
		e.port, _ = strconv.Atoi(get("Port"))
	}
	if e.port == 0 {
		e.port = 22
	}
	if e.proxyJump == "" {
		e.proxyJump = get("ProxyJump")
	}
	if len(e.identities) == 0 && c.cfg != nil {
		if all, _ := c.cfg.GetAll(e.alias, "IdentityFile"); len(all) > 0 {
			for _, p := range all {
				e.identities = append(e.identities, c.expand(p))
			}
		}
	}
	if len(e.identities) == 0 {
		for _, name := range []string{"id_ed25519", "id_ecdsa", "id_rsa"} {
			p := filepath.Join(c.home, ".ssh", name)
			if _, err := os.Stat(p); err == nil {
				e.identities = append(e.identities, p)
			}
		}
	}
	return e
}

func (c *sshConfig) expand(p string) string {
	if strings.HasPrefix(p, "~/") {
		return filepath.Join(c.home, p[2:])
	}
	return p
}
