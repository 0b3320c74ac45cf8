package targets

import (
	"fmt"
	"path"
)

// appServer names the parts of a site's application server on a host:
// its services, units or init scripts, sockets, pid files and logs.
// uWSGI runs one instance of Debian's init script per slot (see
// slots.go); gunicorn runs one service, from systemd units or djship's
// init script.
type appServer struct {
	// kind is "uwsgi" or "gunicorn".
	kind string
	// project is the site's project name.
	project string
	// init is the host's init system, "systemd" or "sysv".
	init string
	// drainWait is how long, in tenths of a second, a retiring uWSGI
	// instance may take to finish its requests.
	drainWait int
	// container is set in container mode, where a slot is a compose
	// project of the site's folder base.
	container bool
	base      string
}

// app is the host's application server, as the mode names its parts.
func (d *Deploy) app() appServer { return d.mode.appServer(d) }

// newAppServer is the host's application server; container is set in
// container mode.
func (d *Deploy) newAppServer(container bool) appServer {
	return appServer{kind: d.Settings.AppServer, project: d.Settings.Instance, init: d.facts.init, drainWait: 10 * (d.Settings.App.Timeout + 5),
		container: container, base: d.Paths.Base}
}

// uwsgi reports whether the site runs under uWSGI.
func (a appServer) uwsgi() bool { return a.kind == "uwsgi" }

// instance names a slot's uWSGI instance: its ini file and run folder.
// A project name has no dot, so no other site's instance has this name.
// In container mode it is the slot's compose project.
func (a appServer) instance(slot string) string {
	if a.container {
		return a.project + "-" + slot
	}
	return a.project + "." + slot
}

// socket is where a slot's uWSGI instance listens (Debian's default.ini),
// or its container's gunicorn.
func (a appServer) socket(slot string) string {
	if a.container {
		return path.Join(a.base, "run", "slot-"+slot, "app.sock")
	}
	return "/run/uwsgi/app/" + a.instance(slot) + "/socket"
}

// pidFile is the master's pid file of a slot's uWSGI instance, or the
// host pid of its web container.
func (a appServer) pidFile(slot string) string {
	if a.container {
		return path.Join(a.base, "run", "slot-"+slot, "container.pid")
	}
	return "/run/uwsgi/app/" + a.instance(slot) + "/pid"
}

// label names a slot's server in messages.
func (a appServer) label(slot string) string {
	if a.container {
		return "containers " + a.instance(slot)
	}
	return "uwsgi " + a.instance(slot)
}

// ini is a slot's uWSGI configuration in apps-available; the instance
// runs (and starts at boot) while apps-enabled links it.
func (a appServer) ini(slot string) (available, enabled string) {
	name := a.instance(slot) + ".ini"
	return "/etc/uwsgi/apps-available/" + name, "/etc/uwsgi/apps-enabled/" + name
}

// legacyIni is the configuration of the single uWSGI instance earlier
// djship versions ran, named after the project.
func (a appServer) legacyIni() (available, enabled string) {
	return "/etc/uwsgi/apps-available/" + a.project + ".ini", "/etc/uwsgi/apps-enabled/" + a.project + ".ini"
}

// slotOf is the slot whose socket a link target is, "" for none.
func (a appServer) slotOf(target string) string {
	for _, s := range uwsgiSlots {
		if target == a.socket(s) {
			return s
		}
	}
	return ""
}

// unit is gunicorn's service name: its systemd units and init script.
func (a appServer) unit() string { return "gunicorn-" + a.project }

// runDir is gunicorn's run folder: its socket and pid file.
func (a appServer) runDir() string { return "/run/" + a.unit() }

// initScript is gunicorn's init script on a host without systemd.
func (a appServer) initScript() string { return path.Join("/etc/init.d", a.unit()) }

// systemdUnit is gunicorn's systemd unit of a kind (socket or service).
func (a appServer) systemdUnit(kind string) string {
	return "/etc/systemd/system/" + a.unit() + "." + kind
}

// log is the application server's log: a uWSGI slot's instance's, or
// gunicorn's.
func (a appServer) log(slot string) string {
	if a.uwsgi() {
		return "/var/log/uwsgi/app/" + a.instance(slot) + ".log"
	}
	return "/var/log/" + a.unit() + ".log"
}

// stopScript stops an instance of Debian's uWSGI init script, after its
// requests are done when drain is set (scripts/stop-instance.sh).
func (a appServer) stopScript(instance, enabled string, drain bool) string {
	return shScript("stop-instance", a.stopArgs(instance, enabled, drain)...)
}

// stopArgs are stop-instance.sh's arguments.
func (a appServer) stopArgs(instance, enabled string, drain bool) []string {
	yes := "no"
	if drain {
		yes = "yes"
	}
	return []string{instance, enabled, yes, fmt.Sprint(a.drainWait)}
}

// service is how to control the application server: for uWSGI a slot's
// instance ("a" when slot is ""), which Debian's init script serves on
// both init systems (scripts/uwsgi-instance.sh); for gunicorn its
// systemd units or its init script.
func (a appServer) service(slot string) service {
	if a.container {
		if slot == "" {
			slot = "a"
		}
		run := func(action string) string {
			return shScript("container-slot", action, a.instance(slot), path.Join(a.base, "slot-"+slot), path.Join(a.base, "run", "slot-"+slot))
		}
		return service{name: a.label(slot), status: run("status"), start: run("start"), stop: run("stop")}
	}
	if a.uwsgi() {
		if slot == "" {
			slot = "a"
		}
		inst := a.instance(slot)
		_, enabled := a.ini(slot)
		return service{name: "uwsgi " + inst,
			status: shScript("uwsgi-instance", "status", inst),
			start:  shScript("uwsgi-instance", "start", inst),
			stop:   a.stopScript(inst, enabled, true)}
	}
	if a.init == "systemd" {
		// The socket unit accepts connections while the service restarts.
		return systemdService(a.unit(), a.unit()+".socket", "reload-or-restart")
	}
	// The init script's reload re-executes the master (USR2).
	return initService(a.unit(), a.initScript(), "reload", "reload")
}
