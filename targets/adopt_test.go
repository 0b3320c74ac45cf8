package targets

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"
	"github.com/djship/djship/internal/testenv"
	"github.com/djship/djship/sites"
)

// TestAdoptInAnotherRepository adopts djship as a Django team would: a
// repository of its own, outside djship, is scaffolded by djship-init
// (its go.mod points at this checkout), lists djship's targets with its
// own go tool mage, stores a secret and ships to a host over SSH.
func TestAdoptInAnotherRepository(t *testing.T) {
	needExample(t)
	goTool := testenv.Command(t, "go", "golang")
	sshd := testenv.StartSSHD(t)
	exec.Command("service", "apache2", "stop").Run() // nginx needs the ports
	checkout, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	repo := filepath.Join(t.TempDir(), "shop")
	copyTree(t, filepath.Join(checkout, "example"), repo)
	os.WriteFile(filepath.Join(repo, "requirements.txt"), []byte("Django>=3.2\n"), 0o644)

	run := func(env []string, stdin string, name string, args ...string) string {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Dir, cmd.Env, cmd.Stdin = repo, append(os.Environ(), env...), strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	initBin := filepath.Join(t.TempDir(), "djship-init")
	build := exec.Command(goTool, "build", "-o", initBin, "./cmd/djship-init")
	build.Dir = checkout
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building djship-init: %v\n%s", err, out)
	}
	out := run(nil, "", initBin, "-replace", checkout)
	for _, want := range []string{"Django project exampleproject", "settings exampleproject.settings", "Django>=3.2", "wrote sites/exampleproject.yaml", "wrote magefiles/magefile.go"} {
		if !strings.Contains(out, want) {
			t.Errorf("djship-init says nothing of %q:\n%s", want, out)
		}
	}
	targets := run(nil, "", goTool, "tool", "mage", "-l")
	for _, want := range []string{"release ", "ship:production ", "provision:staging ", "rollback:env ", "status:production ", "secrets:edit "} {
		if !strings.Contains(targets, want) {
			t.Errorf("mage -l lists no %s:\n%s", want, targets)
		}
	}

	// The team's environment: this machine's sshd, Debian's Django.
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	root := "/srv/djship-test-adopt"
	os.RemoveAll(root)
	siteFile := filepath.Join(repo, "sites", "exampleproject.yaml")
	f, err := os.OpenFile(siteFile, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, `  test:
    url: adopt.test
    root: %s
    hosts: [%s@127.0.0.1:%d]
    ssh: {identity: %s, known_hosts: %s}
    web: {http_port: 18300, https_port: 18700}
    packages: [python3-django]
    secrets: {keys: [SECRET_KEY], recipients: [%s]}
    django:
      system_site_packages: true
      environment: {DJANGO_ALLOWED_HOSTS: adopt.test}
`, root, testenv.SudoUser, sshd.Port, testenv.TestKeys().Sudo, sshd.KnownHosts, id.Recipient())
	f.Close()
	site, err := sites.Load(siteFile)
	if err != nil {
		t.Fatal(err)
	}
	env, err := site.Environment("test")
	if err != nil {
		t.Fatal(err)
	}
	live := *site
	live.Settings = env.Hosts[0].Settings
	t.Cleanup(func() { removeSite(&live) })

	key := []string{"DJSHIP_AGE_KEY=" + id.String(), "DJSHIP_AGE_IDENTITY="}
	run(key, "adopted-secret-key-0123456789\n", goTool, "tool", "mage", "secrets:set", "test", "SECRET_KEY")
	shipped := run(key, "", goTool, "tool", "mage", "ship:env", "test")
	if !strings.Contains(shipped, "\nship\nHOST") || !strings.Contains(shipped, "changed  switch") || strings.Contains(shipped, "adopted-secret-key") {
		t.Errorf("ship:env test:\n%s", shipped)
	}
	status, body, _ := get(t, &live, "https")
	if status != 200 || !strings.Contains(body, `<code id="revision">`) {
		t.Fatalf("the adopted site answers %d:\n%s", status, body)
	}
	secretPy, err := os.ReadFile(filepath.Join(root, "exampleproject", "secrets.py"))
	if err != nil || !bytes.Contains(secretPy, []byte("adopted-secret-key-0123456789")) {
		t.Errorf("the host's secret file lacks the secret: %v", err)
	}
}
