package targets

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/djship/djship/remote"
)

// healthStep asks the web server on the host for the site, as a visitor
// would (the site's name, over TLS when it has a certificate, resolved to
// the host itself), until it answers with the expected status and the
// new revision.
type healthStep struct{}

func (healthStep) Name() string { return "health check" }

// Skip leaves a host that serves no visitors (a worker host) unasked.
func (healthStep) Skip(d *Deploy) bool { return !d.serves() }

func (healthStep) Run(ctx context.Context, d *Deploy) (bool, error) {
	return false, d.checkHealth(ctx, d.Revision)
}

// healthResult is one answer of the site.
type healthResult struct {
	status   string
	header   string
	inBody   bool
	excerpt  string
	curlFail string
}

// healthURL is the address the check requests.
func (d *Deploy) healthURL() (url, resolve string) {
	s := d.Settings
	scheme, port := "https", s.Web.HTTPSPort
	if s.TLS.Certificate == "" {
		scheme, port = "http", s.Web.HTTPPort
	}
	return fmt.Sprintf("%s://%s:%d%s", scheme, s.URL, port, s.Health.Path), fmt.Sprintf("%s:%d:127.0.0.1", s.URL, port)
}

func (d *Deploy) askSite(ctx context.Context, revision string) (healthResult, error) {
	url, resolve := d.healthURL()
	out, err := d.probe(ctx, shScript("ask-site", url, resolve, fmt.Sprint(d.Settings.Health.Timeout), d.Settings.Health.RevisionHeader, revision))
	if err != nil {
		return healthResult{}, err
	}
	return parseAnswer(out), nil
}

// parseAnswer reads the key=value lines the host's checks print.
func parseAnswer(out string) healthResult {
	var r healthResult
	for _, l := range strings.Split(out, "\n") {
		k, v, _ := strings.Cut(l, "=")
		switch k {
		case "status":
			r.status = v
		case "header":
			r.header = v
		case "body":
			r.inBody = v == "yes"
		case "excerpt":
			r.excerpt = strings.TrimSpace(v)
		case "curl":
			r.curlFail = v
		}
	}
	return r
}

// askSlot asks the instance of a uWSGI slot for the health page and says
// whether it answered well.
func (d *Deploy) askSlot(ctx context.Context, slot, revision string) (healthResult, bool, string, error) {
	r, good, target, err := d.askApp(ctx, d.mode.slotProtocol(), d.app().socket(slot), d.app().pidFile(slot), revision)
	if err != nil {
		err = fmt.Errorf("asking %s: %w", d.app().label(slot), err)
	}
	return r, good, target, err
}

// askApp asks an application server for the health page through its own
// socket, speaking protocol ("uwsgi" or "http") as the web server does,
// and says whether it answered well. A health.path under /static/ or
// /media/ is the web server's, not the application's: then the server is
// asked for / and any answer but a server error will do.
func (d *Deploy) askApp(ctx context.Context, protocol, socket, pidFile, revision string) (healthResult, bool, string, error) {
	s := d.Settings
	https, port := "1", s.Web.HTTPSPort
	if s.TLS.Certificate == "" {
		https, port = "0", s.Web.HTTPPort
	}
	target, want := s.Health.Path, fmt.Sprint(s.Health.Status)
	if strings.HasPrefix(target, "/static/") || strings.HasPrefix(target, "/media/") {
		target, want, revision = "/", "any", ""
	}
	seconds := s.Health.Retries * (s.Health.Timeout + 1)
	out, err := d.probe(ctx, remote.Sh(s.Python, "-I", "-c", script("app-probe.py"), protocol, socket, pidFile, s.URL, fmt.Sprint(port), https,
		target, s.Health.RevisionHeader, revision, s.Health.Revision, want, fmt.Sprint(seconds)))
	if err != nil {
		return healthResult{}, false, target, err
	}
	return parseAnswer(out), strings.Contains(out, "good=yes"), target, nil
}

// ok says whether an answer is healthy, and why not.
func (d *Deploy) ok(r healthResult, revision string) (bool, string) {
	h := d.Settings.Health
	if r.curlFail != "" {
		return false, "no answer: " + r.curlFail
	}
	if r.status != fmt.Sprint(h.Status) {
		return false, fmt.Sprintf("status %s, want %d", r.status, h.Status)
	}
	if revision == "" {
		return true, ""
	}
	switch h.Revision {
	case "body":
		if !r.inBody && r.header != revision {
			return false, fmt.Sprintf("the page does not show revision %s (neither in the body nor in %s)", revision, h.RevisionHeader)
		}
	case "header":
		if r.header != revision {
			return false, fmt.Sprintf("%s is %q, want %s", h.RevisionHeader, r.header, revision)
		}
	}
	return true, ""
}

// checkHealth retries until the site answers well, and otherwise fails
// with the last status, a body excerpt and the tail of the application
// server's log. revision "" checks the status only.
func (d *Deploy) checkHealth(ctx context.Context, revision string) error {
	if d.Settings.Health.Revision == "none" {
		revision = ""
	}
	var last healthResult
	var why string
	attempts := 0
	for i := 0; i < d.Settings.Health.Retries; i++ {
		if i > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Second):
			}
		}
		r, err := d.askSite(ctx, revision)
		if err != nil {
			return err
		}
		var good bool
		if good, why = d.ok(r, revision); good {
			return nil
		}
		attempts = i + 1
		// The same server error twice will not change with more tries.
		if i > 0 && r == last && strings.HasPrefix(r.status, "5") {
			last = r
			break
		}
		last = r
	}
	url, _ := d.healthURL()
	msg := fmt.Sprintf("%s after %d attempts: %s", url, attempts, why)
	if last.excerpt != "" {
		msg += "\n  body: " + last.excerpt
	}
	return d.withAppLog(ctx, fmt.Errorf("health check failed: %s", msg))
}

// appLogTail is the end of the application server's log, with its path.
func (d *Deploy) appLogTail(ctx context.Context) (tail, log string) {
	// The instance this run started says why it fails; else the live one.
	slot := d.slots.started
	if slot == "" {
		slot = d.slots.serving
	}
	if slot == "" {
		slot = "a"
	}
	return d.mode.slotLog(ctx, d, slot)
}

// logTail is the end of a log on the host: from its last traceback, with
// request lines left out (scripts/log-tail.sh).
func (d *Deploy) logTail(ctx context.Context, log string) string {
	out, _ := d.probe(ctx, shScript("log-tail", log))
	return out
}

// withLog adds the end of a log to an error, and says where the rest is.
func withLog(err error, tail, log string) error {
	if tail == "" {
		return err
	}
	return fmt.Errorf("%w\n  application server log (the end of %s):\n    %s", err, log, strings.ReplaceAll(tail, "\n", "\n    "))
}

// withAppLog adds the end of the application server's log to an error.
func (d *Deploy) withAppLog(ctx context.Context, err error) error {
	tail, log := d.appLogTail(ctx)
	return withLog(err, tail, log)
}
