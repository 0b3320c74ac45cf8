package targets

import (
	"context"
	"fmt"
	"strings"
)

// claimStep refuses to take over a configuration that djship wrote for
// another site on this host: the web server's site file, the uWSGI
// slots' ini files, gunicorn's units or init script. Each file djship
// writes names its site in its first line ("Managed by djship for shop
// in /srv/www/shop"); two environments of one project on one host, or
// two site files of one project name, would otherwise rewrite each
// other's files and stop each other's services. It runs before anything
// changes, and files djship did not write are left to the plan's diff.
type claimStep struct{}

func (claimStep) Name() string { return "ownership" }

// claim is how this site's files name it in their first line.
func (d *Deploy) claim() string {
	return fmt.Sprintf("Managed by djship for %s in %s;", d.Settings.Instance, d.Paths.Base)
}

// hostFiles are the host-level configuration files djship writes for the
// site.
func (d *Deploy) hostFiles() []string {
	return append([]string{d.web().siteFile(d.Settings.Instance)}, d.mode.appFiles(d)...)
}

func (claimStep) Run(ctx context.Context, d *Deploy) (bool, error) {
	legacy := fmt.Sprintf("Managed by djship for %s;", d.Settings.Instance)
	out, err := d.probe(ctx, shScript("claims", append([]string{d.claim(), legacy}, d.hostFiles()...)...))
	if err != nil || out == "" {
		return false, err
	}
	var taken []string
	for _, l := range strings.Split(out, "\n") {
		file, line, _ := strings.Cut(l, "\t")
		taken = append(taken, fmt.Sprintf("%s (%s)", file, strings.TrimSpace(strings.TrimPrefix(line, "#"))))
	}
	return false, fmt.Errorf("this site (%s in %s) would take over what djship wrote for another site on this host, so nothing changed:\n  %s\n  give this environment its own instance in the site file, e.g. instance: %s-%s, which names its folder, configurations, services and user apart",
		d.Settings.Instance, d.Paths.Base, strings.Join(taken, "\n  "), d.Settings.Project, d.Env.Name)
}
