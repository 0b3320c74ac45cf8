package sites

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// The roles djship knows. A host without roles is web and worker.
const (
	// RoleWeb hosts serve visitors: the web server and the application
	// server.
	RoleWeb = "web"
	// RoleWorker hosts run the site's processes (processes:).
	RoleWorker = "worker"
	// RoleDB is the PostgreSQL server of the environment; the others
	// reach it over TCP.
	RoleDB = "db"
	// RoleLB is a load balancer (nginx) in front of the web hosts.
	RoleLB = "lb"
)

// hbaKeywords are the names pg_hba.conf reads as keywords in its
// address field.
var hbaKeywords = map[string]bool{"all": true, "samehost": true, "samenet": true}

var roleName = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,31}$`)

// HasRole reports whether the host has role.
func (h Host) HasRole(role string) bool {
	for _, r := range h.Roles {
		if r == role {
			return true
		}
	}
	return false
}

// App reports whether the host runs the Django release: a web or a
// worker host.
func (h Host) App() bool { return h.HasRole(RoleWeb) || h.HasRole(RoleWorker) }

// Matches reports whether name is the host's address or its
// user@address:port form.
func (h Host) Matches(name string) bool { return name == h.Address || name == h.String() }

// roles reads a host's roles: a list of names, each once.
func (v *validator) roles(n *yaml.Node, where string) []string {
	if n == nil || n.Kind != yaml.SequenceNode {
		return nil
	}
	var roles []string
	seen := map[string]bool{}
	for _, r := range n.Content {
		switch {
		case !roleName.MatchString(r.Value):
			v.add(r.Line, "%s.roles: %q is not a role name: use web, worker, db, lb or a name of your own (lower-case letters, digits, - and _)", where, r.Value)
		case seen[r.Value]:
			v.add(r.Line, "%s.roles: %s is listed twice", where, r.Value)
		default:
			seen[r.Value] = true
			roles = append(roles, r.Value)
		}
	}
	if len(n.Content) == 0 {
		v.add(n.Line, "%s.roles is empty: leave it out for web and worker, or list the host's roles (web, worker, db, lb)", where)
	}
	return roles
}

// fleet checks what the roles and the fleet settings of an environment
// ask for together, and points the hosts at the environment's database
// host.
func (v *validator) fleet(env *Environment, node *yaml.Node, where string, line int) {
	at := func(path string) int {
		if n := lookupPath(node, path); n != nil {
			return n.Line
		}
		return line
	}
	var apps, webs, dbs, lbs []int
	for i, h := range env.Hosts {
		if h.App() {
			apps = append(apps, i)
		}
		if h.HasRole(RoleWeb) {
			webs = append(webs, i)
		}
		if h.HasRole(RoleDB) {
			dbs = append(dbs, i)
		}
		if h.HasRole(RoleLB) {
			lbs = append(lbs, i)
		}
	}
	if len(env.Hosts) > 0 && len(apps) == 0 {
		v.add(line, "%s: no host runs the site: give at least one host the role web or worker (a host without roles has both)", where)
	}
	if len(lbs) > 0 && len(webs) == 0 {
		v.add(line, "%s: the lb host has no web host to balance: give at least one host the role web", where)
	}
	s := env.Settings
	if s.Container() {
		for _, h := range env.Hosts {
			if !h.HasRole(RoleWeb) || !h.HasRole(RoleWorker) {
				v.add(line, "%s: host %s has roles %s, but in mode: container every host serves the site and runs its processes: leave roles out", where, h.String(), strings.Join(h.Roles, ", "))
				break
			}
		}
	}
	if len(dbs) > 1 {
		v.add(line, "%s: %d hosts have the role db; djship runs one PostgreSQL server per environment", where, len(dbs))
	}
	if len(dbs) == 1 {
		db := env.Hosts[dbs[0]]
		switch {
		case s.Database.Engine == "postgres" && slices.ContainsFunc(apps, func(i int) bool { return hbaKeywords[strings.ToLower(env.Hosts[i].Address)] }):
			v.add(line, "%s: a host named all, samehost or samenet would let every host into the database (pg_hba.conf reads those names as keywords): write its IP address", where)
		case s.Database.Engine != "postgres":
			v.add(line, "%s: host %s has the role db, which is a PostgreSQL server: set database.engine: postgres", where, db.String())
		case s.Database.Host == "":
			// The others reach the database host at its address, over
			// TLS unless the site says otherwise (Debian's PostgreSQL
			// has a certificate from the start).
			for _, settings := range append([]*Settings{&env.Settings}, hostSettings(env)...) {
				if settings.Database.Host == "" {
					settings.Database.Host = db.Address
				}
				if settings.Database.SSLMode == "" {
					settings.Database.SSLMode = "require"
				}
			}
		case s.Database.Host != db.Address:
			v.add(at("database.host"), "%s: database.host is %s, but host %s has the role db: leave database.host out (the hosts then reach %s), or drop the role", where, s.Database.Host, db.String(), db.Address)
		}
	}
	for _, i := range lbs {
		if env.Hosts[i].HasRole(RoleWeb) {
			v.add(line, "%s: host %s has the roles lb and web, which would both answer for the site on its port %d: give the load balancer a host of its own", where, env.Hosts[i].String(), env.Hosts[i].Settings.Web.HTTPPort)
		}
		if env.Hosts[i].Settings.TLS.Certificate != "" {
			v.add(at("tls.certificate"), "%s: host %s has the role lb, which balances plain HTTP only: with tls, put the certificate on a load balancer of your own in front of the web hosts and leave the role out", where, env.Hosts[i].String())
		}
	}
	f := s.Fleet
	if f.MigrateHost != "" {
		found := false
		for _, i := range apps {
			found = found || env.Hosts[i].Matches(f.MigrateHost)
		}
		if !found {
			v.add(at("fleet.migrate_host"), "%s: fleet.migrate_host %q is not a web or worker host of the environment: write the address of one of its hosts", where, f.MigrateHost)
		}
	}
	if _, err := BatchSize(f.Rolling.Batch, 1); err != nil {
		v.add(at("fleet.rolling.batch"), "%s: fleet.rolling.batch: %v", where, err)
	}
	if f.Rolling.Pause < 0 || f.Rolling.Pause > 3600 {
		v.add(at("fleet.rolling.pause"), "%s: fleet.rolling.pause must be from 0 to 3600 seconds, not %d", where, f.Rolling.Pause)
	}
	for _, k := range []struct {
		key string
		n   int
	}{{"uploads", f.Uploads}, {"builds", f.Builds}} {
		if k.n < 0 {
			v.add(at("fleet."+k.key), "%s: fleet.%s must be 0 (every host at once) or more, not %d", where, k.key, k.n)
		}
	}
}

// BatchSize is how many of hosts one rolling batch holds: all for an
// empty batch, a count ("2") or a share ("25%", rounded up, at least one).
func BatchSize(batch string, hosts int) (int, error) {
	if batch == "" {
		return hosts, nil
	}
	if p, ok := strings.CutSuffix(batch, "%"); ok {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 100 || p != strconv.Itoa(n) {
			return 0, fmt.Errorf("%q: write a share from 1%% to 100%% (25%%) or a count of hosts (2)", batch)
		}
		return max(1, (hosts*n+99)/100), nil
	}
	n, err := strconv.Atoi(batch)
	if err != nil || n < 1 || batch != strconv.Itoa(n) {
		return 0, fmt.Errorf("%q: write a count of hosts (2) or a share from 1%% to 100%% (25%%)", batch)
	}
	return min(n, hosts), nil
}

// hostSettings are the settings of every host of env.
func hostSettings(env *Environment) []*Settings {
	var out []*Settings
	for i := range env.Hosts {
		out = append(out, &env.Hosts[i].Settings)
	}
	return out
}
