package targets

import (
	"context"
	"fmt"
	"net"
	"path"
	"strings"
	"time"

	"github.com/djship/djship/remote"
	"github.com/djship/djship/sites"
)

// databaseStep creates the PostgreSQL role and database when the database
// lives on the application's host, and keeps the role's password equal
// to the secret. SQL that carries the password travels on standard input.
type databaseStep struct{}

func (databaseStep) Name() string { return "database" }

// localDatabase reports whether the site's PostgreSQL server is this host:
// the environment's db host, or an application host whose database is
// on its own local socket.
func (d *Deploy) localDatabase() bool {
	db := d.Settings.Database
	if db.Engine != "postgres" || d.composeDatabase() {
		return false
	}
	return d.hasRole(sites.RoleDB) || db.Host == "" || db.Host == "localhost" || db.Host == "127.0.0.1" || db.Host == "::1"
}

// dbServerStep opens the db host's PostgreSQL to the application hosts:
// it listens on every address, and pg_hba.conf lets the site's role log
// in to the site's database from each web and worker host's address,
// with its password. Addresses and names come from the site file's
// grammar (IP addresses and host names; identifiers of letters, digits
// and _), and reach the script as arguments.
type dbServerStep struct{}

func (dbServerStep) Name() string { return "database server" }

func (dbServerStep) Skip(d *Deploy) bool { return !d.hasRole(sites.RoleDB) }

func (dbServerStep) Run(ctx context.Context, d *Deploy) (bool, error) {
	db := d.Settings.Database
	kind := "host"
	if db.SSLMode == "require" || strings.HasPrefix(db.SSLMode, "verify-") {
		kind = "hostssl" // no login without TLS
	}
	args := []string{d.Settings.Instance, db.Name, db.User, kind}
	for _, h := range d.Env.Hosts {
		if h.App() {
			a, err := hbaAddress(h.Address)
			if err != nil {
				return false, err
			}
			args = append(args, a)
		}
	}
	if d.Check {
		d.plan("let %s reach PostgreSQL database %s as %s (%s)", strings.Join(args[4:], ", "), db.Name, db.User, kind)
		return false, nil
	}
	action, err := d.probe(ctx, shScript("pg-server", args...))
	if err != nil {
		return false, fmt.Errorf("opening PostgreSQL to the application hosts: %w", err)
	}
	switch action {
	case "":
		return false, nil
	case "restart", "reload":
	default:
		return false, fmt.Errorf("opening PostgreSQL to the application hosts: unexpected answer %q from pg-server", action)
	}
	if err := d.do(ctx, action+" postgresql", remote.Sh("service", "postgresql", action)); err != nil {
		return true, err
	}
	return true, nil
}

// hbaAddress is a host's address as pg_hba.conf matches it: an IP
// address as the one address (/32, /128), a name as it is. A name that
// pg_hba.conf reads as a keyword (all, samehost, samenet) would let in
// far more than one host, and is refused.
func hbaAddress(address string) (string, error) {
	if ip := net.ParseIP(address); ip != nil {
		if ip.To4() != nil {
			return ip.String() + "/32", nil
		}
		return ip.String() + "/128", nil
	}
	switch strings.ToLower(address) {
	case "all", "samehost", "samenet":
		return "", fmt.Errorf("host %q: pg_hba.conf reads that name as the keyword %s, which would let every host in; write the host's IP address", address, strings.ToLower(address))
	}
	return address, nil
}

// sqlString quotes a value as an SQL string literal (the SQL travels on
// psql's standard input, where standard_conforming_strings holds).
func sqlString(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// sqlIdent quotes a PostgreSQL identifier. Site validation allows only
// letters, digits and _; the quoting holds whatever it gets.
func sqlIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// Skip leaves a database on another host, and sqlite, alone.
func (databaseStep) Skip(d *Deploy) bool { return !d.localDatabase() }

func (databaseStep) Run(ctx context.Context, d *Deploy) (bool, error) {
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
	out, err := d.probe(ctx, asUser("postgres", "psql", "-X", "-qAt", "-c", probe))
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
			Script: asUser("postgres", "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1"),
			Stdin:  strings.NewReader(strings.Join(sql, "\n") + "\n"), Become: true, Quiet: true,
		}); err != nil {
			return false, fmt.Errorf("create the PostgreSQL role %s: %w", db.User, err)
		}
	}
	if !strings.Contains(out, "db") {
		changed = true
		if err := d.do(ctx, "create the PostgreSQL database "+db.Name,
			asUser("postgres", "createdb", "--owner", db.User, "--", db.Name)); err != nil {
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
	if host == "" || d.hasRole(sites.RoleDB) {
		host = "localhost"
	}
	return []string{"-h", host, "-p", fmt.Sprint(db.Port), "-U", db.User}
}

// withPGPassword runs scripts/<name>.sh as root with the database
// password in PGPASSWORD: it travels on standard input, never in argv.
func (d *Deploy) withPGPassword(ctx context.Context, name string, args ...string) (*remote.Result, error) {
	words := append([]string{"sh", "-c", script("with-pgpassword.sh"), "with-pgpassword", script(name + ".sh"), name}, args...)
	if mode := d.Settings.Database.SSLMode; mode != "" && !d.hasRole(sites.RoleDB) {
		words = append([]string{"env", "PGSSLMODE=" + mode}, words...)
	}
	return d.Host.Run(ctx, remote.Command{
		Script: remote.Sh(words...),
		Stdin:  strings.NewReader(d.Secrets[d.Settings.Database.PasswordSecret] + "\n"), Become: true, Quiet: true,
	})
}

// databaseName is the site's database as the output names it.
func (d *Deploy) databaseName() string {
	if d.Settings.Database.Engine == "sqlite" {
		return path.Join(d.Paths.DB, d.Settings.Database.Path)
	}
	return "database " + d.Settings.Database.Name
}

// saveDatabase snapshots the database into keep, once the snapshot from
// that is to be restored is known to exist.
func (d *Deploy) saveDatabase(ctx context.Context, from, keep string) error {
	s := d.Settings
	if s.Database.Engine == "sqlite" {
		_, err := d.run(ctx, shScript("sqlite-save", path.Join(d.Paths.DB, s.Database.Path), from, keep))
		return err
	}
	_, err := d.withPGPassword(ctx, "pg-save", append([]string{s.Database.Name, from, keep}, d.pgConnection()...)...)
	return err
}

// restoreCommand restores a snapshot into the site's database, as the
// command an operator runs by hand; each engine's restore is one
// transaction, so a failed restore changes nothing. The PostgreSQL
// password comes from the environment.
func (d *Deploy) restoreCommand(snapshot string, noPassword bool) []string {
	s := d.Settings
	if s.Database.Engine == "sqlite" {
		return []string{"sqlite3", "-cmd", ".timeout 30000", path.Join(d.Paths.DB, s.Database.Path), ".restore '" + snapshot + "'"}
	}
	words := []string{"pg_restore", "--clean", "--if-exists", "--no-owner", "--single-transaction"}
	if noPassword {
		words = append(words, "--no-password")
	}
	words = append(words, d.pgConnection()...)
	return append(words, "-d", s.Database.Name, snapshot)
}

// restoreDatabase restores a snapshot into the site's database; a
// missing snapshot is an error (sqlite3 would restore an empty database).
// PostgreSQL's restore (pg-restore.sh) first drops the tables the site's
// role owns, so that none made after the snapshot stays behind.
func (d *Deploy) restoreDatabase(ctx context.Context, snapshot string) error {
	if d.Settings.Database.Engine == "sqlite" {
		_, err := d.run(ctx, shScript("restore", append([]string{snapshot}, d.restoreCommand(snapshot, true)...)...))
		return err
	}
	_, err := d.withPGPassword(ctx, "pg-restore", append([]string{snapshot, d.Settings.Database.Name}, d.pgConnection()...)...)
	return err
}

// undoRestore restores the database as it was before the rollback after
// the rollback failed, and adds to cause what became of the database:
// back as it was, or where its snapshot is and how to restore it by hand.
func (d *Deploy) undoRestore(ctx context.Context, cause error) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Minute)
	defer cancel()
	keep := d.rollback.beforeRestore
	d.note("the rollback failed after restoring the database: restoring %s as it was before the rollback, from %s", d.databaseName(), keep)
	if err := d.restoreDatabase(ctx, keep); err != nil {
		how := remote.Sh(d.restoreCommand(keep, false)...)
		if d.Settings.Database.Engine != "sqlite" {
			how += fmt.Sprintf("\n    (as root; it asks for the password in the secret %s)", d.Settings.Database.PasswordSecret)
		}
		msg := fmt.Sprintf("could not restore the database as it was before the rollback: %v\n  it is saved in %s on %s: restore it by hand with:\n    %s", err, keep, d.Host.Name(), how)
		d.note("error: %s", msg)
		return fmt.Errorf("%w\n  %s", cause, msg)
	}
	d.rollback.beforeRestore = ""
	msg := "the database is back as it was before the rollback, restored from " + keep
	d.note("%s", msg)
	return fmt.Errorf("%w\n  %s", cause, msg)
}
