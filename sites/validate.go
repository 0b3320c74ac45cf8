package sites

import (
	"fmt"
	"maps"
	"net/url"
	"path"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/djship/djship/sites/secrets"
	"go.yaml.in/yaml/v3"
	"mvdan.cc/sh/v3/shell"
)

// Enumerated values.
var (
	Webservers  = []string{"nginx", "apache2"}
	AppServers  = []string{"uwsgi", "gunicorn"}
	Engines     = []string{"sqlite", "postgres"}
	Connections = []string{"ssh", "local"}
)

// DefaultRevisionPattern is the tarball name when the site sets none;
// <project> stands for the project name.
const DefaultRevisionPattern = "<project>-r${REVISION}.tar.gz"

// ArchiveExtensions are the tarball formats `mage release` writes.
var ArchiveExtensions = []string{".tar.gz", ".tar.bz2", ".tar.zst"}

// applyDefaults fills every unset value with its documented default.
func (s *Settings) applyDefaults() {
	def := func(p *string, v string) {
		if *p == "" {
			*p = v
		}
	}
	def(&s.Python, "/usr/bin/python3")
	if s.KeepReleases == 0 {
		s.KeepReleases = 5
	}
	def(&s.Connection, "ssh")
	// Values derived from the project name only when it is usable, so that
	// a bad name is reported once, not again through everything it names.
	validProject := projectName.MatchString(s.Project)
	if validProject {
		def(&s.RevisionPattern, strings.Replace(DefaultRevisionPattern, "<project>", s.Project, 1))
		def(&s.Instance, s.Project)
	}
	validInstance := projectName.MatchString(s.Instance)
	def(&s.Webserver, "nginx")
	def(&s.Web.User, "www-data")
	def(&s.Web.Group, "www-data")
	if s.Webserver == "apache2" {
		def(&s.Web.CheckCommand, "/usr/sbin/apache2ctl")
	} else {
		def(&s.Web.CheckCommand, "/usr/sbin/nginx")
	}
	def(&s.Web.ClientMaxBodySize, "30m")
	if s.Web.HTTPPort == 0 {
		s.Web.HTTPPort = 80
	}
	if s.Web.HTTPSPort == 0 {
		s.Web.HTTPSPort = 443
	}
	if s.TLS.Certificate != "" {
		def(&s.TLS.KeySecret, "TLS_KEY")
	}
	def(&s.Mode, ModeProcess)
	if s.Mode == ModeContainer {
		// The image runs gunicorn.
		def(&s.AppServer, "gunicorn")
		def(&s.Registry.PasswordSecret, "REGISTRY_PASSWORD")
		def(&s.BaseImage, DefaultBaseImage)
		if s.Compose.StopGracePeriod == 0 {
			s.Compose.StopGracePeriod = s.App.Timeout + 5
			if s.App.Timeout == 0 {
				s.Compose.StopGracePeriod = 65
			}
		}
	}
	def(&s.AppServer, "uwsgi")
	if s.App.Workers == 0 {
		s.App.Workers = 2
	}
	if validInstance {
		def(&s.App.User, s.Instance)
	}
	def(&s.App.Group, s.App.User)
	if s.App.Timeout == 0 {
		s.App.Timeout = 60
	}
	if s.SSH.ConnectTimeout == 0 {
		s.SSH.ConnectTimeout = 10
	}
	def(&s.Health.Path, "/")
	if s.Health.Status == 0 {
		s.Health.Status = 200
	}
	if s.Health.Timeout == 0 {
		s.Health.Timeout = 10
	}
	if s.Health.Retries == 0 {
		s.Health.Retries = 10
	}
	def(&s.Health.RevisionHeader, "X-Djship-Revision")
	def(&s.Health.Revision, "body")
	def(&s.Database.Engine, "sqlite")
	if s.Database.Engine == "sqlite" {
		def(&s.Database.Path, "db.sqlite3")
	} else if validInstance {
		def(&s.Database.Name, s.Instance)
		def(&s.Database.User, s.Instance)
		if s.Database.Port == 0 {
			s.Database.Port = 5432
		}
		def(&s.Database.PasswordSecret, "DATABASE_PASSWORD")
	}
	if s.Container() && s.Compose.Database != "" {
		def(&s.Database.Host, "127.0.0.1")
	}
}

var (
	projectName  = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)
	pythonName   = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	dottedName   = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$`)
	envVarName   = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	sizeValue    = regexp.MustCompile(`^[0-9]+[kKmMgG]?$`)
	variableRef  = regexp.MustCompile(`\$\{([^}]*)\}`)
	fileNameSafe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+-]*$`)
)

// SSLModes are the values of database.sslmode: libpq's.
var SSLModes = []string{"disable", "prefer", "require", "verify-ca", "verify-full"}

// reservedEnvironment are variables djship sets itself.
var reservedEnvironment = map[string]bool{"DJANGO_SETTINGS_MODULE": true, "DJANGO_SETTINGS_SECRET_FILE": true}

// checker reports problems about one merged settings value.
type checker struct {
	v     *validator
	node  *yaml.Node
	where string
	line  int
}

// at returns the line of the key at path and whether it is written; when
// it is not, the line is where the settings begin.
func (c checker) at(keyPath string) (int, bool) {
	parent, key := "", keyPath
	if i := strings.LastIndex(keyPath, "."); i >= 0 {
		parent, key = keyPath[:i], keyPath[i+1:]
	}
	n := c.node
	if parent != "" {
		n = lookupPath(n, parent)
	}
	if n != nil {
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == key {
				return n.Content[i].Line, true
			}
		}
	}
	return c.line, false
}

// problem reports a problem at the key's line. A key that is written is
// reported at its own line once, however many environments share it; a
// missing key is reported where the environment begins, with its name.
func (c checker) problem(keyPath, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	line, written := c.at(keyPath)
	if !written && c.where != "" {
		msg = c.where + ": " + msg
	}
	c.v.add(line, "%s", msg)
}

func (c checker) required(keyPath, value, hint string) bool {
	if value != "" {
		return true
	}
	c.problem(keyPath, "%s is required: %s", keyPath, hint)
	return false
}

func (c checker) oneOf(keyPath, value string, allowed []string) {
	for _, a := range allowed {
		if value == a {
			return
		}
	}
	msg := fmt.Sprintf("%s %q is not one of %s", keyPath, value, strings.Join(allowed, ", "))
	if best := nearest(value, allowed); best != "" {
		msg += fmt.Sprintf("; did you mean %q?", best)
	}
	c.problem(keyPath, "%s", msg)
}

// checkSettings validates one merged settings value. Problems of the
// shared settings are found again in every environment; the validator
// reports each (line, message) once.
func (v *validator) checkSettings(s Settings, node *yaml.Node, where string, line int) {
	c := checker{v: v, node: node, where: where, line: line}

	c.writtenZeros()
	if s.Instance != "" && s.Instance != s.Project && !projectName.MatchString(s.Instance) {
		c.problem("instance", "instance %q is not safe as a file and user name: use lower-case letters, digits, - and _ (at most 32, starting with a letter or digit), e.g. instance: %s-staging", s.Instance, s.Project)
	}
	if c.required("url", s.URL, "the public host name, e.g. url: www.example.com") {
		if !isHostName(s.URL) || !strings.Contains(s.URL, ".") && s.URL != "localhost" {
			c.problem("url", "url %q must be a bare host name such as www.example.com (no scheme, port or path)", s.URL)
		}
	}
	if c.required("root", s.Root, "the folder on the host that holds the sites, e.g. root: /srv/www") {
		c.path("root", s.Root, true, "/srv/www")
		if strings.HasPrefix(s.Root, "/") {
			c.systemRoot(s.Root)
		}
	}
	c.path("python", s.Python, true, "/usr/bin/python3")
	c.path("web.check_command", s.Web.CheckCommand, true, "/usr/sbin/nginx")
	if s.KeepReleases < 2 {
		c.problem("keep_releases", "keep_releases must be at least 2 (the live release and the one to roll back to), not %d", s.KeepReleases)
	}
	c.oneOf("connection", s.Connection, Connections)

	c.checkDjango(s.Django)
	c.checkContainer(s)
	c.checkProcesses(s)
	for i, p := range s.Packages {
		if !debianPackage.MatchString(p) {
			c.problem("packages", "packages[%d] %q is not a Debian package name", i, p)
		}
	}
	if s.Proxy != "" {
		if u, err := url.Parse(s.Proxy); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			c.problem("proxy", "proxy %q must be a URL such as http://proxy.example.com:3128", s.Proxy)
		}
	}
	c.oneOf("webserver", s.Webserver, Webservers)
	if !sizeValue.MatchString(s.Web.ClientMaxBodySize) {
		c.problem("web.client_max_body_size", "web.client_max_body_size %q must be a size such as 30m", s.Web.ClientMaxBodySize)
	}
	for _, p := range []struct {
		key  string
		port int
	}{{"web.http_port", s.Web.HTTPPort}, {"web.https_port", s.Web.HTTPSPort}} {
		if p.port < 1 || p.port > 65535 {
			c.problem(p.key, "%s must be from 1 to 65535, not %d", p.key, p.port)
		}
	}
	if s.Web.HTTPPort == s.Web.HTTPSPort && s.TLS.Certificate != "" {
		c.problem("web.https_port", "web.http_port and web.https_port are both %d", s.Web.HTTPPort)
	}
	for _, name := range sortedKeys(s.Django.Environment) {
		value := s.Django.Environment[name]
		if problem := valueProblem(value); problem != "" {
			c.problem("django.environment", "django.environment: %s %s", name, problem)
		} else if s.AppServer == "uwsgi" && (strings.Contains(value, "$(") || strings.Contains(value, "@(") || strings.Contains(value, "%(")) {
			c.problem("django.environment", "django.environment: %s contains $(, @( or %%(, which uWSGI would expand whatever the quoting; put the value in the secrets", name)
		}
	}
	c.identities(s)
	c.oneOf("app_server", s.AppServer, AppServers)
	if s.App.Workers < 1 {
		c.problem("app.workers", "app.workers must be at least 1, not %d", s.App.Workers)
	}
	if s.App.Timeout < 1 {
		c.problem("app.timeout", "app.timeout must be at least 1 second, not %d", s.App.Timeout)
	}
	if len(s.App.UWSGIOptions) > 0 && s.AppServer != "uwsgi" {
		c.problem("app.uwsgi_options", "app.uwsgi_options only applies to app_server: uwsgi, not %s", s.AppServer)
	}
	for i, o := range s.App.UWSGIOptions {
		name, value, ok := strings.Cut(o, "=")
		name = strings.TrimSpace(name)
		switch {
		case !ok || !uwsgiOptionName.MatchString(name):
			c.problem("app.uwsgi_options", "app.uwsgi_options[%d] %q must be one ini line such as smart-attach-daemon2 = …", i, o)
		case valueProblem(strings.TrimSpace(value)) != "":
			c.problem("app.uwsgi_options", "app.uwsgi_options[%d] %q %s", i, o, valueProblem(strings.TrimSpace(value)))
		}
	}
	c.checkDatabase(s)
	if s.TLS.Certificate != "" && s.TLS.Certificate != "self-signed" && !strings.HasSuffix(s.TLS.Certificate, ".pem") && !strings.HasSuffix(s.TLS.Certificate, ".crt") {
		c.problem("tls.certificate", "tls.certificate %q must be a .pem or .crt file, or self-signed", s.TLS.Certificate)
	}
	for _, k := range []struct{ path, value string }{{"tls.key_secret", s.TLS.KeySecret}, {"database.password_secret", s.Database.PasswordSecret}} {
		if k.value != "" && !envVarName.MatchString(k.value) {
			c.problem(k.path, "%s %q must be a secret name such as TLS_KEY", k.path, k.value)
		}
	}
	if s.SSH.ProxyJump != "" {
		for _, hop := range strings.Split(s.SSH.ProxyJump, ",") {
			if _, problem := ParseHost(strings.TrimSpace(hop)); problem != "" {
				c.problem("ssh.proxy_jump", "ssh.proxy_jump %q: %s", hop, problem)
			}
		}
	}
	if s.SSH.ConnectTimeout < 1 {
		c.problem("ssh.connect_timeout", "ssh.connect_timeout must be at least 1 second, not %d", s.SSH.ConnectTimeout)
	}
	if !urlPath.MatchString(s.Health.Path) {
		c.problem("health.path", "health.path %q must be a URL path starting with /, without spaces (escape them as %%20)", s.Health.Path)
	}
	if !headerName.MatchString(s.Health.RevisionHeader) {
		c.problem("health.revision_header", "health.revision_header %q must be an HTTP header name such as X-Djship-Revision", s.Health.RevisionHeader)
	}
	if s.Health.Status < 100 || s.Health.Status > 599 {
		c.problem("health.status", "health.status must be an HTTP status, not %d", s.Health.Status)
	}
	if s.Health.Timeout < 1 || s.Health.Retries < 1 {
		c.problem("health.timeout", "health.timeout and health.retries must be at least 1")
	}
	c.oneOf("health.revision", s.Health.Revision, []string{"body", "header", "none"})
	if s.Django.Wheelhouse != "" {
		c.path("django.wheelhouse", s.Django.Wheelhouse, false, "wheels")
	}
	for i, r := range s.Secrets.Recipients {
		if _, err := secrets.ParseRecipient(r); err != nil {
			c.problem("secrets.recipients", "secrets.recipients[%d]: %v", i, err)
		}
	}
	for i, k := range s.Secrets.Environment {
		if !slices.Contains(s.Secrets.Keys, k) {
			c.problem("secrets.environment", "secrets.environment[%d] %q is not one of secrets.keys (%s): list only the site's secrets", i, k, strings.Join(s.Secrets.Keys, ", "))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(s.Django.Environment)) {
		if slices.Contains(s.Secrets.Keys, k) && (s.Secrets.Environment == nil || slices.Contains(s.Secrets.Environment, k)) {
			c.problem("django.environment", "django.environment.%s is a secret too (secrets.keys): the application would get two values; keep it in the secrets only", k)
		}
	}
	for i, k := range s.Secrets.Keys {
		if !envVarName.MatchString(k) {
			c.problem("secrets.keys", "secrets.keys[%d] %q must be a name such as SECRET_KEY (letters, digits, _)", i, k)
		}
	}
}

var debianPackage = regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]+$`)

// processName is a process's name: it names a service on the hosts.
var processName = regexp.MustCompile(`^[a-z][a-z0-9-]{0,23}$`)

// ProcessCommand splits a process's command into its words as a shell
// would, quotes and backslashes included; what a shell would expand or
// redirect ($, `, ~, globs, braces, pipes, ;, <, >) is refused, quoted
// or not, since the command runs without a shell.
func ProcessCommand(command string) ([]string, error) {
	if strings.ContainsFunc(command, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return nil, fmt.Errorf("it must be one line without control characters")
	}
	if strings.ContainsAny(command, "$`*?[~|&;<>(){}") {
		return nil, fmt.Errorf("it runs without a shell: write the program and its arguments, without $, `, ~, globs, braces, pipes or redirections")
	}
	words, err := shell.Fields(command, func(string) string { return "" })
	switch {
	case err != nil:
		return nil, err
	case len(words) == 0:
		return nil, fmt.Errorf("it is empty")
	}
	return words, nil
}

// checkProcesses checks the processes' names and commands.
func (c checker) checkProcesses(s Settings) {
	for _, name := range slices.Sorted(maps.Keys(s.Processes)) {
		if !processName.MatchString(name) {
			c.problem("processes", "processes.%s: a process name is lower-case letters, digits and -, starting with a letter, at most 24 (it names a service), e.g. worker", name)
			continue
		}
		if _, err := ProcessCommand(s.Processes[name]); err != nil {
			c.problem("processes", "processes.%s %q: %v, e.g. worker: celery -A shop worker --loglevel info", name, s.Processes[name], err)
		}
	}
}

func (c checker) checkDjango(d Django) {
	c.required("django.source_folder", d.SourceFolder, "the folder holding manage.py inside the release, e.g. source_folder: . (the archive's top)")
	if d.SourceFolder != "" {
		c.path("django.source_folder", d.SourceFolder, false, "src")
	}
	if c.required("django.settings_folder", d.SettingsFolder, "the package that holds wsgi.py, e.g. settings_folder: mysite") && !pythonName.MatchString(d.SettingsFolder) {
		c.problem("django.settings_folder", "django.settings_folder %q must be a Python package name such as mysite", d.SettingsFolder)
	}
	if c.required("django.settings_module", d.SettingsModule, "the settings module used on the host, e.g. settings_module: mysite.settings") && !dottedName.MatchString(d.SettingsModule) {
		c.problem("django.settings_module", "django.settings_module %q must be a dotted module name such as mysite.settings (no .py)", d.SettingsModule)
	}
	for i, dep := range d.Dependencies {
		if strings.TrimSpace(dep) == "" || strings.HasPrefix(strings.TrimSpace(dep), "-") || strings.ContainsAny(dep, "\n\r") {
			c.problem("django.dependencies", "django.dependencies[%d] %q must be a pip requirement such as Django>=4.2,<5 (no options)", i, dep)
		}
	}
	for i, a := range d.ArchivesToDeflate {
		key := fmt.Sprintf("django.archives_to_deflate[%d]", i)
		if a.Archive == "" || a.Into == "" {
			c.problem("django.archives_to_deflate", "%s needs both archive: and into:", key)
			continue
		}
		c.pathAt("django.archives_to_deflate", key+".archive", a.Archive, false, "static/vendor.zip")
		c.pathAt("django.archives_to_deflate", key+".into", a.Into, false, "static")
	}
	for _, name := range sortedKeys(d.Environment) {
		switch {
		case !envVarName.MatchString(name):
			c.problem("django.environment", "django.environment: %q is not a valid environment variable name", name)
		case reservedEnvironment[name]:
			c.problem("django.environment", "django.environment: %s is set by djship from django.settings_module and the secret file; remove it", name)
		}
	}
}

// path reports a value that is not a clean path of safe names: absolute
// (such as example) or inside the release.
func (c checker) path(keyPath, p string, absolute bool, example string) {
	c.pathAt(keyPath, keyPath, p, absolute, example)
}

// pathAt is path for a value named name that is reported at the line of
// keyPath (a list entry is reported at its list).
func (c checker) pathAt(keyPath, name, p string, absolute bool, example string) {
	if problem := pathProblem(p, absolute); problem != "" {
		if strings.HasPrefix(problem, "must be") {
			c.problem(keyPath, "%s %q %s such as %s", name, p, problem, example)
			return
		}
		kind := "a path inside the release"
		if absolute {
			kind = "an absolute path"
		}
		c.problem(keyPath, "%s %q %s (write %s such as %s)", name, p, problem, kind, example)
	}
}

// identities checks the application's and the web server's users and
// groups: names useradd accepts, never a system account for the
// application, never a privileged one for either, and never shared.
func (c checker) identities(s Settings) {
	_, groupWritten := c.at("app.group")
	derivedGroup := !groupWritten && s.App.Group == s.App.User // reported with app.user
	for _, k := range []struct{ path, value string }{{"web.user", s.Web.User}, {"web.group", s.Web.Group}, {"app.user", s.App.User}, {"app.group", s.App.Group}} {
		switch {
		case k.value == "", k.path == "app.group" && derivedGroup:
		case !systemName.MatchString(k.value):
			c.problem(k.path, "%s %q is not a valid user or group name: lower-case letters, digits, _ and -, starting with a letter or _ (at most 32)", k.path, k.value)
		case strings.HasPrefix(k.path, "app.") && systemAccounts[k.value]:
			c.problem(k.path, "%s must not be %s, a system account: the application would get its files and powers; use the project's own name (the default)", k.path, k.value)
		case strings.HasPrefix(k.path, "web.") && privilegedGroups[k.value]:
			c.problem(k.path, "%s must not be %s: the web server would run with root's powers or files; use www-data (the default)", k.path, k.value)
		}
	}
	if s.App.User != "" && s.App.User == s.Web.User {
		c.problem("app.user", "app.user %q is also web.user: the web server would share the application's files and the application could read the TLS key; give the application its own user", s.App.User)
	}
	if s.App.Group != "" && s.App.Group == s.Web.Group && !derivedGroup {
		c.problem("app.group", "app.group %q is also web.group: the web server could read the secret file; give the application its own group", s.App.Group)
	}
}

// defaultedInts are the whole-number keys whose 0 means "unset": a 0
// written in the file would silently become the default.
var defaultedInts = []string{
	"keep_releases", "web.http_port", "web.https_port", "app.workers", "app.timeout",
	"database.port", "ssh.connect_timeout", "health.status", "health.timeout", "health.retries",
}

// writtenZeros reports the defaulted keys that are written as 0.
func (c checker) writtenZeros() {
	for _, key := range defaultedInts {
		n := lookupPath(c.node, key)
		var v int
		if n == nil || n.Kind != yaml.ScalarNode || n.Decode(&v) != nil || v != 0 {
			continue
		}
		least := 1
		if key == "keep_releases" {
			least = 2
		}
		c.problem(key, "%s is 0: write a value of at least %d, or remove the key for the default", key, least)
	}
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func (c checker) checkDatabase(s Settings) {
	d := s.Database
	c.oneOf("database.engine", d.Engine, Engines)
	switch d.Engine {
	case "sqlite":
		if !fileNameSafe.MatchString(d.Path) {
			c.problem("database.path", "database.path %q must be a file name; the database lives in shared/db/ on the host", d.Path)
		}
		for _, k := range []struct {
			key string
			set bool
		}{{"name", d.Name != ""}, {"user", d.User != ""}, {"host", d.Host != ""}, {"port", d.Port != 0}, {"password_secret", d.PasswordSecret != ""}, {"sslmode", d.SSLMode != ""}} {
			if k.set {
				c.problem("database."+k.key, "database.%s only applies to engine: postgres", k.key)
			}
		}
	case "postgres":
		if d.Path != "" {
			c.problem("database.path", "database.path only applies to engine: sqlite")
		}
		for _, k := range []struct{ key, value string }{{"name", d.Name}, {"user", d.User}} {
			if k.value != "" && !pythonName.MatchString(k.value) {
				c.problem("database."+k.key, "database.%s %q must be a PostgreSQL identifier (letters, digits, _)", k.key, k.value)
			}
		}
		if d.Port < 1 || d.Port > 65535 {
			c.problem("database.port", "database.port must be from 1 to 65535, not %d", d.Port)
		}
		if d.SSLMode != "" {
			c.oneOf("database.sslmode", d.SSLMode, SSLModes)
		}
		if d.Host != "" && !isHostName(d.Host) && !isIPv4(d.Host) && !isIPv6(d.Host) {
			c.problem("database.host", "database.host %q must be a host name (RFC 1123) or an IP address such as db.example.com or 10.0.0.5; leave it out for the local socket", d.Host)
		}
	}
}

// checkRelease validates the settings that shape the release: the project
// name, the source and the revision pattern. They live at the top level.
// root is the project root, which source.path must stay inside.
func (v *validator) checkRelease(s Settings, node *yaml.Node, root string) {
	c := checker{v: v, node: node, line: node.Line}
	if c.required("project", s.Project, "the project name names the folders, configs and certificate files, e.g. project: mysite") && !projectName.MatchString(s.Project) {
		c.problem("project", "project %q is not safe as a file and user name: use lower-case letters, digits, - and _ (at most 32, starting with a letter or digit)", s.Project)
	}
	src := s.Source
	switch {
	case src.Path == "" && src.Git == "":
		c.problem("source", "source is required: source: {path: src} for a folder of this repository, or source: {git: URL, ref: main}")
	case src.Path != "" && src.Git != "":
		c.problem("source.git", "source has both path and git: keep one")
	case src.Path != "" && src.Ref != "":
		c.problem("source.ref", "source.ref only applies to source.git")
	}
	c.sourceInside(root, src.Path)
	for i, p := range append(append([]string{}, src.Exclude...), src.Include...) {
		if _, err := path.Match(p, ""); err != nil || p == "" {
			c.problem("source", "source pattern %q (entry %d) is not a valid pattern: use *, ? and [abc]", p, i)
		}
	}
	if s.RevisionPattern != "" {
		for _, msg := range PatternProblems(s.RevisionPattern) {
			c.problem("revision_pattern", "revision_pattern %q %s", s.RevisionPattern, msg)
		}
	}
}

// PatternProblems lists what keeps a revision pattern from ever expanding
// to a usable tarball name.
func PatternProblems(pattern string) []string {
	var out []string
	if strings.Contains(pattern, "/") {
		out = append(out, "must be a file name, without /")
	}
	ok := false
	for _, ext := range ArchiveExtensions {
		if strings.HasSuffix(pattern, ext) {
			ok = true
		}
	}
	if !ok {
		out = append(out, "must end with "+strings.Join(ArchiveExtensions, ", "))
	}
	refs := variableRef.FindAllStringSubmatch(pattern, -1)
	for _, m := range refs {
		if !envVarName.MatchString(m[1]) {
			out = append(out, fmt.Sprintf("has ${%s}, which is not a variable name: write ${REVISION} or ${NAME}", m[1]))
		}
	}
	rest := variableRef.ReplaceAllString(pattern, "x")
	if strings.Contains(rest, "$") {
		out = append(out, "has a $ outside ${NAME}: write variables as ${NAME}")
	}
	if len(refs) == 0 {
		out = append(out, "has no ${VAR}: every release would get the same name; add ${REVISION}")
	}
	if !fileNameSafe.MatchString(rest) {
		out = append(out, "must start with a letter or digit and use only letters, digits, ., _, + and -")
	}
	return out
}
