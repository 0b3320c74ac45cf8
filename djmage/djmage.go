// Package djmage is djship's Mage targets, for the magefile of any Django
// repository: import it and release, ship:production, provision:staging,
// rollback, status and the others become that repository's targets,
// working on the site file in its sites/ (the only one, or SITE=<name>).
//
//	//go:build mage
//
//	package main
//
//	import (
//		//mage:import
//		_ "github.com/djship/djship/djmage"
//	)
package djmage

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/djship/djship/release"
	"github.com/djship/djship/remote"
	"github.com/djship/djship/sites"
	"github.com/djship/djship/sites/secrets"
	"github.com/djship/djship/targets"
	"github.com/magefile/mage/mg"
	"golang.org/x/term"
	"mvdan.cc/sh/v3/shell"
)

// Ship packages the release, prepares the hosts and upgrades them: release, then provision and upgrade over one connection per host.
type Ship mg.Namespace

// Production ships to production: release, provision:production, upgrade:production.
func (Ship) Production(ctx context.Context) error { return ship(ctx, "production") }

// Staging ships to staging: release, provision:staging, upgrade:staging.
func (Ship) Staging(ctx context.Context) error { return ship(ctx, "staging") }

// Env ships to the named environment: release, provision, upgrade.
func (Ship) Env(ctx context.Context, name string) error { return ship(ctx, name) }

func ship(ctx context.Context, env string) error {
	mg.CtxDeps(ctx, Release)
	artifact := loaded.lastArtifact()
	if artifact == nil {
		return fmt.Errorf("ship:%s: the release was not built", env)
	}
	site, opts, err := load(env, true)
	if err != nil {
		return err
	}
	_, err = targets.Ship(ctx, site, env, artifact.Path, opts)
	return err
}

// Upgrade ships the tarball mage release wrote last to the hosts: the upgrade sequence, with rollback on failure.
type Upgrade mg.Namespace

// Production upgrades the production hosts to the last release in dist/.
func (Upgrade) Production(ctx context.Context) error { return upgrade(ctx, "production") }

// Staging upgrades the staging hosts to the last release in dist/.
func (Upgrade) Staging(ctx context.Context) error { return upgrade(ctx, "staging") }

// Env upgrades the hosts of the named environment to the last release in dist/.
func (Upgrade) Env(ctx context.Context, name string) error { return upgrade(ctx, name) }

func upgrade(ctx context.Context, env string) error {
	tarball, err := release.Latest("dist")
	if err != nil {
		return err
	}
	site, opts, err := load(env, true)
	if err != nil {
		return err
	}
	_, err = targets.Upgrade(ctx, site, env, tarball, opts)
	return err
}

// Rollback makes the previous live release live again (or -to=RELEASE), reloads and checks it; -restoreDB=true also restores the database snapshot.
type Rollback mg.Namespace

// Production rolls production back to its previous live release.
func (Rollback) Production(ctx context.Context, to *string, restoreDB *bool) error {
	return rollback(ctx, "production", to, restoreDB)
}

// Staging rolls staging back to its previous live release.
func (Rollback) Staging(ctx context.Context, to *string, restoreDB *bool) error {
	return rollback(ctx, "staging", to, restoreDB)
}

// Env rolls the named environment back to its previous live release.
func (Rollback) Env(ctx context.Context, name string, to *string, restoreDB *bool) error {
	return rollback(ctx, name, to, restoreDB)
}

func rollback(ctx context.Context, env string, to *string, restoreDB *bool) error {
	site, hostOpts, err := load(env, false)
	if err != nil {
		return err
	}
	opts := targets.RollbackOptions{Options: hostOpts, To: os.Getenv("DJSHIP_ROLLBACK_TO"), RestoreDB: os.Getenv("DJSHIP_RESTORE_DB") == "1"}
	if to != nil {
		opts.To = *to
	}
	if restoreDB != nil {
		opts.RestoreDB = *restoreDB
	}
	_, err = targets.Rollback(ctx, site, env, opts)
	return err
}

// Status shows each host's live release, who deployed it and when, the previous one, the servers, the lock and a health check.
type Status mg.Namespace

// Production shows the state of the production hosts.
func (Status) Production(ctx context.Context) error { return status(ctx, "production") }

// Staging shows the state of the staging hosts.
func (Status) Staging(ctx context.Context) error { return status(ctx, "staging") }

// Env shows the state of the hosts of the named environment.
func (Status) Env(ctx context.Context, name string) error { return status(ctx, name) }

func status(ctx context.Context, env string) error {
	site, opts, err := load(env, false)
	if err != nil {
		return err
	}
	_, err = targets.Status(ctx, site, env, opts)
	return err
}

// Releases lists each host's deploy log: every upgrade and rollback, when, by whom, and how it ended.
type Releases mg.Namespace

// Production lists the deploy log of the production hosts.
func (Releases) Production(ctx context.Context) error { return releases(ctx, "production") }

// Staging lists the deploy log of the staging hosts.
func (Releases) Staging(ctx context.Context) error { return releases(ctx, "staging") }

// Env lists the deploy log of the hosts of the named environment.
func (Releases) Env(ctx context.Context, name string) error { return releases(ctx, name) }

func releases(ctx context.Context, env string) error {
	site, opts, err := load(env, false)
	if err != nil {
		return err
	}
	return targets.Releases(ctx, site, env, opts)
}

// Unlock breaks a stale deploy lock, after saying who held it.
type Unlock mg.Namespace

// Production breaks the deploy lock of the production hosts.
func (Unlock) Production(ctx context.Context) error { return unlock(ctx, "production") }

// Staging breaks the deploy lock of the staging hosts.
func (Unlock) Staging(ctx context.Context) error { return unlock(ctx, "staging") }

// Env breaks the deploy lock of the hosts of the named environment.
func (Unlock) Env(ctx context.Context, name string) error { return unlock(ctx, name) }

func unlock(ctx context.Context, env string) error {
	site, opts, err := load(env, false)
	if err != nil {
		return err
	}
	return targets.Unlock(ctx, site, env, opts)
}

// load selects the site and decrypts the environment's secrets: all the
// values a ship needs when forShipping, else whatever there is (so that
// output is masked all the same). DJSHIP_LOCK_WAIT (a duration such as
// 5m) waits for another run's lock; DJSHIP_TRUST_NEW_HOSTS=1 records the
// keys of hosts missing from known_hosts instead of refusing them.
func load(env string, forShipping bool) (*sites.Site, targets.Options, error) {
	site, err := loaded.site()
	if err != nil {
		return nil, targets.Options{}, err
	}
	read := targets.ReadSecrets
	if forShipping {
		read = loaded.secrets
	}
	values, err := read(site, env)
	if err != nil {
		return nil, targets.Options{}, err
	}
	opts := targets.Options{Secrets: values, TrustNewHosts: os.Getenv("DJSHIP_TRUST_NEW_HOSTS") == "1"}
	if wait := os.Getenv("DJSHIP_LOCK_WAIT"); wait != "" {
		if opts.LockWait, err = time.ParseDuration(wait); err != nil {
			return nil, opts, fmt.Errorf("DJSHIP_LOCK_WAIT=%q: write a duration such as 5m", wait)
		}
	}
	return site, opts, nil
}

// Provision prepares hosts and configures their web and application servers.
type Provision mg.Namespace

// Production prepares the production hosts: packages, user, folders, ACLs, TLS, web and app server.
func (Provision) Production(ctx context.Context) error { return provision(ctx, "production") }

// Staging prepares the staging hosts: packages, user, folders, ACLs, TLS, web and app server.
func (Provision) Staging(ctx context.Context) error { return provision(ctx, "staging") }

// Env prepares the hosts of the named environment, as in mage provision:env qa.
func (Provision) Env(ctx context.Context, name string) error { return provision(ctx, name) }

func provision(ctx context.Context, env string) error {
	site, opts, err := load(env, true)
	if err != nil {
		return err
	}
	return targets.Provision(ctx, site, env, opts)
}

// Plan shows what provision would change, with a diff of every file, and changes nothing.
type Plan mg.Namespace

// Production shows what provision:production would change, and changes nothing.
func (Plan) Production(ctx context.Context) error { return plan(ctx, "production") }

// Staging shows what provision:staging would change, and changes nothing.
func (Plan) Staging(ctx context.Context) error { return plan(ctx, "staging") }

// Env shows what provision would change on the named environment, and changes nothing.
func (Plan) Env(ctx context.Context, name string) error { return plan(ctx, name) }

func plan(ctx context.Context, env string) error {
	site, opts, err := load(env, true)
	if err != nil {
		return err
	}
	_, err = targets.Plan(ctx, site, env, opts)
	return err
}

// Secrets keeps each environment's secrets encrypted with age beside the site file.
// Every save refuses recipients that none of your identities could open;
// DJSHIP_SECRETS_FORCE=1 (or secrets:recipients -force=true) hands the
// secrets over on purpose.
type Secrets mg.Namespace

// Edit decrypts an environment's secrets into $EDITOR and encrypts them again.
func (Secrets) Edit(ctx context.Context, env string) error {
	store, ids, err := secretStore(env)
	if err != nil {
		return err
	}
	return store.Edit(ctx, ids, os.Getenv("EDITOR"), os.Stdin, os.Stdout, os.Stderr)
}

// Show lists an environment's secret names with masked values; -reveal=true shows the values.
func (Secrets) Show(env string, reveal *bool) error {
	store, ids, err := secretStore(env)
	if err != nil {
		return err
	}
	values, _, err := store.Load(ids)
	if err != nil {
		return err
	}
	return secrets.Show(os.Stdout, store.Path, values, reveal != nil && *reveal)
}

// Set stores one secret of an environment, reading its value from standard input.
func (Secrets) Set(env, name string) error {
	store, ids, err := secretStore(env)
	if err != nil {
		return err
	}
	value, err := io.ReadAll(os.Stdin)
	if err != nil {
		return err
	}
	if err := store.Set(ids, name, strings.TrimSuffix(string(value), "\n")); err != nil {
		return err
	}
	fmt.Printf("set %s in %s\n", name, store.Path)
	return nil
}

// Recipients encrypts every environment's secrets again for the recipients the site file lists now; -force=true even when none of your identities is among them.
func (Secrets) Recipients(force *bool) error {
	site, err := sites.Select()
	if err != nil {
		return err
	}
	forced, err := secretsForce()
	if err != nil {
		return err
	}
	ids, err := secrets.Identities()
	if err != nil {
		return err
	}
	for _, name := range site.EnvironmentNames() {
		store := targets.SecretStore(site, site.Environments[name])
		store.Force = forced || (force != nil && *force)
		if _, err := os.Stat(store.Path); err != nil {
			continue
		}
		if err := store.Reencrypt(ids); err != nil {
			return err
		}
		fmt.Printf("%s: encrypted for %d recipients\n", store.Path, len(store.Recipients))
	}
	return nil
}

// secretsForce reads DJSHIP_SECRETS_FORCE: when true, secrets are saved
// even for recipients that none of your identities can open.
func secretsForce() (bool, error) {
	v := os.Getenv("DJSHIP_SECRETS_FORCE")
	if v == "" {
		return false, nil
	}
	force, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("DJSHIP_SECRETS_FORCE=%q: write 1 to save secrets for recipients none of your identities can open, or 0", v)
	}
	return force, nil
}

func secretStore(env string) (secrets.Store, []secrets.Identity, error) {
	site, err := sites.Select()
	if err != nil {
		return secrets.Store{}, nil, err
	}
	e, err := site.Environment(env)
	if err != nil {
		return secrets.Store{}, nil, err
	}
	forced, err := secretsForce()
	if err != nil {
		return secrets.Store{}, nil, err
	}
	ids, err := secrets.Identities()
	if err != nil {
		return secrets.Store{}, nil, err
	}
	store := targets.SecretStore(site, e)
	store.Force = forced
	return store, ids, nil
}

// Manage runs a manage.py command in the live release of one host, as the application's user in its environment: manage:production 'createsuperuser --username admin'; -host=ADDRESS picks the host.
type Manage mg.Namespace

// Production runs a manage.py command on a production host.
func (Manage) Production(ctx context.Context, command string, host *string) error {
	return manage(ctx, "production", command, host)
}

// Staging runs a manage.py command on a staging host.
func (Manage) Staging(ctx context.Context, command string, host *string) error {
	return manage(ctx, "staging", command, host)
}

// Env runs a manage.py command on a host of the named environment.
func (Manage) Env(ctx context.Context, name, command string, host *string) error {
	return manage(ctx, name, command, host)
}

// manage splits the command as a shell would (Mage passes it as one
// argument) and runs it with this terminal, if there is one.
func manage(ctx context.Context, env, command string, host *string) error {
	args, err := shell.Fields(command, os.Getenv)
	if err != nil {
		return fmt.Errorf("the command %q: %w", command, err)
	}
	if len(args) == 0 {
		return fmt.Errorf("no manage.py command: write one, as in mage manage:%s 'showmigrations'", env)
	}
	site, hostOpts, err := load(env, false)
	if err != nil {
		return err
	}
	opts := targets.ManageOptions{Options: hostOpts, Terminal: remote.Terminal{In: os.Stdin, Out: os.Stdout, Err: os.Stderr,
		TTY: term.IsTerminal(int(os.Stdin.Fd())) && term.IsTerminal(int(os.Stdout.Fd()))}}
	if host != nil {
		opts.Host = *host
	}
	return targets.Manage(ctx, site, env, args, opts)
}

// Logs shows the end of each host's logs, behind the host's name: the application server's (Django's errors among them), the site's own and the web server's; -f=true follows them, -lines=N shows N lines of each.
type Logs mg.Namespace

// Production shows the logs of the production hosts.
func (Logs) Production(ctx context.Context, f *bool, lines *int) error {
	return logs(ctx, "production", f, lines)
}

// Staging shows the logs of the staging hosts.
func (Logs) Staging(ctx context.Context, f *bool, lines *int) error {
	return logs(ctx, "staging", f, lines)
}

// Env shows the logs of the hosts of the named environment.
func (Logs) Env(ctx context.Context, name string, f *bool, lines *int) error {
	return logs(ctx, name, f, lines)
}

func logs(ctx context.Context, env string, follow *bool, lines *int) error {
	site, hostOpts, err := load(env, false)
	if err != nil {
		return err
	}
	opts := targets.LogsOptions{Options: hostOpts}
	if follow != nil {
		opts.Follow = *follow
	}
	if lines != nil {
		opts.Lines = *lines
	}
	return targets.Logs(ctx, site, env, opts)
}

// Release packages the site's Django source into a reproducible tarball in dist/ and prints its path, size and sha256; in mode: container it also builds the image and pushes it.
func Release(ctx context.Context) error {
	site, err := loaded.site()
	if err != nil {
		return err
	}
	artifact, err := release.Build(ctx, site, release.Options{Out: os.Stdout})
	if err != nil {
		return err
	}
	loaded.setArtifact(artifact)
	// In mode: container the release is also an image, pushed to each
	// environment's registry.
	for _, name := range site.EnvironmentNames() {
		if !site.Environments[name].Settings.Container() {
			continue
		}
		values, err := loaded.secrets(site, name)
		if err != nil {
			return fmt.Errorf("the image for %s needs its registry login: %w", name, err)
		}
		if _, err := release.BuildImage(ctx, site, name, artifact.Path, release.ImageOptions{Secrets: values, Out: os.Stdout}); err != nil {
			return fmt.Errorf("image for %s: %w", name, err)
		}
	}
	return nil
}

// Check validates the site file and lists its environments and hosts.
func Check() error {
	site, err := sites.Select()
	if err != nil {
		return err
	}
	fmt.Printf("%s is valid: project %s, source %s\n", site.File, site.Settings.Project, sourceOf(site))
	for _, name := range site.EnvironmentNames() {
		env := site.Environments[name]
		hosts := make([]string, len(env.Hosts))
		for i, h := range env.Hosts {
			hosts[i] = h.String()
		}
		s := env.Settings
		fmt.Printf("  %-12s %s over %s: %s (%s + %s, %s)\n", name, s.URL, s.Connection, strings.Join(hosts, ", "), s.Webserver, s.AppServer, s.Database.Engine)
	}
	return nil
}

func sourceOf(site *sites.Site) string {
	if g := site.Settings.Source.Git; g != "" {
		return g
	}
	return site.Settings.Source.Path
}
