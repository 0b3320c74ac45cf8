package remote

import (
	"context"
	"fmt"
	"os/exec"
	"testing"
	"time"

	"github.com/djship/djship/internal/testenv"
)

// BenchmarkHundredCommands runs 100 small commands over one djship
// connection and through 100 invocations of the OpenSSH client, against
// the same real sshd, and reports both times and their ratio:
//
//	go test -run '^$' -bench HundredCommands -benchtime 5x ./remote
func BenchmarkHundredCommands(b *testing.B) {
	sshd := testenv.StartSSHD(b)
	client := testenv.Command(b, "ssh", "openssh-client")
	b.Setenv("SSH_AUTH_SOCK", "")
	opts := SSHOptions{Address: "127.0.0.1", User: testenv.SudoUser, Port: sshd.Port, IdentityFiles: []string{testenv.TestKeys().Sudo}, UserKnownHosts: sshd.KnownHosts, ConfigFile: "none"}
	ctx := context.Background()
	var djship, openssh time.Duration
	for i := 0; i < b.N; i++ {
		start := time.Now()
		h, err := DialSSH(ctx, opts)
		if err != nil {
			b.Fatal(err)
		}
		for j := 0; j < 100; j++ {
			if _, err := h.Run(ctx, Command{Script: Sh("echo", fmt.Sprint(j)), Quiet: true}); err != nil {
				b.Fatal(err)
			}
		}
		h.Close()
		djship += time.Since(start)

		start = time.Now()
		for j := 0; j < 100; j++ {
			cmd := exec.Command(client, "-F", "none", "-i", testenv.TestKeys().Sudo, "-p", fmt.Sprint(sshd.Port),
				"-o", "BatchMode=yes", "-o", "UserKnownHostsFile="+sshd.KnownHosts, "-o", "ControlMaster=no", "-o", "ControlPath=none",
				testenv.SudoUser+"@127.0.0.1", "echo", fmt.Sprint(j))
			if out, err := cmd.CombinedOutput(); err != nil {
				b.Fatalf("ssh: %v\n%s", err, out)
			}
		}
		openssh += time.Since(start)
	}
	b.ReportMetric(float64(djship.Milliseconds())/float64(b.N), "djship-ms")
	b.ReportMetric(float64(openssh.Milliseconds())/float64(b.N), "openssh-ms")
	b.ReportMetric(float64(openssh)/float64(djship), "speedup")
}

// BenchmarkUploadToSystemdHost uploads the same files, as root through
// sudo and each changed so that every upload writes, to a fresh Debian
// machine with systemd as PID 1 (systemd-nspawn, Debian's own sshd
// configuration) and to an sshd on this machine, over one connection
// each, and reports the time of one upload on both and their ratio:
//
//	go test -run '^$' -bench UploadToSystemdHost -benchtime 5x ./remote
func BenchmarkUploadToSystemdHost(b *testing.B) {
	sshd := testenv.StartSSHD(b)
	m := testenv.BootMachine(b)
	b.Setenv("SSH_AUTH_SOCK", "")
	ctx := context.Background()
	hosts := []struct {
		name string
		opts SSHOptions
		took time.Duration
	}{
		{name: "local", opts: SSHOptions{Address: "127.0.0.1", Port: sshd.Port, UserKnownHosts: sshd.KnownHosts}},
		{name: "systemd", opts: SSHOptions{Address: m.Addr, Port: 22, UserKnownHosts: m.KnownHosts}},
	}
	const uploads = 20
	data := make([]byte, 4096)
	for i := range hosts {
		h := &hosts[i]
		h.opts.User, h.opts.IdentityFiles, h.opts.ConfigFile = testenv.SudoUser, []string{testenv.TestKeys().Sudo}, "none"
		conn, err := DialSSH(ctx, h.opts)
		if err != nil {
			b.Fatalf("%s: %v", h.name, err)
		}
		defer conn.Close()
		// The first upload opens the SFTP session and the staging folder.
		if _, err := conn.Upload(ctx, Upload{Path: "/etc/djship-bench-warm", Data: data, Mode: 0o640, Owner: "root", Group: "www-data", Become: true}); err != nil {
			b.Fatalf("%s: %v", h.name, err)
		}
		for n := 0; n < b.N; n++ {
			start := time.Now()
			for j := 0; j < uploads; j++ {
				data[0], data[1] = byte(n), byte(j)
				changed, err := conn.Upload(ctx, Upload{Path: fmt.Sprintf("/etc/djship-bench-%d", j), Data: data, Mode: 0o640, Owner: "root", Group: "www-data", Become: true})
				if err != nil || !changed {
					b.Fatalf("%s: upload %d: changed %v, %v", h.name, j, changed, err)
				}
			}
			h.took += time.Since(start)
		}
		conn.Run(ctx, Command{Script: "rm -f /etc/djship-bench-*", Become: true, Quiet: true})
	}
	per := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / float64(b.N*uploads) }
	b.ReportMetric(per(hosts[0].took), "local-ms/upload")
	b.ReportMetric(per(hosts[1].took), "systemd-ms/upload")
	b.ReportMetric(float64(hosts[1].took)/float64(hosts[0].took), "systemd/local")
}
