package targets

import (
	"context"
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"

	"github.com/djship/djship/sites"
	"github.com/djship/djship/templates"
)

// Roles say what each host of an environment does (sites.RoleWeb and
// the others): a web host serves visitors, a worker host runs the site's
// processes, the db host is the PostgreSQL server the others reach over
// TCP, an lb host balances the web hosts. Provision and upgrade give
// each host what its roles need and nothing else.

// hasRole reports whether the host has role; a Deploy without roles (one
// made in Go) is web and worker.
func (d *Deploy) hasRole(role string) bool {
	if len(d.Roles) == 0 {
		return role == sites.RoleWeb || role == sites.RoleWorker
	}
	return slices.Contains(d.Roles, role)
}

// serves reports whether the host serves visitors (role web).
func (d *Deploy) serves() bool { return d.hasRole(sites.RoleWeb) }

// runsSite reports whether the host runs the Django release: a web or a
// worker host.
func (d *Deploy) runsSite() bool { return d.serves() || d.hasRole(sites.RoleWorker) }

// onRoles runs a step only on the hosts that have one of roles; on the
// others it is skipped.
type onRoles struct {
	Step
	roles []string
}

// forRoles makes step run only on hosts with one of roles.
func forRoles(step Step, roles ...string) Step { return onRoles{step, roles} }

func (s onRoles) Skip(d *Deploy) bool {
	if !slices.ContainsFunc(s.roles, d.hasRole) {
		return true
	}
	k, ok := s.Step.(Skipper)
	return ok && k.Skip(d)
}

// balancerStep writes the load balancer of an lb host: an nginx site
// that passes the site's requests to the web hosts, each at its address
// and HTTP port. A host being switched in a rolling upgrade is marked
// down in it for the while (drain).
type balancerStep struct{}

func (balancerStep) Name() string { return "load balancer" }

func (balancerStep) Skip(d *Deploy) bool { return !d.hasRole(sites.RoleLB) }

func (balancerStep) Run(ctx context.Context, d *Deploy) (bool, error) {
	// Hosts a run left out (it ended before they were back in line) stay
	// out until a switch brings every host to one release.
	down := d.balancerDown(ctx)
	if len(down) > 0 {
		d.note("%s stay out of the load balancer, as the last run left them, until this run switches every host", strings.Join(slices.Sorted(maps.Keys(down)), ", "))
	}
	return d.writeBalancer(ctx, down)
}

// balancerDownFile lists, one a line, the web hosts the lb host's
// balancer has marked down: those being switched, and those a run left
// out because it could not put them back.
func (d *Deploy) balancerDownFile() string { return path.Join(d.Paths.Base, "balancer-down") }

// balancerDown reads the web hosts the balancer has marked down; none
// when it cannot be read.
func (d *Deploy) balancerDown(ctx context.Context) map[string]bool {
	out, err := d.probe(ctx, shScript("read-file", d.balancerDownFile()))
	if err != nil {
		return nil
	}
	down := map[string]bool{}
	for _, h := range d.Env.Hosts {
		if h.HasRole(sites.RoleWeb) && slices.Contains(strings.Fields(out), h.String()) {
			down[h.String()] = true
		}
	}
	return down
}

// balancerName is the lb site's file name in nginx's sites-available.
func (d *Deploy) balancerName() string { return d.Settings.Instance + "-lb" }

// writeBalancer renders the lb site with the web hosts in down marked
// down, tests it, installs it and reloads nginx when it changed.
func (d *Deploy) writeBalancer(ctx context.Context, down map[string]bool) (bool, error) {
	b := d.balancer(down)
	if !slices.ContainsFunc(b.Servers, func(u templates.Upstream) bool { return !u.Down }) {
		// Better a host that may serve an old release than none.
		for i := range b.Servers {
			b.Servers[i].Down = false
		}
		down = nil
	}
	var list strings.Builder
	for _, h := range slices.Sorted(maps.Keys(down)) {
		if down[h] {
			list.WriteString(h + "\n")
		}
	}
	// Written first: a run killed after the reload leaves the list as
	// the balancer is.
	if !d.Check {
		if _, err := d.ensureFile(ctx, file{Path: d.balancerDownFile(), Data: []byte(list.String()), Mode: 0o644, Owner: "root", Group: "root"}); err != nil {
			return false, err
		}
	}
	conf, err := templates.Render(templates.BalancerSite, b)
	if err != nil {
		return false, err
	}
	w := balancerServer
	name := d.balancerName()
	if !d.Check {
		if err := d.testWebConfig(ctx, w, name, "/usr/sbin/nginx", conf); err != nil {
			return false, err
		}
	}
	c, err := d.ensureFile(ctx, file{Path: w.siteFile(name), Data: conf, Mode: 0o644, Owner: "root", Group: "root"})
	if err != nil {
		return false, err
	}
	linked, err := d.ensureLink(ctx, w.enabledFile(name), "../sites-available/"+name+".conf")
	if err != nil {
		return false, err
	}
	if !c && !linked {
		return false, nil
	}
	svc := d.balancerService()
	if _, err := d.control(ctx, svc, true); err != nil {
		return true, fmt.Errorf("reloading nginx with the load balancer: %w", err)
	}
	return true, nil
}

// balancer is the lb site's data: every web host of the environment,
// those in down marked down.
func (d *Deploy) balancer(down map[string]bool) templates.Balancer {
	s := d.Settings
	b := templates.Balancer{Project: s.Project, ID: strings.ReplaceAll(d.balancerName(), "-", "_"), URL: s.URL,
		HTTPPort: s.Web.HTTPPort, ClientMaxBodySize: s.Web.ClientMaxBodySize}
	for _, h := range d.Env.Hosts {
		if h.HasRole(sites.RoleWeb) {
			b.Servers = append(b.Servers, templates.Upstream{Host: h.Address, Port: h.Settings.Web.HTTPPort, Down: down[h.String()]})
		}
	}
	return b
}

// balancerServer is the web server of an lb host, whatever the site's
// web hosts run.
var balancerServer = webServer{name: "nginx", confDir: "/etc/nginx", service: "nginx"}

// balancerService is nginx on an lb host.
func (d *Deploy) balancerService() service { return d.serviceOf(balancerServer) }
