package targets

import (
	"context"
	"fmt"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/djship/djship/release"
	"github.com/djship/djship/remote"
	"github.com/djship/djship/sites"
	"github.com/djship/djship/templates"
)

// Upgrade ships a release tarball to every host of the environment: it
// takes the lock on every host, names the release (one new name for all
// hosts, chosen under the lock), then runs the upgrade sequence on each
// host in parallel. The tarball is checked here first; on any failure the
// live site keeps (or gets back) its previous release.
func Upgrade(ctx context.Context, site *sites.Site, envName, tarball string, opts Options) ([]*Deploy, error) {
	u, err := prepareUpgrade(site, envName, tarball)
	if err != nil {
		return nil, err
	}
	return onHosts(ctx, site, envName, opts, hostRun{action: actionUpgrade, lockFirst: true, prepare: u.prepare, before: u.nameRelease,
		phased: func(ctx context.Context, deploys []*Deploy) map[*Deploy]hostOutcome {
			return newFleet(deploys, opts.Parallel).upgrade(ctx, u.sequence)
		}})
}

// upgradeRun is what an upgrade ships, worked out before any host is
// reached: the checked tarball, the image in container mode, and the
// sequence of the environment's mode with the steps a magefile added.
type upgradeRun struct {
	tarball  *release.Tarball
	image    string
	sequence sequence
}

// prepareUpgrade checks the tarball as every host of the environment
// unpacks it (each with its own source folder and archives) and places
// the added steps: a wrong tarball or a step added in a wrong place
// stops the run before it reaches any host.
func prepareUpgrade(site *sites.Site, envName, tarball string) (*upgradeRun, error) {
	env, err := site.Environment(envName)
	if err != nil {
		return nil, err
	}
	var check []sites.Settings
	for _, h := range env.Hosts {
		check = append(check, h.Settings)
	}
	if len(check) == 0 {
		check = append(check, env.Settings)
	}
	mode := runModeOf(env.Settings)
	seq, err := upgradeSequence(mode, site.Settings.Project)
	if err != nil {
		return nil, err
	}
	t, err := release.Inspect(tarball, check...)
	if err != nil {
		return nil, err
	}
	if t.Manifest.Project != site.Settings.Project {
		return nil, fmt.Errorf("%s is a release of %q, not of %q", tarball, t.Manifest.Project, site.Settings.Project)
	}
	u := &upgradeRun{tarball: t, sequence: seq}
	if u.image, err = mode.tarballImage(tarball, env.Settings); err != nil {
		return nil, err
	}
	return u, nil
}

// prepare gives a host's work the release it ships.
func (u *upgradeRun) prepare(d *Deploy) {
	d.Tarball, d.Revision, d.Image = u.tarball, u.tarball.Manifest.Revision, u.image
}

// nameRelease names the release, under the lock of every host: one new
// name for all.
func (u *upgradeRun) nameRelease(ctx context.Context, deploys []*Deploy) error {
	name, err := releaseName(ctx, deploys, u.tarball.Manifest.Revision)
	if err != nil {
		return fmt.Errorf("naming the release, nothing changed on any host: %w", err)
	}
	for _, d := range deploys {
		d.Release = name
	}
	return nil
}

// UpgradeSteps is the upgrade sequence of the README in process mode,
// once Upgrade holds the lock on every host and has named the release:
// steps up to "start new workers" change nothing a visitor sees (uWSGI's
// new workers start beside the live ones and must answer first);
// "switch" makes the release live; a failure after it switches back. On
// several hosts the sequence runs in phases (fleet.go): every host
// builds, one migrates, every web host starts its workers, then all
// switch.
func UpgradeSteps() []Step { return processUpgrade().steps() }

// processUpgrade is the upgrade sequence of process mode, as its phases.
func processUpgrade() sequence {
	return sequence{
		{phaseFacts, []Step{factsStep{}}},
		{phaseUpload, []Step{uploadStep{}}},
		{phaseBuild, []Step{releaseDirStep{}, unpackStep{}, venvStep{}, sharedStep{}, collectstaticStep{}, permissionsStep{}, checkDeployStep{}}},
		{phaseSnapshot, []Step{snapshotStep{}}},
		{phaseMigrate, []Step{migrateStep{}}},
		{phaseReady, []Step{startStep{}}},
		{phaseSwitch, []Step{switchStep{}, reloadStep{}, healthStep{}, restartProcessesStep{}}},
		{phaseFinish, []Step{retireStep{}, recordStep{}}},
	}
}

// releaseDir is the folder of the release being shipped.
func (d *Deploy) releaseDir() string { return path.Join(d.Paths.Releases, d.Release) }

// srcDir is the Django folder (holding manage.py) of the release.
func (d *Deploy) srcDir() string {
	return path.Join(d.releaseDir(), "src", path.Clean(d.Settings.Django.SourceFolder))
}

// uploadStep sends the tarball to versions/ unless it is there already.
type uploadStep struct{}

func (uploadStep) Name() string { return "upload" }

func (uploadStep) Run(ctx context.Context, d *Deploy) (bool, error) {
	return d.Host.Upload(ctx, remote.Upload{
		Path: path.Join(d.Paths.Versions, d.Tarball.Name()), LocalPath: d.Tarball.Path,
		Mode: 0o640, Owner: "root", Group: "root", Become: true,
	})
}

// releaseDirStep makes a new releases/<release>/, marked building. The
// release name is new on the host (releaseName), so the folder must not
// exist: djship never builds into a folder it did not make, least of all
// the live release.
type releaseDirStep struct{}

func (releaseDirStep) Name() string { return "release folder" }

func (releaseDirStep) Run(ctx context.Context, d *Deploy) (bool, error) {
	out, err := d.probe(ctx, shScript("release-folder", d.Paths.Current, d.releaseDir()))
	if err != nil {
		return false, err
	}
	exists, live, _ := strings.Cut(out, "\n")
	if live != "" && path.Base(live) == d.Release {
		return false, fmt.Errorf("release %s is live: djship never rebuilds the live release", d.Release)
	}
	if exists != "new" {
		return false, fmt.Errorf("%s exists already, though the release name was chosen new: djship never builds into a folder it did not make; ship again for a fresh name", d.releaseDir())
	}
	// mkdir without -p fails on a folder that appeared meanwhile: once
	// it succeeds, the folder is this run's.
	if _, err := d.run(ctx, remote.Sh("mkdir", "-p", "--", d.Paths.Releases)+" && "+remote.Sh("mkdir", "--", d.releaseDir())); err != nil {
		return false, err
	}
	d.progress.built = true
	_, err = d.run(ctx, remote.Sh("mkdir", "--", path.Join(d.releaseDir(), "src"))+" && "+shScript("mark-release", d.releaseDir(), "building"))
	return true, err
}

// unpackStep unpacks the tarball into src/, then each archive the site
// unpacks from it. Every entry was checked on this machine first; the
// host does not rely on that. The build user (buildUser) owns nothing
// but the empty src/ and a scratch folder, and unpacks each archive alone
// into an empty folder, so that no link it holds is there to follow yet
// (GNU tar and unzip make their own links last); an archive's content is
// then moved into its folder entry by entry, never through a link, and
// after each archive root checks that every link of src/ leads inside it
// and that no file has a hard link outside. src/ stays the build user's
// until the virtualenv step takes everything over.
type unpackStep struct{}

func (unpackStep) Name() string { return "unpack" }

// buildUser is the unprivileged system user that handles everything of a
// release before root takes it over: it unpacks the sources, creates the
// virtualenv, runs pip (and with it every setup.py and .pth of the
// dependencies) and byte-compiles the sources. Root runs nothing of the
// release.
const buildUser = "djship-unpack"

func (unpackStep) Run(ctx context.Context, d *Deploy) (bool, error) {
	tarball := path.Join(d.Paths.Versions, d.Tarball.Name())
	tarFlag, err := d.Tarball.TarFlag()
	if err != nil {
		return false, err
	}
	args := []string{d.releaseDir(), tarball, tarFlag, buildUser,
		path.Clean(d.Settings.Django.SourceFolder), script("deflate-archive.sh"), script("check-release.sh")}
	for _, a := range d.Settings.Django.ArchivesToDeflate {
		args = append(args, a.Archive, a.Into)
	}
	_, err = d.run(ctx, shScript("unpack", args...))
	return true, err
}

// venvStep builds the virtualenv, or reuses the previous release's when
// the dependency set is the same (hard-linked, with the scripts that name
// its path written anew), byte-compiles the sources, and hands the
// release to root. The build user runs pip, the compiler and everything
// they start, in an environment of its own; root kills whatever of it
// is left, checks the tree and takes it over without following a link.
// The release's own Python first runs as the application's user, to
// import Django.
type venvStep struct{}

func (venvStep) Name() string { return "virtualenv" }

// dependencyKey identifies what the virtualenv holds; the requirements
// file's hash is added on the host.
func (d *Deploy) dependencyKey() string {
	s := d.Settings
	return fmt.Sprintf("python=%s system=%v deps=%s requirements=%v wheelhouse=%s",
		s.Python, s.Django.SystemSitePackages, strings.Join(s.Django.Dependencies, ","), s.Django.PipInstallRequirements, s.Django.Wheelhouse)
}

func (venvStep) Run(ctx context.Context, d *Deploy) (bool, error) {
	s := d.Settings
	venv := path.Join(d.releaseDir(), "venv")
	args := []string{venv, s.Python, d.dependencyKey(), d.srcDir(),
		fmt.Sprint(s.Django.SystemSitePackages), fmt.Sprint(s.Django.PipInstallRequirements), s.Django.Wheelhouse, d.Paths.Current,
		buildUser, script("build-venv.sh"), script("take-over.sh"), script("check-release.sh")}
	args = append(args, s.Django.Dependencies...)
	res, err := d.Host.Run(ctx, d.withProxy(remote.Command{Script: shScript("venv", args...), Become: true}))
	if err != nil {
		return false, err
	}
	if strings.Contains(string(res.Stdout), "reused") {
		d.note("virtualenv reused from the previous release: the dependencies did not change")
	}
	if _, err := d.run(ctx, "cd / && "+asUserOnly(s.App.User, path.Join(venv, "bin", "python"), "-c", "import django")); err != nil {
		return true, fmt.Errorf("the virtualenv cannot import Django, so migrate could not run: add Django to django.dependencies (pip), or install Debian's with packages: [python3-django] and django.system_site_packages: true (%w)", err)
	}
	return true, nil
}

// sharedStep links the shared folders into the release.
type sharedStep struct{}

func (sharedStep) Name() string { return "shared folders" }

func (sharedStep) Run(ctx context.Context, d *Deploy) (bool, error) {
	r := d.releaseDir()
	script := remote.Sh("ln", "-sfn", "../../shared/media", path.Join(r, "media")) + " && " +
		remote.Sh("ln", "-sfn", "../../shared/logs", path.Join(r, "logs")) + " && " +
		remote.Sh("mkdir", "-p", "--", path.Join(r, "static"))
	_, err := d.run(ctx, script)
	return true, err
}

// snapshotStep saves the database before migrations: sqlite with its
// online backup, PostgreSQL with pg_dump -Fc.
type snapshotStep struct{}

func (snapshotStep) Name() string { return "database snapshot" }

func (snapshotStep) Run(ctx context.Context, d *Deploy) (bool, error) {
	s := d.Settings
	if s.Database.Engine == "sqlite" {
		db := path.Join(d.Paths.DB, s.Database.Path)
		out, err := d.probe(ctx, shScript("sqlite-snapshot", db, path.Join(d.Paths.Snapshots, d.Release+".sqlite3")))
		if err != nil {
			return false, err
		}
		return out == "saved", nil
	}
	_, err := d.withPGPassword(ctx, "pg-dump", append([]string{s.Database.Name, path.Join(d.Paths.Snapshots, d.Release+".dump")}, d.pgConnection()...)...)
	return err == nil, err
}

// migrateStep runs manage.py migrate as the application's user.
type migrateStep struct{}

func (migrateStep) Name() string { return "migrate" }

func (migrateStep) Run(ctx context.Context, d *Deploy) (bool, error) {
	return true, d.manage(ctx, "migrate", "--noinput")
}

// collectstaticStep asks the release's Django for its STATIC_ROOT and
// collects the static files there as the application's user (static/,
// or the project's own folder of the release, which static/ then links
// to).
type collectstaticStep struct{}

func (collectstaticStep) Name() string { return "collectstatic" }

// manageCommand is manage.py of a release run as the application's user,
// through the manage launcher, in the application's environment (and
// extra NAME=VALUE words), in the release's Django folder.
func (d *Deploy) manageCommand(release string, extra []string, args ...string) remote.Command {
	return d.mode.manage(d, release, extra, args...)
}

// venvManage is manage.py of a release in process mode: the release's
// virtualenv's Python runs it.
func (d *Deploy) venvManage(release string, extra []string, args ...string) remote.Command {
	r := path.Join(d.Paths.Releases, release)
	words := append([]string{path.Join(r, "venv", "bin", "python"), templates.ManageLauncherPath}, args...)
	script := remote.Sh("test", "-f", templates.ManageLauncherPath) + " || { echo " +
		remote.Quote(templates.ManageLauncherPath+" is missing: run mage provision:"+d.Env.Name+" first, which installs it") + " >&2; exit 1; }; " +
		d.asApp(append(append([]string{}, extra...), "PYTHONDONTWRITEBYTECODE=1"), words...)
	return remote.Command{Script: script, Dir: path.Join(r, "src", path.Clean(d.Settings.Django.SourceFolder)), Become: true}
}

// manage runs manage.py in the release being shipped, its output shown,
// with static/ as DJANGO_STATIC_ROOT.
func (d *Deploy) manage(ctx context.Context, args ...string) error {
	c := d.manageCommand(d.Release, []string{"DJANGO_STATIC_ROOT=" + path.Join(d.releaseDir(), "static")}, args...)
	_, err := d.Host.Run(ctx, c)
	if err != nil {
		return fmt.Errorf("manage.py %s: %w", strings.Join(args, " "), err)
	}
	return nil
}

func (collectstaticStep) Run(ctx context.Context, d *Deploy) (bool, error) {
	root, err := d.staticRoot(ctx)
	if err != nil {
		return false, err
	}
	// The application writes the static folder during collectstatic only.
	answer, err := d.probe(ctx, shScript("static-folder", d.releaseDir(), root, d.Settings.App.User+":"+d.Settings.App.Group))
	if err != nil {
		return false, err
	}
	if folder, linked := strings.CutPrefix(answer, "linked "); linked {
		d.note("static files: the project's STATIC_ROOT is %s; static/ links to it", folder)
	}
	if err := d.manage(ctx, "collectstatic", "--noinput"); err != nil {
		return false, err
	}
	return true, nil
}

// staticRoot asks the release's Django where collectstatic writes: its
// STATIC_ROOT with DJANGO_STATIC_ROOT set to the release's static/, as
// it is at run time.
func (d *Deploy) staticRoot(ctx context.Context) (string, error) {
	c := d.manageCommand(d.Release, []string{"DJANGO_STATIC_ROOT=" + path.Join(d.releaseDir(), "static")},
		"shell", "-c", "from django.conf import settings; print(settings.STATIC_ROOT or '')")
	c.Quiet = true
	res, err := d.Host.Run(ctx, c)
	if err != nil {
		return "", fmt.Errorf("asking Django for STATIC_ROOT (manage.py shell -c): %w", err)
	}
	lines := strings.Split(strings.TrimSpace(string(res.Stdout)), "\n")
	root := strings.TrimSpace(lines[len(lines)-1])
	if root == "" || !path.IsAbs(root) {
		return "", fmt.Errorf("the project's STATIC_ROOT is %q, so collectstatic has nowhere to write: set STATIC_ROOT = os.environ.get(\"DJANGO_STATIC_ROOT\"), which djship sets to the release's static/ when it builds and when it runs", root)
	}
	return root, nil
}

// checkDeployStep runs Django's deployment checks in the new release
// (django.check_deploy): a warning is a failure, found before anything
// switches.
type checkDeployStep struct{}

func (checkDeployStep) Name() string { return "deploy checks" }

func (checkDeployStep) Skip(d *Deploy) bool { return !d.Settings.Django.CheckDeploy }

func (checkDeployStep) Run(ctx context.Context, d *Deploy) (bool, error) {
	if err := d.manage(ctx, "check", "--deploy", "--fail-level", "WARNING"); err != nil {
		return false, fmt.Errorf("%w; the live release keeps serving: fix what the checks name, or silence one on purpose with SILENCED_SYSTEM_CHECKS", err)
	}
	return false, nil
}

// permissionsStep hands the release to root, readable by the application's
// group; the web server's group reads static/ only. No setuid or setgid
// bit is left. chown -h, chmod -R and setfacl -P never follow a link.
type permissionsStep struct{}

func (permissionsStep) Name() string { return "permissions" }

func (permissionsStep) Run(ctx context.Context, d *Deploy) (bool, error) {
	r, s := d.releaseDir(), d.Settings
	_, err := d.run(ctx, shScript("permissions", r, s.App.Group, s.Web.Group))
	return true, err
}

// switchStep points current at the new release atomically (a new link,
// then a rename over the old one) and, for uWSGI, app.sock at the new
// release's instance: the web server's next request reaches it.
type switchStep struct{}

func (switchStep) Name() string { return "switch" }

func (switchStep) Run(ctx context.Context, d *Deploy) (bool, error) {
	if err := d.switchTo(ctx, d.Release); err != nil {
		return false, err
	}
	d.progress.switched, d.progress.switchedAt = true, time.Now()
	if !d.serves() {
		return true, nil
	}
	return true, d.switchSlot(ctx)
}

// switchTo points current at releases/<release>.
func (d *Deploy) switchTo(ctx context.Context, release string) error {
	tmp := d.Paths.Current + ".djship-new"
	_, err := d.run(ctx, remote.Sh("ln", "-sfn", "--", path.Join("releases", release), tmp)+" && "+remote.Sh("mv", "-fT", "--", tmp, d.Paths.Current))
	return err
}

// reloadStep reloads gunicorn gracefully so that it serves the new
// release, or starts it on the first deploy. uWSGI needs none: its new
// instance serves since the switch.
type reloadStep struct{}

func (reloadStep) Name() string { return "reload" }

func (reloadStep) Skip(d *Deploy) bool { return d.slotted() || !d.serves() }

func (reloadStep) Run(ctx context.Context, d *Deploy) (bool, error) {
	if err := d.reloadApp(ctx); err != nil {
		return true, d.withAppLog(ctx, err)
	}
	return true, nil
}

// reloadApp makes gunicorn serve what current points to: it re-executes
// with USR2 (without systemd; the new master starts beside the old one)
// or restarts behind its systemd socket, which keeps accepting
// connections meanwhile.
func (d *Deploy) reloadApp(ctx context.Context) error {
	svc := d.app().service(d.slots.serving)
	if _, err := d.run(ctx, svc.status); err != nil {
		_, err := d.run(ctx, svc.start)
		return err
	}
	_, err := d.run(ctx, svc.restart)
	return err
}

// recordStep writes the deploy log, marks the release complete and prunes
// old releases. After the switch, a failure here is only a warning.
type recordStep struct{}

func (recordStep) Name() string { return "record, prune" }

func (recordStep) Run(ctx context.Context, d *Deploy) (bool, error) {
	if _, err := d.run(ctx, shScript("mark-release", d.releaseDir(), "complete")); err != nil {
		d.note("warning: could not mark %s complete: %v", d.Release, err)
	}
	if err := d.logResult(ctx, "ok"); err != nil {
		d.note("warning: could not write %s: %v", d.Paths.Log, err)
	}
	if err := d.prune(ctx); err != nil {
		d.note("warning: pruning old releases failed, the new release is live: %v", err)
	}
	return true, nil
}

// prune removes failed and unfinished releases, and complete ones beyond
// keep_releases, oldest first; never the live release or the previous one.
func (d *Deploy) prune(ctx context.Context) error {
	out, err := d.probe(ctx, shScript("list-releases", d.Paths.Releases))
	if err != nil {
		return err
	}
	type rel struct {
		time        string
		state, name string
	}
	var complete []rel
	var remove []string
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) != 3 || f[2] == d.Release || f[2] == d.facts.live {
			continue
		}
		if f[1] == "complete" {
			complete = append(complete, rel{f[0], f[1], f[2]})
		} else {
			remove = append(remove, f[2])
		}
	}
	sort.Slice(complete, func(i, j int) bool { return complete[i].time > complete[j].time })
	keep := d.Settings.KeepReleases - 1 // the new release counts
	if d.facts.live != "" {
		keep--
	}
	for i, r := range complete {
		if i >= keep {
			remove = append(remove, r.name)
		}
	}
	if len(remove) == 0 {
		return nil
	}
	d.mode.pruneOutside(ctx, d, remove)
	_, err = d.run(ctx, shScript("remove-releases", append([]string{d.Paths.Base}, remove...)...))
	if err == nil {
		d.note("pruned %s", strings.Join(remove, ", "))
	}
	return err
}

// releaseName is the revision, or, when any host ever used that name,
// the revision with the time appended (and a counter when that is used
// too): one name for all hosts, never used before on any of them. A name
// is used when a folder of releases/ has it or deploy.log records it,
// whatever the result. It runs under the lock of every host.
func releaseName(ctx context.Context, deploys []*Deploy, revision string) (string, error) {
	used := map[string]bool{}
	for _, d := range deploys {
		if err := d.usedNames(ctx, used); err != nil {
			return "", fmt.Errorf("%s: %w", d.Host.Name(), err)
		}
	}
	if !used[revision] {
		return revision, nil
	}
	stamped := revision + "-" + time.Now().UTC().Format("20060102T150405Z")
	name := stamped
	for i := 2; used[name]; i++ {
		name = fmt.Sprintf("%s-%d", stamped, i)
	}
	return name, nil
}

// usedNames adds the release names the host has used to names: the
// folders of releases/ and every release deploy.log records.
func (d *Deploy) usedNames(ctx context.Context, names map[string]bool) error {
	out, err := d.probe(ctx, shScript("list-folder", d.Paths.Releases))
	if err != nil {
		return fmt.Errorf("listing %s: %w", d.Paths.Releases, err)
	}
	for _, n := range strings.Split(out, "\n") {
		if n != "" {
			names[n] = true
		}
	}
	entries, err := d.readLog(ctx)
	if err != nil {
		return fmt.Errorf("reading %s: %w", d.Paths.Log, err)
	}
	for _, e := range entries {
		names[e.Release] = true
	}
	return nil
}
