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
