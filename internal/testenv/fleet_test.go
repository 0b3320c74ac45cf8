package testenv

import (
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// TestFleetBehindABastion boots two fleet machines behind a bastion and
// checks what the fleet tests rely on: the fleet image's packages are
// there, a login straight from this machine is refused, and one through
// the bastion works with the key of this boot.
func TestFleetBehindABastion(t *testing.T) {
	NeedMachines(t)
	start := time.Now()
	FleetImage(t)
	t.Logf("fleet image %s ready in %s", FleetImageKey(), time.Since(start).Round(time.Millisecond))
	f := NewFleet(t, 2, true)
	signer := mustSigner(t, TestKeys().Sudo)
	hostKeys, err := knownhosts.New(f.KnownHosts)
	if err != nil {
		t.Fatal(err)
	}
	config := &ssh.ClientConfig{User: SudoUser, Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: hostKeys, HostKeyAlgorithms: []string{ssh.KeyAlgoED25519}, Timeout: 10 * time.Second}
	bastion, err := ssh.Dial("tcp", f.Bastion.SSHAddr(), config)
	if err != nil {
		t.Fatalf("ssh to the bastion: %v", err)
	}
	defer bastion.Close()
	for _, m := range f.Hosts {
		if got := m.Shell(t, "dpkg-query -W -f '${Status}' nginx uwsgi python3-django"); strings.Count(got, "install ok installed") != 3 {
			t.Errorf("%s: the fleet image's packages are not installed: %q", m.Name, got)
		}
		if c, err := ssh.Dial("tcp", m.SSHAddr(), config); err == nil {
			c.Close()
			t.Errorf("%s took a login straight from this machine", m.Name)
		}
		conn, err := bastion.Dial("tcp", m.SSHAddr())
		if err != nil {
			t.Fatalf("through the bastion to %s: %v", m.Name, err)
		}
		cc, chans, reqs, err := ssh.NewClientConn(conn, m.SSHAddr(), config)
		if err != nil {
			t.Fatalf("login to %s through the bastion: %v", m.Name, err)
		}
		c := ssh.NewClient(cc, chans, reqs)
		s, _ := c.NewSession()
		out, err := s.CombinedOutput("hostname")
		if err != nil || strings.TrimSpace(string(out)) != m.Name {
			t.Errorf("%s through the bastion said %q, %v", m.Name, out, err)
		}
		c.Close()
	}
}
