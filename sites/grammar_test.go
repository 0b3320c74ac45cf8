package sites

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// hostileSite is a valid site file with one value replaced: set puts a
// value at a dotted key path of the top level (or of the one environment,
// for keys under environments). Values go through the YAML encoder, so
// they reach the loader byte for byte.
func hostileSite(t testing.TB, set func(top map[string]any)) []byte {
	t.Helper()
	top := map[string]any{
		"project": "shop",
		"url":     "shop.example.com",
		"root":    "/srv/www",
		"source":  map[string]any{"path": "src"},
		"django":  map[string]any{"source_folder": ".", "settings_folder": "shop", "settings_module": "shop.settings"},
		"environments": map[string]any{
			"production": map[string]any{"hosts": []any{"deploy@shop.example.com"}},
		},
	}
	set(top)
	data, err := yaml.Marshal(top)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// at sets key (dotted) in m, creating mappings on the way.
func at(m map[string]any, key string, value any) {
	parts := strings.Split(key, ".")
	for _, p := range parts[:len(parts)-1] {
		next, ok := m[p].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[p] = next
		}
		m = next
	}
	m[parts[len(parts)-1]] = value
}

// TestHostileValuesAreRefused holds every site value that once reached a
// configuration file, a unit, an init script or a shell on the host
// unescaped, and the loose values that were silently accepted. Each must
// be refused at load with the key in the message.
func TestHostileValuesAreRefused(t *testing.T) {
	tests := []struct {
		name, key string
		value     any
		want      string // part of the message
	}{
		{"command substitution in root reaches the init script", "root", "/srv/www$(touch /tmp/pwn)", `root "/srv/www$(touch /tmp/pwn)" contains "$"`},
		{"backquote in root", "root", "/srv/`id`", "contains \"`\""},
		{"newlines in root add an nginx location", "root", "/srv/www;\n    location /x/ { alias /etc/; }\n    location /y {", "root"},
		{"newline in root adds a systemd directive", "root", "/srv/www\nExecStartPre=/bin/touch /tmp/pwn", "contains a newline"},
		{"ampersand in root corrupted the shebang rewrite", "root", "/srv/a&b", `contains "&"`},
		{"bar in root corrupted the shebang rewrite", "root", "/srv/a|b", `contains "|"`},
		{"space in root", "root", "/srv/my www", "contains a space"},
		{"quote in root", "root", `/srv/"www`, "contains"},
		{"root not clean", "root", "/srv//www/", `write "/srv/www"`},
		{"root climbing", "root", "/srv/../etc", "not a clean path"},
		{"brace in source folder", "django.source_folder", "src}", `contains "}"`},
		{"semicolon in source folder", "django.source_folder", "src;x", `contains ";"`},
		{"hash in source folder", "django.source_folder", "src#x", `contains "#"`},
		{"source folder climbing", "django.source_folder", "a/../../b", "not a clean path"},
		{"newline in sqlite path", "database.path", "db.sqlite3\nx", "database.path"},
		{"folder in sqlite path", "database.path", "../db.sqlite3", "database.path"},
		{"uWSGI directive through the database host", "database", map[string]any{"engine": "postgres", "host": "db.example.com\nexec-as-root = touch /tmp/pwn"}, "database.host"},
		{"database host with a space", "database", map[string]any{"engine": "postgres", "host": "db example"}, "database.host"},
		{"newline in an environment value", "django.environment", map[string]any{"GREETING": "hi\nexec-as-root = id"}, "GREETING contains a newline"},
		{"tab in an environment value", "django.environment", map[string]any{"GREETING": "a\tb"}, "GREETING contains a tab"},
		{"uWSGI expansion in an environment value", "django.environment", map[string]any{"GREETING": "$(HOME)"}, "uWSGI would expand"},
		{"uWSGI option reference in an environment value", "django.environment", map[string]any{"GREETING": "%%(chdir)"}, "uWSGI would expand"},
		{"space around an environment value", "django.environment", map[string]any{"GREETING": " hi"}, "starts or ends with a space"},
		{"python with a space", "python", "/usr/bin/python3 -c x", "contains a space"},
		{"check command with a semicolon", "web.check_command", "/usr/sbin/nginx;id", `contains ";"`},
		{"wheelhouse climbing", "django.wheelhouse", "../wheels", "climbs out"},
		{"archive with a newline", "django.archives_to_deflate", []any{map[string]any{"archive": "a.zip\nb", "into": "static"}}, "archive"},
		{"uWSGI option that is not one line", "app.uwsgi_options", []any{"cheaper = 1\nexec-as-root = id"}, "app.uwsgi_options[0]"},
		{"uWSGI option without a name", "app.uwsgi_options", []any{"= 1"}, "app.uwsgi_options[0]"},
		{"revision header as a grep pattern", "health.revision_header", ".*", "health.revision_header"},
		{"health path with a space", "health.path", "/a b", "health.path"},
		{"url with a newline", "url", "shop.example.com\nserver_name evil", "url"},
		{"url label too long", "url", strings.Repeat("a", 64) + ".example.com", "url"},
		{"url label ending with -", "url", "shop-.example.com", "url"},
		{"app user postgres", "app.user", "postgres", "app.user must not be postgres"},
		{"app group root", "app.group", "root", "app.group must not be root"},
		{"app user root", "app.user", "root", "app.user must not be root"},
		{"web user root", "web.user", "root", "web.user must not be root"},
		{"web group shadow", "web.group", "shadow", "web.group must not be shadow"},
		{"app group shared with the web server", "app.group", "www-data", "app.group must not be www-data"},
		{"user name with a dot", "app.user", "shop.app", "not a valid user or group name"},
		{"keep_releases 0 became 5", "keep_releases", 0, "keep_releases is 0"},
		{"workers 0 became 2", "app.workers", 0, "app.workers is 0"},
		{"health retries 0 became 10", "health.retries", 0, "health.retries is 0"},
		{"IPv6 literal with a shell command", "environments", map[string]any{"production": map[string]any{"hosts": []any{"[::1;rm -rf /]"}}}, `"::1;rm -rf /" is not an IPv6 address`},
		{"IPv6 literal with a zone", "environments", map[string]any{"production": map[string]any{"hosts": []any{"[fe80::1%eth0]"}}}, "is not an IPv6 address"},
		{"host name with an underscore", "environments", map[string]any{"production": map[string]any{"hosts": []any{"deploy@shop_1.example.com"}}}, "is not a host name"},
		{"local connection beside a remote host", "environments", map[string]any{"production": map[string]any{"connection": "local", "hosts": []any{"deploy@shop.example.com"}}}, "connection is local, which works on this machine only"},
		{"two local hosts", "environments", map[string]any{"production": map[string]any{"connection": "local", "hosts": []any{"localhost", "127.0.0.1"}}}, "a second local host"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := hostileSite(t, func(top map[string]any) { at(top, tt.key, tt.value) })
			_, err := Parse("sites/shop.yaml", data)
			if err == nil {
				t.Fatalf("accepted %s: %q\n%s", tt.key, tt.value, data)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error does not say %q:\n%v", tt.want, err)
			}
			if !strings.Contains(err.Error(), "sites/shop.yaml:") {
				t.Errorf("error does not name the file and line:\n%v", err)
			}
		})
	}
}

// TestSafeValuesStillLoad guards against a grammar so strict that real
// sites stop loading.
func TestSafeValuesStillLoad(t *testing.T) {
	tests := []struct {
		key   string
		value any
	}{
		{"root", "/srv/www"},
		{"root", "/srv/sites.d/web_2+x"},
		{"django.source_folder", "."},
		{"django.source_folder", "backend/django_app"},
		{"django.environment", map[string]any{"GREETING": `100% "quoted" it's \ fine`, "EMPTY": "", "URL": "https://x.example.com/a?b=c&d=e"}},
		{"database", map[string]any{"engine": "postgres", "host": "10.0.0.5"}},
		{"database", map[string]any{"engine": "postgres", "host": "2001:db8::5"}},
		{"database", map[string]any{"engine": "postgres", "host": "db-1.internal.example.com"}},
		{"database.path", "site-db.sqlite3"},
		{"app.uwsgi_options", []any{"smart-attach-daemon2 = /run/shop-celery.pid /srv/www/shop/current/venv/bin/celery -A shop worker"}},
		{"health.path", "/health/?full=1"},
		{"app.user", "shop_app"},
		{"environments", map[string]any{"production": map[string]any{"connection": "local", "hosts": []any{"localhost"}}}},
		{"environments", map[string]any{"production": map[string]any{"hosts": []any{"deploy@[2001:db8::1]:22", "10.0.0.7"}}}},
	}
	for _, tt := range tests {
		data := hostileSite(t, func(top map[string]any) { at(top, tt.key, tt.value) })
		if _, err := Parse("sites/shop.yaml", data); err != nil {
			t.Errorf("%s: %v refused:\n%v", tt.key, tt.value, err)
		}
	}
}

func TestSecondDocumentIsRefused(t *testing.T) {
	data := "project: shop\nurl: shop.example.com\nroot: /srv/www\nsource: {path: src}\ndjango: {source_folder: ., settings_folder: shop, settings_module: shop.settings}\nenvironments: {production: {hosts: [shop.example.com]}}\n---\nroot: /tmp\n"
	_, err := Parse("sites/shop.yaml", []byte(data))
	if err == nil || !strings.Contains(err.Error(), "sites/shop.yaml:8: a second YAML document") {
		t.Fatalf("second document: %v", err)
	}
}

func TestNonUTF8IsReportedOnItsLine(t *testing.T) {
	data := "project: shop\nurl: shop.example.com\n# caf\xe9\nroot: /srv/www\n"
	_, err := Parse("sites/shop.yaml", []byte(data))
	if err == nil || !strings.Contains(err.Error(), "sites/shop.yaml:3: byte 6 of this line is not UTF-8") {
		t.Fatalf("non-UTF-8 byte: %v", err)
	}
}

func TestFindRefusesSiteNamesWithFolders(t *testing.T) {
	dir := t.TempDir()
	sites := filepath.Join(dir, "sites")
	os.MkdirAll(sites, 0o755)
	os.WriteFile(filepath.Join(dir, "x.yaml"), []byte("project: x\n"), 0o644)
	os.WriteFile(filepath.Join(sites, "shop.yaml"), []byte("project: x\n"), 0o644)
	for _, name := range []string{"../x", "../../x", "/etc/passwd", "a/b", ".", ".."} {
		if p, err := Find(sites, name); err == nil || !strings.Contains(err.Error(), "no /") {
			t.Errorf("SITE=%s: got %q, %v", name, p, err)
		}
	}
	if p, err := Find(sites, "shop"); err != nil || p != filepath.Join(sites, "shop.yaml") {
		t.Errorf("SITE=shop: %q, %v", p, err)
	}
}
