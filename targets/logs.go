package targets

import (
	"context"
	"fmt"
	"path"

	"github.com/djship/djship/remote"
	"github.com/djship/djship/sites"
)

// LogsOptions tune Logs.
type LogsOptions struct {
	Options
	// Lines is how many of each log's last lines to show; 50 when 0.
	Lines int
	// Follow keeps printing what the logs get until the run is cancelled.
	Follow bool
}

// Logs prints the end of every host's logs, each line behind the host's
// prefix: the application server's (where Django's request errors land,
// tracebacks included), the site's own in shared/logs/, and the web
// server's error and access logs of the site.
func Logs(ctx context.Context, site *sites.Site, envName string, opts LogsOptions) error {
	lines := opts.Lines
	if lines <= 0 {
		lines = 50
	}
	follow := "no"
	if opts.Follow {
		follow = "yes"
	}
	_, err := onHosts(ctx, site, envName, opts.Options, hostRun{action: actionLogs, check: true, readOnly: true, work: func(ctx context.Context, d *Deploy) ([]StepResult, error) {
		if _, err := (factsStep{}).Run(ctx, d); err != nil {
			return nil, err
		}
		args := append([]string{follow, fmt.Sprint(lines)}, d.logFiles()...)
		_, err := d.Host.Run(ctx, remote.Command{Script: shScript("logs", args...), Become: true})
		return nil, err
	}})
	return err
}

// logFiles are the site's logs on the host, as logs.sh takes them: files,
// dir:<folder> for the *.log files of a folder, unit:<name> for a systemd
// unit's journal.
func (d *Deploy) logFiles() []string {
	w := d.web()
	logs := append(d.mode.appLogs(d), "dir:"+d.Paths.Logs)
	return append(logs, path.Join(w.logDir(), d.Settings.Instance+".error.log"), path.Join(w.logDir(), d.Settings.Instance+".access.log"))
}
