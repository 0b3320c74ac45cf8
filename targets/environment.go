package targets

import (
	"fmt"
	"maps"
	"net"
	"net/url"
	"path"
	"slices"
	"strings"
)

// appEnvironment is what the application finds in its environment
// besides its secrets: the settings module, the secret file, where the
// shared data and the database are, and the site's own variables (which
// win over djship's).
func (d *Deploy) appEnvironment() map[string]string {
	s, p := d.Settings, d.Paths
	env := map[string]string{
		"DJANGO_SETTINGS_MODULE":      s.Django.SettingsModule,
		"DJANGO_SETTINGS_SECRET_FILE": p.SecretPy,
		"DJSHIP_DATA_DIR":             p.Shared,
		"DATABASE_ENGINE":             s.Database.Engine,
	}
	if s.Database.Engine == "sqlite" {
		env["DATABASE_PATH"] = path.Join(p.DB, s.Database.Path)
	} else {
		env["DATABASE_NAME"] = s.Database.Name
		env["DATABASE_USER"] = s.Database.User
		env["DATABASE_HOST"] = s.Database.Host
		env["DATABASE_PORT"] = fmt.Sprint(s.Database.Port)
		if s.Database.SSLMode != "" {
			// libpq reads it whatever the project's settings say.
			env["PGSSLMODE"] = s.Database.SSLMode
		}
		// libpq looks for a client certificate and a CA in the home
		// folder, which for an application server started by root is
		// root's: unreadable, so TLS fails. The site's folder holds them
		// instead, when there are any.
		for name, file := range map[string]string{"PGSSLCERT": "postgresql.crt", "PGSSLKEY": "postgresql.key", "PGSSLROOTCERT": "root.crt"} {
			env[name] = path.Join(p.Base, ".postgresql", file)
		}
	}
	for k, v := range s.Django.Environment {
		env[k] = v
	}
	return env
}

// applicationEnvironment is the whole environment of the application, the
// same for its server and every manage.py command: appEnvironment, the
// secrets it gets as variables (all, or those secrets.environment lists)
// and DATABASE_URL. A value with a NUL byte, which no environment can
// hold, is left out and named in skipped.
func (d *Deploy) applicationEnvironment() (env map[string]string, skipped []string) {
	env = d.appEnvironment()
	env["DATABASE_URL"] = d.databaseURL()
	for _, k := range d.secretVariables() {
		env[k] = d.Secrets[k]
	}
	for _, k := range slices.Sorted(maps.Keys(env)) {
		if strings.ContainsRune(env[k], 0) {
			skipped = append(skipped, k)
			delete(env, k)
		}
	}
	return env, skipped
}

// secretVariables are the names of the secrets the application gets as
// environment variables.
func (d *Deploy) secretVariables() []string {
	app := d.appSecrets()
	names := d.Settings.Secrets.Environment
	if names == nil {
		names = slices.Sorted(maps.Keys(app))
	}
	var out []string
	for _, k := range names {
		if _, ok := app[k]; ok {
			out = append(out, k)
		}
	}
	return out
}

// appSecrets are the secrets the application gets: all of the
// environment's but the registry password, which only djship uses.
func (d *Deploy) appSecrets() map[string]string {
	if d.Settings.Registry.Username == "" { // a key of container mode only
		return d.Secrets
	}
	app := maps.Clone(d.Secrets)
	delete(app, d.Settings.Registry.PasswordSecret)
	return app
}

// databaseURL is the database as one URL, the form dj-database-url and
// its kind read: sqlite:////<path> or postgres://user:password@host:port/
// name, each part escaped for its place.
func (d *Deploy) databaseURL() string {
	db := d.Settings.Database
	if db.Engine == "sqlite" {
		return "sqlite:///" + path.Join(d.Paths.DB, db.Path)
	}
	host := db.Host
	if host == "" {
		host = "localhost"
	}
	u := url.URL{Scheme: "postgres", Host: net.JoinHostPort(host, fmt.Sprint(db.Port)), Path: "/" + db.Name}
	if db.SSLMode != "" {
		u.RawQuery = url.Values{"sslmode": {db.SSLMode}}.Encode()
	}
	if password, ok := d.Secrets[db.PasswordSecret]; ok && password != "" {
		u.User = url.UserPassword(db.User, password)
	} else {
		u.User = url.User(db.User)
	}
	return u.String()
}
