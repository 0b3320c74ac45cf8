package testenv

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A fleet is several machines on one bridge, as a site's hosts: the
// application hosts boot from the fleet image, which has the packages
// djship would install on them already (so that eight hosts do not each
// download and unpack them), and take SSH logins only from the bastion,
// a machine of the base image that djship reaches them through
// (ssh.proxy_jump). Each is a machine of its own (machine.go): its own
// file systems, network, ports, PID 1, sshd and services.

// fleetPackages are the packages the fleet image adds: what djship
// installs on a web host of an nginx, uWSGI and PostgreSQL site
// (targets/provision.go, ownPackages), with what it installs on an lb
// host. PostgreSQL's server is left out: djship installs it on the db
// host, as on any fresh host.
var fleetPackages = []string{"acl", "curl", "iproute2", "nginx", "openssl", "postgresql-client", "procps",
	"python3-psycopg2", "python3-venv", "unzip", "uwsgi", "uwsgi-plugin-python3"}

// fleetSitePackages are installed with what Debian recommends, as djship
// installs a site's packages: line.
var fleetSitePackages = []string{"python3-django"}

// FleetImageKey names the cached fleet image.
func FleetImageKey() string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\n%s\n", ImageKey(), strings.Join(fleetPackages, ","), strings.Join(fleetSitePackages, ","))
	return "fleet-" + hex.EncodeToString(h.Sum(nil))[:12]
}

// FleetImage returns the cached root file system of the fleet's
// application hosts: the machine image with fleetPackages installed.
func FleetImage(t testing.TB) string {
	t.Helper()
	base := Image(t)
	dir, err := cachedImage(FleetImageKey(), func(dir string) error { return buildFleetImage(base, dir) })
	if err != nil {
		t.Fatalf("fleet image: %v", err)
	}
	return dir
}

// buildFleetImage copies the base image and installs the fleet's
// packages into it with apt in a chroot, where no service starts.
func buildFleetImage(base, dir string) error {
	return buildWithPackages(base, dir, fleetPackages, fleetSitePackages, "fleet image")
}

// buildWithPackages copies the base image into dir and installs packages
// (without what Debian recommends) and recommended (with it) with apt in
// a chroot, where no service starts.
func buildWithPackages(base, dir string, packages, recommended []string, what string) error {
	tmp := dir + ".building"
	os.RemoveAll(tmp)
	start := time.Now()
	if out, err := exec.Command("cp", "-a", base, tmp).CombinedOutput(); err != nil {
		return fmt.Errorf("copy the machine image: %v: %s", err, out)
	}
	policy := filepath.Join(tmp, "usr/sbin/policy-rc.d")
	resolv := filepath.Join(tmp, "etc/resolv.conf")
	oldResolv, _ := os.ReadFile(resolv)
	files := map[string]string{policy: "#!/bin/sh\nexit 101\n", resolv: mustRead("/etc/resolv.conf")}
	for name, data := range files {
		os.Remove(name)
		if err := os.WriteFile(name, []byte(data), 0o755); err != nil {
			return err
		}
	}
	commands := []string{"apt-get update -q", "apt-get install -q -y --no-install-recommends " + strings.Join(packages, " ")}
	if len(recommended) > 0 {
		commands = append(commands, "apt-get install -q -y "+strings.Join(recommended, " "))
	}
	for _, c := range append(commands, "apt-get clean") {
		cmd := exec.Command("chroot", tmp, "sh", "-c", c)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("%s: %s: %v\n%s", what, c, err, tail(out, 30))
		}
	}
	os.Remove(policy)
	os.Remove(resolv)
	if err := os.WriteFile(resolv, oldResolv, 0o644); err != nil {
		return err
	}
	stamp := fmt.Sprintf("%s built by djship's test harness in %s: %s, then %s\n", what, time.Since(start).Round(time.Second),
		strings.Join(packages, " "), strings.Join(recommended, " "))
	if err := os.WriteFile(filepath.Join(tmp, "etc/djship-test-image"), []byte(stamp), 0o644); err != nil {
		return err
	}
	os.RemoveAll(dir)
	return os.Rename(tmp, dir)
}

// Fleet is machines on one bridge behind a bastion.
type Fleet struct {
	// Bridge is the network of every machine.
	Bridge *Bridge
	// Bastion is the only machine that takes SSH logins from this one.
	Bastion *Machine
	// Hosts are the fleet's machines, booted from the fleet image.
	Hosts []*Machine
	// KnownHosts is a known_hosts file with the keys of every machine.
	KnownHosts string
}

// NewFleet boots n machines from the fleet image and, when behind is
// true, a bastion: the machines then refuse SSH logins from anywhere
// but the bastion. Everything is removed at the test's end.
func NewFleet(t testing.TB, n int, behind bool) *Fleet {
	t.Helper()
	f := &Fleet{Bridge: NewBridge(t)}
	img := FleetImage(t)
	var known []byte
	if behind {
		f.Bastion = f.Bridge.Boot(t)
		known = append(known, mustRead(f.Bastion.KnownHosts)...)
	}
	for i := 0; i < n; i++ {
		m := f.Bridge.BootFrom(t, img)
		known = append(known, mustRead(m.KnownHosts)...)
		if behind {
			// Logins come through the bastion only.
			m.Shell(t, `printf 'AllowUsers %s@%s\n' "$1" "$2" > /etc/ssh/sshd_config.d/djship-bastion.conf && systemctl reload ssh`, SudoUser, f.Bastion.Addr)
		}
		f.Hosts = append(f.Hosts, m)
	}
	f.KnownHosts = filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(f.KnownHosts, known, 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

// ProxyJump is the site file's ssh.proxy_jump for the fleet's bastion.
func (f *Fleet) ProxyJump() string {
	return SudoUser + "@" + f.Bastion.SSHAddr()
}
