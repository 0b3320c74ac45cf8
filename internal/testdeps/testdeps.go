// Package testdeps makes a Debian machine ready for djship's tests: it
// installs the Debian packages they need when some are missing and starts
// the services they use. The test target calls it first when it runs as
// root, so that the README's test command works on a fresh machine.
package testdeps

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

// Packages are the Debian packages the tests need: the web and
// application servers, PostgreSQL, OpenSSH, Debian's Django, Docker with
// Compose and a registry, and the tools djship runs on hosts.
var Packages = []string{
	"git", "tar", "python3-django", "libjs-jquery", "ca-certificates",
	"openssh-server", "openssh-client", "sudo", "procps",
	"nginx", "apache2", "uwsgi", "uwsgi-plugin-python3", "gunicorn", "python3-venv",
	"acl", "unzip", "sqlite3", "openssl", "curl", "systemd", "zstd",
	"postgresql", "postgresql-client", "python3-psycopg2", "gnupg", "shellcheck",
	"python3-whitenoise", "python3-dj-database-url",
	"systemd-container", "debootstrap", "iproute2",
	"docker.io", "docker-compose", "docker-registry",
}

// PolicyRC is the file through which Debian's maintainer scripts ask
// whether they may start a service (invoke-rc.d, policy-rc.d(8)).
const PolicyRC = "/usr/sbin/policy-rc.d"

// sshdDir is the folder OpenSSH's sshd needs before it starts; the tests
// start their own sshd on loopback ports.
const sshdDir = "/run/sshd"

// Ensure makes this machine ready for the tests when it runs as root on
// Debian: it installs the Packages that are missing (apt-get update, then
// apt-get install, with no service started while installing), then starts
// PostgreSQL unless it runs and makes sure sshd's folder exists. When
// nothing is missing it needs no network and prints one line. Without root
// or on another system it changes nothing.
func Ensure(ctx context.Context, w io.Writer) error {
	if os.Geteuid() != 0 {
		return nil
	}
	if _, err := os.Stat("/etc/debian_version"); err != nil {
		fmt.Fprintf(w, "test packages: not a Debian system, so nothing is installed; the tests need the equivalents of %s\n", strings.Join(Packages, " "))
		return nil
	}
	missing, err := Missing(ctx, Packages)
	if err != nil {
		return err
	}
	if len(missing) > 0 {
		fmt.Fprintf(w, "test packages: installing the %d missing: %s\n", len(missing), strings.Join(missing, " "))
		if err := install(ctx, w, missing); err != nil {
			return err
		}
	}
	services, err := startServices(ctx)
	if err != nil {
		return err
	}
	line := fmt.Sprintf("test packages: all %d installed", len(Packages))
	if len(services) > 0 {
		line += "; started " + strings.Join(services, ", ")
	}
	fmt.Fprintln(w, line)
	return nil
}

// Missing returns the packages of pkgs that dpkg does not list as
// installed, in their order.
func Missing(ctx context.Context, pkgs []string) ([]string, error) {
	cmd := exec.CommandContext(ctx, "dpkg-query", append([]string{"-W", "-f=${Package} ${db:Status-Status}\\n"}, pkgs...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	// dpkg-query exits 1 when it knows nothing of a package, and says so
	// on standard error: that package is missing, which is no failure.
	var exit *exec.ExitError
	if err != nil && !(errors.As(err, &exit) && exit.ExitCode() == 1) {
		return nil, fmt.Errorf("dpkg-query: which test packages are installed: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return missingFrom(string(out), pkgs), nil
}

// missingFrom reads dpkg-query's "package status" lines and returns the
// packages of pkgs it does not list as installed (never installed,
// removed with their configuration kept, half installed).
func missingFrom(dpkgOutput string, pkgs []string) []string {
	installed := map[string]bool{}
	for _, l := range strings.Split(dpkgOutput, "\n") {
		name, status, ok := strings.Cut(strings.TrimSpace(l), " ")
		if ok && status == "installed" {
			// A Multi-Arch package may be listed as name:arch.
			name, _, _ = strings.Cut(name, ":")
			installed[name] = true
		}
	}
	var missing []string
	for _, p := range pkgs {
		if !installed[p] {
			missing = append(missing, p)
		}
	}
	return missing
}

// install runs apt-get update and apt-get install for pkgs, while
// PolicyRC keeps their services from starting: nginx and Apache would
// both claim port 80, and the tests start what they need themselves.
// Ctrl-C or SIGTERM stops apt-get and still restores PolicyRC.
func install(ctx context.Context, w io.Writer, pkgs []string) (err error) {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	restore, err := guardPolicy(PolicyRC)
	if err != nil {
		return err
	}
	defer func() {
		if rerr := restore(); rerr != nil && err == nil {
			err = rerr
		}
	}()
	if err := apt(ctx, w, "update", "-q"); err != nil {
		return err
	}
	return apt(ctx, io.Discard, append([]string{"install", "-y", "-q", "--no-install-recommends"}, pkgs...)...)
}

// apt runs apt-get non-interactively; its standard output goes to w and
// the last lines of its standard error into the error.
func apt(ctx context.Context, w io.Writer, args ...string) error {
	cmd := exec.CommandContext(ctx, "apt-get", args...)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = w, &stderr
	// On cancellation apt-get gets the chance to stop as on Ctrl-C.
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("apt-get %s: stopped before it finished (%w); run the test command again to finish installing", strings.Join(args, " "), ctx.Err())
		}
		return fmt.Errorf("apt-get %s: %w%s", strings.Join(args, " "), err, lastLines(stderr.String(), 5))
	}
	return nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) == 1 && lines[0] == "" {
		return ""
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "\n" + strings.Join(lines, "\n")
}

// policyScript denies every service start; its second line marks it as
// this package's, so that a run that died before restoring the original
// is recognised by the next one.
const policyScript = "#!/bin/sh\n# djship testdeps: no service starts while the test packages install.\nexit 101\n"

// guardPolicy puts policyScript at path and returns the function that
// puts back what was there before (or removes it when nothing was). The
// original is kept beside it, in path.djship-testdeps, until then: a run
// killed before restoring leaves it there, and the next run restores that
// one rather than its own script.
func guardPolicy(path string) (restore func() error, err error) {
	backup := path + ".djship-testdeps"
	hadOriginal := false
	if _, err := os.Lstat(backup); err == nil {
		hadOriginal = true // a previous run died: path is its script
	} else if data, err := os.ReadFile(path); err == nil {
		if string(data) != policyScript {
			if err := os.Rename(path, backup); err != nil {
				return nil, fmt.Errorf("keep %s aside while installing: %w", path, err)
			}
			hadOriginal = true
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	restore = func() error {
		if hadOriginal {
			if err := os.Rename(backup, path); err != nil {
				return fmt.Errorf("put %s back from %s: %w", path, backup, err)
			}
			return nil
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove the installation's %s: %w", path, err)
		}
		return nil
	}
	if err := writeFile(path, policyScript); err != nil {
		return nil, errors.Join(err, restore())
	}
	return restore, nil
}

// writeFile writes an executable script atomically: a new file beside
// path, renamed into place.
func writeFile(path, content string) error {
	tmp := path + ".djship-new"
	if err := os.WriteFile(tmp, []byte(content), 0o755); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("chmod %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("put %s in place: %w", path, err)
	}
	return nil
}

// startServices starts PostgreSQL when it is installed and not running,
// and creates sshd's folder. It returns the services it started.
func startServices(ctx context.Context) ([]string, error) {
	var started []string
	if _, err := os.Stat("/etc/init.d/postgresql"); err == nil {
		// service postgresql status exits 0 when every cluster runs.
		if exec.CommandContext(ctx, "service", "postgresql", "status").Run() != nil {
			if out, err := exec.CommandContext(ctx, "service", "postgresql", "start").CombinedOutput(); err != nil {
				return nil, fmt.Errorf("service postgresql start (the PostgreSQL tests ship to it): %w\n%s", err, strings.TrimSpace(string(out)))
			}
			started = append(started, "postgresql")
		}
	}
	if _, err := os.Stat("/etc/init.d/docker"); err == nil {
		// Container mode's tests run Docker here.
		didStart, err := StartDocker(ctx)
		if err != nil {
			return nil, fmt.Errorf("%w (container mode's tests run Docker)", err)
		}
		if didStart {
			started = append(started, "docker")
		}
	}
	if err := os.MkdirAll(sshdDir, 0o755); err != nil {
		return nil, fmt.Errorf("create %s (the tests' sshd needs it): %w", sshdDir, err)
	}
	return started, nil
}

// StartDocker starts the Docker daemon unless it answers already, and
// waits until it answers (at most 30 s). It reports whether it started
// it. Debian's init script first raises the open-files limit to 1048576,
// which a machine without CAP_SYS_RESOURCE (a container, a restricted
// VM) refuses before anything starts; then dockerd is started the way
// that script starts it (its pid files and log file), with the limits
// the machine allows. djship's own docker-start.sh does the same on
// hosts.
func StartDocker(ctx context.Context) (bool, error) {
	if dockerAnswers(ctx) {
		return false, nil
	}
	out, err := exec.CommandContext(ctx, "service", "docker", "start").CombinedOutput()
	if err != nil && !dockerAnswers(ctx) {
		log, lerr := os.OpenFile("/var/log/docker.log", os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o640)
		if lerr != nil {
			return false, fmt.Errorf("service docker start: %w\n%s\nthen open /var/log/docker.log: %w", err, strings.TrimSpace(string(out)), lerr)
		}
		defer log.Close()
		direct := exec.CommandContext(ctx, "start-stop-daemon", "--start", "--background", "--no-close",
			"--exec", "/usr/sbin/dockerd", "--pidfile", "/var/run/docker-ssd.pid", "--make-pidfile",
			"--", "-p", "/var/run/docker.pid")
		direct.Stdout, direct.Stderr = log, log
		if derr := direct.Run(); derr != nil {
			return false, fmt.Errorf("service docker start: %w\n%s\nthen start-stop-daemon --exec /usr/sbin/dockerd: %w", err, strings.TrimSpace(string(out)), derr)
		}
	}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if dockerAnswers(ctx) {
			return true, nil
		}
	}
	return true, errors.New("the Docker daemon does not answer 30 s after it was started; see /var/log/docker.log")
}

// dockerAnswers reports whether docker info reaches a daemon.
func dockerAnswers(ctx context.Context) bool {
	return exec.CommandContext(ctx, "docker", "info").Run() == nil
}
