package release

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/djship/djship/internal/testarchive"
	"github.com/djship/djship/internal/testenv"
	"github.com/djship/djship/internal/testsite"
	"github.com/djship/djship/sites"
	"github.com/djship/djship/templates"
)

// The helpers the tests use most, shared with the host side's tests.
var (
	project     = testsite.Project
	write       = testsite.Write
	readTarball = testarchive.Read
)

// release runs Build for the site into its dist/, with env as the whole
// environment.
func release(t testing.TB, site *sites.Site, env map[string]string) (*Artifact, error) {
	t.Helper()
	return Build(context.Background(), site, Options{Dist: filepath.Join(site.Root, "dist"), Getenv: testsite.Getenv(env)})
}

func TestReleaseIsReproducible(t *testing.T) {
	for _, ext := range []string{"tar.gz", "tar.bz2", "tar.zst"} {
		t.Run(ext, func(t *testing.T) {
			site, src := project(t, "revision_pattern: shop-r${REVISION}."+ext+"\n")
			first, err := release(t, site, nil)
			if err != nil {
				t.Fatal(err)
			}
			// Touch every file, change their modes' group bits and make the
			// disk list them in another order: none of it may matter.
			when := time.Now().Add(-time.Duration(len(ext)) * time.Hour)
			filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
				os.Chtimes(p, when, when)
				if !d.IsDir() {
					info, _ := d.Info()
					os.Chmod(p, info.Mode().Perm()|0o060)
				}
				return nil
			})
			second, err := release(t, site, nil)
			if err != nil {
				t.Fatal(err)
			}
			if first.SHA256 != second.SHA256 || first.Path != second.Path {
				t.Fatalf("two releases of the same source differ: %s %s vs %s %s", first.Path, first.SHA256, second.Path, second.SHA256)
			}
			if !strings.HasSuffix(first.Path, "."+ext) {
				t.Errorf("path %s does not end with .%s", first.Path, ext)
			}
			sidecar, err := os.ReadFile(first.Path + ".sha256")
			if err != nil || string(sidecar) != first.SHA256+"  "+filepath.Base(first.Path)+"\n" {
				t.Errorf("sha256 file = %q, %v", sidecar, err)
			}
			for name, e := range readTarball(t, first.Path) {
				h := e.Header
				if h.Uid != 0 || h.Gid != 0 || h.Uname != "" || h.Gname != "" {
					t.Errorf("%s: owner %d:%d %q:%q, want 0:0 without names", name, h.Uid, h.Gid, h.Uname, h.Gname)
				}
				if !h.ModTime.Equal(defaultEpoch) {
					t.Errorf("%s: time %v, want %v", name, h.ModTime, defaultEpoch)
				}
				if h.Typeflag == tar.TypeReg && h.Mode != 0o644 && h.Mode != 0o755 {
					t.Errorf("%s: mode %o, want 644 or 755", name, h.Mode)
				}
			}
			// A changed file changes the tarball and its content-hash revision.
			write(t, filepath.Join(src, "notes", "views.py"), "# changed\n")
			third, err := release(t, site, nil)
			if err != nil {
				t.Fatal(err)
			}
			if third.SHA256 == first.SHA256 || third.Manifest.Revision == first.Manifest.Revision {
				t.Error("a changed source gave the same tarball or revision")
			}
		})
	}
}

func TestReleaseManifest(t *testing.T) {
	site, _ := project(t, "")
	a, err := release(t, site, map[string]string{"SOURCE_DATE_EPOCH": "1700000000"})
	if err != nil {
		t.Fatal(err)
	}
	entries := readTarball(t, a.Path)
	e, ok := entries[ManifestName]
	if !ok {
		t.Fatalf("no %s in %v", ManifestName, testarchive.Names(entries))
	}
	var m templates.Manifest
	if err := json.Unmarshal([]byte(e.Body), &m); err != nil {
		t.Fatal(err)
	}
	if m != a.Manifest {
		t.Errorf("manifest in the tarball %+v differs from the one returned %+v", m, a.Manifest)
	}
	if m.Project != "shop" || m.Source != "path:src" || m.Files < 10 || len(m.FilesSHA256) != 64 {
		t.Errorf("manifest = %+v", m)
	}
	if m.Revision != m.FilesSHA256[:12] {
		t.Errorf("revision outside git = %q, want the content hash's first 12 digits", m.Revision)
	}
	if filepath.Base(a.Path) != "shop-r"+m.Revision+".tar.gz" {
		t.Errorf("tarball name %s does not follow the default pattern", a.Path)
	}
	if want := time.Unix(1700000000, 0); !e.Header.ModTime.Equal(want) || m.Created != "2023-11-14T22:13:20Z" {
		t.Errorf("SOURCE_DATE_EPOCH not used: entry time %v, created %s", e.Header.ModTime, m.Created)
	}
	if len(a.SHA256) != 64 || a.Size <= 0 {
		t.Errorf("artifact = %+v", a)
	}
}

func TestReleaseExcludes(t *testing.T) {
	site, src := project(t, "")
	// The site's own patterns: one more exclude, one default put back.
	site.Settings.Source.Exclude = []string{"*.log", "/notes/fixtures/"}
	site.Settings.Source.Include = []string{"public.key"}
	left := []string{
		".git/config", "notes/__pycache__/views.cpython-311.pyc", "notes/old.pyc", "db.sqlite3",
		".env", ".env.production", "media/avatar.png", "secrets.py", "secrets.env", "production.secrets.age",
		"server.key", "id_ed25519", "debug.log", "notes/fixtures/users.json", "dist/old.tar.gz",
	}
	kept := []string{"notes/media/keep.txt", "public.key", "notes/secretary.py"}
	for _, p := range append(append([]string{}, left...), kept...) {
		write(t, filepath.Join(src, p), "x\n")
	}
	a, err := release(t, site, nil)
	if err != nil {
		t.Fatal(err)
	}
	entries := readTarball(t, a.Path)
	for _, p := range left {
		for name := range entries {
			if name == p || strings.HasPrefix(p, name) && strings.HasSuffix(name, "/") && name != "notes/" {
				t.Errorf("%s went into the tarball (as %s)", p, name)
			}
		}
	}
	for _, p := range kept {
		if _, ok := entries[p]; !ok {
			t.Errorf("%s was left out; tarball has %v", p, testarchive.Names(entries))
		}
	}
}

func TestReleaseRefusesEscapingLinks(t *testing.T) {
	site, src := project(t, "")
	if err := os.Symlink("../../etc/passwd", filepath.Join(src, "notes", "passwd")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc/hostname", filepath.Join(src, "hostname")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("notes/static", filepath.Join(src, "static-link")); err != nil {
		t.Fatal(err)
	}
	_, err := release(t, site, nil)
	if err == nil {
		t.Fatal("release with escaping links succeeded")
	}
	for _, want := range []string{
		"hostname -> /etc/hostname: absolute links point at the build machine",
		"notes/passwd -> ../../etc/passwd: the link leads out of the source tree",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "static-link") {
		t.Errorf("a link inside the tree was refused: %v", err)
	}
	if files, _ := filepath.Glob(filepath.Join(site.Root, "dist", "*")); len(files) > 0 {
		t.Errorf("a refused release left files behind: %v", files)
	}

	// Without the escaping links, the inside link is packaged as a link.
	os.Remove(filepath.Join(src, "notes", "passwd"))
	os.Remove(filepath.Join(src, "hostname"))
	a, err := release(t, site, nil)
	if err != nil {
		t.Fatal(err)
	}
	e := readTarball(t, a.Path)["static-link"]
	if e.Header == nil || e.Header.Typeflag != tar.TypeSymlink || e.Header.Linkname != "notes/static" {
		t.Errorf("static-link entry = %+v", e.Header)
	}
}

func gitRun(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com",
		"GIT_AUTHOR_DATE=2024-05-01T10:00:00Z", "GIT_COMMITTER_DATE=2024-05-01T10:00:00Z")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// exampleRepository makes a git repository of the example project with
// one commit, v1, on main.
func exampleRepository(t *testing.T) string {
	t.Helper()
	needGit(t)
	repo := t.TempDir()
	testsite.CopyTree(t, filepath.Join("..", "example"), repo)
	gitRun(t, repo, "init", "-q", "-b", "main")
	gitRun(t, repo, "add", "-A")
	gitRun(t, repo, "commit", "-q", "-m", "v1")
	return repo
}

func needGit(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("git is not installed; as root, go tool mage test installs it (internal/testdeps)")
		}
		t.Skip("git is not installed")
	}
}

func TestReleaseFromGitCheckout(t *testing.T) {
	needGit(t)
	site, src := project(t, "")
	gitRun(t, site.Root, "init", "-q", "-b", "main")
	write(t, filepath.Join(site.Root, ".gitignore"), "dist/\n")
	gitRun(t, site.Root, "add", "-A")
	gitRun(t, site.Root, "commit", "-q", "-m", "first")
	short := gitRun(t, site.Root, "rev-parse", "--short", "HEAD")

	a, err := release(t, site, nil)
	if err != nil {
		t.Fatal(err)
	}
	if a.Manifest.Revision != short || !strings.HasPrefix(a.Manifest.Source, "path:src@") {
		t.Errorf("manifest = %+v, want revision %s", a.Manifest, short)
	}
	if a.Manifest.Created != "2024-05-01T10:00:00Z" {
		t.Errorf("entry time %s, want the commit's time", a.Manifest.Created)
	}

	// An untracked file that is excluded anyway does not make it dirty.
	write(t, filepath.Join(src, "db.sqlite3"), "data")
	if a2, err := release(t, site, nil); err != nil || a2.SHA256 != a.SHA256 {
		t.Errorf("an excluded untracked file changed the release: %v", err)
	}
	// A packaged change does.
	write(t, filepath.Join(src, "notes", "views.py"), "# local change\n")
	a3, err := release(t, site, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(a3.Manifest.Revision, short+"-dirty-") {
		t.Errorf("revision of a changed checkout = %q, want %s-dirty-…", a3.Manifest.Revision, short)
	}
	// CI's variable wins over the source.
	a4, err := release(t, site, map[string]string{"REVISION": "build42"})
	if err != nil || a4.Manifest.Revision != "build42" || filepath.Base(a4.Path) != "shop-rbuild42.tar.gz" {
		t.Errorf("REVISION=build42 gave %+v, %v", a4, err)
	}
}

func TestReleaseFromGitRepositoryAtRef(t *testing.T) {
	repo := exampleRepository(t)
	gitRun(t, repo, "tag", "v1")
	v1 := gitRun(t, repo, "rev-parse", "--short", "HEAD")
	write(t, filepath.Join(repo, "notes", "views.py"), "# v2\n")
	gitRun(t, repo, "commit", "-q", "-am", "v2")

	site, _ := project(t, "")
	site.Settings.Source = sites.Source{Git: repo, Ref: "v1"}
	a, err := release(t, site, nil)
	if err != nil {
		t.Fatal(err)
	}
	if a.Manifest.Revision != v1 {
		t.Errorf("revision = %s, want the tag's commit %s", a.Manifest.Revision, v1)
	}
	if body := readTarball(t, a.Path)["notes/views.py"].Body; strings.Contains(body, "# v2") {
		t.Error("the tarball holds the branch head, not the tag")
	}
	if _, ok := readTarball(t, a.Path)[".git/"]; ok {
		t.Error("the checkout's .git went into the tarball")
	}

	site.Settings.Source.Ref = "no-such-ref"
	if _, err := release(t, site, nil); err == nil || !strings.Contains(err.Error(), `source.ref "no-such-ref": no such branch, tag or commit`) {
		t.Errorf("bad ref: %v", err)
	}
}

func TestExpand(t *testing.T) {
	env := map[string]string{"BUILD": "42", "BRANCH": "feature/x", "EMPTY": ""}
	getenv := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	tests := []struct {
		pattern, want, err string
	}{
		{"shop-r${REVISION}.tar.gz", "shop-r1a2b3c4.tar.gz", ""},
		{"shop-${BUILD}-${REVISION}.tar.bz2", "shop-42-1a2b3c4.tar.bz2", ""},
		{"shop-${CI_COMMIT}.tar.gz", "", "needs CI_COMMIT from the environment"},
		{"shop-${EMPTY}-${NOPE}.tar.gz", "", "needs EMPTY, NOPE from the environment"},
		{"shop-${BRANCH}.tar.gz", "", `expands to "shop-feature/x.tar.gz", which is not a safe file name`},
		{"shop.tar.gz", "", "has no ${VAR}"},
	}
	for _, tt := range tests {
		got, err := Expand(tt.pattern, "1a2b3c4", getenv)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("Expand(%q) error = %v, want %q", tt.pattern, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("Expand(%q) = %q, %v; want %q", tt.pattern, got, err, tt.want)
		}
	}
}

func TestFilter(t *testing.T) {
	f := newFilter([]string{"docs/"}, []string{"keep.pyc"})
	tests := []struct {
		rel   string
		dir   bool
		wants bool
	}{
		{"notes/views.py", false, false},
		{"notes/__pycache__", true, true},
		{"a/b/c.pyc", false, true},
		{"keep.pyc", false, false},
		{"media", true, true},
		{"notes/media", true, false},
		{"docs", true, true},
		{"docs", false, false},
		{"src/docs", true, true},
		{"config/.env", false, true},
	}
	for _, tt := range tests {
		if got := f.excluded(tt.rel, tt.dir); got != tt.wants {
			t.Errorf("excluded(%q, dir=%v) = %v, want %v", tt.rel, tt.dir, got, tt.wants)
		}
	}
}

// keygen runs a real key tool in a fresh folder and returns the file it
// wrote there, named out (or its standard output when out is "").
func keygen(t *testing.T, out string, name string, args ...string) string {
	t.Helper()
	tool := testenv.Command(t, name, map[string]string{"ssh-keygen": "openssh-client", "openssl": "openssl", "gpg": "gnupg", "sh": "dash"}[name])
	dir := t.TempDir()
	for i, a := range args {
		args[i] = strings.ReplaceAll(a, "$DIR", dir)
	}
	cmd := exec.Command(tool, args...)
	cmd.Dir = dir
	stdout, err := cmd.Output()
	if err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			t.Fatalf("%s %v: %v\n%s", name, args, err, exit.Stderr)
		}
		t.Fatalf("%s %v: %v", name, args, err)
	}
	if out == "" {
		return string(stdout)
	}
	data, err := os.ReadFile(filepath.Join(dir, out))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// pgpSecretKey makes an OpenPGP key with gpg and exports its secret part,
// armoured.
func pgpSecretKey(t *testing.T) string {
	t.Helper()
	home := t.TempDir()
	os.Chmod(home, 0o700)
	gpg := func(args ...string) string {
		return keygen(t, "", "gpg", append([]string{"--batch", "--quiet", "--homedir", home, "--pinentry-mode", "loopback", "--passphrase", ""}, args...)...)
	}
	t.Cleanup(func() { exec.Command("gpgconf", "--homedir", home, "--kill", "all").Run() })
	gpg("--quick-gen-key", "Test <test@example.com>", "ed25519", "sign", "never")
	return gpg("--armor", "--export-secret-keys")
}

// ageIdentity is an age key file as age-keygen writes it.
func ageIdentity(t *testing.T) string {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	return "# created: 2024-05-01T10:00:00Z\n# public key: " + id.Recipient().String() + "\n" + id.String() + "\n"
}

// pkcs8Key is an RSA private key in PKCS #8 PEM, from openssl.
func pkcs8Key(t *testing.T) string {
	return keygen(t, "", "openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048")
}

// The credentials found in sources: each must refuse the release, all
// named in one error before anything is written.
func TestReleaseRefusesCredentials(t *testing.T) {
	serviceAccount, _ := json.MarshalIndent(map[string]string{
		"type": "service_account", "project_id": "shop-prod", "private_key_id": "0123456789abcdef",
		"private_key": pkcs8Key(t), "client_email": "deploy@shop-prod.iam.gserviceaccount.com",
	}, "", "  ")
	tests := []struct {
		name, path, content, holds string
	}{
		{"age identity in key.txt", "key.txt", ageIdentity(t), "an age secret key"},
		{"OpenSSH private key in deploy_key", "deploy_key",
			keygen(t, "k", "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "deploy", "-f", "$DIR/k"), "a private key block (BEGIN OPENSSH PRIVATE KEY)"},
		{"PEM private key in config/server.pem", "config/server.pem",
			keygen(t, "", "openssl", "genrsa", "-traditional", "2048"), "a private key block (BEGIN RSA PRIVATE KEY)"},
		{"encrypted PEM key with headers", "config/legacy.pem",
			keygen(t, "", "openssl", "genrsa", "-traditional", "-aes128", "-passout", "pass:secret", "2048"), "a private key block (BEGIN RSA PRIVATE KEY)"},
		{"EC private key", "certs/ec.txt", keygen(t, "", "openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout"), "a private key block (BEGIN EC PRIVATE KEY)"},
		{"PKCS #8 encrypted private key", "certs/enc.crt",
			keygen(t, "", "openssl", "genpkey", "-algorithm", "ed25519", "-aes-256-cbc", "-pass", "pass:secret"), "a private key block (BEGIN ENCRYPTED PRIVATE KEY)"},
		{"DSA private key", "deploy/dsa.txt", keygen(t, "", "sh", "-c", "openssl dsaparam -noout -genkey 1024 | openssl pkey -traditional"), "a private key block (BEGIN DSA PRIVATE KEY)"},
		{"RSA key in PEM form from ssh-keygen", "deploy/ci", keygen(t, "k", "ssh-keygen", "-q", "-t", "rsa", "-b", "2048", "-m", "PEM", "-N", "", "-f", "$DIR/k"), "a private key block (BEGIN RSA PRIVATE KEY)"},
		{"PGP private key block", "docs/signing.asc", pgpSecretKey(t), "a private key block (BEGIN PGP PRIVATE KEY BLOCK)"},
		{"private key inside Python source", "notes/jwt.py",
			"JWT_KEY = (\n" + pyLines(pkcs8Key(t)) + ")\n", "a private key block (BEGIN PRIVATE KEY)"},
		{"gcloud service-account key", "deploy/gcp.json", string(serviceAccount), "a Google Cloud service-account key"},
		{"gcloud application default credentials", "deploy/adc.json",
			`{"client_id": "7645.apps.googleusercontent.com", "client_secret": "d-FL95Q19q7MQmFpd7hHD0Ty", "refresh_token": "1//0gLh3jd8QHc9ZCgYIARAAGBASNwF-L9IrK5s4", "type": "authorized_user"}` + "\n",
			"Google Cloud user credentials"},
		{"docker login", "deploy/docker/config.json",
			"{\n\t\"auths\": {\n\t\t\"registry.example.com\": {\n\t\t\t\"auth\": \"ZGVwbG95Omh1bnRlcjItcmVnaXN0cnk=\"\n\t\t}\n\t}\n}\n", "a Docker registry login"},
		{"AWS secret key in an ini file", "deploy/aws.ini",
			"[default]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n", "an AWS secret access key"},
	}
	site, src := project(t, "")
	for _, tt := range tests {
		write(t, filepath.Join(src, tt.path), tt.content)
	}
	a, err := release(t, site, nil)
	if err == nil {
		entries := readTarball(t, a.Path)
		for _, tt := range tests {
			if _, ok := entries[tt.path]; ok {
				t.Errorf("%s: %s went into the tarball", tt.name, tt.path)
			}
		}
		t.Fatal("a source holding credentials was released")
	}
	t.Logf("refused:\n%v", err)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if want := "\n  " + tt.path + ": " + tt.holds; !strings.Contains(err.Error(), want) {
				t.Errorf("error does not say %q:\n%v", want, err)
			}
		})
	}
	for _, want := range []string{"holds credentials", "remove them from the source", "source.exclude", "source.include"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q:\n%v", want, err)
		}
	}
	if files, _ := filepath.Glob(filepath.Join(site.Root, "dist", "*")); len(files) > 0 {
		t.Errorf("a refused release left files behind: %v", files)
	}
}

// pyLines writes a PEM block as Python string literals, one per line.
func pyLines(pem string) string {
	var b strings.Builder
	for _, l := range strings.Split(strings.TrimSpace(pem), "\n") {
		b.WriteString("    \"" + l + "\\n\"\n")
	}
	return b.String()
}

// What only looks like a credential is packaged: public keys and
// certificates, text about keys, placeholders, settings that read secrets
// from the environment.
func TestReleasePackagesLookalikes(t *testing.T) {
	certDir := t.TempDir()
	keygen(t, "", "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-subj", "/CN=shop.example.com",
		"-keyout", filepath.Join(certDir, "k.pem"), "-out", filepath.Join(certDir, "cert.pem"))
	cert, err := os.ReadFile(filepath.Join(certDir, "cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	id, _ := age.GenerateX25519Identity()
	files := map[string]string{
		"certs/shop.pem":        string(cert),
		"certs/shop.crt":        string(cert),
		"deploy/deploy_key.pub": keygen(t, "k.pub", "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", "$DIR/k"),
		"deploy/recipients.txt": id.Recipient().String() + "\n",
		"README.md": "# Keys\n\nPaste the key, which starts with -----BEGIN PRIVATE KEY-----, into the secret.\n\n" +
			"```\n-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA...\n-----END RSA PRIVATE KEY-----\n```\n\n" +
			"-----BEGIN OPENSSH PRIVATE KEY-----\n<your key here>\n-----END OPENSSH PRIVATE KEY-----\n\n" +
			"An age key looks like AGE-SECRET-KEY-1… and stays out of git.\n",
		"notes/keys.py": "def is_key(line):\n    return line.startswith(\"-----BEGIN RSA PRIVATE KEY-----\")\n\n" +
			"END = \"-----END RSA PRIVATE KEY-----\"\n",
		"exampleproject/aws.py":    "import os\nAWS_SECRET_ACCESS_KEY = os.environ[\"AWS_SECRET_ACCESS_KEY\"]\n",
		"deploy/gcp-template.json": `{"type": "service_account", "project_id": "shop-prod", "private_key": ""}` + "\n",
		"deploy/docker.json":       `{"auths": {"registry.example.com": {}}, "credsStore": "pass"}` + "\n",
	}
	site, src := project(t, "")
	for p, content := range files {
		write(t, filepath.Join(src, p), content)
	}
	a, err := release(t, site, nil)
	if err != nil {
		t.Fatal(err)
	}
	entries := readTarball(t, a.Path)
	for p := range files {
		if _, ok := entries[p]; !ok {
			t.Errorf("%s was left out", p)
		}
	}
}

// Files that keep passwords and tokens by their name are left out by
// default, and the release says so.
func TestReleaseLeavesOutCredentialFiles(t *testing.T) {
	tests := []struct{ path, content, listed string }{
		{".pgpass", "db.example.com:5432:shop:shop:hunter2-postgres\n", ".pgpass (default: .pgpass)"},
		{".netrc", "machine git.example.com login deploy password hunter2-netrc\n", ".netrc (default: .netrc)"},
		{"_netrc", "machine git.example.com login deploy password hunter2-netrc\n", "_netrc (default: _netrc)"},
		{".aws/credentials", "[default]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n", ".aws/ (default: .aws/)"},
		{".git-credentials", "https://deploy:hunter2-token@git.example.com\n", ".git-credentials (default: .git-credentials)"},
		{"notes/.pypirc", "[pypi]\nusername = __token__\npassword = pypi-hunter2\n", "notes/.pypirc (default: .pypirc)"},
	}
	site, src := project(t, "")
	for _, tt := range tests {
		write(t, filepath.Join(src, tt.path), tt.content)
	}
	var out bytes.Buffer
	a, err := Build(context.Background(), site, Options{Dist: filepath.Join(site.Root, "dist"), Out: &out, Getenv: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	entries := readTarball(t, a.Path)
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			for name := range entries {
				if name == tt.path || strings.HasPrefix(tt.path, name) && name != "notes/" {
					t.Errorf("%s went into the tarball (as %s)", tt.path, name)
				}
			}
			if !containsLine(out.String(), tt.listed) {
				t.Errorf("the release does not list %q:\n%s", tt.listed, out.String())
			}
		})
	}
}

// containsLine reports whether a line of out, its spaces squeezed, is
// want.
func containsLine(out, want string) bool {
	for _, l := range strings.Split(out, "\n") {
		if strings.Join(strings.Fields(l), " ") == want {
			return true
		}
	}
	return false
}

// The release names every path it leaves out with the pattern that did
// it; a folder is one line, not its contents.
func TestReleaseNamesWhatItLeavesOut(t *testing.T) {
	site, src := project(t, "")
	site.Settings.Source.Exclude = []string{"*.log"}
	for _, p := range []string{".git/HEAD", ".git/config", ".git/objects/ab/cdef", "db.sqlite3", "notes/debug.log", "notes/__pycache__/views.cpython-311.pyc"} {
		write(t, filepath.Join(src, p), "x\n")
	}
	var out bytes.Buffer
	if _, err := Build(context.Background(), site, Options{Dist: filepath.Join(site.Root, "dist"), Out: &out, Getenv: func(string) (string, bool) { return "", false }}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"left out",
		".git/ (default: .git/)",
		"db.sqlite3 (default: *.sqlite3)",
		"notes/__pycache__/ (default: __pycache__/)",
		"notes/debug.log (source.exclude: *.log)",
	} {
		if !containsLine(out.String(), want) {
			t.Errorf("the release does not say %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), ".git/config") || strings.Contains(out.String(), "views.cpython") {
		t.Errorf("a left-out folder's contents are listed:\n%s", out.String())
	}
	if !strings.Contains(out.String(), " 4 left out") {
		t.Errorf("the count of left-out paths is not 4:\n%s", out.String())
	}
}

// source.include puts a detected credential back: it is packaged, and the
// release warns, naming it and the pattern.
func TestReleaseIncludeCredentialWarns(t *testing.T) {
	site, src := project(t, "")
	key := keygen(t, "", "openssl", "genrsa", "-traditional", "2048")
	write(t, filepath.Join(src, "config/server.pem"), key)
	write(t, filepath.Join(src, "notes/tests/jwt_test_key"), pkcs8Key(t))
	site.Settings.Source.Include = []string{"config/server.pem", "jwt_test_key"}
	var out bytes.Buffer
	a, err := Build(context.Background(), site, Options{Dist: filepath.Join(site.Root, "dist"), Out: &out, Getenv: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	entries := readTarball(t, a.Path)
	if e, ok := entries["config/server.pem"]; !ok || e.Body != key {
		t.Errorf("config/server.pem is not packaged as it is; tarball has %v", testarchive.Names(entries))
	}
	if _, ok := entries["notes/tests/jwt_test_key"]; !ok {
		t.Errorf("notes/tests/jwt_test_key is not packaged")
	}
	for _, want := range []string{
		"warning config/server.pem holds a private key block (BEGIN RSA PRIVATE KEY); it is packaged because source.include names it (config/server.pem)",
		"warning notes/tests/jwt_test_key holds a private key block (BEGIN PRIVATE KEY); it is packaged because source.include names it (jwt_test_key)",
	} {
		if !containsLine(out.String(), want) {
			t.Errorf("the release does not warn %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), strings.Split(key, "\n")[1]) {
		t.Error("the output shows the key")
	}
}

// TestEveryArchiveExtensionHasAFormat checks that each tarball name a site
// file may choose is one djship can both write and unpack.
func TestEveryArchiveExtensionHasAFormat(t *testing.T) {
	for _, ext := range sites.ArchiveExtensions {
		f, err := formatOf("shop-r1" + ext)
		if err != nil || f.compression == nil || f.tarFlag == "" {
			t.Errorf("%s: %+v, %v", ext, f, err)
		}
	}
	if _, err := formatOf("shop-r1.rar"); err == nil || !strings.Contains(err.Error(), strings.Join(sites.ArchiveExtensions, ", ")) {
		t.Errorf("an unknown format: %v", err)
	}
}
