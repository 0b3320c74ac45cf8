package targets

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"

	"github.com/djship/djship/internal/paint"
	"github.com/djship/djship/release"
	"github.com/djship/djship/sites"
)

// DemoSite and DemoEnv are what mage demo ships: the example site's demo
// environment, on this machine over the local connection.
const (
	DemoSite = "sites/example.yaml"
	DemoEnv  = "demo"
)

// demoPreflight says exactly what this machine lacks for the demo.
func demoPreflight() error {
	var missing []string
	if _, err := os.Stat("/etc/debian_version"); err != nil {
		missing = append(missing, "a Debian or Ubuntu system (the demo installs its packages with apt-get)")
	} else if _, err := exec.LookPath("apt-get"); err != nil {
		missing = append(missing, "apt-get")
	}
	if os.Geteuid() != 0 {
		if _, err := exec.LookPath("sudo"); err != nil {
			missing = append(missing, "root or sudo: run the demo as root, or install sudo")
		} else if exec.Command("sudo", "-n", "true").Run() != nil {
			missing = append(missing, "root or passwordless sudo: run the demo as root, or allow your user `sudo -n` (a line such as `"+currentUser()+" ALL=(root) NOPASSWD: ALL` in /etc/sudoers.d/djship)")
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("the demo installs nginx, uWSGI and the example site on this machine, which needs:\n  - %s", strings.Join(missing, "\n  - "))
	}
	return nil
}

func currentUser() string {
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	return "youruser"
}

// Demo packages the example site, provisions this machine and ships the
// release to it, then prints where the page answers. Its secrets are made
// up for the demo, in memory.
func Demo(ctx context.Context, w io.Writer) error {
	if err := demoPreflight(); err != nil {
		return err
	}
	site, err := sites.Load(DemoSite)
	if err != nil {
		return err
	}
	return demo(ctx, site, w)
}

// demo ships site's DemoEnv to this machine as Demo does: release into
// dist/, ship (provision and upgrade), then where the page answers.
func demo(ctx context.Context, site *sites.Site, w io.Writer) error {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return fmt.Errorf("the demo's secret key: %w", err)
	}
	opts := Options{Out: w, Secrets: map[string]string{
		"SECRET_KEY": hex.EncodeToString(key),
		"GREETING":   "Hello from the djship demo",
	}}
	a, err := release.Build(ctx, site, release.Options{Out: w})
	if err != nil {
		return err
	}
	deploys, err := Ship(ctx, site, DemoEnv, a.Path, opts)
	if err != nil {
		return err
	}
	if len(deploys) == 0 {
		return fmt.Errorf("%s: the %s environment has no host", site.File, DemoEnv)
	}
	d := deploys[0]
	url, _ := d.healthURL()
	fmt.Fprintf(w, "\n%s %s is live: revision %s\n", paint.Green("demo"), paint.Bold(d.Release), a.Manifest.Revision)
	if d.Release != a.Manifest.Revision {
		fmt.Fprintf(w, "  revision %s was deployed before, so this new release carries the time in its name\n", a.Manifest.Revision)
	}
	if d.facts.live != "" {
		fmt.Fprintf(w, "  the previous release %s is kept for rollback\n", d.facts.live)
	}
	fmt.Fprintf(w, "  open %s (a self-signed certificate: your browser will ask)\n", paint.Bold(url))
	fmt.Fprintf(w, "  or: curl -k %s\n", url)
	return nil
}
