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
	// Image is the release's image pinned by digest, in container mode.
	Image string `json:"image,omitempty"`
}

// logResult appends how this run's action on Release ended (ok, failed
// or cancelled) to deploy.log.
func (d *Deploy) logResult(ctx context.Context, result string) error {
	who := "unknown"
	if u, err := user.Current(); err == nil {
		who = u.Username
	}
	entry := logEntry{Time: time.Now().UTC().Format(time.RFC3339), User: who, Action: d.Action, Release: d.Release, Revision: d.Revision, Previous: d.facts.live, Result: result}
	if d.Release != "" {
		entry.Image = d.mode.image(ctx, d, d.Release)
	}
	line, _ := json.Marshal(entry)
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

// walkBack is the way back through the live history: the releases live
// one after the other, oldest first, without those that a rollback left.
// An upgrade adds its release; a rollback to a release goes back to where
// it was, or adds it when it is not on the way (reached with -to=).
func walkBack(live []logEntry) []logEntry {
	var way []logEntry
	for _, e := range live {
		if e.Action == actionRollback {
			if i := lastIndex(way, e.Release); i >= 0 {
				way = append(way[:i], e)
				continue
			}
		}
		way = append(way, e)
	}
	return way
}

// lastIndex is the index of release's last entry in entries, or -1.
func lastIndex(entries []logEntry, release string) int {
	for i := len(entries) - 1; i >= 0; i-- {
		if entries[i].Release == release {
			return i
		}
	}
	return -1
}

// lastLeft is the release the last rollback to current left, "" when
// current was not reached by a rollback.
func lastLeft(live []logEntry, current string) string {
	if n := len(live); n > 0 && live[n-1].Action == actionRollback && live[n-1].Release == current {
		return live[n-1].Previous
	}
	return ""
}
