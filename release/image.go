package release

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/djship/djship/scripts"
	"github.com/djship/djship/sites"
	"github.com/djship/djship/templates"
)

// The image of a release, in container mode: mage release builds it from
// the release tarball on this machine with docker build, tags it with the
// revision and pushes it to the environment's registry. The tarball's
// image record (<tarball>.images.json) keeps each pushed image's
// reference pinned by digest; an upgrade ships exactly that image.

// ImageOptions are the inputs of BuildImage.
type ImageOptions struct {
	// Secrets are the environment's secrets: the registry password.
	Secrets map[string]string
	// Out receives the build's progress; nothing is printed when nil.
	Out io.Writer
	// Docker is the docker command; "docker" when empty.
	Docker string
}

// imageRecord is the path of a tarball's image record.
func imageRecord(tarball string) string { return tarball + ".images.json" }

// ImageOf is the image mage release pushed for a tarball to the
// repository name (registry host and image), pinned by digest.
func ImageOf(tarball, name string) (string, error) {
	images, err := readImageRecord(tarball)
	if err != nil {
		return "", err
	}
	ref, ok := images[name]
	if !ok {
		return "", fmt.Errorf("no image %s of %s: run mage release, which builds and pushes it in mode: container", name, filepath.Base(tarball))
	}
	return ref, nil
}

func readImageRecord(tarball string) (map[string]string, error) {
	images := map[string]string{}
	data, err := os.ReadFile(imageRecord(tarball))
	if errors.Is(err, os.ErrNotExist) {
		return images, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(data, &images); err != nil {
		return nil, fmt.Errorf("%s: %w", imageRecord(tarball), err)
	}
	return images, nil
}

// imageTag is a revision as an image tag: characters a tag may not hold
// become -.
var tagUnsafe = regexp.MustCompile(`[^A-Za-z0-9_.-]`)

func imageTag(revision string) string {
	tag := tagUnsafe.ReplaceAllString(revision, "-")
	if tag == "" || strings.HasPrefix(tag, ".") || strings.HasPrefix(tag, "-") {
		tag = "r" + tag
	}
	if len(tag) > 128 {
		tag = tag[:128]
	}
	return tag
}

// BuildImage builds the image of a release tarball for an environment in
// container mode, pushes it and records its digest beside the tarball.
// An image already recorded for the tarball is not built again. The
// build context is the tarball unpacked (src/) and djship's launchers and
// virtualenv script (djship/); the Dockerfile is the project's own when
// its source has one at the top, else the one djship writes
// (templates.Dockerfile).
func BuildImage(ctx context.Context, site *sites.Site, envName, tarball string, opts ImageOptions) (string, error) {
	env, err := site.Environment(envName)
	if err != nil {
		return "", err
	}
	s := env.Settings
	if !s.Container() {
		return "", fmt.Errorf("environment %s is in mode: %s, which ships no image", envName, s.Mode)
	}
	docker := opts.Docker
	if docker == "" {
		docker = "docker"
	}
	out := opts.Out
	if out == nil {
		out = io.Discard
	}
	name := s.ImageName()
	images, err := readImageRecord(tarball)
	if err != nil {
		return "", err
	}
	if ref, ok := images[name]; ok {
		fmt.Fprintf(out, "image %s (built before for %s)\n", ref, filepath.Base(tarball))
		return ref, nil
	}
	t, err := Inspect(tarball, s)
	if err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp("", "djship-image-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	if err := writeBuildContext(dir, tarball, t, s); err != nil {
		return "", fmt.Errorf("image of %s: %w", filepath.Base(tarball), err)
	}
	tagged := name + ":" + imageTag(t.Manifest.Revision)
	fmt.Fprintf(out, "building image %s from %s\n", tagged, filepath.Base(tarball))
	build := exec.CommandContext(ctx, docker, "build", "--quiet", "--tag", tagged, dir)
	build.Env = append(os.Environ(), "DOCKER_BUILDKIT=0")
	var buildOut bytes.Buffer
	build.Stdout, build.Stderr = &buildOut, &buildOut
	start := time.Now()
	if err := build.Run(); err != nil {
		return "", fmt.Errorf("docker build of %s: %w\n%s", tagged, err, lastLines(buildOut.String(), 30))
	}
	built := time.Since(start).Round(time.Millisecond)
	start = time.Now()
	ref, err := pushImage(ctx, docker, s.Registry, tagged, opts.Secrets)
	if err != nil {
		return "", err
	}
	pushed := time.Since(start).Round(time.Millisecond)
	images[name] = ref
	data, _ := json.MarshalIndent(images, "", "  ")
	if err := os.WriteFile(imageRecord(tarball), append(data, '\n'), 0o644); err != nil {
		return "", err
	}
	fmt.Fprintf(out, "pushed %s (built in %s, pushed in %s)\n", ref, built, pushed)
	return ref, nil
}

// imageVenv is how the image's virtualenv is built, for the release
// unpacked in src: build-venv.sh's arguments after the virtualenv and
// Python, and what of the source it reads. The requirements file is the
// one beside manage.py, or else the one at the top of the source, as on
// a host. Inside the image build the script runs in Docker, never on
// this machine.
func imageVenv(src string, s sites.Settings) (args, inputs []string, apart bool) {
	django := path.Join(templates.ImageRelease, "src", path.Clean(s.Django.SourceFolder))
	req := ""
	apart = true
	if s.Django.PipInstallRequirements {
		for _, dir := range []string{path.Clean(s.Django.SourceFolder), "."} {
			file := filepath.Join(src, filepath.FromSlash(dir), "requirements.txt")
			if info, err := os.Stat(file); err == nil && info.Mode().IsRegular() {
				req = path.Join(templates.ImageRelease, "src", dir, "requirements.txt")
				inputs = append(inputs, path.Join(dir, "requirements.txt"))
				data, err := os.ReadFile(file)
				apart = err == nil && requirementsStandAlone(string(data))
				break
			}
		}
	}
	wheelhouse := ""
	if s.Django.Wheelhouse != "" {
		wheelhouse = path.Join(django, s.Django.Wheelhouse)
		inputs = append(inputs, path.Join(path.Clean(s.Django.SourceFolder), s.Django.Wheelhouse)+"/")
	}
	for _, dep := range s.Django.Dependencies {
		apart = apart && requirementStandsAlone(dep)
	}
	args = append([]string{"image", django, fmt.Sprint(s.Django.SystemSitePackages), req, wheelhouse}, s.Django.Dependencies...)
	return args, inputs, apart
}

// requirementsStandAlone reports whether pip reads nothing of the
// source but the file itself when it installs a requirements file: no
// other file it includes (-r, -c), no editable or local project (-e, a
// path, file:), no local folder of archives (-f).
func requirementsStandAlone(file string) bool {
	for _, line := range strings.Split(strings.ReplaceAll(file, "\\\n", " "), "\n") {
		if i := strings.Index(line, "#"); i >= 0 && (i == 0 || line[i-1] == ' ' || line[i-1] == '\t') {
			line = line[:i]
		}
		if line = strings.TrimSpace(line); line != "" && !requirementStandsAlone(line) {
			return false
		}
	}
	return true
}

// standAloneOptions are the options of a requirements file that name no
// file: where the packages come from, and which builds pip may use.
var standAloneOptions = []string{"-i", "--index-url", "--extra-index-url", "--trusted-host", "--pre", "--prefer-binary", "--only-binary", "--no-binary"}

// requirementStandsAlone reports whether one requirement (a line of a
// requirements file, or a word of django.dependencies) names a package
// of an index or a remote URL rather than a file of the source.
func requirementStandsAlone(req string) bool {
	req = strings.TrimSpace(req)
	if strings.HasPrefix(req, "-") {
		option, _, _ := strings.Cut(strings.Fields(req)[0], "=")
		return slices.Contains(standAloneOptions, option)
	}
	name, url, hasURL := strings.Cut(req, "@")
	if strings.HasPrefix(req, ".") || strings.HasPrefix(req, "~") || strings.ContainsAny(name, "/\\") || strings.Contains(strings.ToLower(req), "file:") {
		return false
	}
	return !hasURL || strings.Contains(url, "://")
}

// writeBuildContext unpacks the tarball into dir/src and writes
// dir/djship (the launchers, build-venv.sh as venv.sh, the build-time
// environment) and
// dir/Dockerfile.
func writeBuildContext(dir, tarball string, t *Tarball, s sites.Settings) error {
	src := filepath.Join(dir, "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		return err
	}
	if out, err := exec.Command("tar", "-x", "-f", tarball, "-C", src).CombinedOutput(); err != nil {
		return fmt.Errorf("unpacking: %v: %s", err, out)
	}
	if err := deflateArchives(dir, src, s); err != nil {
		return err
	}
	lib := filepath.Join(dir, "djship")
	if err := os.MkdirAll(lib, 0o755); err != nil {
		return err
	}
	files := map[string]string{filepath.Base(templates.ImageVenvScript): scripts.Text("build-venv.sh")}
	for p, text := range templates.Launchers {
		files[filepath.Base(p)] = text
	}
	// collectstatic at build time sees the settings module and the
	// site's own variables; no secret, no database.
	buildEnv := map[string]string{"DJANGO_SETTINGS_MODULE": s.Django.SettingsModule, "DATABASE_ENGINE": "sqlite",
		"DATABASE_PATH": "/tmp/djship-build.sqlite3", "DATABASE_URL": "sqlite:////tmp/djship-build.sqlite3", "DJSHIP_DATA_DIR": "/tmp"}
	for k, v := range s.Django.Environment {
		buildEnv[k] = v
	}
	envData, err := templates.RenderEnvironment(buildEnv)
	if err != nil {
		return err
	}
	files[filepath.Base(templates.ImageBuildEnvironment)] = string(envData)
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(lib, name), []byte(text), 0o644); err != nil {
			return err
		}
	}
	dockerfile, err := os.ReadFile(filepath.Join(src, "Dockerfile"))
	if errors.Is(err, os.ErrNotExist) {
		args, inputs, apart := imageVenv(src, s)
		dockerfile, err = templates.Dockerfile(templates.ImageBuild{
			Base: s.BaseImage, Project: s.Project, Revision: t.Manifest.Revision, SourceFolder: s.Django.SourceFolder,
			VenvArgs: args, VenvFirst: apart, VenvInputs: inputs,
		})
	}
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "Dockerfile"), dockerfile, 0o644)
}

// deflateArchives unpacks django.archives_to_deflate into the build
// context's sources, with the scripts the hosts' unpack step runs: each
// archive alone into an empty folder, then moved into its folder entry
// by entry, never through a link; after each, every link of the sources
// must lead inside them. The tarball inspection has judged the archives
// before.
func deflateArchives(dir, src string, s sites.Settings) error {
	if len(s.Django.ArchivesToDeflate) == 0 {
		return nil
	}
	stage := filepath.Join(dir, "unpack")
	if err := os.Mkdir(stage, 0o700); err != nil {
		return err
	}
	defer os.RemoveAll(stage)
	real, err := filepath.EvalSymlinks(src)
	if err != nil {
		return err
	}
	folder := filepath.Join(real, filepath.FromSlash(path.Clean(s.Django.SourceFolder)))
	for _, a := range s.Django.ArchivesToDeflate {
		if strings.HasSuffix(a.Archive, ".zip") {
			if _, err := exec.LookPath("unzip"); err != nil {
				return fmt.Errorf("django.archives_to_deflate names %s, and this machine has no unzip to unpack it into the image: install it (apt-get install unzip)", a.Archive)
			}
		}
		deflate := exec.Command("sh", "-c", scripts.Text("deflate-archive.sh"), "deflate", real, stage,
			filepath.Join(folder, filepath.FromSlash(a.Archive)), filepath.Join(folder, filepath.FromSlash(a.Into)), a.Archive)
		if out, err := deflate.CombinedOutput(); err != nil {
			return fmt.Errorf("unpacking %s into %s (django.archives_to_deflate): %v: %s", a.Archive, a.Into, err, strings.TrimSpace(string(out)))
		}
		check := exec.Command("sh", "-c", scripts.Text("check-release.sh"), "check", real, filepath.Join(stage, "check"))
		if out, err := check.CombinedOutput(); err != nil {
			return fmt.Errorf("after unpacking %s (django.archives_to_deflate): %v: %s", a.Archive, err, strings.TrimSpace(string(out)))
		}
	}
	return nil
}

// pushImage pushes a tagged image to the registry and returns its
// reference pinned by digest. The password goes to docker login on
// standard input, into a Docker configuration of its own that is removed
// after the push.
func pushImage(ctx context.Context, docker string, r sites.Registry, tagged string, secrets map[string]string) (string, error) {
	config, err := os.MkdirTemp("", "djship-docker-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(config)
	if cfg, err := os.ReadFile(filepath.Join(os.Getenv("HOME"), ".docker", "config.json")); err == nil && r.Username == "" {
		// A registry without djship's login may have the user's own.
		os.WriteFile(filepath.Join(config, "config.json"), cfg, 0o600)
	}
	run := func(stdin io.Reader, args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, docker, append([]string{"--config", config}, args...)...)
		cmd.Stdin = stdin
		var b bytes.Buffer
		cmd.Stdout, cmd.Stderr = &b, &b
		err := cmd.Run()
		return b.String(), err
	}
	if r.Username != "" {
		password := secrets[r.PasswordSecret]
		if password == "" {
			return "", fmt.Errorf("the registry password %s is not in the secrets: mage secrets:set <env> %s", r.PasswordSecret, r.PasswordSecret)
		}
		if out, err := run(strings.NewReader(password), "login", "--username", r.Username, "--password-stdin", r.RegistryHost()); err != nil {
			return "", fmt.Errorf("docker login to %s as %s: %w\n%s", r.RegistryHost(), r.Username, err, lastLines(out, 10))
		}
	}
	if out, err := run(nil, "push", tagged); err != nil {
		return "", fmt.Errorf("docker push %s: %w\n%s", tagged, err, lastLines(out, 10))
	}
	out, err := run(nil, "image", "inspect", "--format", "{{json .RepoDigests}}", tagged)
	if err != nil {
		return "", fmt.Errorf("docker image inspect %s: %w\n%s", tagged, err, out)
	}
	var digests []string
	if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &digests); err != nil {
		return "", fmt.Errorf("docker image inspect %s: %q: %w", tagged, out, err)
	}
	repo := tagged[:strings.LastIndex(tagged, ":")]
	for _, d := range digests {
		if name, digest, ok := strings.Cut(d, "@"); ok && name == repo {
			return tagged + "@" + digest, nil
		}
	}
	return "", fmt.Errorf("docker push %s left no digest of %s (%s)", tagged, repo, strings.Join(digests, ", "))
}

// lastLines is the end of a command's output.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "  " + strings.Join(lines, "\n  ")
}
