package release

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	goldenfile "github.com/djship/djship/internal/golden"
	"github.com/djship/djship/templates"
	"github.com/fatih/color"
)

// scan feeds content to a credentialScanner in chunks of size n (all of
// it at once when n is 0) and returns what it found.
func scan(content string, n int) string {
	var s credentialScanner
	if n == 0 {
		n = len(content) + 1
	}
	for i := 0; i < len(content); i += n {
		s.Write([]byte(content[i:min(i+n, len(content))]))
	}
	return s.result()
}

func TestCredentialScanner(t *testing.T) {
	body := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0x5a, 0x01, 0xf3}, 40))
	block := func(label, b string) string {
		return "-----BEGIN " + label + "-----\n" + b + "\n-----END " + label + "-----\n"
	}
	wrapped := ""
	for i := 0; i < len(body); i += 64 {
		wrapped += body[i:min(i+64, len(body))] + "\n"
	}
	tests := []struct{ name, content, holds string }{
		{"PEM block", block("PRIVATE KEY", wrapped), "a private key block (BEGIN PRIVATE KEY)"},
		{"CRLF line ends", strings.ReplaceAll(block("RSA PRIVATE KEY", wrapped), "\n", "\r\n"), "a private key block (BEGIN RSA PRIVATE KEY)"},
		{"indented in YAML", "tls:\n  key: |\n    " + strings.ReplaceAll(block("EC PRIVATE KEY", wrapped), "\n", "\n    "), "a private key block (BEGIN EC PRIVATE KEY)"},
		{"escaped in a JSON string", `{"key": "` + strings.ReplaceAll(block("PRIVATE KEY", wrapped), "\n", `\n`) + `"}`, "a private key block (BEGIN PRIVATE KEY)"},
		{"on one line", "KEY=-----BEGIN PRIVATE KEY-----" + body + "-----END PRIVATE KEY-----\n", "a private key block (BEGIN PRIVATE KEY)"},
		{"armour headers", "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,0123456789ABCDEF0123456789ABCDEF\n\n" + wrapped + "-----END RSA PRIVATE KEY-----\n", "a private key block (BEGIN RSA PRIVATE KEY)"},
		{"PGP with checksum", "-----BEGIN PGP PRIVATE KEY BLOCK-----\nVersion: GnuPG v2\n\n" + wrapped + "=nD6e\n-----END PGP PRIVATE KEY BLOCK-----\n", "a private key block (BEGIN PGP PRIVATE KEY BLOCK)"},
		{"SSH2 form", "---- BEGIN SSH2 ENCRYPTED PRIVATE KEY ----\nComment: \"rsa-key\"\n" + wrapped + "---- END SSH2 ENCRYPTED PRIVATE KEY ----\n", "a private key block (BEGIN SSH2 ENCRYPTED PRIVATE KEY)"},
		{"second block after a mention", "see -----BEGIN PRIVATE KEY----- below\n" + block("OPENSSH PRIVATE KEY", wrapped), "a private key block (BEGIN OPENSSH PRIVATE KEY)"},
		{"two kinds", block("EC PRIVATE KEY", wrapped) + block("PRIVATE KEY", wrapped) + block("EC PRIVATE KEY", wrapped), "a private key block (BEGIN EC PRIVATE KEY); a private key block (BEGIN PRIVATE KEY)"},
		{"age identity", "AGE-SECRET-KEY-1" + strings.Repeat("QYQSZQGP", 8)[:58] + "\n", "an age secret key (AGE-SECRET-KEY-1…)"},
		{"PuTTY key", "PuTTY-User-Key-File-3: ssh-ed25519\nEncryption: none\nComment: deploy\nPublic-Lines: 2\n" + wrapped[:130] + "Private-Lines: 1\n" + body[:44] + "\nPrivate-MAC: 0a1b\n", "a PuTTY private key"},
		{"AWS key in settings", `AWS_SECRET_ACCESS_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"` + "\n", "an AWS secret access key"},
		{"AWS key in YAML", "aws_secret_access_key: wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLE+/+\n", "an AWS secret access key"},

		{"empty", "", ""},
		{"prose", "Paste the -----BEGIN PRIVATE KEY----- block here.\nIt ends with -----END PRIVATE KEY-----.\n", ""},
		{"placeholder body", block("RSA PRIVATE KEY", "MIIEpAIBAAKCAQEA..."), ""},
		{"short body", block("PRIVATE KEY", "MIIEpAIBAAKCAQEA"), ""},
		{"no END", "-----BEGIN PRIVATE KEY-----\n" + wrapped, ""},
		{"END of another kind", "-----BEGIN RSA PRIVATE KEY-----\n" + wrapped + "-----END EC PRIVATE KEY-----\n", ""},
		{"code between BEGIN and END", "-----BEGIN PRIVATE KEY-----\n" + wrapped + "print('hi')\n-----END PRIVATE KEY-----\n", ""},
		{"header inside the body", "-----BEGIN PRIVATE KEY-----\n" + wrapped + "Comment: late\n-----END PRIVATE KEY-----\n", ""},
		{"public key", block("PUBLIC KEY", wrapped), ""},
		{"certificate", block("CERTIFICATE", wrapped), ""},
		{"age mention", "an age key looks like AGE-SECRET-KEY-1… and stays out of git", ""},
		{"age key too short", "AGE-SECRET-KEY-1QYQSZQGPQYQSZQGP", ""},
		{"age recipient", "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p", ""},
		{"AWS key from the environment", `AWS_SECRET_ACCESS_KEY = os.environ["AWS_SECRET_ACCESS_KEY"]` + "\n", ""},
		{"service account without key", `{"type": "service_account", "private_key": ""}`, ""},
		{"docker credsStore", `{"auths": {"ghcr.io": {}}, "credsStore": "desktop"}`, ""},
		{"refresh token alone", `{"refresh_token": "1//0gLh3jd8QHc9ZCgYIARAAGBASNwF"}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, n := range []int{0, 1, 7, 64} {
				if got := scan(tt.content, n); got != tt.holds {
					t.Errorf("written %d bytes at a time: found %q, want %q", n, got, tt.holds)
				}
			}
		})
	}
}

func TestCredentialByName(t *testing.T) {
	tests := map[string]string{
		".pgpass":               "PostgreSQL passwords (.pgpass)",
		"deploy/.netrc":         "login passwords (.netrc)",
		"_netrc":                "login passwords (_netrc)",
		".git-credentials":      "git's stored credentials (.git-credentials)",
		"ops/.aws/credentials":  "AWS access keys (.aws/credentials)",
		"notes/credentials.py":  "",
		".aws/config":           "",
		"pgpass":                "",
		"docs/netrc-example.md": "",
	}
	for rel, want := range tests {
		if got := credentialByName(rel); got != want {
			t.Errorf("credentialByName(%q) = %q, want %q", rel, got, want)
		}
	}
}

// Scanning rides on the hashing read: a large file costs about what
// hashing it alone does.
func TestHashAndScanLargeFile(t *testing.T) {
	data := make([]byte, 64<<20)
	rand.Read(data)
	p := filepath.Join(t.TempDir(), "vendor.bin")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	sum, holds, err := hashAndScan(p, "vendor.bin")
	d := time.Since(start)
	if err != nil || holds != "" {
		t.Fatalf("random data: %q, %v", holds, err)
	}
	if want, _ := fileSHA256(p); sum != want {
		t.Errorf("sha256 %s, want %s", sum, want)
	}
	t.Logf("64 MiB hashed and scanned in %v", d.Round(time.Millisecond))
	if d > 10*time.Second {
		t.Errorf("64 MiB took %v", d)
	}
}

func TestPrintArtifact(t *testing.T) {
	noColor := color.NoColor
	color.NoColor = true
	t.Cleanup(func() { color.NoColor = noColor })
	a := &Artifact{
		Path: "dist/shop-r1a2b3c4.tar.gz", Size: 123456, SHA256: strings.Repeat("ab", 32),
		Manifest: templates.Manifest{Revision: "1a2b3c4", Source: "path:src@1a2b3c4d", Files: 42},
		LeftOut: []LeftOut{
			{".git/", "default: .git/"}, {"db.sqlite3", "default: *.sqlite3"}, {"notes/debug.log", "source.exclude: *.log"},
		},
		Credentials: []Credential{{Path: "notes/tests/jwt_key", Holds: "a private key block (BEGIN PRIVATE KEY)", Include: "jwt_key"}},
	}
	var small bytes.Buffer
	printArtifact(&small, a, true)
	golden(t, "artifact.golden", small.Bytes())

	a.Credentials = nil
	a.LeftOut = nil
	for i := 0; i < leftOutShown+7; i++ {
		a.LeftOut = append(a.LeftOut, LeftOut{fmt.Sprintf("cache/%02d.pyc", i), "default: *.pyc"})
	}
	var many bytes.Buffer
	printArtifact(&many, a, false)
	golden(t, "artifact-many.golden", many.Bytes())
}

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	goldenfile.Check(t, filepath.Join("testdata", name), got)
}
