package secrets

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

// encryptedSSHKey writes a passphrase-protected ed25519 key and its .pub
// into a folder and returns the key file and the public key line.
func encryptedSSHKey(t *testing.T) (string, string) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKeyWithPassphrase(priv, "", []byte("the passphrase"))
	if err != nil {
		t.Fatal(err)
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sshPub)))
	file := filepath.Join(t.TempDir(), "id_ed25519")
	if err := os.WriteFile(file, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file+".pub", []byte(line+" someone@laptop\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return file, line
}

// fingerprint is how errors show an SSH public key, as ssh-keygen -l does.
func fingerprint(t *testing.T, line string) string {
	t.Helper()
	pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	return ssh.FingerprintSHA256(pub)
}

// TestSaveRefusesRecipientsThatLockYouOut: every way of saving (set, edit,
// re-encrypt) refuses to encrypt for a list that none of the identities
// held could open, says who is on the list and what is held, and leaves
// the file as it was; a list that still holds one of them is accepted,
// checked by public key without asking for any passphrase.
func TestSaveRefusesRecipientsThatLockYouOut(t *testing.T) {
	t.Setenv("DJSHIP_SECRETS_FORCE", "")
	ageID, ageRecipient := ageKey(t)
	_, otherRecipient := ageKey(t)
	edPEM, edPub := sshKeyPair(t, "ed25519")
	edIDs, err := parseIdentities(edPEM, "", "my ed25519 key")
	if err != nil {
		t.Fatal(err)
	}
	rsaPEM, rsaPub := sshKeyPair(t, "rsa")
	rsaIDs, err := parseIdentities(rsaPEM, "", "my rsa key")
	if err != nil {
		t.Fatal(err)
	}
	encFile, encPub := encryptedSSHKey(t)
	encData, _ := os.ReadFile(encFile)
	encIDs, err := parseIdentities(encData, encFile, encFile)
	if err != nil {
		t.Fatal(err)
	}
	_, otherSSH := sshKeyPair(t, "ed25519")
	// An identity made without its public key: tried on a throwaway key.
	bare := []Identity{{Identity: edIDs[0].Identity, Source: "bare ed25519 key"}}
	// Checking never asks for a passphrase; opening the file with the age
	// key needs none either.
	readPassphrase = func(source string) ([]byte, error) {
		t.Errorf("asked for the passphrase of %s", source)
		return nil, errors.New("no passphrase in this test")
	}
	t.Cleanup(func() { readPassphrase = passphrase })

	saves := []struct {
		name string
		save func(Store, []Identity) error
	}{
		{"set", func(s Store, ids []Identity) error { return s.Set(ids, "NEW", "value") }},
		{"edit", func(s Store, ids []Identity) error {
			return s.Edit(context.Background(), ids, `sh -c 'printf "NEW: value\n" >> "$1"' editor`, nil, io.Discard, io.Discard)
		}},
		{"reencrypt", func(s Store, ids []Identity) error { return s.Reencrypt(ids) }},
	}
	lists := []struct {
		name       string
		held       []Identity // besides the age key that opens the file today
		recipients []string
		force      bool
		refused    bool
		wantInErr  []string
	}{
		{"only someone else", nil, []string{otherRecipient}, false, true,
			[]string{otherRecipient, "test age key (" + ageRecipient + ")", "-force=true", "DJSHIP_SECRETS_FORCE=1"}},
		{"someone else's SSH key", edIDs, []string{otherSSH}, false, true,
			[]string{fingerprint(t, otherSSH), "my ed25519 key (ssh-ed25519 " + fingerprint(t, edPub)}},
		{"still my age key", nil, []string{otherRecipient, ageRecipient}, false, false, nil},
		{"my ed25519 key, another comment", edIDs, []string{otherRecipient, edPub + " me@work"}, false, false, nil},
		{"my rsa key", rsaIDs, []string{rsaPub}, false, false, nil},
		{"my encrypted SSH key, known by its .pub", encIDs, []string{encPub}, false, false, nil},
		{"not my encrypted SSH key", encIDs, []string{otherSSH}, false, true, []string{encFile + " (ssh-ed25519 " + fingerprint(t, encPub)}},
		{"my ed25519 key, its public key not recorded", bare, []string{edPub}, false, false, nil},
		{"not my ed25519 key, its public key not recorded", bare, []string{otherSSH}, false, true, []string{"bare ed25519 key (its public key is unknown)"}},
		{"only someone else, forced", nil, []string{otherRecipient}, true, false, nil},
	}
	for _, save := range saves {
		for _, list := range lists {
			t.Run(save.name+"/"+list.name, func(t *testing.T) {
				t.Setenv("TMPDIR", t.TempDir())
				store := Store{Path: filepath.Join(t.TempDir(), "s.production.secrets.age"), Recipients: []string{ageRecipient}}
				if err := store.Set([]Identity{ageID}, "SECRET_KEY", "kept"); err != nil {
					t.Fatal(err)
				}
				before, _ := os.ReadFile(store.Path)
				store.Recipients, store.Force = list.recipients, list.force
				ids := append([]Identity{ageID}, list.held...)
				err := save.save(store, ids)
				after, _ := os.ReadFile(store.Path)
				if !list.refused {
					if err != nil {
						t.Fatalf("refused: %v", err)
					}
					if bytes.Equal(before, after) {
						t.Error("the file was not encrypted again")
					}
					if list.force {
						if _, _, err := store.Load(ids); err == nil {
							t.Error("forced for someone else, yet I can still open it")
						}
					}
					return
				}
				if err == nil {
					t.Fatal("encrypted for recipients none of my identities can open: I am locked out")
				}
				for _, want := range append([]string{"none of the identities you hold"}, list.wantInErr...) {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("the error does not say %q:\n%v", want, err)
					}
				}
				if !bytes.Equal(before, after) {
					t.Error("a refused save changed the encrypted file")
				}
				if v, _, err := store.Load([]Identity{ageID}); err != nil || v["SECRET_KEY"] != "kept" {
					t.Errorf("after the refusal I cannot read my secrets: %v %v", v, err)
				}
			})
		}
	}
}
