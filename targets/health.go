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
	script := `t=$(mktemp -d); trap 'rm -rf "$t"' EXIT
code=$(curl -sS -k --max-time "$3" --resolve "$2" -D "$t/h" -o "$t/b" -w '%{http_code}' "$1" 2>"$t/e") || { echo "curl=$(head -c 300 "$t/e")"; exit 0; }
echo "status=$code"
echo "header=$(grep -i "^$4:" "$t/h" | head -n 1 | cut -d: -f2- | tr -d ' \r')"
if [ -n "$5" ] && grep -qF -- "$5" "$t/b"; then echo "body=yes"; else echo "body=no"; fi
echo "excerpt=$(head -c 400 "$t/b" | tr '\n\r' '  ')"`
	out, err := d.probe(ctx, remote.Sh("sh", "-c", script, "health", url, resolve, fmt.Sprint(d.Settings.Health.Timeout), d.Settings.Health.RevisionHeader, revision))
	if err != nil {
		return healthResult{}, err
	}
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
	return r, nil
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
		last = r
		var good bool
		if good, why = d.ok(r, revision); good {
			return nil
		}
	}
	url, _ := d.healthURL()
	msg := fmt.Sprintf("%s after %d attempts: %s", url, d.Settings.Health.Retries, why)
	if last.excerpt != "" {
		msg += "\n  body: " + last.excerpt
	}
	if tail := d.appLogTail(ctx); tail != "" {
		msg += "\n  application server log:\n    " + strings.ReplaceAll(tail, "\n", "\n    ")
	}
	return fmt.Errorf("health check failed: %s", msg)
}

// appLogTail is the end of the application server's log.
func (d *Deploy) appLogTail(ctx context.Context) string {
	p := d.Settings.Project
	log := "/var/log/uwsgi/app/" + p + ".log"
	if d.Settings.AppServer == "gunicorn" {
		log = "/var/log/gunicorn-" + p + ".log"
	}
	// The last traceback says most; request lines only bury it.
	script := `t=$(tail -n 400 -- "$1" 2>/dev/null) || exit 0
n=$(printf '%s\n' "$t" | grep -n 'Traceback (most recent call last)' | tail -n 1 | cut -d: -f1)
if [ -n "$n" ]; then printf '%s\n' "$t" | tail -n +"$n" | grep -v '^\[pid' | head -n 20; else printf '%s\n' "$t" | tail -n 15; fi`
	out, _ := d.probe(ctx, remote.Sh("sh", "-c", script, "tail", log))
	return out
}
