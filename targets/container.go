package targets

import (
	"context"
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"

	"github.com/djship/djship/release"
	"github.com/djship/djship/remote"
	"github.com/djship/djship/sites"
	"github.com/djship/djship/templates"
)

// Container mode (mode: container) runs each release's image with Docker
// Compose instead of a virtualenv under the host's init system. The rest
// is the process mode's: the release folder (holding the compose file,
// the image's reference and its static files, which the web server
// serves), the lock, the snapshot, migrate run once in a one-off
// container, the two slots (slots.go) that switch through app.sock, the
// health check, the switch back, the deploy log. What differs lives
// here, as containerRuntime's methods (mode.go).

// containerRuntime is container mode: each release's containers run in
// one of two slots, as a compose project of its own.
type containerRuntime struct{}

func (containerRuntime) name() string         { return "container" }
func (containerRuntime) upgrade() sequence    { return containerUpgrade() }
func (containerRuntime) provision() []Step    { return containerProvision() }
func (containerRuntime) slotProtocol() string { return "http" }

func (containerRuntime) packages(d *Deploy) []string { return d.ownPackagesContainer() }

func (containerRuntime) slotted(*Deploy) bool { return true }

func (containerRuntime) appServer(d *Deploy) appServer { return d.newAppServer(true) }

// appFiles is empty: the application server is in the image.
func (containerRuntime) appFiles(*Deploy) []string { return nil }

func (containerRuntime) appLogs(d *Deploy) []string {
	return []string{"docker:" + d.Settings.Instance}
}

func (containerRuntime) slotLog(ctx context.Context, d *Deploy, slot string) (string, string) {
	out, _ := d.probe(ctx, d.containerScript("logs", slot))
	return out, "docker logs of " + d.app().instance(slot) + "'s web container"
}

func (containerRuntime) startSlot(ctx context.Context, d *Deploy, release, slot string) error {
	return d.startContainers(ctx, release, slot)
}

func (containerRuntime) stopSlot(d *Deploy, slot string, _ bool) string {
	return d.containerScript("stop", slot)
}

func (containerRuntime) drainSlot(d *Deploy, slot string) string {
	return shScript("detach", script("container-slot.sh"), "container-slot", "drain", d.app().instance(slot), d.Paths.slot(slot), d.Paths.containerRunDir(slot))
}

// afterWebReload has nothing left to do: the live slot's containers
// serve, and the site's processes are containers of each release.
func (containerRuntime) afterWebReload(context.Context, *Deploy) (bool, error) { return false, nil }

func (containerRuntime) manage(d *Deploy, release string, extra []string, args ...string) remote.Command {
	return d.containerManage(release, extra, args...)
}

func (containerRuntime) image(ctx context.Context, d *Deploy, release string) string {
	return d.imageOf(ctx, release)
}

// pruneOutside removes the images of the pruned releases.
func (containerRuntime) pruneOutside(ctx context.Context, d *Deploy, releases []string) {
	d.run(ctx, shScript("remove-images", append([]string{d.Paths.Releases}, releases...)...))
}

// processNames is empty: the processes are containers of each
// release's compose project.
func (containerRuntime) processNames(*Deploy) []string { return nil }

func (containerRuntime) tarballImage(tarball string, s sites.Settings) (string, error) {
	return release.ImageOf(tarball, s.ImageName())
}

func (containerRuntime) socket(d *Deploy) string { return d.Paths.AppSocket }

// ContainerUpgradeSteps is the upgrade sequence of container mode: the
// release folder gets the image (pulled, its static files copied out) and
// a compose file; migrate runs in a one-off container; the new release's
// containers start beside the live ones, answer, and take app.sock.
func ContainerUpgradeSteps() []Step { return containerUpgrade().steps() }

// containerUpgrade is the upgrade sequence of container mode, as its
// phases.
func containerUpgrade() sequence {
	return sequence{
		{phaseFacts, []Step{factsStep{}}},
		{phaseBuild, []Step{releaseDirStep{}, pullStep{}, sharedStep{}, permissionsStep{}, composeStep{}, checkDeployStep{}}},
		{phaseSnapshot, []Step{snapshotStep{}}},
		{phaseMigrate, []Step{migrateStep{}}},
		{phaseReady, []Step{startStep{}}},
		{phaseSwitch, []Step{switchStep{}, healthStep{}}},
		{phaseFinish, []Step{retireStep{}, recordStep{}}},
	}
}

// containerProvision is the provision list of container mode: Docker,
// the compose database and services, and no virtualenv launchers,
// application server or processes of the host's init system.
func containerProvision() []Step {
	return provisionList([]Step{dockerStep{}, databaseContainerStep{}, servicesContainersStep{}}, nil)
}

// containerRunDir is a slot's run folder: gunicorn's socket and the web
// container's host pid.
func (p Paths) containerRunDir(slot string) string { return path.Join(p.Base, "run", "slot-"+slot) }

// composeFile is a release's compose file.
func (d *Deploy) composeFile(release string) string {
	return path.Join(d.Paths.Releases, release, "compose.yml")
}

// containerScript runs container-slot.sh for a slot.
func (d *Deploy) containerScript(action, slot string, args ...string) string {
	return shScript("container-slot", append([]string{action, d.app().instance(slot), d.Paths.slot(slot), d.Paths.containerRunDir(slot)}, args...)...)
}

// ownPackagesContainer are the packages a host of container mode needs
// besides Docker (dockerStep): the web server and what djship's steps
// run on the host itself.
func (d *Deploy) ownPackagesContainer() []string {
	pkgs := []string{"acl", "openssl", "curl", "python3", d.Settings.Webserver}
	if d.Settings.Database.Engine == "postgres" {
		return append(pkgs, "postgresql-client")
	}
	return append(pkgs, "sqlite3")
}

// dockerStep makes sure the host runs containers: Docker and Compose
// (Debian's docker.io and docker-compose when the host has neither, or
// what it has, such as Docker's own packages), the daemon running and
// started at boot, and the slots' run folders.
type dockerStep struct{}

func (dockerStep) Name() string { return "docker" }

func (dockerStep) Run(ctx context.Context, d *Deploy) (bool, error) {
	missing, err := d.probe(ctx, shScript("docker-check"))
	if err != nil {
		return false, err
	}
	changed := false
	if missing == "docker" || missing == "compose" {
		pkgs := []string{"docker-compose"}
		if missing == "docker" {
			pkgs = append([]string{"docker.io"}, pkgs...)
		}
		if d.Check {
			d.plan("install %s", strings.Join(pkgs, ", "))
			return true, nil
		}
		if _, err := d.Host.Run(ctx, d.withProxy(remote.Command{Script: shScript("install-packages", append([]string{"no-recommends"}, pkgs...)...), Become: true})); err != nil {
			return false, fmt.Errorf("installing %s: %w", strings.Join(pkgs, ", "), err)
		}
		changed = true
		if missing, err = d.probe(ctx, shScript("docker-check")); err != nil {
			return changed, err
		}
	}
	if missing == "daemon" {
		if d.Check {
			d.plan("start the Docker daemon")
		} else {
			out, err := d.probe(ctx, shScript("docker-start", d.facts.init))
			if err != nil {
				return changed, fmt.Errorf("start the Docker daemon: %w", err)
			}
			if out != "" {
				d.note("%s", out)
			}
		}
		changed = true
	}
	c, err := d.ensureDirs(ctx, []dir{{Path: path.Join(d.Paths.Base, "run"), Mode: 0o755, Owner: "root", Group: "root"}})
	return changed || c, err
}

// pullStep pulls the release's image on the host, copies its static
// files into the release folder and records the image's digest there.
// The registry password goes on standard input, into a Docker
// configuration that is gone when the step ends.
type pullStep struct{}

func (pullStep) Name() string { return "pull image" }

func (pullStep) Run(ctx context.Context, d *Deploy) (bool, error) {
	if d.Image == "" {
		return false, fmt.Errorf("no image for release %s: mage release builds and pushes it in mode: container", d.Revision)
	}
	r := d.Settings.Registry
	var password string
	if r.Username != "" {
		password = d.Secrets[r.PasswordSecret]
		if password == "" {
			return false, fmt.Errorf("the registry password %s is not in the secrets of %s: mage secrets:set %s %s", r.PasswordSecret, d.Env.Name, d.Env.Name, r.PasswordSecret)
		}
	}
	res, err := d.Host.Run(ctx, remote.Command{
		Script: shScript("container-pull", r.RegistryHost(), r.Username, d.Image, d.releaseDir(), templates.ImageStatic),
		Stdin:  strings.NewReader(password), Become: true, Quiet: true,
	})
	if err != nil {
		return false, fmt.Errorf("pulling %s: %w", d.Image, err)
	}
	d.note("image %s", strings.TrimSpace(string(res.Stdout)))
	return true, nil
}

// composeStep writes the release's compose file for the slot it is to
// start in, so that migrate runs with the containers' own settings.
type composeStep struct{}

func (composeStep) Name() string { return "compose file" }

func (composeStep) Run(ctx context.Context, d *Deploy) (bool, error) {
	return d.writeCompose(ctx, d.Release, otherSlot(d.slots.serving))
}

// containerIDs are the numeric ids the containers run with: the
// application's user and group, and the web server's group.
func (d *Deploy) containerIDs(ctx context.Context) (uid, gid, webGID string, err error) {
	s := d.Settings
	out, err := d.probe(ctx, remote.Sh("id", "-u", "--", s.App.User)+" && "+remote.Sh("id", "-g", "--", s.App.User)+" && "+
		remote.Sh("getent", "group", "--", s.Web.Group)+" | cut -d: -f3")
	if err != nil {
		return "", "", "", fmt.Errorf("finding the ids of %s and %s: %w", s.App.User, s.Web.Group, err)
	}
	f := strings.Fields(out)
	if len(f) != 3 {
		return "", "", "", fmt.Errorf("finding the ids of %s and %s: got %q", s.App.User, s.Web.Group, out)
	}
	return f[0], f[1], f[2], nil
}

// composeProject is a release's compose project in a slot: gunicorn on
// the slot's socket, and each of the site's processes.
func (d *Deploy) composeProject(release, image, slot, uid, gid, webGID string) (templates.ComposeProject, error) {
	s, p := d.Settings, d.Paths
	run := p.containerRunDir(slot)
	src := path.Join(templates.ImageRelease, "src", path.Clean(s.Django.SourceFolder))
	python := templates.ImageVenv + "/bin/python"
	services := []templates.ComposeService{{Name: "web", Command: []string{python, templates.GunicornLauncherPath,
		"--bind", "unix:" + path.Join(run, "app.sock"), "--umask", "0007", "--chdir", src,
		"--workers", fmt.Sprint(s.App.Workers), "--timeout", fmt.Sprint(s.App.Timeout), "--graceful-timeout", fmt.Sprint(s.App.Timeout),
		"--max-requests", "5000", "--access-logfile", "-", "--error-logfile", "-",
		templates.WSGIModule + ":application"}}}
	for _, name := range slices.Sorted(maps.Keys(s.Processes)) {
		words, err := sites.ProcessCommand(s.Processes[name])
		if err != nil {
			return templates.ComposeProject{}, fmt.Errorf("process %s: %w", name, err)
		}
		services = append(services, templates.ComposeService{Name: "process-" + name, Command: append([]string{python, templates.ProcessLauncherPath}, words...)})
	}
	volumes := []string{p.Environment + ":" + p.Environment + ":ro", p.SecretPy + ":" + p.SecretPy + ":ro", p.Shared + ":" + p.Shared, run + ":" + run}
	if s.Database.Engine == "postgres" && (s.Database.Host == "" || s.Database.Host == "localhost") {
		// libpq's default socket, for a server on the host.
		volumes = append(volumes, "/var/run/postgresql:/var/run/postgresql")
	}
	volumes = append(volumes, s.Compose.Volumes...)
	return templates.ComposeProject{
		Project: s.Instance, Release: release, Revision: d.Revision, Image: image,
		User: uid + ":" + webGID, Groups: []string{gid},
		Environment: map[string]string{"DJSHIP_ENVIRONMENT": p.Environment, "DJSHIP_WSGI": s.Django.SettingsFolder + ".wsgi:application",
			"PYTHONDONTWRITEBYTECODE": "1", "DJSHIP_RELEASE": release},
		Volumes: volumes, Labels: s.Compose.Labels, StopGracePeriod: s.Compose.StopGracePeriod,
		WorkingDir: src, Services: services,
	}, nil
}

// writeCompose writes a release's compose file for a slot; the image is
// the one its folder records (pullStep).
func (d *Deploy) writeCompose(ctx context.Context, release, slot string) (bool, error) {
	image, err := d.probe(ctx, shScript("read-file", path.Join(d.Paths.Releases, release, "image")))
	if err != nil {
		return false, err
	}
	if image == "" {
		return false, fmt.Errorf("release %s has no image on this host (%s is missing)", release, path.Join(d.Paths.Releases, release, "image"))
	}
	uid, gid, webGID, err := d.containerIDs(ctx)
	if err != nil {
		return false, err
	}
	project, err := d.composeProject(release, image, slot, uid, gid, webGID)
	if err != nil {
		return false, err
	}
	data, err := templates.Compose(project)
	if err != nil {
		return false, err
	}
	return d.ensureFile(ctx, file{Path: d.composeFile(release), Data: data, Mode: 0o644, Owner: "root", Group: "root"})
}

// startContainers starts a release's containers in a slot.
func (d *Deploy) startContainers(ctx context.Context, release, slot string) error {
	if _, err := d.writeCompose(ctx, release, slot); err != nil {
		return err
	}
	uid, _, webGID, err := d.containerIDs(ctx)
	if err != nil {
		return err
	}
	_, err = d.run(ctx, d.containerScript("up", slot, path.Join("releases", release), uid+":"+webGID))
	return err
}

// imageOf is the image a release's folder records, "" for none.
func (d *Deploy) imageOf(ctx context.Context, release string) string {
	out, _ := d.probe(ctx, shScript("read-file", path.Join(d.Paths.Releases, release, "image")))
	return out
}

// containerManage is the one-off container that runs manage.py of a
// release: its compose file's web service, with the arguments.
func (d *Deploy) containerManage(release string, extra []string, args ...string) remote.Command {
	words := []string{path.Join(templates.ImageRelease, "src", path.Clean(d.Settings.Django.SourceFolder))}
	for _, e := range extra {
		words = append(words, "-e", e)
	}
	words = append(words, "web", templates.ImageVenv+"/bin/python", templates.ManageLauncherPath)
	words = append(words, args...)
	dir := path.Join(d.Paths.Releases, release)
	return remote.Command{Script: shScript("container-slot", append([]string{"run", d.Settings.Instance + "-run", dir, "-"}, words...)...), Become: true}
}

// composeDatabase reports whether the site's PostgreSQL server runs as a
// compose service of its own (compose.database).
func (d *Deploy) composeDatabase() bool { return d.Settings.Compose.Database != "" }

// databaseContainerStep runs the site's PostgreSQL server as a compose
// project of its own (<instance>-db), its data in a named volume, on
// 127.0.0.1 at database.port. The image creates the role and the
// database at its first start, with the password of a file mounted
// read-only (in a root-only folder on the host); when the secrets hold a
// new password, the role gets it.
type databaseContainerStep struct{}

func (databaseContainerStep) Name() string { return "database container" }

func (databaseContainerStep) Skip(d *Deploy) bool { return !d.composeDatabase() }

func (databaseContainerStep) Run(ctx context.Context, d *Deploy) (bool, error) {
	db := d.Settings.Database
	password := d.Secrets[db.PasswordSecret]
	if password == "" {
		return false, fmt.Errorf("database.password_secret %s is not in the secrets of %s", db.PasswordSecret, d.Env.Name)
	}
	folder := path.Join(d.Paths.Base, "database")
	project := d.Settings.Instance + "-db"
	spec := templates.ComposeDatabase{Project: d.Settings.Instance, Image: d.Settings.Compose.Database, User: db.User, Name: db.Name,
		PasswordFile: path.Join(folder, "password"), Volume: "pgdata", Port: db.Port}
	data, err := templates.ComposeDatabaseFile(spec)
	if err != nil {
		return false, err
	}
	changed, err := d.ensureDirs(ctx, []dir{{Path: folder, Mode: 0o700, Owner: "root", Group: "root"}})
	if err != nil {
		return changed, err
	}
	// Readable inside the container by the server's user, whatever its
	// id; on the host the root-only folder keeps it.
	c, err := d.ensureFiles(ctx,
		file{Path: spec.PasswordFile, Data: []byte(password), Mode: 0o444, Owner: "root", Group: "root"},
		file{Path: path.Join(folder, "compose.yml"), Data: data, Mode: 0o644, Owner: "root", Group: "root"})
	changed = changed || c
	if err != nil || d.Check {
		return changed, err
	}
	out, err := d.probe(ctx, shScript("container-db", project, path.Join(folder, "compose.yml"), fmt.Sprint(db.Port)))
	if err != nil {
		return changed, fmt.Errorf("starting the PostgreSQL container: %w", err)
	}
	if strings.Contains(out, "started") {
		changed = true
		d.note("PostgreSQL runs in the compose project %s, on 127.0.0.1:%d", project, db.Port)
	}
	res, err := d.withPGPassword(ctx, "pg-login", fmt.Sprint(db.Port), db.User)
	if err != nil {
		return changed, err
	}
	if strings.TrimSpace(string(res.Stdout)) == "ok" {
		return changed, nil
	}
	// The image set the password at its first start; the secrets hold a
	// new one. The server trusts local connections inside its container.
	sql := fmt.Sprintf("ALTER ROLE %s PASSWORD %s;\n", sqlIdent(db.User), sqlString(password))
	script := remote.Sh("sh", "-c", `id=$(docker ps -q --filter "label=com.docker.compose.project=$1" --filter label=io.djship.service=database | head -n 1) && docker exec -i "$id" psql -X -q -v ON_ERROR_STOP=1 -p 5432 -U "$2" -d "$3"`, "alter", project, db.User, db.Name)
	if _, err := d.Host.Run(ctx, remote.Command{Script: script, Stdin: strings.NewReader(sql), Become: true, Quiet: true}); err != nil {
		return changed, fmt.Errorf("giving role %s the password of the secrets: %w", db.User, err)
	}
	d.note("role %s has the password of the secrets again", db.User)
	return true, nil
}

// servicesContainersStep runs the site's own services (compose.services)
// as a compose project of their own, <instance>-services, which no
// release switch touches.
type servicesContainersStep struct{}

func (servicesContainersStep) Name() string { return "compose services" }

func (servicesContainersStep) Skip(d *Deploy) bool { return len(d.Settings.Compose.Services) == 0 }

func (servicesContainersStep) Run(ctx context.Context, d *Deploy) (bool, error) {
	var extras []templates.ComposeExtra
	for _, name := range slices.Sorted(maps.Keys(d.Settings.Compose.Services)) {
		e := d.Settings.Compose.Services[name]
		extras = append(extras, templates.ComposeExtra{Name: name, Image: e.Image, Command: e.Command, Environment: e.Environment, Volumes: e.Volumes})
	}
	data, err := templates.ComposeServicesFile(d.Settings.Instance, extras)
	if err != nil {
		return false, err
	}
	folder := path.Join(d.Paths.Base, "services")
	changed, err := d.ensureDirs(ctx, []dir{{Path: folder, Mode: 0o755, Owner: "root", Group: "root"}})
	if err != nil {
		return changed, err
	}
	c, err := d.ensureFile(ctx, file{Path: path.Join(folder, "compose.yml"), Data: data, Mode: 0o644, Owner: "root", Group: "root"})
	changed = changed || c
	if err != nil || d.Check {
		return changed, err
	}
	project := d.Settings.Instance + "-services"
	script := shScript("container-slot", "start", project, folder, "-")
	if _, err := d.run(ctx, script); err != nil {
		return changed, fmt.Errorf("starting compose.services (%s): %w", project, err)
	}
	return changed, nil
}
