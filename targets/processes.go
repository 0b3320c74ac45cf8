package targets

import (
	"context"
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"

	"github.com/djship/djship/sites"
	"github.com/djship/djship/templates"
)

// The site's processes (processes: in the site file) run as services
// named djship-<instance>-<name>, from current/, in the application's
// environment, through the process launcher (templates/launchers.go).

// processNames are the site's processes that run on this host as
// services of its init system, sorted (none in container mode, where
// they are containers of each release's compose project).
func (d *Deploy) processNames() []string { return d.mode.processNames(d) }

// configuredProcesses are the site's processes, sorted: those that run
// on this host, which is none unless it has the role worker.
func (d *Deploy) configuredProcesses() []string {
	if !d.hasRole(sites.RoleWorker) {
		return nil
	}
	return slices.Sorted(maps.Keys(d.Settings.Processes))
}

// processPrefix starts the name of every process service of the site.
func (d *Deploy) processPrefix() string { return "djship-" + d.Settings.Instance + "-" }

// processService is how to control one process.
func (d *Deploy) processService(name string) service {
	unit := d.processPrefix() + name
	if d.facts.init == "systemd" {
		return systemdService(unit, unit+".service", "restart")
	}
	return initService(unit, path.Join("/etc/init.d", unit), "restart", "restart")
}

// processesStep writes the service of each of the site's processes, once
// each validates, and stops and removes the services of processes the
// site no longer lists. The services step starts them once a release is
// live.
type processesStep struct{}

func (processesStep) Name() string { return "processes" }

func (processesStep) Run(ctx context.Context, d *Deploy) (bool, error) {
	systemd := d.facts.init == "systemd"
	var files []file
	for _, name := range d.processNames() {
		words, err := sites.ProcessCommand(d.Settings.Processes[name])
		if err != nil {
			return false, fmt.Errorf("processes.%s: %w", name, err)
		}
		site := d.templateSite()
		site.Launcher = templates.ProcessLauncherPath
		p := templates.Process{Site: site, Name: name, Unit: d.processPrefix() + name, Command: words}
		if systemd {
			data, err := templates.Render(templates.ProcessUnit, p)
			if err != nil {
				return false, err
			}
			if err := d.validate(ctx, "unit of the process "+name, data, "test-unit", p.Unit+".service"); err != nil {
				return false, err
			}
			files = append(files, file{Path: "/etc/systemd/system/" + p.Unit + ".service", Data: data, Mode: 0o644, Owner: "root", Group: "root"})
			continue
		}
		data, err := templates.Render(templates.ProcessInit, p)
		if err != nil {
			return false, err
		}
		if err := d.validate(ctx, "init script of the process "+name, data, "test-init-script"); err != nil {
			return false, err
		}
		files = append(files, file{Path: "/etc/init.d/" + p.Unit, Data: data, Mode: 0o755, Owner: "root", Group: "root"})
	}
	changed, err := d.ensureFiles(ctx, files...)
	if err != nil {
		return changed, err
	}
	if changed {
		d.reload["processes"] = true
		if systemd {
			err = d.do(ctx, "systemctl daemon-reload", "systemctl daemon-reload")
		} else {
			for _, name := range d.processNames() {
				if err = d.do(ctx, "enable "+d.processPrefix()+name+" at boot", shScript("enable-at-boot", d.processPrefix()+name)); err != nil {
					break
				}
			}
		}
		if err != nil {
			return changed, err
		}
	}
	out, err := d.probe(ctx, shScript("stale-processes", append([]string{d.processPrefix()}, d.processNames()...)...))
	if err != nil {
		return changed, err
	}
	for _, unit := range strings.Fields(out) {
		changed = true
		if err := d.do(ctx, "stop and remove "+unit+", a process the site no longer has", shScript("remove-process", unit)); err != nil {
			return changed, err
		}
	}
	return changed, nil
}

// startProcesses starts the processes that do not run, and restarts
// those whose service changed (provision) or all of them (restart: after
// a switch, so that they run the live release).
func (d *Deploy) startProcesses(ctx context.Context, restart bool) (bool, error) {
	changed := false
	for _, name := range d.processNames() {
		svc := d.processService(name)
		c, err := d.control(ctx, svc, restart || d.reload["processes"])
		if err != nil {
			return changed, fmt.Errorf("process %s: %w", name, err)
		}
		changed = changed || c
	}
	return changed, nil
}

// restartProcessesStep restarts the site's processes once the new release
// is live and answers, so that they run it: each gets a TERM first, and
// finishes what it does for up to app.timeout seconds.
type restartProcessesStep struct{}

func (restartProcessesStep) Name() string { return "restart processes" }

func (restartProcessesStep) Skip(d *Deploy) bool { return len(d.processNames()) == 0 }

func (restartProcessesStep) Run(ctx context.Context, d *Deploy) (bool, error) {
	d.progress.processes = true
	return d.startProcesses(ctx, true)
}

// processStatus words whether each process runs, "-" for none.
func (d *Deploy) processStatus(ctx context.Context) string {
	if len(d.processNames()) == 0 {
		return "-"
	}
	var words []string
	for _, name := range d.processNames() {
		state := "stopped"
		if _, err := d.run(ctx, d.processService(name).status); err == nil {
			state = "running"
		}
		words = append(words, name+" "+state)
	}
	return strings.Join(words, ", ")
}
