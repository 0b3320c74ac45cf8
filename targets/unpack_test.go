package targets

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/djship/djship/internal/testarchive"
	"github.com/djship/djship/internal/testenv"
	"github.com/djship/djship/release"
	"github.com/djship/djship/remote"
	"github.com/djship/djship/sites"
)

// unpackSite is a site on this machine with its app user, the unpacking
// user and its folders provisioned, nothing else; and a folder outside
// it, with a root-only folder standing for /etc/cron.d and a
// world-writable one standing for /tmp.
func unpackSite(t *testing.T, name string) (*Deploy, string) {
	t.Helper()
	testenv.NeedRoot(t)
	testenv.Command(t, "setfacl", "acl")
	testenv.Command(t, "unzip", "unzip")
	testenv.Command(t, "runuser", "util-linux")
	root := "/srv/djship-test-" + name
	outside := root + "-outside"
	for _, p := range []string{root, outside} {
		os.RemoveAll(p)
	}
	os.MkdirAll(filepath.Join(outside, "cron.d"), 0o755)
	os.MkdirAll(filepath.Join(outside, "tmp"), 0o755)
	os.Chmod(filepath.Join(outside, "tmp"), 0o1777)
	os.WriteFile(filepath.Join(outside, "tmp", "victim"), []byte("untouched\n"), 0o666)
	os.Chmod(filepath.Join(outside, "tmp", "victim"), 0o666)
	dir := t.TempDir()
	yaml := fmt.Sprintf(`project: %s
url: %s.test
root: %s
source: {path: src}
django: {source_folder: ., settings_folder: exampleproject, settings_module: exampleproject.settings}
environments:
  test: {connection: local}
`, name, name, root)
	p := filepath.Join(dir, "site.yaml")
	os.WriteFile(p, []byte(yaml), 0o644)
	site, err := sites.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		removeSite(site)
		os.RemoveAll(outside)
	})
	env := site.Environments["test"]
	out := remote.NewOutput(io.Discard, &remote.Redactor{})
	d := NewDeploy(site, env, env.Hosts[0].Settings, remote.NewLocal(out), out)
	if _, err := RunSteps(context.Background(), d, []Step{factsStep{}, appUserStep{}, foldersStep{}}); err != nil {
		t.Fatal(err)
	}
	return d, outside
}

// unpack runs the release folder and unpack steps for a tarball on d's
// host, as the upgrade does after the upload, without the inspection,
// then hands src/ to root as the virtualenv step does last.
func unpack(t *testing.T, d *Deploy, name, tarball string, archives []sites.Deflate) error {
	t.Helper()
	d.Release, d.Tarball = name, &release.Tarball{Path: tarball}
	d.Settings.Django.ArchivesToDeflate = archives
	if _, err := (uploadStep{}).Run(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	if _, err := (releaseDirStep{}).Run(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	if _, err := (unpackStep{}).Run(context.Background(), d); err != nil {
		return err
	}
	// The virtualenv step ends by handing the release to root.
	r := d.releaseDir()
	_, err := d.run(context.Background(), shScript("take-over", buildUser, r, script("check-release.sh"), path.Join(r, "src")))
	return err
}

// TestShipUnpackCannotWriteOutside unpacks hostile tarballs on this
// machine, calling the unpack step directly as if the inspection had let
// them through: whatever they hold, nothing outside the release changes.
func TestShipUnpackCannotWriteOutside(t *testing.T) {
	d, outside := unpackSite(t, "unpack1")
	// From src/ of a release, this many ../ reach /.
	src := path.Join(d.Paths.Releases, "hostile0", "src")
	toRoot := strings.Count(src, "/")
	up := func(extra int) string { return strings.Repeat("../", toRoot+extra) + strings.TrimPrefix(outside, "/") }
	job := []testarchive.Entry{testarchive.File("job", "* * * * * root touch /tmp/owned\n")}
	cases := []struct {
		name     string
		entries  []testarchive.Entry
		inner    map[string][]testarchive.Entry
		archives []sites.Deflate
	}{
		{"the chain, and a tar unpacked into it", append(testarchive.Chain("", toRoot, strings.TrimPrefix(outside, "/")+"/cron.d"), testarchive.File("evil.tar", "")),
			map[string][]testarchive.Entry{"evil.tar": job}, []sites.Deflate{{Archive: "evil.tar", Into: "out"}}},
		{"the chain, and a zip unpacked below it", testarchive.Chain("", toRoot, strings.TrimPrefix(outside, "/")),
			map[string][]testarchive.Entry{"evil.zip": job}, []sites.Deflate{{Archive: "evil.zip", Into: "out/cron.d"}}},
		{"an absolute link, and a zip into it", []testarchive.Entry{testarchive.Link("abs", outside+"/tmp")},
			map[string][]testarchive.Entry{"evil.zip": job}, []sites.Deflate{{Archive: "evil.zip", Into: "abs"}}},
		{"a link of the tarball in the way of an archive's entry", []testarchive.Entry{testarchive.Link("sub", up(0)+"/tmp")},
			map[string][]testarchive.Entry{"evil.tar": {testarchive.File("sub/job", "owned")}}, []sites.Deflate{{Archive: "evil.tar", Into: "."}}},
		{"a link of the tarball in the way of a zip's folder", []testarchive.Entry{testarchive.Dir("static/"), testarchive.Link("static/sub", up(1)+"/cron.d")},
			map[string][]testarchive.Entry{"evil.zip": {testarchive.Dir("sub/"), testarchive.File("sub/job", "owned")}}, []sites.Deflate{{Archive: "evil.zip", Into: "static"}}},
		{"a tar with its own link out", nil,
			map[string][]testarchive.Entry{"evil.tar": {testarchive.Link("l", up(0)+"/tmp"), testarchive.File("l/job", "owned")}}, []sites.Deflate{{Archive: "evil.tar", Into: "."}}},
		{"a zip with its own link out", nil,
			map[string][]testarchive.Entry{"evil.zip": {testarchive.Link("l", up(0)+"/tmp"), testarchive.File("l/job", "owned")}}, []sites.Deflate{{Archive: "evil.zip", Into: "."}}},
		{"the tarball writes through its own link", []testarchive.Entry{testarchive.Link("l", up(0)+"/cron.d"), testarchive.File("l/job", "owned")}, nil, nil},
		{"hard links to a file outside", []testarchive.Entry{testarchive.Hardlink("h1", outside+"/tmp/victim"), testarchive.Hardlink("h2", up(0)+"/tmp/victim")}, nil, nil},
		{"a zip link made on VMS, and a tar into it", nil,
			map[string][]testarchive.Entry{"a.zip": {{Name: "vms", Type: tar.TypeSymlink, Target: up(0) + "/tmp", Maker: 2}}, "b.tar": job},
			[]sites.Deflate{{Archive: "a.zip", Into: "."}, {Archive: "b.tar", Into: "vms"}}},
		{"a zip entry renamed by its Unicode field to go through a link", []testarchive.Entry{testarchive.Link("sub", up(0)+"/tmp")},
			map[string][]testarchive.Entry{"evil.zip": {{Name: "safe.css", Type: tar.TypeReg, Body: "owned", Extra: testarchive.UnicodePath("safe.css", "sub/job")}}},
			[]sites.Deflate{{Archive: "evil.zip", Into: "."}}},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			name := fmt.Sprintf("hostile%d", i)
			entries := append([]testarchive.Entry{testarchive.File("manage.py", "")}, c.entries...)
			for name, inner := range c.inner {
				data := testarchive.Archive(t, name, inner)
				entries = append(entries, testarchive.File(name, string(data)))
			}
			tarball := testarchive.WriteRelease(t, t.TempDir(), d.Settings.Project, entries)
			release := filepath.Join(d.Paths.Releases, name)
			before := testarchive.Snapshot(t, outside) + testarchive.Snapshot(t, d.Paths.Base, release, d.Paths.Versions)
			err := unpack(t, d, name, tarball, c.archives)
			t.Logf("unpack: %v", err)
			if after := testarchive.Snapshot(t, outside) + testarchive.Snapshot(t, d.Paths.Base, release, d.Paths.Versions); after != before {
				t.Errorf("unpacking changed what is outside the release:\n%s\n->\n%s", before, after)
			}
			if err == nil {
				t.Errorf("the hostile tarball unpacked without an error")
			}
		})
	}

	t.Run("a tarball that stays inside", func(t *testing.T) {
		zip := testarchive.Zip(t, []testarchive.Entry{testarchive.Dir("vendor/"), testarchive.File("vendor/x.css", "body {}"), testarchive.Link("vendor/y.css", "x.css")})
		tarball := testarchive.WriteRelease(t, t.TempDir(), d.Settings.Project, []testarchive.Entry{testarchive.File("manage.py", ""), testarchive.Dir("notes/static/"),
			testarchive.Link("static", "notes/static"), testarchive.File("notes/static/old.css", ""), testarchive.File("vendor.zip", string(zip))})
		if err := unpack(t, d, "fine", tarball, []sites.Deflate{{Archive: "vendor.zip", Into: "static"}}); err != nil {
			t.Fatal(err)
		}
		src := filepath.Join(d.Paths.Releases, "fine", "src")
		if b, err := os.ReadFile(filepath.Join(src, "notes", "static", "vendor", "x.css")); err != nil || string(b) != "body {}" {
			t.Errorf("the zip's file: %q %v", b, err)
		}
		if l, err := os.Readlink(filepath.Join(src, "notes", "static", "vendor", "y.css")); err != nil || l != "x.css" {
			t.Errorf("the zip's link: %q %v", l, err)
		}
		if owners := sh(t, `find "$1" ! -user root -o ! -group root | head -n 3`, src); owners != "" {
			t.Errorf("files not root's after unpacking:\n%s", owners)
		}
		if leftovers := sh(t, `ls -A "$1"`, filepath.Join(d.Paths.Releases, "fine")); leftovers != ".djship-state\nsrc" {
			t.Errorf("the release folder holds %q, want .djship-state and src", leftovers)
		}
		if acl := sh(t, `getfacl -cp "$1" | grep "$2" || true`, filepath.Join(d.Paths.Releases, "fine"), buildUser); acl != "" {
			t.Errorf("the unpacking user can still enter the release: %s", acl)
		}
	})
}

// TestShipUnpackDropsSetuid: an archive unpacked into the release keeps
// no setuid or setgid bit, and the permissions step strips any.
func TestShipUnpackDropsSetuid(t *testing.T) {
	d, _ := unpackSite(t, "unpack2")
	suid := []testarchive.Entry{{Name: "su", Type: tar.TypeReg, Body: "#!/bin/sh\nid\n", Mode: 0o4755}, {Name: "sg", Type: tar.TypeReg, Body: "x", Mode: 0o2755}, {Name: "sgdir/", Type: tar.TypeDir, Mode: 0o2775}}
	tarball := testarchive.WriteRelease(t, t.TempDir(), d.Settings.Project, []testarchive.Entry{testarchive.File("manage.py", ""), {Name: "top-su", Type: tar.TypeReg, Body: "x", Mode: 0o4755},
		testarchive.File("inner.tar", string(testarchive.Tar(t, suid))), testarchive.File("inner.zip", string(testarchive.Zip(t, suid)))})
	err := unpack(t, d, "suid", tarball, []sites.Deflate{{Archive: "inner.tar", Into: "t"}, {Archive: "inner.zip", Into: "z"}})
	if err != nil {
		t.Fatal(err)
	}
	r := filepath.Join(d.Paths.Releases, "suid")
	if found := sh(t, `find "$1" -perm /6000 -printf '%m %P\n'`, r); found != "" {
		t.Errorf("setuid or setgid after unpacking:\n%s", found)
	}
	// The permissions step strips what anything later may have set.
	sh(t, `mkdir -p "$1/static" && chmod 4755 "$1/src/t/su" && chmod 2755 "$1/src/t/sgdir"`, r)
	if _, err := (permissionsStep{}).Run(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	if found := sh(t, `find "$1" -perm /6000 -printf '%m %P\n'`, r); found != "" {
		t.Errorf("setuid or setgid after the permissions step:\n%s", found)
	}
}

// TestUpgradeInspectsEveryHostsSourceFolder: a host whose source_folder
// differs from its environment's has its own archives checked too.
func TestUpgradeInspectsEveryHostsSourceFolder(t *testing.T) {
	site, _ := project(t, `  staging:
    hosts:
      - {address: deploy@127.0.0.1:1, django: {source_folder: app, archives_to_deflate: [{archive: v.zip, into: static}]}}
`)
	bad := testarchive.Zip(t, []testarchive.Entry{testarchive.File("../../../etc/cron.d/job", "* * * * * root id")})
	p := testarchive.WriteRelease(t, t.TempDir(), "shop", []testarchive.Entry{testarchive.Dir("app/"), testarchive.File("app/manage.py", ""), testarchive.File("app/v.zip", string(bad))})
	_, err := Upgrade(context.Background(), site, "staging", p, Options{Out: io.Discard})
	if err == nil || !strings.Contains(err.Error(), "v.zip: ../../../etc/cron.d/job: climbs out of the release") || !strings.Contains(err.Error(), "nothing on the hosts changed") {
		t.Errorf("the host's own archive was not inspected: %v", err)
	}
}

// TestTakeOverFindsTheBuildInANamespaceOfItsOwn plays a build that hides
// a daemon in a user and PID namespace of its own (unshare -Urp, which
// any user may run here) beside a container's process that runs under
// the build user's number in a PID namespace root made: the take-over
// kills the first, whatever namespace it hid in, and leaves the second.
func TestTakeOverFindsTheBuildInANamespaceOfItsOwn(t *testing.T) {
	d, _ := unpackSite(t, "unpack-ns")
	testenv.Command(t, "unshare", "util-linux")
	testenv.Command(t, "setpriv", "util-linux")
	if err := exec.Command("runuser", "-u", buildUser, "--", "unshare", "-Urp", "--fork", "true").Run(); err != nil {
		testenv.Missing(t, "unprivileged user namespaces", "sysctl kernel.unprivileged_userns_clone=1")
	}
	uid, gid := userIDs(t, buildUser)
	// Each writes its host PID into a file, then sleeps.
	hidden := exec.Command("runuser", "-u", buildUser, "--", "setsid", "unshare", "-Urp", "--fork", "sleep", "300")
	container := exec.Command("setsid", "unshare", "-p", "--fork", "setpriv", "--reuid="+uid, "--regid="+gid, "--clear-groups", "sleep", "301")
	for _, c := range []*exec.Cmd{hidden, container} {
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Process.Kill(); c.Wait() })
	}
	sleeping := func(what string) bool {
		out, _ := exec.Command("pgrep", "-u", uid, "-f", "^sleep "+what+"$").Output()
		return len(strings.TrimSpace(string(out))) > 0
	}
	for i := 0; i < 50 && !(sleeping("300") && sleeping("301")); i++ {
		time.Sleep(100 * time.Millisecond)
	}
	if !sleeping("300") || !sleeping("301") {
		t.Fatal("the hidden daemon and the container's process did not start")
	}
	r := path.Join(d.Paths.Releases, "ns")
	src := path.Join(r, "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chown(src, atoi(t, uid), atoi(t, gid))
	if _, err := d.run(context.Background(), shScript("take-over", buildUser, r, script("check-release.sh"), src)); err != nil {
		t.Fatalf("take-over: %v", err)
	}
	if sleeping("300") {
		t.Error("the daemon the build hid in a user and PID namespace of its own outlived the take-over")
	}
	if !sleeping("301") {
		t.Error("the take-over killed a container's process that only shares the build user's number")
	}
}

// userIDs are a user's uid and gid, as id prints them.
func userIDs(t *testing.T, user string) (uid, gid string) {
	t.Helper()
	u, err := exec.Command("id", "-u", user).Output()
	if err != nil {
		t.Fatal(err)
	}
	g, err := exec.Command("id", "-g", user).Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(u)), strings.TrimSpace(string(g))
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
