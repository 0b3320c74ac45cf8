package targets

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"
	"github.com/djship/djship/sites/secrets"
)

func TestLoadSecrets(t *testing.T) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("HOME", t.TempDir())
	t.Setenv("DJSHIP_AGE_KEY", id.String())
	t.Setenv("DJSHIP_AGE_IDENTITY", "")
	site, _ := project(t, "secrets: {keys: [SECRET_KEY, GREETING], recipients: ["+id.Recipient().String()+"]}\n")
	// No file yet: everything required is missing.
	if _, err := LoadSecrets(site, "production"); err == nil || !strings.Contains(err.Error(), "lack GREETING (secrets.keys), SECRET_KEY (secrets.keys)") {
		t.Errorf("no secrets file: %v", err)
	}
	store := SecretStore(site, site.Environments["production"])
	ids := []secrets.Identity{{Identity: id, Source: "test"}}
	if err := store.Set(ids, "SECRET_KEY", "s3cret-value"); err != nil {
		t.Fatal(err)
	}
	_, err = LoadSecrets(site, "production")
	if err == nil || !strings.Contains(err.Error(), "lack GREETING (secrets.keys)") || !strings.Contains(err.Error(), "mage secrets:set production NAME") {
		t.Errorf("a missing key: %v", err)
	}
	store.Set(ids, "GREETING", "hello")
	values, err := LoadSecrets(site, "production")
	if err != nil || values["SECRET_KEY"] != "s3cret-value" || values["GREETING"] != "hello" {
		t.Errorf("got %v, %v", values, err)
	}
	if want := filepath.Join(site.Root, "sites", "shop.production.secrets.age"); store.Path != want {
		t.Errorf("secrets file %s, want %s", store.Path, want)
	}
	// A secrets file this machine cannot open is an error, never an empty
	// set of secrets that provision would write over the host's.
	other, _ := age.GenerateX25519Identity()
	t.Setenv("DJSHIP_AGE_KEY", other.String())
	site.Environments["production"].Hosts[0].Settings.Secrets.Keys = nil
	if _, err := LoadSecrets(site, "production"); err == nil || !strings.Contains(err.Error(), "none of your identities") {
		t.Errorf("an unreadable secrets file: %v", err)
	}
	t.Setenv("DJSHIP_AGE_KEY", id.String())

	// A release never carries the secrets: not the encrypted file, not a
	// plaintext copy someone left in the source, nothing in dist/.
	src := site.Path(site.Settings.Source.Path)
	encrypted, _ := os.ReadFile(store.Path)
	os.WriteFile(filepath.Join(src, "shop.production.secrets.age"), encrypted, 0o644)
	os.WriteFile(filepath.Join(src, "secrets.py"), []byte("SECRET_KEY = 's3cret-value'\n"), 0o600)
	a, err := buildRelease(t, site, nil)
	if err != nil {
		t.Fatal(err)
	}
	filepath.Walk(filepath.Join(site.Root, "dist"), func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			data, _ := os.ReadFile(p)
			if strings.Contains(string(data), "s3cret-value") {
				t.Errorf("%s holds a secret", p)
			}
		}
		return nil
	})
	for name := range readTarball(t, a.Path) {
		if strings.Contains(name, "secrets") {
			t.Errorf("the tarball holds %s", name)
		}
	}
}

func TestCertificateFileHoldsNoPrivateKey(t *testing.T) {
	cert := "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUK2Ew\n-----END CERTIFICATE-----\n"
	key := "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n-----END PRIVATE KEY-----\n"
	tests := []struct {
		name, data, want string
	}{
		{"certificate", cert, ""},
		{"chain", cert + cert, ""},
		{"certificate with its key", cert + key, "holds a private key"},
		{"key only", key, "holds a private key"},
		{"no PEM", "hello", "holds no PEM certificate"},
	}
	for _, tt := range tests {
		err := checkCertificate("certs/site.pem", []byte(tt.data))
		if (tt.want == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want %q", tt.name, err, tt.want)
		}
		if err != nil && strings.Contains(err.Error(), "MIG") {
			t.Errorf("%s: the error shows the file's content: %v", tt.name, err)
		}
	}
}
