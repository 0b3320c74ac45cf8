// Package sites loads and validates djship site files: one YAML file per
// Django site under sites/, with shared settings at the top and the
// environments (production, staging, …) that override them.
package sites

// Settings is everything a site can set. The top level of a site file holds
// the shared settings; an environment, and a host inside it, may override
// any of them except the ones that shape the release tarball (project,
// source, revision_pattern), which is built once for every environment.
type Settings struct {
	// Project names the folders, configuration files, certificate files and,
	// by default, the system user of the site (role: websiteproject).
	Project string `yaml:"project"`
	// Instance names the site on its hosts: its folder under root, its
	// web and application server configurations, services, sockets, logs
	// and certificates, and by default its system user and PostgreSQL
	// database. The project name unless set; two environments of one
	// project on one host give each its own (instance: shop-staging).
	Instance string `yaml:"instance"`
	// URL is the public host name the web server answers to (role: url).
	URL string `yaml:"url"`
	// Root is the folder on the host that holds every deployed site; the
	// site lives in <root>/<project> (role: django_deployment_root_folder).
	Root string `yaml:"root"`
	// Python is the interpreter on the host that builds the virtualenv.
	Python string `yaml:"python"`
	// KeepReleases is how many complete releases stay on the host.
	KeepReleases int `yaml:"keep_releases"`
	// Connection is how djship reaches the hosts: ssh or local.
	Connection string `yaml:"connection"`
	// RevisionPattern is the tarball name, with ${VAR} expanded from the
	// environment and ${REVISION} from the source (role:
	// django_revision_file_pattern).
	RevisionPattern string `yaml:"revision_pattern"`
	// Source says where the Django source comes from.
	Source Source `yaml:"source"`
	// Django describes the Django project inside the release.
	Django Django `yaml:"django"`
	// Packages are extra OS packages for the host (role:
	// application_additional_packages).
	Packages []string `yaml:"packages"`
	// Proxy is the HTTP(S) proxy used by pip and apt on hosts behind a
	// firewall (role: site_proxy).
	Proxy string `yaml:"proxy"`
	// Webserver is the front web server: nginx or apache2 (role: webserver).
	Webserver string `yaml:"webserver"`
	// Web configures the front web server.
	Web Web `yaml:"web"`
	// TLS says where the certificate and key come from.
	TLS TLS `yaml:"tls"`
	// AppServer is the application server: uwsgi or gunicorn.
	AppServer string `yaml:"app_server"`
	// App configures the application server and its system user.
	App App `yaml:"app"`
	// Processes are the site's other long-running programs (a Celery
	// worker, a scheduler), by name: each a command run as a service in
	// the live release's folder and environment, restarted after each
	// switch, e.g. worker: celery -A shop worker.
	Processes map[string]string `yaml:"processes"`
	// Database is the site's database: sqlite or postgres.
	Database Database `yaml:"database"`
	// Secrets lists the secret values the site needs on the host.
	Secrets Secrets `yaml:"secrets"`
	// SSH says how djship logs in to the hosts.
	SSH SSH `yaml:"ssh"`
	// Health is the check that a new release answers.
	Health Health `yaml:"health"`
	// Fleet says how an environment of several hosts is shipped: which
	// host migrates, how many hosts work at once, and rolling batches.
	// It applies to a whole environment, never to one host.
	Fleet Fleet `yaml:"fleet"`
	// Mode is how the site runs on its hosts: process (a release folder
	// with a virtualenv, run by uWSGI or gunicorn) or container (an image
	// run with Docker Compose). It applies to a whole environment.
	Mode string `yaml:"mode"`
	// Image is the image's repository name in the registry, e.g.
	// acme/shop; container mode only.
	Image string `yaml:"image"`
	// BaseImage is the image the Dockerfile djship writes starts from.
	BaseImage string `yaml:"base_image"`
	// Registry is where mage release pushes the image and the hosts pull
	// it from.
	Registry Registry `yaml:"registry"`
	// Compose holds what container mode adds to the compose project.
	Compose Compose `yaml:"compose"`
}

// Registry is a container registry and the login djship uses there.
type Registry struct {
	// URL is the registry, http:// or https:// with a host and an
	// optional port, e.g. https://registry.example.com.
	URL string `yaml:"url"`
	// Username is the login; empty for a registry without one.
	Username string `yaml:"username"`
	// PasswordSecret names the secret that holds the password
	// (REGISTRY_PASSWORD unless set).
	PasswordSecret string `yaml:"password_secret"`
}

// Compose is what container mode adds to the compose project of a
// release.
type Compose struct {
	// StopGracePeriod is how many seconds a retiring container may take
	// to finish its requests before it is killed (app.timeout + 5 unless
	// set).
	StopGracePeriod int `yaml:"stop_grace_period"`
	// Labels are added to every container of the site.
	Labels map[string]string `yaml:"labels"`
	// Volumes are more mounts for every container of the site, each
	// host-path:container-path or host-path:container-path:ro, absolute
	// paths.
	Volumes []string `yaml:"volumes"`
	// AllowHostSystemMounts lets compose.volumes and the volumes of
	// compose.services mount host system folders: /, /etc, /usr, /proc,
	// /sys, /dev, /boot, /root, /run, /var/lib and the others a root may
	// not be, the Docker socket among them. Off unless set: a container
	// that writes there can take over the host.
	AllowHostSystemMounts bool `yaml:"allow_host_system_mounts"`
	// Database is the image of a PostgreSQL server that runs as a compose
	// service of its own, its data in a named volume, on 127.0.0.1 at
	// database.port; "" for a server outside Compose. The image must
	// take the official postgres image's POSTGRES_USER, POSTGRES_DB and
	// POSTGRES_PASSWORD_FILE.
	Database string `yaml:"database"`
	// Services are long-running containers of the site's own (a Redis, a
	// search server), by name: a compose project of their own,
	// <instance>-services, started by provision and left running across
	// releases. Their values are no place for secrets: Docker shows them.
	Services map[string]ComposeExtra `yaml:"services"`
}

// ComposeExtra is one service of compose.services.
type ComposeExtra struct {
	// Image is the service's image.
	Image string `yaml:"image"`
	// Command is its argv; the image's own when empty.
	Command []string `yaml:"command"`
	// Environment are its variables.
	Environment map[string]string `yaml:"environment"`
	// Volumes are its mounts: volume-name:container-path or
	// host-path:container-path, with :ro to mount read-only.
	Volumes []string `yaml:"volumes"`
}

// Fleet says how an upgrade moves through the hosts of an environment.
type Fleet struct {
	// MigrateHost is the address of the host that runs migrate when the
	// hosts share one database; the first web host when empty.
	MigrateHost string `yaml:"migrate_host"`
	// Uploads is how many hosts receive the tarball at once; all when 0.
	Uploads int `yaml:"uploads"`
	// Builds is how many hosts build their release (unpack, virtualenv,
	// collectstatic) at once; all when 0.
	Builds int `yaml:"builds"`
	// Rolling switches the hosts in batches instead of all at once.
	Rolling Rolling `yaml:"rolling"`
}

// Rolling switches the web hosts in turn, a batch at a time, each host
// out of the load balancer while it switches.
type Rolling struct {
	// Batch is how many web hosts switch at once: a count (2) or a share
	// of them (25%). Empty switches every host at once.
	Batch string `yaml:"batch"`
	// Pause is the seconds to wait between batches.
	Pause int `yaml:"pause"`
}

// Health is the request djship makes through the web server on each host
// after switching to a new release.
type Health struct {
	// Path is the URL path requested.
	Path string `yaml:"path"`
	// Status is the HTTP status expected.
	Status int `yaml:"status"`
	// Timeout is the seconds one request may take.
	Timeout int `yaml:"timeout"`
	// Retries is how many times a failing request is repeated, a second
	// apart, before the release is rolled back.
	Retries int `yaml:"retries"`
	// RevisionHeader is a response header that must carry the revision.
	RevisionHeader string `yaml:"revision_header"`
	// Revision is where the new revision must show: body, header or none.
	Revision string `yaml:"revision"`
}

// Source is where `mage release` takes the Django source from: a local
// folder, or a git repository at a ref.
type Source struct {
	// Path is a local folder, relative to the project root (the folder that
	// holds sites/).
	Path string `yaml:"path"`
	// Git is a git repository (URL or path) to package at Ref.
	Git string `yaml:"git"`
	// Ref is the branch, tag or commit of Git; HEAD when empty.
	Ref string `yaml:"ref"`
	// Exclude adds patterns to the files left out of the tarball.
	Exclude []string `yaml:"exclude"`
	// Include puts back files that a default exclude would leave out.
	Include []string `yaml:"include"`
}

// Django describes the Django project inside the release.
type Django struct {
	// SourceFolder is the folder of the Django project (the one holding
	// manage.py) inside the archive (role: django_source_folder).
	SourceFolder string `yaml:"source_folder"`
	// SettingsFolder is the Python package that holds wsgi.py (role:
	// django_settings_folder).
	SettingsFolder string `yaml:"settings_folder"`
	// SettingsModule is the settings module used on the host (role:
	// django_settings_file).
	SettingsModule string `yaml:"settings_module"`
	// Dependencies are pip requirements installed into the virtualenv
	// (role: django_dependencies).
	Dependencies []string `yaml:"dependencies"`
	// PipInstallRequirements also installs the archive's requirements.txt
	// (role: django_pip_install_requirements).
	PipInstallRequirements bool `yaml:"pip_install_requirements"`
	// SystemSitePackages lets the virtualenv see the host's Python packages
	// (for example Debian's python3-django).
	SystemSitePackages bool `yaml:"system_site_packages"`
	// Wheelhouse is a folder of wheels inside the Django source folder; when
	// set, pip installs from it alone (--no-index), for hosts without
	// internet access.
	Wheelhouse string `yaml:"wheelhouse"`
	// ArchivesToDeflate are extra archives inside the sources to unpack
	// (role: django_archives_to_deflate).
	ArchivesToDeflate []Deflate `yaml:"archives_to_deflate"`
	// Environment holds extra environment variables for the application
	// (role: django_webapplication_additional_environment_settings).
	Environment map[string]string `yaml:"environment"`
	// CheckDeploy runs manage.py check --deploy --fail-level WARNING in
	// each new release before it serves: a warning stops the upgrade.
	CheckDeploy bool `yaml:"check_deploy"`
}

// Deflate is one extra archive to unpack into the release.
type Deflate struct {
	// Archive is the archive's path inside the Django source folder.
	Archive string `yaml:"archive"`
	// Into is the folder, inside the Django source folder, to unpack it to.
	Into string `yaml:"into"`
}

// Web configures the front web server.
type Web struct {
	// User is the web server's user (role: nginx_user, apache2_user).
	User string `yaml:"user"`
	// Group is the web server's group; it alone may read the TLS key and
	// the application socket (role: nginx_group, apache2_group).
	Group string `yaml:"group"`
	// CheckCommand tests a configuration before it is enabled (role:
	// nginx_binary_name, apache2_check_binary_name).
	CheckCommand string `yaml:"check_command"`
	// ClientMaxBodySize is the largest request body accepted, e.g. 30m.
	ClientMaxBodySize string `yaml:"client_max_body_size"`
	// HTTPPort is the plain HTTP port.
	HTTPPort int `yaml:"http_port"`
	// HTTPSPort is the HTTPS port.
	HTTPSPort int `yaml:"https_port"`
}

// TLS says where the site's certificate and private key come from.
type TLS struct {
	// Certificate is a PEM file relative to the project root, or
	// "self-signed" for a certificate generated on the host. Empty means
	// plain HTTP (role: site_certificate).
	Certificate string `yaml:"certificate"`
	// KeySecret names the secret that holds the private key (role:
	// site_key).
	KeySecret string `yaml:"key_secret"`
}

// App configures the application server and the system user it runs as.
type App struct {
	// Workers is the number of worker processes (role:
	// uwsgi_number_workers).
	Workers int `yaml:"workers"`
	// User is the system user the application runs as; created when
	// missing (role: uwsgi_user).
	User string `yaml:"user"`
	// Group is the application's group (role: uwsgi_group).
	Group string `yaml:"group"`
	// Timeout is the seconds a request may take before its worker is
	// recycled.
	Timeout int `yaml:"timeout"`
	// UWSGIOptions are extra uWSGI ini lines, e.g. a Celery
	// smart-attach-daemon2 (role: uwsgi_additional_options).
	UWSGIOptions []string `yaml:"uwsgi_options"`
}

// Database is the site's database.
type Database struct {
	// Engine is sqlite or postgres.
	Engine string `yaml:"engine"`
	// Path is the sqlite file's name inside shared/db/.
	Path string `yaml:"path"`
	// Name is the PostgreSQL database.
	Name string `yaml:"name"`
	// User is the PostgreSQL role.
	User string `yaml:"user"`
	// Host is the PostgreSQL server; empty for the local socket.
	Host string `yaml:"host"`
	// Port is the PostgreSQL port.
	Port int `yaml:"port"`
	// PasswordSecret names the secret that holds the PostgreSQL password.
	PasswordSecret string `yaml:"password_secret"`
	// SSLMode is libpq's sslmode for the application and the snapshots:
	// disable, prefer, require, verify-ca or verify-full; require when
	// the environment has a db host, libpq's default (prefer) otherwise.
	SSLMode string `yaml:"sslmode"`
}

// Secrets lists the secret values the site needs. The values themselves
// live encrypted beside the site file, never in it.
type Secrets struct {
	// Keys are the names the secret file must define, such as SECRET_KEY
	// (role: django_environment_variables).
	Keys []string `yaml:"keys"`
	// Recipients are the age public keys (age1…) and SSH public keys of
	// everyone who may read the environment's secrets.
	Recipients []string `yaml:"recipients"`
	// Environment names the secrets the application gets as environment
	// variables: all of them when it is left out, none when it is [].
	Environment []string `yaml:"environment"`
}

// SSH says how djship logs in to the hosts. What it leaves empty comes
// from ~/.ssh/config, then from OpenSSH's defaults.
type SSH struct {
	// Identity is a private key file, relative to the project root or ~/.
	Identity string `yaml:"identity"`
	// KnownHosts is a known_hosts file of the project, consulted with
	// ~/.ssh/known_hosts.
	KnownHosts string `yaml:"known_hosts"`
	// ProxyJump is a bastion (user@host:port, or a comma-separated chain).
	ProxyJump string `yaml:"proxy_jump"`
	// ConnectTimeout is the seconds allowed to connect and log in.
	ConnectTimeout int `yaml:"connect_timeout"`
	// SessionPerCommand runs every command in an SSH session of its own
	// instead of the host shell: sudo then logs each command apart, and
	// each command waits for the network two to three times instead of
	// once.
	SessionPerCommand bool `yaml:"session_per_command"`
}

// file is the whole site file as written: shared settings and the
// environments.
type file struct {
	Settings     `yaml:",inline"`
	Environments map[string]environmentFile `yaml:"environments"`
}

// environmentFile is one entry under environments: overrides and hosts.
type environmentFile struct {
	Settings `yaml:",inline"`
	Hosts    []hostEntry `yaml:"hosts"`
}

// hostEntry is one host: either "user@host:port" or a mapping with an
// address and overrides.
type hostEntry struct {
	Address string `yaml:"address"`
	// Roles are what the host does: web, worker, db, lb, or a name of
	// the site's own; web and worker when left out.
	Roles    []string `yaml:"roles"`
	Settings `yaml:",inline"`
}

// releaseKeys shape the tarball, which is built once for all environments;
// environments and hosts may not override them.
var releaseKeys = map[string]bool{"project": true, "source": true, "revision_pattern": true}

// environmentKeys apply to a whole environment; a host may not set them.
var environmentKeys = map[string]bool{"fleet": true, "mode": true, "image": true, "base_image": true, "registry": true, "compose": true}
