package targets

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/djship/djship/remote"
	"github.com/djship/djship/sites"
)

// fakeHost is a scripted remote.Host for testing step logic without root
// or services: each command is answered by the first rule that matches
// it, and every command line is recorded.
type fakeHost struct {
	rules []fakeRule
	ran   []string
	// uploads, when set, takes uploads (recorded by path); else they fail.
	uploads bool
	mu      sync.Mutex
	// name is the host's name; "fake" when empty.
	name string
	// journal, when set, records the commands and uploads of several
	// hosts in the order they happened, each after its host's name.
	journal *journal
}

// journal is the commands of several fake hosts in one order.
type journal struct {
	mu    sync.Mutex
	lines []string
}

func (j *journal) add(line string) {
	if j == nil {
		return
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	j.lines = append(j.lines, line)
}

// index is the position of the first line of host that contains text
// at or after from; -1 when there is none.
func (j *journal) index(host, text string, from int) int {
	for i := max(from, 0); i < len(j.lines); i++ {
		if strings.HasPrefix(j.lines[i], host+": ") && strings.Contains(j.lines[i], text) {
			return i
		}
	}
	return -1
}

// of is the lines of host, in order, each time in them written as TIME.
func (j *journal) of(host string) []string {
	var out []string
	for _, l := range j.lines {
		if strings.HasPrefix(l, host+": ") {
			out = append(out, rfc3339.ReplaceAllString(l, "TIME"))
		}
	}
	return out
}

var rfc3339 = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ`)

// last is the position of the last line of host that contains text, -1
// when there is none.
func (j *journal) last(host, text string) int {
	for i := len(j.lines) - 1; i >= 0; i-- {
		if strings.HasPrefix(j.lines[i], host+": ") && strings.Contains(j.lines[i], text) {
			return i
		}
	}
	return -1
}

// count is how many lines of host contain text.
func (j *journal) count(host, text string) int {
	n := 0
	for i := 0; ; i++ {
		if i = j.index(host, text, i); i < 0 {
			return n
		}
		n++
	}
}

// fakeRule answers the commands that run scripts/<script>.sh (when
// script is set) and contain a text (when contains is set).
type fakeRule struct {
	script, contains, stdout string
	err                      error
}

// matches reports whether the rule answers a command line.
func (r fakeRule) matches(line string) bool {
	if r.script != "" && !runsScript(line, r.script) {
		return false
	}
	return strings.Contains(line, r.contains)
}

// runsScript reports whether a command line runs scripts/<name>.sh as
// shScript writes it: the script's text, then its name as $0.
func runsScript(line, name string) bool {
	return strings.Contains(line, "\n' "+name+" ") || strings.HasSuffix(line, "\n' "+name)
}

func (h *fakeHost) Name() string {
	if h.name == "" {
		return "fake"
	}
	return h.name
}

func (h *fakeHost) Run(ctx context.Context, c remote.Command) (*remote.Result, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ran = append(h.ran, c.Script)
	h.journal.add(h.Name() + ": " + c.Script)
	for _, r := range h.rules {
		if r.matches(c.Script) {
			return &remote.Result{Stdout: []byte(r.stdout)}, r.err
		}
	}
	return nil, fmt.Errorf("the fake host has no answer for %q", c.Script)
}

func (h *fakeHost) Upload(ctx context.Context, u remote.Upload) (bool, error) {
	if !h.uploads {
		return false, errors.New("the fake host takes no uploads")
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ran = append(h.ran, "upload "+u.Path)
	h.journal.add(h.Name() + ": upload " + u.Path + "\n" + string(u.Data))
	return true, nil
}

func (h *fakeHost) ReadFile(ctx context.Context, path string, become bool) ([]byte, error) {
	return nil, errors.New("the fake host has no files")
}

func (h *fakeHost) Close() error { return nil }

// scripts are the recorded command lines that run scripts/<name>.sh.
func (h *fakeHost) scripts(name string) []string {
	var out []string
	for _, c := range h.ran {
		if runsScript(c, name) {
			out = append(out, c)
		}
	}
	return out
}

// commands are the recorded command lines that contain a text.
func (h *fakeHost) commands(contains string) []string {
	var out []string
	for _, c := range h.ran {
		if strings.Contains(c, contains) {
			out = append(out, c)
		}
	}
	return out
}

// fakeDeploy is the work on a fake host for a site under /srv/www/shop.
func fakeDeploy(h *fakeHost, keep int) (*Deploy, *bytes.Buffer) {
	s := sites.Settings{Project: "shop", Root: "/srv/www", KeepReleases: keep}
	var out bytes.Buffer
	d := NewDeploy(&sites.Site{}, &sites.Environment{Name: "test"}, s, h, remote.NewOutput(&out, &remote.Redactor{}))
	return d, &out
}

// logLines renders deploy.log entries as the host stores them.
func logLines(entries ...string) string {
	var lines []string
	for _, e := range entries {
		f := strings.Fields(e) // action release result [previous]
		previous := ""
		if len(f) > 3 {
			previous = f[3]
		}
		lines = append(lines, fmt.Sprintf(`{"time":"2026-12-01T10:00:00Z","user":"dev","action":%q,"release":%q,"revision":%q,"previous":%q,"result":%q}`, f[0], f[1], f[1], previous, f[2]))
	}
	return strings.Join(lines, "\n")
}

func TestPruneChoosesWhatToRemove(t *testing.T) {
	for _, c := range []struct {
		name             string
		keep             int
		release, live    string
		listing          string
		removed, notGone []string
	}{
		{
			name: "complete ones beyond keep, oldest first", keep: 3, release: "r5", live: "r4",
			listing: "500 complete r5\n400 complete r4\n300 complete r3\n200 complete r2\n100 complete r1",
			removed: []string{"r1", "r2"}, notGone: []string{"r3", "r4", "r5"},
		},
		{
			name: "failed and unfinished ones always", keep: 5, release: "r3", live: "r2",
			listing: "300 complete r3\n250 failed bad\n240 building half\n200 complete r2\n100 complete r1",
			removed: []string{"bad", "half"}, notGone: []string{"r1", "r2", "r3"},
		},
		{
			name: "never the live or the previous one, even beyond keep", keep: 1, release: "r3", live: "r1",
			listing: "300 complete r3\n200 complete r2\n100 complete r1",
			removed: []string{"r2"}, notGone: []string{"r1", "r3"},
		},
		{
			name: "nothing to prune runs no removal", keep: 5, release: "r2", live: "r1",
			listing: "200 complete r2\n100 complete r1",
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := &fakeHost{rules: []fakeRule{
				{script: "list-releases", stdout: c.listing},
				{script: "remove-releases"},
			}}
			d, _ := fakeDeploy(h, c.keep)
			d.Release, d.facts.live = c.release, c.live
			if err := d.prune(context.Background()); err != nil {
				t.Fatal(err)
			}
			rm := h.scripts("remove-releases")
			if len(c.removed) == 0 {
				if len(rm) != 0 {
					t.Fatalf("a removal ran: %v", rm)
				}
				return
			}
			if len(rm) != 1 {
				t.Fatalf("removals: %v", rm)
			}
			for _, r := range c.removed {
				if !strings.Contains(rm[0], " "+r) {
					t.Errorf("%s is not removed: %s", r, rm[0])
				}
			}
			for _, r := range c.notGone {
				if strings.Contains(rm[0], " "+r+" ") || strings.HasSuffix(rm[0], " "+r) {
					t.Errorf("%s is removed: %s", r, rm[0])
				}
			}
		})
	}
}

func TestRollbackTargetFromTheDeployLog(t *testing.T) {
	for _, c := range []struct {
		name       string
		live, to   string
		log        string
		complete   []string // releases whose folder is complete
		want, fail string
	}{
		{
			name: "the one live before", live: "r3",
			log:      logLines("upgrade r1 ok", "upgrade r2 ok r1", "upgrade r3 ok r2"),
			complete: []string{"r1", "r2", "r3"}, want: "r2",
		},
		{
			name: "never a failed deploy", live: "r3",
			log:      logLines("upgrade r1 ok", "upgrade bad failed r1", "upgrade r3 ok r1"),
			complete: []string{"r1", "r3"}, want: "r1",
		},
		{
			name: "past one that is gone from the host", live: "r3",
			log:      logLines("upgrade r1 ok", "upgrade r2 ok r1", "upgrade r3 ok r2"),
			complete: []string{"r1", "r3"}, want: "r1",
		},
		{
			name: "a second rollback walks further back", live: "r2",
			log:      logLines("upgrade r1 ok", "upgrade r2 ok r1", "upgrade r3 ok r2", "rollback r2 ok r3"),
			complete: []string{"r1", "r2", "r3"}, want: "r1",
		},
		{
			name: "a third one too, past an upgrade made after a rollback", live: "r4",
			log:      logLines("upgrade r1 ok", "upgrade r2 ok r1", "upgrade r3 ok r2", "rollback r2 ok r3", "upgrade r4 ok r2"),
			complete: []string{"r1", "r2", "r3", "r4"}, want: "r2",
		},
		{
			name: "after a rollback to the first, not forward", live: "r1",
			log:      logLines("upgrade r1 ok", "upgrade r2 ok r1", "rollback r1 ok r2"),
			complete: []string{"r1", "r2"}, fail: "to go forward again to r2, the release a rollback left, use -to=r2",
		},
		{
			name: "-to forward to the release a rollback left", live: "r1", to: "r2",
			log:      logLines("upgrade r1 ok", "upgrade r2 ok r1", "rollback r1 ok r2"),
			complete: []string{"r1", "r2"}, want: "r2",
		},
		{
			name: "after -to forward, back again", live: "r3",
			log:      logLines("upgrade r1 ok", "upgrade r2 ok r1", "upgrade r3 ok r2", "rollback r1 ok r3", "rollback r3 ok r1"),
			complete: []string{"r1", "r2", "r3"}, want: "r1",
		},
		{
			name: "in a deploy log of earlier versions, which said deploy", live: "r3",
			log:      logLines("deploy r1 ok", "deploy r2 ok r1", "deploy r3 ok r2"),
			complete: []string{"r1", "r2", "r3"}, want: "r2",
		},
		{
			name: "-to a release that was live", live: "r3", to: "r1",
			log:      logLines("upgrade r1 ok", "upgrade r2 ok r1", "upgrade r3 ok r2"),
			complete: []string{"r1", "r2", "r3"}, want: "r1",
		},
		{
			name: "-to a release never live", live: "r2", to: "bad",
			log:      logLines("upgrade r1 ok", "upgrade bad failed r1", "upgrade r2 ok r1"),
			complete: []string{"r1", "r2"}, fail: "was never live here",
		},
		{
			name: "-to the live one", live: "r2", to: "r2",
			log:      logLines("upgrade r1 ok", "upgrade r2 ok r1"),
			complete: []string{"r1", "r2"}, fail: "is already live",
		},
		{
			name: "-to a pruned one", live: "r3", to: "r1",
			log:      logLines("upgrade r1 ok", "upgrade r2 ok r1", "upgrade r3 ok r2"),
			complete: []string{"r2", "r3"}, fail: "no longer on the host",
		},
		{
			name: "nothing earlier", live: "r1",
			log:      logLines("upgrade r1 ok"),
			complete: []string{"r1"}, fail: "records no release live before r1",
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			var rules []fakeRule
			for _, r := range c.complete {
				rules = append(rules, fakeRule{script: "read-file", contains: " /srv/www/shop/releases/" + r + "/.djship-state", stdout: "complete"})
			}
			rules = append(rules,
				fakeRule{script: "read-file", contains: ".djship-state"},
				fakeRule{script: "read-file", contains: "deploy.log", stdout: c.log})
			h := &fakeHost{rules: rules}
			d, _ := fakeDeploy(h, 5)
			d.facts.live, d.rollback.to = c.live, c.to
			_, err := rollbackTargetStep{}.Run(context.Background(), d)
			if c.fail != "" {
				if err == nil || !strings.Contains(err.Error(), c.fail) {
					t.Fatalf("error %v, want one that says %q", err, c.fail)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d.Release != c.want {
				t.Errorf("target %s, want %s", d.Release, c.want)
			}
		})
	}
}

func TestReleaseNameIsNewOnEveryHost(t *testing.T) {
	for _, c := range []struct {
		name          string
		folders, logs []string // per host
		revision      string
		stamped       bool
	}{
		{name: "a new revision keeps its name", folders: []string{"a1", ""}, logs: []string{logLines("upgrade a1 ok"), ""}, revision: "b2"},
		{name: "a folder of any host", folders: []string{"", "b2"}, logs: []string{"", ""}, revision: "b2", stamped: true},
		{name: "a failed deploy in a log whose folder is pruned", folders: []string{"a1", "a1"}, logs: []string{logLines("upgrade b2 failed a1"), ""}, revision: "b2", stamped: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			var deploys []*Deploy
			for i := range c.folders {
				h := &fakeHost{rules: []fakeRule{
					{script: "list-folder", stdout: c.folders[i]},
					{script: "read-file", contains: "deploy.log", stdout: c.logs[i]},
				}}
				d, _ := fakeDeploy(h, 5)
				deploys = append(deploys, d)
			}
			name, err := releaseName(context.Background(), deploys, c.revision)
			if err != nil {
				t.Fatal(err)
			}
			if !c.stamped && name != c.revision {
				t.Errorf("name %s, want %s", name, c.revision)
			}
			if c.stamped && (name == c.revision || !strings.HasPrefix(name, c.revision+"-")) {
				t.Errorf("name %s, want %s with the time", name, c.revision)
			}
		})
	}
}
