package sites

import (
	"fmt"
	"maps"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// The modes a site runs in on its hosts.
const (
	// ModeProcess runs a release folder with its own virtualenv under
	// uWSGI or gunicorn, started by the host's init system.
	ModeProcess = "process"
	// ModeContainer runs the release's image with Docker Compose: gunicorn
	// in a container, behind the same web server.
	ModeContainer = "container"
)

// Modes are the values of mode.
var Modes = []string{ModeProcess, ModeContainer}

// DefaultBaseImage is what the Dockerfile djship writes starts from
// unless base_image says otherwise: Debian's Python, as on the hosts of
// process mode.
const DefaultBaseImage = "python:3.11-slim-bookworm"

var (
	// imageRepository is a repository name as registries take it:
	// lower-case components separated by /, each letters and digits
	// joined by . _ __ or dashes.
	imageRepository = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$`)
	// imageReference is a repository, optionally behind a registry host
	// and port, with an optional tag and digest.
	imageReference = regexp.MustCompile(`^(?:[A-Za-z0-9.-]+(?::[0-9]{1,5})?/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[0-9a-f]{64})?$`)
	registryUser   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$`)
	labelName      = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,127}$`)
)

// Container reports whether the settings run the site in containers.
func (s Settings) Container() bool { return s.Mode == ModeContainer }

// RegistryHost is the registry's host[:port], as image references name
// it; "" when the URL is not valid.
func (r Registry) RegistryHost() string {
	u, err := url.Parse(r.URL)
	if err != nil {
		return ""
	}
	return u.Host
}

// ImageName is the image's repository with its registry, e.g.
// registry.example.com/acme/shop: tag it with a revision.
func (s Settings) ImageName() string {
	return s.Registry.RegistryHost() + "/" + s.Image
}

// checkContainer checks the keys of container mode, and that a site in
// process mode sets none of them.
func (c checker) checkContainer(s Settings) {
	c.oneOf("mode", s.Mode, Modes)
	if !s.Container() {
		for _, k := range []struct {
			key string
			set bool
		}{{"image", s.Image != ""}, {"base_image", s.BaseImage != ""}, {"registry", s.Registry != Registry{}},
			{"compose", s.Compose.StopGracePeriod != 0 || len(s.Compose.Labels) > 0 || len(s.Compose.Volumes) > 0 || s.Compose.AllowHostSystemMounts || s.Compose.Database != "" || len(s.Compose.Services) > 0}} {
			if k.set {
				c.problem(k.key, "%s only applies to mode: container; set mode: container or leave %s out", k.key, k.key)
			}
		}
		return
	}
	if c.required("image", s.Image, "the image's repository name in the registry, e.g. image: acme/shop") && (len(s.Image) > 200 || !imageRepository.MatchString(s.Image)) {
		c.problem("image", "image %q is not a repository name: use lower-case letters and digits, with . _ - inside a name and / between names, e.g. acme/shop (no registry host, no tag: djship tags with the revision)", s.Image)
	}
	if !imageReference.MatchString(s.BaseImage) || len(s.BaseImage) > 255 {
		c.problem("base_image", "base_image %q is not an image reference such as python:3.11-slim-bookworm or registry.example.com/base/python:3.11", s.BaseImage)
	}
	if c.required("registry.url", s.Registry.URL, "where mage release pushes the image and the hosts pull it, e.g. registry: {url: https://registry.example.com}") {
		if problem := registryURLProblem(s.Registry.URL); problem != "" {
			c.problem("registry.url", "registry.url %q %s", s.Registry.URL, problem)
		}
	}
	if s.Registry.Username != "" && !registryUser.MatchString(s.Registry.Username) {
		c.problem("registry.username", "registry.username %q must be letters, digits and . _ @ + -", s.Registry.Username)
	}
	if !envVarName.MatchString(s.Registry.PasswordSecret) {
		c.problem("registry.password_secret", "registry.password_secret %q must be a secret name such as REGISTRY_PASSWORD", s.Registry.PasswordSecret)
	} else if slices.Contains(s.Secrets.Keys, s.Registry.PasswordSecret) {
		// secrets.keys are what the application gets.
		c.problem("secrets.keys", "the registry password %s is listed in secrets.keys, which the application reads: leave it out of secrets.keys (mage secrets:set <env> %s stores it for djship alone)", s.Registry.PasswordSecret, s.Registry.PasswordSecret)
	}
	if _, written := c.at("app_server"); written && s.AppServer != "gunicorn" {
		c.problem("app_server", "app_server: %s does not apply to mode: container, where the image runs gunicorn: leave app_server out", s.AppServer)
	}
	if s.Compose.StopGracePeriod < 1 || s.Compose.StopGracePeriod > 3600 {
		c.problem("compose.stop_grace_period", "compose.stop_grace_period must be from 1 to 3600 seconds, not %d", s.Compose.StopGracePeriod)
	}
	if db := s.Compose.Database; db != "" {
		switch {
		case !imageReference.MatchString(db) || len(db) > 255:
			c.problem("compose.database", "compose.database %q is not an image reference such as postgres:15-bookworm", db)
		case s.Database.Engine != "postgres":
			c.problem("compose.database", "compose.database runs a PostgreSQL server: set database.engine: postgres, or leave compose.database out")
		case s.Database.Host != "127.0.0.1":
			c.problem("database.host", "database.host is %s, but compose.database runs the server on this host at 127.0.0.1: leave database.host out", s.Database.Host)
		}
	}
	c.checkComposeServices(s)
	for _, name := range sortedKeys(s.Compose.Labels) {
		if !labelName.MatchString(name) || strings.HasPrefix(name, "io.djship.") {
			c.problem("compose.labels", "compose.labels: %q is not a label name of your own: use lower-case letters, digits and . _ - (io.djship. is djship's)", name)
		} else if problem := valueProblem(s.Compose.Labels[name]); problem != "" {
			c.problem("compose.labels", "compose.labels: %s %s", name, problem)
		}
	}
	for i, v := range s.Compose.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) == 3 && (parts[2] == "ro" || parts[2] == "rw") {
			parts = parts[:2]
		}
		if len(parts) != 2 {
			c.problem("compose.volumes", "compose.volumes[%d] %q must be host-path:container-path, with :ro to mount it read-only", i, v)
			continue
		}
		clean := true
		for _, p := range parts {
			if problem := pathProblem(p, true); problem != "" {
				c.problem("compose.volumes", "compose.volumes[%d] %q: %s %s", i, v, p, problem)
				clean = false
			}
		}
		if clean {
			c.hostMount(s, "compose.volumes", fmt.Sprintf("compose.volumes[%d]", i), v)
		}
	}
}

// registryURLProblem says what is wrong with a registry URL, or "".
func registryURLProblem(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "must be a URL such as https://registry.example.com or http://127.0.0.1:5000"
	}
	if u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return "must name only the registry's host and port: the login is registry.username and a secret"
	}
	host, port := u.Hostname(), u.Port()
	if port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return "has a port that is not from 1 to 65535"
		}
	}
	if net.ParseIP(host) == nil && !isHostName(host) {
		return "has a host that is not a host name or an IP address"
	}
	return ""
}

var (
	composeName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)
)

// checkComposeServices checks compose.services: names, images, words
// and mounts.
func (c checker) checkComposeServices(s Settings) {
	services := s.Compose.Services
	for _, name := range slices.Sorted(maps.Keys(services)) {
		svc, key := services[name], "compose.services."+name
		if !composeName.MatchString(name) {
			c.problem("compose.services", "compose.services: %q is not a service name: use lower-case letters, digits, - and _", name)
			continue
		}
		if svc.Image == "" {
			c.problem(key, "%s.image is required: the service's image, e.g. image: redis:7-bookworm", key)
		} else if !imageReference.MatchString(svc.Image) || len(svc.Image) > 255 {
			c.problem(key+".image", "%s.image %q is not an image reference such as redis:7-bookworm", key, svc.Image)
		}
		for i, w := range svc.Command {
			if problem := valueProblem(w); problem != "" {
				c.problem(key+".command", "%s.command[%d] %s", key, i, problem)
			}
		}
		for _, k := range sortedKeys(svc.Environment) {
			if !envVarName.MatchString(k) {
				c.problem(key+".environment", "%s.environment: %q is not a variable name", key, k)
			} else if problem := valueProblem(svc.Environment[k]); problem != "" {
				c.problem(key+".environment", "%s.environment: %s %s", key, k, problem)
			}
		}
		for i, v := range svc.Volumes {
			if problem := extraVolumeProblem(v); problem != "" {
				c.problem(key+".volumes", "%s.volumes[%d] %q %s", key, i, v, problem)
			} else {
				c.hostMount(s, key+".volumes", fmt.Sprintf("%s.volumes[%d]", key, i), v)
			}
		}
	}
}

// extraVolumeProblem says what is wrong with a mount of compose.services,
// or "".
func extraVolumeProblem(v string) string {
	parts := strings.Split(v, ":")
	if len(parts) == 3 && (parts[2] == "ro" || parts[2] == "rw") {
		parts = parts[:2]
	}
	if len(parts) != 2 {
		return "must be volume-name:container-path or host-path:container-path, with :ro to mount it read-only"
	}
	if !strings.HasPrefix(parts[0], "/") && !composeName.MatchString(parts[0]) {
		return "names a volume with other than lower-case letters, digits, - and _"
	}
	for _, p := range parts {
		if strings.HasPrefix(p, "/") {
			if problem := pathProblem(p, true); problem != "" {
				return p + " " + problem
			}
		}
	}
	if !strings.HasPrefix(parts[1], "/") {
		return "must mount at an absolute path in the container"
	}
	return ""
}
