package secrets

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"encoding/pem"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/djship/djship/internal/testenv"
	"golang.org/x/crypto/ssh"
)

// sshKeyPair makes an SSH key: the private key PEM and the public key line.
func sshKeyPair(t *testing.T, kind string) ([]byte, string) {
	t.Helper()
	var priv any
	var pub any
	switch kind {
	case "ed25519":
		p, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		priv, pub = k, p
	case "rsa":
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		priv, pub = k, &k.PublicKey
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(block), strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sshPub)))
}

func ageKey(t *testing.T) (Identity, string) {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	return Identity{Identity: id, Source: "test age key"}, id.Recipient().String()
}

func TestRoundTrips(t *testing.T) {
	ageID, ageRecipient := ageKey(t)
	edPEM, edPub := sshKeyPair(t, "ed25519")
	rsaPEM, rsaPub := sshKeyPair(t, "rsa")
	edIDs, err := parseIdentities(edPEM, "", "ed25519 key")
	if err != nil {
		t.Fatal(err)
	}
	rsaIDs, err := parseIdentities(rsaPEM, "", "rsa key")
	if err != nil {
		t.Fatal(err)
	}
	store := Store{Path: filepath.Join(t.TempDir(), "shop.production.secrets.age"), Recipients: []string{ageRecipient, edPub, rsaPub}}
	if err := store.Set([]Identity{ageID}, "SECRET_KEY", "first value"); err != nil {
		t.Fatal(err)
	}
	tlsKey := string(edPEM) // a multi-line value
	if err := store.Set([]Identity{ageID}, "TLS_KEY", tlsKey); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(store.Path)
	if bytes.Contains(raw, []byte("first value")) || !bytes.HasPrefix(raw, []byte("-----BEGIN AGE ENCRYPTED FILE-----")) {
		t.Fatalf("the file is not encrypted and armoured:\n%s", raw)
	}
	for name, ids := range map[string][]Identity{"age": {ageID}, "ssh-ed25519": edIDs, "ssh-rsa": rsaIDs} {
		values, _, err := store.Load(ids)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if values["SECRET_KEY"] != "first value" || values["TLS_KEY"] != tlsKey {
			t.Errorf("%s: values came back as %q", name, values)
		}
	}

	// Someone else's key cannot open it, and the error says who can.
	other, _ := ageKey(t)
	_, _, err = store.Load([]Identity{other})
	if err == nil || !strings.Contains(err.Error(), "none of your identities (test age key) can open it") || !strings.Contains(err.Error(), ageRecipient[:20]) || !strings.Contains(err.Error(), "mage secrets:recipients") {
		t.Errorf("wrong identity: %v", err)
	}

	// After the recipient list changes, Reencrypt locks the removed key out.
	store.Recipients = []string{ageRecipient}
	if err := store.Reencrypt([]Identity{ageID}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := store.Load(edIDs); err == nil {
		t.Error("a removed recipient can still open the file")
	}
}

func TestIdentitiesFromEnvironment(t *testing.T) {
	id, recipient := ageKey(t)
	t.Setenv("HOME", t.TempDir())
	t.Setenv("DJSHIP_AGE_KEY", id.Identity.(*age.X25519Identity).String())
	file := filepath.Join(t.TempDir(), "identity")
	edPEM, edPub := sshKeyPair(t, "ed25519")
	os.WriteFile(file, edPEM, 0o600)
	t.Setenv("DJSHIP_AGE_IDENTITY", file)
	ids, err := Identities()
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != 2 || ids[0].Source != "DJSHIP_AGE_KEY" || ids[1].Source != file {
		t.Fatalf("identities = %+v", ids)
	}
	store := Store{Path: filepath.Join(t.TempDir(), "s.age"), Recipients: []string{edPub}}
	if err := store.Set(ids, "A", "b"); err != nil {
		t.Fatal(err)
	}
	if v, _, err := store.Load(ids[1:]); err != nil || v["A"] != "b" {
		t.Errorf("identity file: %v %v", v, err)
	}
	_ = recipient
	t.Setenv("DJSHIP_AGE_KEY", "not a key")
	if _, err := Identities(); err == nil || !strings.Contains(err.Error(), "DJSHIP_AGE_KEY") {
		t.Errorf("bad DJSHIP_AGE_KEY: %v", err)
	}
}

// editStore makes a store with one value and a TMPDIR the test can watch.
func editStore(t *testing.T) (Store, []Identity, string) {
	t.Helper()
	id, recipient := ageKey(t)
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	store := Store{Path: filepath.Join(t.TempDir(), "s.production.secrets.age"), Recipients: []string{recipient}}
	if err := store.Set([]Identity{id}, "SECRET_KEY", "old"); err != nil {
		t.Fatal(err)
	}
	return store, []Identity{id}, tmp
}

func leftovers(t *testing.T, tmp string) []string {
	t.Helper()
	entries, _ := os.ReadDir(tmp)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestEdit(t *testing.T) {
	tests := []struct {
		name, editor, want, err string
	}{
		{"adds a value", `sh -c 'stat -c %a "$1" > "$DJSHIP_TEST_MODE"; stat -c %a "$(dirname "$1")" >> "$DJSHIP_TEST_MODE"; printf "GREETING: hello\n" >> "$1"' editor`, "hello", ""},
		{"editor fails", `false`, "", "the editor (false) failed"},
		{"no change", `true`, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store, ids, tmp := editStore(t)
			modes := filepath.Join(t.TempDir(), "modes")
			t.Setenv("DJSHIP_TEST_MODE", modes)
			before, _ := os.ReadFile(store.Path)
			var out bytes.Buffer
			err := store.Edit(context.Background(), ids, tt.editor, nil, &out, &out)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) || !strings.Contains(err.Error(), "is unchanged") {
					t.Errorf("got %v, want %q and that the file is unchanged", err, tt.err)
				}
				if after, _ := os.ReadFile(store.Path); !bytes.Equal(before, after) {
					t.Error("a failed edit changed the encrypted file")
				}
			} else if err != nil {
				t.Fatal(err)
			}
			values, _, err := store.Load(ids)
			if err != nil || values["SECRET_KEY"] != "old" || values["GREETING"] != tt.want {
				t.Errorf("after the edit: %v, %v", values, err)
			}
			if left := leftovers(t, tmp); len(left) > 0 {
				t.Errorf("plain text left behind in TMPDIR: %v", left)
			}
			if m, err := os.ReadFile(modes); err == nil && string(m) != "600\n700\n" {
				t.Errorf("the plain text was in a file and folder of modes %q, want 600 and 700", m)
			}
		})
	}
}

// TestEditInterrupted sends Ctrl-C to a process editing secrets: it must
// remove the plain text and leave the encrypted file as it was.
func TestEditInterrupted(t *testing.T) {
	if os.Getenv("DJSHIP_EDIT_HELPER") != "" {
		store := Store{Path: os.Getenv("DJSHIP_EDIT_HELPER"), Recipients: []string{os.Getenv("DJSHIP_EDIT_RECIPIENT")}}
		ids, _ := Identities()
		if err := store.Edit(context.Background(), ids, `sh -c 'trap "" INT; touch "$1.editing"; sleep 3' editor`, nil, os.Stdout, os.Stderr); err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			os.Exit(1)
		}
		os.Exit(0)
	}
	id, recipient := ageKey(t)
	tmp := t.TempDir()
	store := Store{Path: filepath.Join(t.TempDir(), "s.secrets.age"), Recipients: []string{recipient}}
	if err := store.Set([]Identity{id}, "SECRET_KEY", "kept"); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(store.Path)
	cmd := exec.Command(os.Args[0], "-test.run=^TestEditInterrupted$")
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp, "DJSHIP_EDIT_HELPER="+store.Path, "DJSHIP_EDIT_RECIPIENT="+recipient,
		"DJSHIP_AGE_KEY="+id.Identity.(*age.X25519Identity).String(), "HOME="+t.TempDir())
	// Output goes to a file, so that Wait does not wait for the editor,
	// which ignores Ctrl-C as vi does.
	out, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		matches, _ := filepath.Glob(filepath.Join(tmp, "djship-secrets-*", "*.editing"))
		if len(matches) > 0 {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatal("the editor never started")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Ctrl-C reaches the whole foreground process group: djship and its editor.
	syscall.Kill(-cmd.Process.Pid, syscall.SIGINT)
	err = cmd.Wait()
	output, _ := os.ReadFile(out.Name())
	if status, ok := err.(*exec.ExitError); !ok || status.ExitCode() != 130 {
		t.Errorf("exit: %v, want 130\n%s", err, output)
	}
	if left := leftovers(t, tmp); len(left) > 0 {
		t.Errorf("plain text left behind after Ctrl-C: %v", left)
	}
	if after, _ := os.ReadFile(store.Path); !bytes.Equal(before, after) {
		t.Error("Ctrl-C changed the encrypted file")
	}
	if !strings.Contains(string(output), "is unchanged") {
		t.Errorf("the user is not told the file is unchanged: %s", output)
	}
}

// injection holds values that break naive escaping.
var injection = map[string]string{
	"DOUBLE":    `say "hi"`,
	"SINGLE":    `it's`,
	"TRIPLE":    `'''; import os; os.system("touch /tmp/djship-pwned"); '''`,
	"TRIPLE2":   `"""`,
	"BACKSLASH": `C:\new\table\` + `\`,
	"NEWLINES":  "line one\nline two\n\nend\n",
	"CRLF":      "a\r\nb",
	"NUL":       "before\x00after",
	"UNICODE":   "ünïcødé ✓ 日本 \u2028 \u2029 😀",
	"SHELL":     "${HOME} $(touch /tmp/djship-pwned) `id` $1 \\$",
	"HASH":      "value # not a comment",
	"EMPTY":     "",
	"SPACES":    "  padded  ",
	"EQUALS":    "a=b=c",
	"TAB":       "a\tb",
	"SEMICOLON": "x; rm -rf /",
}

func TestInjectionCorpusThroughPython(t *testing.T) {
	python := testenv.Command(t, "python3", "python3")
	data, err := PythonFile(injection)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "secrets.py")
	os.WriteFile(file, data, 0o600)
	names, _ := json.Marshal(slices.Sorted(maps.Keys(injection)))
	script := `import json, sys
d = {}
exec(open(sys.argv[1], encoding="utf-8").read(), d)
print(json.dumps({k: d[k] for k in json.loads(sys.argv[2])}))`
	out, err := exec.Command(python, "-c", script, file, string(names)).CombinedOutput()
	if err != nil {
		t.Fatalf("python3 could not read the secret file: %v\n%s\n%s", err, out, data)
	}
	var got map[string]string
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	for k, want := range injection {
		if got[k] != want {
			t.Errorf("%s came back as %q, want %q", k, got[k], want)
		}
	}
	if _, err := os.Stat("/tmp/djship-pwned"); err == nil {
		t.Error("a value ran code")
	}
}

func TestSecretsFileRoundTripsEveryValue(t *testing.T) {
	id, recipient := ageKey(t)
	store := Store{Path: filepath.Join(t.TempDir(), "s.age"), Recipients: []string{recipient}}
	for _, k := range slices.Sorted(maps.Keys(injection)) {
		if err := store.Set([]Identity{id}, k, injection[k]); err != nil {
			t.Fatalf("%s: %v", k, err)
		}
	}
	values, _, err := store.Load([]Identity{id})
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range injection {
		if values[k] != want {
			t.Errorf("%s came back as %q, want %q", k, values[k], want)
		}
	}
}

func TestParseProblems(t *testing.T) {
	_, err := Parse([]byte("SECRET_KEY: a\nSECRET_KEY: b\nclass: x\nbad-name: y\nLIST: [a, b]\n"))
	for _, want := range []string{"line 2: this name is written twice: keep one (first on line 1)", "line 3: a secret name is letters", "line 4: a secret name is letters", "line 5: the value must be text"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in %v", want, err)
		}
	}
}

func TestGuard(t *testing.T) {
	testenv.Command(t, "git", "git")
	root := t.TempDir()
	run := func(args ...string) {
		cmd := exec.Command("git", args...)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	run("init", "-q")
	os.MkdirAll(filepath.Join(root, "sites"), 0o755)
	os.WriteFile(filepath.Join(root, "sites", "shop.production.secrets.age"), []byte("encrypted"), 0o644)
	run("add", "-A")
	if err := Guard(root); err != nil {
		t.Errorf("an encrypted file was refused: %v", err)
	}
	os.WriteFile(filepath.Join(root, "sites", "shop.production.secrets.yaml"), []byte("SECRET_KEY: x"), 0o644)
	if err := Guard(root); err != nil {
		t.Errorf("an untracked file was refused: %v", err)
	}
	run("add", "-A")
	err := Guard(root)
	if err == nil || !strings.Contains(err.Error(), "sites/shop.production.secrets.yaml") || !strings.Contains(err.Error(), "mage secrets:edit") {
		t.Errorf("a tracked plaintext file: %v", err)
	}
}
