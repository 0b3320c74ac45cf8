package targets

import (
	"context"
	"encoding/json"
	"os/user"
	"strings"
	"time"
)

// logEntry is one line of deploy.log.
type logEntry struct {
	Time     string `json:"time"`
	User     string `json:"user"`
	Action   string `json:"action"`
	Release  string `json:"release"`
	Revision string `json:"revision"`
	Previous string `json:"previous,omitempty"`
	Result   string `json:"result"`
}

// logResult appends how this run's action on Release ended (ok, failed
// or cancelled) to deploy.log.
func (d *Deploy) logResult(ctx context.Context, result string) error {
	who := "unknown"
	if u, err := user.Current(); err == nil {
		who = u.Username
	}
	line, _ := json.Marshal(logEntry{Time: time.Now().UTC().Format(time.RFC3339), User: who, Action: d.Action, Release: d.Release, Revision: d.Revision, Previous: d.facts.live, Result: result})
	_, err := d.run(ctx, shScript("append-log", d.Paths.Log, string(line)))
	return err
}

// legacyUpgrade is what deploy.log called an upgrade before it used the
// target's name.
const legacyUpgrade = "deploy"

// readLog returns the host's deploy log, oldest first.
func (d *Deploy) readLog(ctx context.Context) ([]logEntry, error) {
	out, err := d.probe(ctx, shScript("read-file", d.Paths.Log))
	if err != nil {
		return nil, err
	}
	var entries []logEntry
	for _, l := range strings.Split(out, "\n") {
		var e logEntry
		if json.Unmarshal([]byte(l), &e) == nil && e.Release != "" {
			if e.Action == legacyUpgrade {
				e.Action = actionUpgrade
			}
			entries = append(entries, e)
		}
	}
	return entries, nil
}

// liveHistory lists the releases that were live, oldest first, as the
// deploy log records them (successful deploys and rollbacks).
func liveHistory(entries []logEntry) []logEntry {
	var live []logEntry
	for _, e := range entries {
		if e.Result == "ok" && (e.Action == actionUpgrade || e.Action == actionRollback) {
			live = append(live, e)
		}
	}
	return live
}
