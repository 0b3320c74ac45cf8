package targets

import (
	"context"
	"fmt"
	"strings"

	"github.com/djship/djship/remote"
)

// databaseStep creates the PostgreSQL role and database when the database
// lives on the application's host, and keeps the role's password equal
// to the secret. SQL that carries the password travels on standard input.
type databaseStep struct{}

func (databaseStep) Name() string { return "database" }

// localDatabase reports whether the site's PostgreSQL server is this host.
func (d *Deploy) localDatabase() bool {
	db := d.Settings.Database
	return db.Engine == "postgres" && (db.Host == "" || db.Host == "localhost" || db.Host == "127.0.0.1" || db.Host == "::1")
}

// sqlString quotes a value as an SQL string literal (the SQL travels on
// psql's standard input, where standard_conforming_strings holds).
func sqlString(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// sqlIdent quotes a PostgreSQL identifier. Site validation allows only
// letters, digits and _; the quoting holds whatever it gets.
func sqlIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

func (databaseStep) Run(ctx context.Context, d *Deploy) (bool, error) {
	if !d.localDatabase() {
		return false, nil
	}
	db := d.Settings.Database
	password := d.Secrets[db.PasswordSecret]
	if password == "" {
		return false, fmt.Errorf("database.password_secret %s is not in the secrets of %s", db.PasswordSecret, d.Env.Name)
	}
	changed := false
	if _, err := d.run(ctx, "service postgresql status >/dev/null 2>&1"); err != nil {
		changed = true
		if err := d.do(ctx, "start postgresql", "service postgresql start"); err != nil {
			return false, err
		}
	}
	probe := fmt.Sprintf(`SELECT 'role' FROM pg_roles WHERE rolname = %s UNION ALL SELECT 'db' FROM pg_database WHERE datname = %s`, sqlString(db.User), sqlString(db.Name))
	out, err := d.probe(ctx, remote.Sh("runuser", "-u", "postgres", "--", "psql", "-X", "-qAt", "-c", probe))
	if err != nil {
		return false, err
	}
	var sql []string
	switch {
	case !strings.Contains(out, "role"):
		sql = append(sql, fmt.Sprintf(`CREATE ROLE %s LOGIN PASSWORD %s;`, sqlIdent(db.User), sqlString(password)))
	default:
		// Does the password in the secrets still open the role?
		res, err := d.withPGPassword(ctx, "pg-login", fmt.Sprint(db.Port), db.User)
		if err != nil {
			return false, err
		}
		if strings.TrimSpace(string(res.Stdout)) != "ok" {
			sql = append(sql, fmt.Sprintf(`ALTER ROLE %s LOGIN PASSWORD %s;`, sqlIdent(db.User), sqlString(password)))
		}
	}
	if len(sql) > 0 {
		changed = true
		if d.Check {
			d.plan("set the password of PostgreSQL role %s", db.User)
		} else if _, err := d.Host.Run(ctx, remote.Command{
			Script: remote.Sh("runuser", "-u", "postgres", "--", "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1"),
			Stdin:  strings.NewReader(strings.Join(sql, "\n") + "\n"), Become: true, Quiet: true,
		}); err != nil {
			return false, fmt.Errorf("create the PostgreSQL role %s: %w", db.User, err)
		}
	}
	if !strings.Contains(out, "db") {
		changed = true
		if err := d.do(ctx, "create the PostgreSQL database "+db.Name,
			remote.Sh("runuser", "-u", "postgres", "--", "createdb", "--owner", db.User, "--", db.Name)); err != nil {
			return false, err
		}
	}
	return changed, nil
}

// pgConnection is how pg_dump and pg_restore reach the site's database:
// host, port and user.
func (d *Deploy) pgConnection() []string {
	db := d.Settings.Database
	host := db.Host
	if host == "" {
		host = "localhost"
	}
	return []string{"-h", host, "-p", fmt.Sprint(db.Port), "-U", db.User}
}

// withPGPassword runs scripts/<name>.sh as root with the database
// password in PGPASSWORD: it travels on standard input, never in argv.
func (d *Deploy) withPGPassword(ctx context.Context, name string, args ...string) (*remote.Result, error) {
	words := append([]string{"sh", "-c", script("with-pgpassword.sh"), "with-pgpassword", script(name + ".sh"), name}, args...)
	return d.Host.Run(ctx, remote.Command{
		Script: remote.Sh(words...),
		Stdin:  strings.NewReader(d.Secrets[d.Settings.Database.PasswordSecret] + "\n"), Become: true, Quiet: true,
	})
}
