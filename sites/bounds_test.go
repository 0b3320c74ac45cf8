package sites

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// aliasBomb is a site file of a few kilobytes whose aliases expand to
// n*n*n archives: an anchor of n archives, aliased by each of n hosts in
// one list, which n environments alias in turn.
func aliasBomb(n int) string {
	var b strings.Builder
	b.WriteString("project: shop\nurl: shop.example.com\nroot: /srv/www\nsource: {path: src}\n")
	b.WriteString("django:\n  source_folder: .\n  settings_folder: shop\n  settings_module: shop.settings\n")
	b.WriteString("  archives_to_deflate: &a [&d {archive: a.zip, into: static}")
	b.WriteString(strings.Repeat(", *d", n-1))
	b.WriteString("]\nenvironments:\n  e0:\n    hosts: &h [&o {address: h.example.com, django: {archives_to_deflate: *a}}")
	b.WriteString(strings.Repeat(", *o", n-1))
	b.WriteString("]\n")
	for i := 1; i < n; i++ {
		fmt.Fprintf(&b, "  e%d: {hosts: *h}\n", i)
	}
	return b.String()
}

// lineOf is the line (from 1) of the first line of text holding s.
func lineOf(t *testing.T, text, s string) int {
	t.Helper()
	for i, l := range strings.Split(text, "\n") {
		if strings.Contains(l, s) {
			return i + 1
		}
	}
	t.Fatalf("no line holds %q", s)
	return 0
}

func TestAliasExpansionIsBounded(t *testing.T) {
	bomb := aliasBomb(300)
	// Each of 11 services aliases a command of 1,000 words: 11,000 nodes
	// in the file, decoded again by each of 100 environments.
	var decoded strings.Builder
	decoded.WriteString("project: shop\nurl: shop.example.com\nroot: /srv/www\nsource: {path: src}\n")
	decoded.WriteString("django: {source_folder: ., settings_folder: shop, settings_module: shop.settings}\n")
	decoded.WriteString("compose:\n  services:\n    s0: {image: redis, command: &c [x" + strings.Repeat(", x", 999) + "]}\n")
	for i := 1; i < 11; i++ {
		fmt.Fprintf(&decoded, "    s%d: {image: redis, command: *c}\n", i)
	}
	decoded.WriteString("environments:\n")
	for i := 0; i < 100; i++ {
		fmt.Fprintf(&decoded, "  e%d: {hosts: [h%d.example.com]}\n", i, i)
	}
	loop := "project: shop\nurl: shop.example.com\nroot: /srv/www\nsource: {path: src}\n" +
		"django: {source_folder: ., settings_folder: shop, settings_module: shop.settings}\n" +
		"packages: &p [a, *p]\n" +
		"environments: {production: {hosts: [shop.example.com]}}\n"

	tests := []struct {
		name, data string
		want       string
		line       int
	}{
		{"aliases of aliases of aliases", bomb, fmt.Sprintf("the file expands YAML aliases past %d nodes at this alias, *o", MaxExpandedNodes), lineOf(t, bomb, "hosts: &h")},
		{"an alias inside its own anchor", loop, "the alias *p is inside the value its anchor &p names (line 6)", 6},
		{"shared settings decoded again by every environment", decoded.String(), fmt.Sprintf("environments.e89: every environment, and every host written as a mapping, decodes the shared settings (%d YAML nodes with their aliases expanded) again, and here the file passes %d", 11089, MaxDecodedNodes), lineOf(t, decoded.String(), "e89:")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			_, err := Parse("sites/shop.yaml", []byte(tt.data))
			took := time.Since(start)
			if err == nil {
				t.Fatalf("accepted")
			}
			e, ok := err.(*Error)
			if !ok || len(e.Problems) != 1 {
				t.Fatalf("want one problem in a *sites.Error, got %T: %v", err, err)
			}
			if e.Problems[0].Line != tt.line || !strings.Contains(e.Problems[0].Message, tt.want) {
				t.Errorf("got line %d: %s\nwant line %d: …%s…", e.Problems[0].Line, e.Problems[0].Message, tt.line, tt.want)
			}
			if !strings.Contains(err.Error(), fmt.Sprintf("sites/shop.yaml:%d: ", tt.line)) {
				t.Errorf("the error does not name the file and line:\n%v", err)
			}
			if took > time.Second {
				t.Errorf("refusing the file took %v; the count must be cheap", took)
			}
			t.Logf("%d bytes refused in %v", len(tt.data), took)
		})
	}
	if len(bomb) > 9000 {
		t.Errorf("the bomb is %d bytes; it is meant to be a few kilobytes", len(bomb))
	}
}

// TestAliasesInRealSitesLoad keeps the bounds far above real site files,
// anchors and aliases and fleets of hosts written as mappings included.
func TestAliasesInRealSitesLoad(t *testing.T) {
	anchors := `project: shop
url: shop.example.com
root: /srv/www
source: {path: src}
django: {source_folder: ., settings_folder: shop, settings_module: shop.settings}
environments:
  production:
    hosts: &web [deploy@10.0.0.11, deploy@10.0.0.12]
    app: &big {workers: 8, timeout: 120}
  staging:
    instance: shop-staging
    hosts: *web
    app: *big
`
	s, err := Parse("sites/shop.yaml", []byte(anchors))
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Environments["staging"]; len(got.Hosts) != 2 || got.Settings.App.Workers != 8 {
		t.Errorf("the aliases did not apply: %d hosts, %d workers", len(got.Hosts), got.Settings.App.Workers)
	}

	fleet := hostileSite(t, func(top map[string]any) {
		var hosts []any
		for i := 0; i < 250; i++ {
			hosts = append(hosts, map[string]any{"address": fmt.Sprintf("deploy@10.0.%d.%d", i/200, i%200+1), "roles": []any{"web"}, "app": map[string]any{"workers": 4}})
		}
		top["environments"] = map[string]any{"production": map[string]any{"hosts": hosts}}
	})
	if _, err := Parse("sites/shop.yaml", fleet); err != nil {
		t.Errorf("a fleet of 250 hosts written as mappings: %v", err)
	}

	for _, f := range []string{"example.yaml", "testdata/valid/minimal.yaml", "testdata/valid/fleet.yaml"} {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var doc yaml.Node
		if err := yaml.Unmarshal(data, &doc); err != nil {
			t.Fatal(err)
		}
		size, _ := newExpansion(MaxExpandedNodes).size(&doc)
		if size*50 > MaxExpandedNodes {
			t.Errorf("%s expands to %d nodes, too close to MaxExpandedNodes (%d)", f, size, MaxExpandedNodes)
		}
		if p := decodeProblem(doc.Content[0]); p != nil {
			t.Errorf("%s: %v", f, p)
		}
	}
}

func TestSystemFoldersAreNoRoot(t *testing.T) {
	refused := []struct{ root, why string }{
		{"/", "is the top of the file system"},
		{"/etc", "is the system folder /etc"},
		{"/etc/www", "is inside the system folder /etc"},
		{"/proc/x", "is inside the system folder /proc"},
		{"/sys", "is the system folder /sys"},
		{"/dev/shm/sites", "is inside the system folder /dev"},
		{"/boot/www", "is inside the system folder /boot"},
		{"/bin", "is the system folder /bin"},
		{"/sbin/x", "is inside the system folder /sbin"},
		{"/lib", "is the system folder /lib"},
		{"/lib64/x", "is inside the system folder /lib64"},
		{"/libx32", "is the system folder /libx32"},
		{"/usr", "is the system folder /usr"},
		{"/usr/local/www", "is inside the system folder /usr"},
		{"/root/sites", "is inside the system folder /root"},
		{"/run/sites", "is inside the system folder /run"},
		{"/tmp", "is the system folder /tmp"},
		{"/tmp/sites", "is inside the system folder /tmp"},
		{"/snap/www", "is inside the system folder /snap"},
		{"/lost+found", "is the system folder /lost+found"},
		{"/var", "is the system folder /var"},
		{"/var/lib", "is the system folder /var/lib"},
		{"/var/lib/sites", "is inside the system folder /var/lib"},
		{"/var/log/www", "is inside the system folder /var/log"},
		{"/var/run", "is the system folder /var/run"},
		{"/var/spool/x", "is inside the system folder /var/spool"},
		{"/var/cache/www", "is inside the system folder /var/cache"},
		{"/var/backups", "is the system folder /var/backups"},
		{"/var/mail/x", "is inside the system folder /var/mail"},
		{"/var/tmp/www", "is inside the system folder /var/tmp"},
		{"/home", "is the system folder /home"},
		{"/home/deploy", "is a user's home folder"},
		{"/opt", "is the system folder /opt"},
		{"/mnt", "is the system folder /mnt"},
		{"/media", "is the system folder /media"},
	}
	for _, tt := range refused {
		t.Run(tt.root, func(t *testing.T) {
			data := hostileSite(t, func(top map[string]any) { top["root"] = tt.root })
			_, err := Parse("sites/shop.yaml", data)
			want := fmt.Sprintf("sites/shop.yaml:%d: root %q %s: provision makes <root>/<instance> there and sets its owner, mode and ACLs", lineOf(t, string(data), "root:"), tt.root, tt.why)
			if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "e.g. root: /srv/www") {
				t.Errorf("got %v\nwant …%s…", err, want)
			}
		})
	}
	accepted := []string{"/srv", "/srv/www", "/srv/sites.d/web_2+x", "/opt/sites", "/var/www", "/var/www/apps", "/var/lib2",
		"/home/deploy/apps", "/mnt/data/sites", "/media/disk/www", "/data/www", "/etcetera", "/usr2/www", "/tmpx", "/variable"}
	for _, root := range accepted {
		data := hostileSite(t, func(top map[string]any) { top["root"] = root })
		if _, err := Parse("sites/shop.yaml", data); err != nil {
			t.Errorf("root: %s refused:\n%v", root, err)
		}
	}
}

func TestSystemFoldersAreNoRootInOverrides(t *testing.T) {
	tests := []struct {
		name  string
		set   func(top map[string]any)
		after string // the override's line is the first root: after this text
		want  string
	}{
		{"not clean, cleaned", func(top map[string]any) { top["root"] = "/srv/../etc" }, "",
			`root "/srv/../etc" is the system folder /etc`},
		{"an environment's root", func(top map[string]any) {
			top["environments"] = map[string]any{"production": map[string]any{"root": "/etc", "hosts": []any{"deploy@shop.example.com"}}}
		}, "production:", `root "/etc" is the system folder /etc`},
		{"a host's root", func(top map[string]any) {
			top["environments"] = map[string]any{"production": map[string]any{"hosts": []any{map[string]any{"address": "deploy@shop.example.com", "root": "/proc/x"}}}}
		}, "address:", `root "/proc/x" is inside the system folder /proc`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := string(hostileSite(t, tt.set))
			_, err := Parse("sites/shop.yaml", []byte(data))
			start := strings.Index(data, tt.after)
			line := strings.Count(data[:start], "\n") + lineOf(t, data[start:], "root:")
			if want := fmt.Sprintf("sites/shop.yaml:%d: %s", line, tt.want); err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("got %v\nwant …%s…", err, want)
			}
		})
	}
}

func TestSourcePathStaysInTheRepository(t *testing.T) {
	dir := t.TempDir()
	outside := t.TempDir()
	for _, d := range []string{"sites", "src", "real"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(outside, filepath.Join(dir, "out")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("real", filepath.Join(dir, "in")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("..", filepath.Join(dir, "src", "up")); err != nil {
		t.Fatal(err)
	}
	linked := filepath.Join(t.TempDir(), "linked")
	if err := os.Symlink(dir, linked); err != nil {
		t.Fatal(err)
	}
	realOutside, err := filepath.EvalSymlinks(outside)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		project, path string
		want          string // "" when accepted
	}{
		{dir, "src", ""},
		{dir, ".", ""},
		{dir, "in", ""},
		{dir, "not-yet", ""},
		{dir, "src/up", ""},
		{dir, filepath.Join(dir, "src"), ""},
		{linked, "src", ""},
		{linked, "in", ""},
		{dir, "../app", `source.path "../app" is outside the project root ` + dir},
		{dir, "src/../../app", "is outside the project root"},
		{dir, "..", "is outside the project root"},
		{dir, "/opt/app", `source.path "/opt/app" is outside the project root`},
		{dir, outside, "is outside the project root"},
		{dir, "out", `source.path "out" leads out of the project root ` + dir + " through a symbolic link, to " + realOutside},
		{dir, "out/app", ""},   // does not exist: checked as written
		{dir, "src/up/..", ""}, // site.Path cleans it to src before the system resolves up
		{linked, "out", "through a symbolic link"},
		{linked, filepath.Join(dir, "src"), ""},
		{linked, "../app", "is outside the project root"},
	}
	for _, tt := range tests {
		t.Run(tt.project+" "+tt.path, func(t *testing.T) {
			data := hostileSite(t, func(top map[string]any) { at(top, "source.path", tt.path) })
			file := filepath.Join(tt.project, "sites", "shop.yaml")
			_, err := Parse(file, data)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("got %v\nwant …%s…", err, tt.want)
			case tt.want != "" && !strings.Contains(err.Error(), fmt.Sprintf("%s:%d: ", file, lineOf(t, string(data), "path:"))):
				t.Errorf("not at the line of source.path: %v", err)
			case tt.want != "" && !strings.Contains(err.Error(), "move the source into the repository, e.g. source: {path: src}, or name its repository with source: {git: URL, ref: main}"):
				t.Errorf("no fix: %v", err)
			}
		})
	}
}

// containerSite is hostileSite in container mode.
func containerSite(t *testing.T, set func(top map[string]any)) []byte {
	return hostileSite(t, func(top map[string]any) {
		top["mode"] = "container"
		top["image"] = "acme/shop"
		top["registry"] = map[string]any{"url": "https://registry.example.com"}
		set(top)
	})
}

func TestHostSystemMountsAreRefused(t *testing.T) {
	refused := []struct{ volume, why string }{
		{"/:/host", "which is the top of the file system"},
		{"/etc:/etc:ro", "which is the system folder /etc"},
		{"/etc/ssl/certs:/certs:ro", "which is inside the system folder /etc"},
		{"/var/run/docker.sock:/var/run/docker.sock", "which is the Docker socket (whoever holds it is root on the host)"},
		{"/run/docker.sock:/docker.sock", "which is the Docker socket (whoever holds it is root on the host)"},
		{"/run/containerd/containerd.sock:/c.sock", "which is a socket of a system service"},
		{"/var/run/postgresql/x.sock:/pg.sock", "which is a socket of a system service"},
		{"/var/lib/docker:/docker", "which is Docker's own state, its images and containers"},
		{"/var/lib/docker/volumes:/v", "which is Docker's own state, its images and containers"},
		{"/var/lib/postgresql:/pg", "which is inside the system folder /var/lib"},
		{"/proc:/host/proc:ro", "which is the system folder /proc"},
		{"/sys/fs/cgroup:/cg", "which is inside the system folder /sys"},
		{"/dev:/dev", "which is the system folder /dev"},
		{"/boot:/boot", "which is the system folder /boot"},
		{"/root/.ssh:/keys:ro", "which is inside the system folder /root"},
		{"/usr:/usr", "which is the system folder /usr"},
		{"/bin:/b", "which is the system folder /bin"},
		{"/sbin/x:/x", "which is inside the system folder /sbin"},
		{"/lib/modules:/m", "which is inside the system folder /lib"},
		{"/lib64:/l", "which is the system folder /lib64"},
		{"/home/deploy:/home", "which is a user's home folder"},
		{"/var:/var", "which is the system folder /var"},
	}
	for _, tt := range refused {
		t.Run(tt.volume, func(t *testing.T) {
			host, _, _ := strings.Cut(tt.volume, ":")
			data := containerSite(t, func(top map[string]any) { at(top, "compose.volumes", []any{tt.volume}) })
			_, err := Parse("sites/shop.yaml", data)
			want := fmt.Sprintf("sites/shop.yaml:%d: compose.volumes[0] %q mounts %s, %s: a container that reads or writes there can take over the host; mount a folder of the site's own such as /srv/shop-data, or set compose.allow_host_system_mounts: true if the site needs this on purpose", lineOf(t, string(data), "volumes:"), tt.volume, host, tt.why)
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("got %v\nwant …%s…", err, want)
			}
			data = containerSite(t, func(top map[string]any) {
				at(top, "compose.services", map[string]any{"cache": map[string]any{"image": "redis:7", "volumes": []any{tt.volume}}})
			})
			_, err = Parse("sites/shop.yaml", data)
			if want := fmt.Sprintf("compose.services.cache.volumes[0] %q mounts %s, %s", tt.volume, host, tt.why); err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("compose.services: got %v\nwant …%s…", err, want)
			}
			data = containerSite(t, func(top map[string]any) {
				at(top, "compose.volumes", []any{tt.volume})
				at(top, "compose.services", map[string]any{"cache": map[string]any{"image": "redis:7", "volumes": []any{tt.volume}}})
				at(top, "compose.allow_host_system_mounts", true)
			})
			if _, err := Parse("sites/shop.yaml", data); err != nil {
				t.Errorf("refused with compose.allow_host_system_mounts: true: %v", err)
			}
		})
	}
	accepted := []string{"/srv/shop/media:/media", "/srv:/srv:ro", "/var/www/static:/static:ro", "/opt/shop/data:/data",
		"/home/deploy/uploads:/uploads", "/mnt/data/shop:/data", "/etcetera:/x", "/var/lib2:/x", "/run2/x.sock:/x.sock"}
	for _, v := range accepted {
		data := containerSite(t, func(top map[string]any) { at(top, "compose.volumes", []any{v}) })
		if _, err := Parse("sites/shop.yaml", data); err != nil {
			t.Errorf("compose.volumes: [%s] refused:\n%v", v, err)
		}
	}
	data := containerSite(t, func(top map[string]any) {
		at(top, "compose.services", map[string]any{"cache": map[string]any{"image": "redis:7", "volumes": []any{"data:/data", "etc:/etc", "/srv/shop-cache:/cache"}}})
	})
	if _, err := Parse("sites/shop.yaml", data); err != nil {
		t.Errorf("named volumes refused:\n%v", err)
	}
	data = hostileSite(t, func(top map[string]any) { at(top, "compose.allow_host_system_mounts", true) })
	if _, err := Parse("sites/shop.yaml", data); err == nil || !strings.Contains(err.Error(), "compose only applies to mode: container") {
		t.Errorf("compose.allow_host_system_mounts in process mode: %v", err)
	}
}
