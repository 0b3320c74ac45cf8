package targets

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/djship/djship/internal/testenv"
	"github.com/djship/djship/remote"
	"github.com/djship/djship/sites"
)

// TestConnectFromSiteFile reaches a real sshd with only what a site file
// says: the host, the project's identity and known_hosts files.
func TestConnectFromSiteFile(t *testing.T) {
	sshd := testenv.StartSSHD(t)
	t.Setenv("SSH_AUTH_SOCK", "")
	t.Setenv("HOME", t.TempDir()) // no ~/.ssh of the machine's user
	root := t.TempDir()
	keys := testenv.TestKeys()
	yaml := fmt.Sprintf(`project: shop
url: shop.example.com
root: /srv/www
source: {path: src}
django: {source_folder: ., settings_folder: shop, settings_module: shop.settings}
ssh:
  identity: %s
  known_hosts: known_hosts
environments:
  production:
    hosts: [%s@127.0.0.1:%d, "%s@127.0.0.1:%d"]
  broken:
    hosts: [%s@127.0.0.1:%d, %s@127.0.0.1:1]
  demo:
    connection: local
  audited:
    ssh: {identity: %s, known_hosts: known_hosts, session_per_command: true}
    hosts: [%s@127.0.0.1:%d]
`, keys.Sudo, testenv.SudoUser, sshd.Port, testenv.SudoUser, sshd.Port, testenv.SudoUser, sshd.Port, testenv.SudoUser, keys.Sudo, testenv.SudoUser, sshd.Port)
	os.MkdirAll(filepath.Join(root, "sites"), 0o755)
	os.WriteFile(filepath.Join(root, "sites", "shop.yaml"), []byte(yaml), 0o644)
	data, _ := os.ReadFile(sshd.KnownHosts)
	os.WriteFile(filepath.Join(root, "known_hosts"), data, 0o644)
	site, err := sites.Load(filepath.Join(root, "sites", "shop.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	hosts, err := Connect(ctx, site, site.Environments["production"], ConnectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hosts {
		res, err := h.Run(ctx, remote.Command{Script: "id -un", Quiet: true})
		if err != nil || strings.TrimSpace(string(res.Stdout)) != testenv.SudoUser {
			t.Errorf("%s: %q, %v", h.Name(), res.Stdout, err)
		}
		h.Close()
	}

	_, err = Connect(ctx, site, site.Environments["broken"], ConnectOptions{})
	if err == nil || !strings.Contains(err.Error(), "127.0.0.1:1") || !strings.Contains(err.Error(), "cannot reach") {
		t.Errorf("an unreachable host: %v", err)
	}

	local, err := Connect(ctx, site, site.Environments["demo"], ConnectOptions{})
	if err != nil || len(local) != 1 || local[0].Name() != "local" {
		t.Errorf("demo: %v, %v", local, err)
	}

	// Three commands as root: one host shell, or with
	// ssh.session_per_command a session (and a sudo) each.
	for env, want := range map[string]int{"production": 1, "audited": 3} {
		hosts, err := Connect(ctx, site, site.Environments[env], ConnectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		h := hosts[0]
		for range 3 {
			if _, err := h.Run(ctx, remote.Command{Script: "true", Become: true, Quiet: true}); err != nil {
				t.Fatalf("%s: %v", env, err)
			}
		}
		if n := h.(interface{ Sessions() int }).Sessions(); n != want {
			t.Errorf("%s: %d sessions for 3 commands, want %d", env, n, want)
		}
		for _, h := range hosts {
			h.Close()
		}
	}
}
