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

// slotProbe asks a uWSGI instance for a page through its own socket,
// with the variables nginx's uwsgi_params pass, and prints the answer as
// askSite does. It retries while the instance starts, and stops at the
// first good answer, when the instance has exited, when the same bad
// answer came twice (a failure that will not change), or at the
// deadline. Arguments: socket pid-file host port https path
// revision-header revision mode status seconds; status "any" takes any
// answer but a server error.
const slotProbe = `import os, socket, struct, sys, time
sock, pidfile, host, port, https, target, header, revision, mode, want, seconds = sys.argv[1:12]
deadline = time.monotonic() + float(seconds)
path, _, query = target.partition("?")
name = host if port in ("80", "443") else host + ":" + port
env = {"QUERY_STRING": query, "REQUEST_METHOD": "GET", "CONTENT_TYPE": "", "CONTENT_LENGTH": "",
       "REQUEST_URI": target, "PATH_INFO": path, "DOCUMENT_ROOT": "/var/www/html", "SERVER_PROTOCOL": "HTTP/1.1",
       "REQUEST_SCHEME": "https" if https == "1" else "http", "REMOTE_ADDR": "127.0.0.1", "REMOTE_PORT": "0",
       "SERVER_PORT": port, "SERVER_NAME": host, "HTTP_HOST": name, "HTTP_USER_AGENT": "djship health check"}
if https == "1":
    env["HTTPS"] = "on"
def pack(s):
    b = s.encode()
    return struct.pack("<H", len(b)) + b
body = b"".join(pack(k) + pack(v) for k, v in env.items())
packet = struct.pack("<BHB", 0, len(body), 0) + body
def alive():
    try:
        with open(pidfile) as f:
            os.kill(int(f.read().strip()), 0)
        return True
    except (OSError, ValueError):
        return False
def ask():
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(max(1.0, deadline - time.monotonic()))
    try:
        s.connect(sock)
        s.sendall(packet)
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    finally:
        s.close()
    if not data:
        raise OSError("the instance closed the connection without an answer")
    head, _, content = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = lines[0].split()[1] if len(lines[0].split()) > 1 else "?"
    value = ""
    for l in lines[1:]:
        k, _, v = l.partition(":")
        if k.strip().lower() == header.lower():
            value = v.strip()
            break
    return status, value, content
def good(status, value, content):
    if want == "any":
        return status.isdigit() and int(status) < 500
    if status != want:
        return False
    if not revision or mode == "none":
        return True
    if mode == "header":
        return value == revision
    return value == revision or revision.encode() in content
def show(status, value, content):
    print("good=" + ("yes" if good(status, value, content) else "no"))
    print("status=" + status)
    print("header=" + value.replace("\n", " "))
    print("body=" + ("yes" if revision and revision.encode() in content else "no"))
    print("excerpt=" + content[:400].decode("utf-8", "replace").replace("\n", " ").replace("\r", " "))
started = time.monotonic()
last = None
while True:
    try:
        answer = ask()
    except OSError as e:
        if time.monotonic() >= deadline or (time.monotonic() - started > 1 and not alive()):
            why = "the instance exited" if not alive() else str(e)
            print("curl=" + why)
            sys.exit(0)
        time.sleep(0.1)
        continue
    if good(*answer) or answer == last or time.monotonic() >= deadline:
        show(*answer)
        sys.exit(0)
    last = answer
    time.sleep(0.3)
`

// askSlot asks the instance of a uWSGI slot for the health page and says
// whether it answered well. A health.path under /static/ or /media/ is
// the web server's, not the application's: then the instance is asked
// for / and any answer but a server error will do.
func (d *Deploy) askSlot(ctx context.Context, slot, revision string) (healthResult, bool, string, error) {
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
	out, err := d.probe(ctx, remote.Sh(s.Python, "-c", slotProbe, d.slotSocket(slot), d.slotPIDFile(slot), s.URL, fmt.Sprint(port), https,
		target, s.Health.RevisionHeader, revision, s.Health.Revision, want, fmt.Sprint(seconds)))
	if err != nil {
		return healthResult{}, false, target, fmt.Errorf("asking uwsgi %s: %w", d.uwsgiInstance(slot), err)
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
	// The instance this run started says why it fails; else the live one.
	slot := d.started
	if slot == "" {
		slot = d.slot
	}
	if slot == "" {
		slot = "a"
	}
	log := "/var/log/uwsgi/app/" + d.uwsgiInstance(slot) + ".log"
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
