package templates

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Container mode runs a release's image with Docker Compose. Each release
// gets a compose file in its folder; the slot it runs in (a or b, beside
// the other, as uWSGI's slots) names the compose project. Every container
// runs on the host's network as the application's user, with the host's
// environment file, secret file and shared folder mounted read-only (the
// secrets reach no image, no argv and no docker inspect), and the web
// server reaches gunicorn through a socket in the slot's run folder.

// Image paths: where the Dockerfile djship writes puts each part.
const (
	// ImageRelease is the release folder inside the image: src/, venv/,
	// static/, as in a release folder on a host.
	ImageRelease = "/app"
	// ImageVenv is the image's virtualenv.
	ImageVenv = ImageRelease + "/venv"
	// ImageStatic is where collectstatic writes at build time.
	ImageStatic = ImageRelease + "/static"
	// ImageBuildEnvironment is the environment file collectstatic runs
	// with at build time: the site's settings module and its own
	// variables, never a secret.
	ImageBuildEnvironment = LauncherDir + "/build-environment.json"
	// ImageVenvScript builds the virtualenv with the script the build
	// user runs on a host.
	ImageVenvScript = LauncherDir + "/venv.sh"
)

// ComposeService is one container of a release: the web service runs
// gunicorn, the others the site's processes.
type ComposeService struct {
	// Name is the service's name in the compose file.
	Name string
	// Command is the container's argv.
	Command []string
}

// ComposeProject is the compose file of one release.
type ComposeProject struct {
	// Project, Release and Revision say what runs.
	Project, Release, Revision string
	// Image is the image reference, pinned by digest when it is known.
	Image string
	// User is uid:gid, the application's user and the web server's group
	// (which gunicorn's socket gets).
	User string
	// Groups are more group ids: the application's group, which reads the
	// environment file.
	Groups []string
	// Environment are the containers' variables: where the environment
	// file is, never a secret.
	Environment map[string]string
	// Volumes are host-path:container-path[:ro] mounts.
	Volumes []string
	// Labels are added to every container.
	Labels map[string]string
	// StopGracePeriod is how long, in seconds, a stopping container may
	// take to finish its requests.
	StopGracePeriod int
	// WorkingDir is the containers' working folder: the Django folder.
	WorkingDir string
	// Services are the containers, the web service first.
	Services []ComposeService
}

// composeEscape doubles every $, which Compose would otherwise read as a
// variable of the shell that runs it: every value is literal.
func composeEscape(s string) string { return strings.ReplaceAll(s, "$", "$$") }

func composeStrings(in []string) []string {
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = composeEscape(s)
	}
	return out
}

func composeMap(in map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range in {
		out[composeEscape(k)] = composeEscape(v)
	}
	return out
}

// Compose renders a release's compose file. Every value is a YAML string
// written by the YAML encoder, with $ doubled, so that no value is read as
// YAML structure or as a Compose variable.
func Compose(p ComposeProject) ([]byte, error) {
	type service struct {
		Image           string            `yaml:"image"`
		Command         []string          `yaml:"command"`
		WorkingDir      string            `yaml:"working_dir"`
		NetworkMode     string            `yaml:"network_mode"`
		User            string            `yaml:"user"`
		GroupAdd        []string          `yaml:"group_add,omitempty"`
		Environment     map[string]string `yaml:"environment"`
		Volumes         []string          `yaml:"volumes"`
		Labels          map[string]string `yaml:"labels"`
		Restart         string            `yaml:"restart"`
		StopSignal      string            `yaml:"stop_signal"`
		StopGracePeriod string            `yaml:"stop_grace_period"`
		Init            bool              `yaml:"init"`
		Logging         map[string]any    `yaml:"logging"`
	}
	for _, v := range []string{p.Image, p.User} {
		if controlChar(v) || v == "" {
			return nil, refuse("compose", v)
		}
	}
	for _, v := range p.Volumes {
		if controlChar(v) || strings.Count(v, ":") > 2 {
			return nil, refuse("compose volume", v)
		}
	}
	services := map[string]service{}
	for _, s := range p.Services {
		if !composeServiceName.MatchString(s.Name) {
			return nil, refuse("compose service name", s.Name)
		}
		labels := composeMap(p.Labels)
		for k, v := range map[string]string{"io.djship.project": p.Project, "io.djship.release": p.Release, "io.djship.revision": p.Revision, "io.djship.service": s.Name} {
			labels[k] = composeEscape(v)
		}
		services[s.Name] = service{
			Image: composeEscape(p.Image), Command: composeStrings(s.Command), WorkingDir: composeEscape(p.WorkingDir), NetworkMode: "host",
			User: composeEscape(p.User), GroupAdd: composeStrings(p.Groups),
			Environment: composeMap(p.Environment), Volumes: composeStrings(p.Volumes), Labels: labels,
			Restart: "unless-stopped", StopSignal: "SIGTERM", StopGracePeriod: fmt.Sprintf("%ds", p.StopGracePeriod), Init: true,
			Logging: map[string]any{"driver": "json-file", "options": map[string]string{"max-size": "10m", "max-file": "3"}},
		}
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Managed by djship: release %s of %s, run with Docker Compose.\n", oneLine(p.Release), oneLine(p.Project))
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(map[string]any{"services": services}); err != nil {
		return nil, fmt.Errorf("render the compose file: %w", err)
	}
	return b.Bytes(), nil
}

var composeServiceName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// oneLine keeps a comment's value on its line.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, s)
}

// ImageBuild is what the Dockerfile djship writes needs.
type ImageBuild struct {
	// Base is the image it starts from.
	Base string
	// Project and Revision label the image.
	Project, Revision string
	// SourceFolder is the Django folder (holding manage.py) inside the
	// release's source, "." for its top.
	SourceFolder string
	// VenvArgs are the virtualenv script's arguments (build-venv.sh of
	// the scripts package) after the virtualenv and Python.
	VenvArgs []string
	// VenvFirst builds the virtualenv before the source is copied in,
	// from VenvInputs alone: a release that changes the rest of the
	// source then reuses the virtualenv's layer. It is set only when
	// what pip installs reads nothing else of the source.
	VenvFirst bool
	// VenvInputs are the files and folders of the source (relative to
	// its top, a folder ending in /) that the virtualenv is built from:
	// the requirements file, the wheelhouse.
	VenvInputs []string
}

// imageReference is what FROM takes: a registry host, a repository, a
// tag, a digest.
var imageReference = regexp.MustCompile(`^(?:[A-Za-z0-9.-]+(?::[0-9]{1,5})?/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[0-9a-f]{64})?$`)

// Dockerfile renders the Dockerfile of a release image: the release's
// source, a virtualenv built by the same script as on a host, static
// files collected at build time, and gunicorn's launcher. Every
// instruction but FROM is in exec form, its words JSON strings, so no
// value reaches a shell; FROM takes only an image reference.
func Dockerfile(b ImageBuild) ([]byte, error) {
	if !imageReference.MatchString(b.Base) {
		return nil, refuse("Dockerfile FROM", b.Base)
	}
	if !safeSourcePath(b.SourceFolder) {
		return nil, refuse("Dockerfile source folder", b.SourceFolder)
	}
	for _, in := range b.VenvInputs {
		if !safeSourcePath(in) || in == "" || path.Clean(in) == "." {
			return nil, refuse("Dockerfile virtualenv input", in)
		}
	}
	src := ImageRelease + "/src"
	if b.SourceFolder != "." && b.SourceFolder != "" {
		src += "/" + b.SourceFolder
	}
	words := func(w ...string) string {
		data, _ := json.Marshal(w)
		return string(data)
	}
	var out bytes.Buffer
	line := func(format string, args ...any) { fmt.Fprintf(&out, format+"\n", args...) }
	line("# Written by djship: the image of release %s of %s.", oneLine(b.Revision), oneLine(b.Project))
	line("FROM %s", b.Base)
	line("COPY %s", words("djship/", LauncherDir+"/"))
	venv := words(append([]string{"sh", ImageVenvScript, ImageVenv, "python3"}, b.VenvArgs...)...)
	if b.VenvFirst {
		for _, in := range b.VenvInputs {
			line("COPY %s", words("src/"+in, ImageRelease+"/src/"+in))
		}
		line("WORKDIR %s", src)
		line("RUN %s", venv)
		line("COPY %s", words("src/", ImageRelease+"/src/"))
	} else {
		line("COPY %s", words("src/", ImageRelease+"/src/"))
		line("RUN %s", venv)
		line("WORKDIR %s", src)
	}
	line("RUN %s", words("env", "DJSHIP_ENVIRONMENT="+ImageBuildEnvironment, ImageVenv+"/bin/python", ManageLauncherPath, "collectstatic", "--noinput"))
	line("RUN %s", words(ImageVenv+"/bin/python", "-m", "compileall", "-q", ImageRelease+"/src"))
	line("LABEL %s=%s %s=%s", "io.djship.project", words(b.Project)[1:len(words(b.Project))-1], "io.djship.revision", words(b.Revision)[1:len(words(b.Revision))-1])
	line("CMD %s", words(ImageVenv+"/bin/python", GunicornLauncherPath, WSGIModule+":application"))
	return out.Bytes(), nil
}

// safeSourcePath reports whether p names a place inside the source
// that a Dockerfile instruction may carry: relative, without .., spaces,
// backslashes, $ or control characters.
func safeSourcePath(p string) bool {
	return !controlChar(p) && !strings.ContainsAny(p, " \t\\$") && !strings.HasPrefix(p, "/") && !slices.Contains(strings.Split(p, "/"), "..")
}

// ComposeExtra is one of the site's own services (compose.services).
type ComposeExtra struct {
	// Name, Image and Command are the service, its image and its argv.
	Name, Image string
	Command     []string
	// Environment are its variables.
	Environment map[string]string
	// Volumes are its mounts; a source without / is a named volume.
	Volumes []string
}

// ComposeServicesFile renders the compose project of the site's own
// services: like Compose, every value a YAML string with $ doubled.
func ComposeServicesFile(project string, extras []ComposeExtra) ([]byte, error) {
	services, volumes := map[string]any{}, map[string]any{}
	for _, e := range extras {
		if !composeServiceName.MatchString(e.Name) || !imageReference.MatchString(e.Image) {
			return nil, refuse("compose service", e.Name+" "+e.Image)
		}
		for _, v := range e.Volumes {
			source, _, _ := strings.Cut(v, ":")
			if controlChar(v) || strings.Count(v, ":") > 2 {
				return nil, refuse("compose volume", v)
			}
			if !strings.HasPrefix(source, "/") {
				if !composeServiceName.MatchString(source) {
					return nil, refuse("compose volume", v)
				}
				volumes[source] = map[string]any{}
			}
		}
		svc := map[string]any{
			"image": composeEscape(e.Image), "network_mode": "host", "restart": "unless-stopped",
			"environment": composeMap(e.Environment), "volumes": composeStrings(e.Volumes),
			"labels":  map[string]string{"io.djship.project": composeEscape(project), "io.djship.service": composeEscape(e.Name)},
			"logging": map[string]any{"driver": "json-file", "options": map[string]string{"max-size": "10m", "max-file": "3"}},
		}
		if len(e.Command) > 0 {
			svc["command"] = composeStrings(e.Command)
		}
		services[e.Name] = svc
	}
	file := map[string]any{"services": services}
	if len(volumes) > 0 {
		file["volumes"] = volumes
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Managed by djship: the services of %s, run with Docker Compose.\n", oneLine(project))
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(file); err != nil {
		return nil, fmt.Errorf("render the services' compose file: %w", err)
	}
	return b.Bytes(), nil
}

// ComposeDatabase is the compose project of a PostgreSQL server that runs
// as a service of its own (compose.database).
type ComposeDatabase struct {
	// Project names the site; Image is the server's image.
	Project, Image string
	// User and Name are the role and the database the image creates.
	User, Name string
	// PasswordFile is the host file holding the role's password, mounted
	// read-only: the password is in no environment and no argv.
	PasswordFile string
	// Volume is the named volume of the server's data.
	Volume string
	// Port is where the server answers, on 127.0.0.1.
	Port int
}

// ComposeDatabaseFile renders the compose file of the database service:
// like Compose, every value a YAML string with $ doubled.
func ComposeDatabaseFile(db ComposeDatabase) ([]byte, error) {
	for _, v := range []string{db.Image, db.User, db.Name, db.PasswordFile, db.Volume} {
		if v == "" || controlChar(v) {
			return nil, refuse("compose database", v)
		}
	}
	if !imageReference.MatchString(db.Image) || !composeServiceName.MatchString(db.Volume) || strings.Contains(db.PasswordFile, ":") {
		return nil, refuse("compose database", db.Image+" "+db.Volume+" "+db.PasswordFile)
	}
	const secret = "/run/secrets/djship-database-password"
	file := map[string]any{
		"services": map[string]any{"postgres": map[string]any{
			"image": composeEscape(db.Image),
			"environment": map[string]string{"POSTGRES_USER": composeEscape(db.User), "POSTGRES_DB": composeEscape(db.Name),
				"POSTGRES_PASSWORD_FILE": secret},
			"volumes":           []string{composeEscape(db.Volume) + ":/var/lib/postgresql/data", composeEscape(db.PasswordFile) + ":" + secret + ":ro"},
			"ports":             []string{fmt.Sprintf("127.0.0.1:%d:5432", db.Port)},
			"restart":           "unless-stopped",
			"stop_signal":       "SIGINT",
			"stop_grace_period": "60s",
			"labels":            map[string]string{"io.djship.project": composeEscape(db.Project), "io.djship.service": "database"},
			"logging":           map[string]any{"driver": "json-file", "options": map[string]string{"max-size": "10m", "max-file": "3"}},
		}},
		"volumes": map[string]any{composeEscape(db.Volume): map[string]any{}},
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Managed by djship: the PostgreSQL server of %s, run with Docker Compose.\n", oneLine(db.Project))
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(file); err != nil {
		return nil, fmt.Errorf("render the database compose file: %w", err)
	}
	return b.Bytes(), nil
}
