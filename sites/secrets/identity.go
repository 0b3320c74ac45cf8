package secrets

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"filippo.io/age"
	"filippo.io/age/agessh"
	"golang.org/x/crypto/ssh"
	"golang.org/x/term"
)

// Identity is a key that may open secrets files, with where it came from.
type Identity struct {
	age.Identity
	// Source names the variable or file it came from.
	Source string
	// Public is its public key (age1… or an SSH public key line) when
	// known: it tells, without any passphrase, which files it can open.
	Public string
}

// PublicKey is the identity's public key in the canonical form of
// CanonicalRecipient, or "" when it cannot be known without a
// passphrase.
func (id Identity) PublicKey() string {
	if id.Public != "" {
		if c, err := CanonicalRecipient(id.Public); err == nil {
			return c
		}
	}
	if x, ok := id.Identity.(*age.X25519Identity); ok {
		return x.Recipient().String()
	}
	return ""
}

// Opens reports whether the identity can open a file encrypted for
// recipient. It compares public keys; a plain SSH key of unknown public
// key is tried on a throwaway file key. It never asks for a passphrase.
func (id Identity) Opens(recipient string) bool {
	want, err := CanonicalRecipient(recipient)
	if err != nil {
		return false
	}
	if pub := id.PublicKey(); pub != "" {
		return pub == want
	}
	switch id.Identity.(type) {
	case *agessh.Ed25519Identity, *agessh.RSAIdentity:
		r, err := ParseRecipient(recipient)
		if err != nil {
			return false
		}
		key := make([]byte, 16)
		if _, err := rand.Read(key); err != nil {
			return false
		}
		stanzas, err := r.Wrap(key)
		if err != nil {
			return false
		}
		got, err := id.Identity.Unwrap(stanzas)
		return err == nil && bytes.Equal(got, key)
	}
	return false
}

// CanonicalRecipient writes a recipient so that two spellings of one key
// compare equal: an age key as age writes it, an SSH key as its type and
// key without the comment.
func CanonicalRecipient(s string) (string, error) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "ssh-") {
		pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(s))
		if err != nil {
			return "", fmt.Errorf("recipient %q: %w", short(s), err)
		}
		return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub))), nil
	}
	r, err := ParseRecipient(s)
	if err != nil {
		return "", err
	}
	if x, ok := r.(*age.X25519Recipient); ok {
		return x.String(), nil
	}
	return s, nil
}

// describeRecipient shows a public key as a person compares it: an age
// key whole, an SSH key as its type, SHA256 fingerprint and comment, as
// ssh-keygen -l shows them.
func describeRecipient(s string) string {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "ssh-") {
		pub, comment, _, _, err := ssh.ParseAuthorizedKey([]byte(s))
		if err != nil {
			return short(s)
		}
		out := pub.Type() + " " + ssh.FingerprintSHA256(pub)
		if comment != "" {
			out += " " + comment
		}
		return out
	}
	if len(s) > 80 {
		return short(s)
	}
	return s
}

func describeRecipients(list []string) string {
	shown := make([]string, len(list))
	for i, r := range list {
		shown[i] = describeRecipient(r)
	}
	return strings.Join(shown, ", ")
}

// Identities gathers the keys that may open secrets files, in this
// order: DJSHIP_AGE_KEY (the key itself, as CI passes it),
// DJSHIP_AGE_IDENTITY (a file), ~/.config/djship/identity, then the
// user's SSH keys ~/.ssh/id_ed25519 and ~/.ssh/id_rsa.
func Identities() ([]Identity, error) {
	var out []Identity
	if key := os.Getenv("DJSHIP_AGE_KEY"); key != "" {
		ids, err := parseIdentities([]byte(key), "", "DJSHIP_AGE_KEY")
		if err != nil {
			return nil, fmt.Errorf("DJSHIP_AGE_KEY: %w", err)
		}
		out = append(out, ids...)
	}
	if file := os.Getenv("DJSHIP_AGE_IDENTITY"); file != "" {
		ids, err := identityFile(file)
		if err != nil {
			return nil, fmt.Errorf("DJSHIP_AGE_IDENTITY: %w", err)
		}
		out = append(out, ids...)
	}
	home, _ := os.UserHomeDir()
	for _, file := range []string{
		filepath.Join(home, ".config", "djship", "identity"),
		filepath.Join(home, ".ssh", "id_ed25519"),
		filepath.Join(home, ".ssh", "id_rsa"),
	} {
		if _, err := os.Stat(file); err != nil {
			continue
		}
		ids, err := identityFile(file)
		if err != nil {
			return nil, err
		}
		out = append(out, ids...)
	}
	return out, nil
}

func identityFile(file string) ([]Identity, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	ids, err := parseIdentities(data, file, file)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return ids, nil
}

// parseIdentities reads age identities or one SSH private key. An
// encrypted SSH key needs its .pub beside it and asks for its passphrase
// only when it is tried.
func parseIdentities(data []byte, file, source string) ([]Identity, error) {
	if bytes.Contains(data, []byte("AGE-SECRET-KEY-")) {
		ids, err := age.ParseIdentities(bytes.NewReader(data))
		if err != nil {
			return nil, err
		}
		out := make([]Identity, len(ids))
		for i, id := range ids {
			out[i] = Identity{Identity: id, Source: source}
			if x, ok := id.(*age.X25519Identity); ok {
				out[i].Public = x.Recipient().String()
			}
		}
		return out, nil
	}
	if !bytes.Contains(data, []byte("PRIVATE KEY")) {
		return nil, errors.New("neither an age identity (AGE-SECRET-KEY-…) nor an SSH private key")
	}
	id, err := agessh.ParseIdentity(data)
	var public ssh.PublicKey
	if err == nil {
		if signer, serr := ssh.ParsePrivateKey(data); serr == nil {
			public = signer.PublicKey()
		}
	}
	var missing *ssh.PassphraseMissingError
	if errors.As(err, &missing) {
		pub := missing.PublicKey
		if pub == nil && file != "" {
			if raw, rerr := os.ReadFile(file + ".pub"); rerr == nil {
				pub, _, _, _, _ = ssh.ParseAuthorizedKey(raw)
			}
		}
		if pub == nil {
			return nil, errors.New("an encrypted SSH key without its .pub beside it")
		}
		public = pub
		id, err = agessh.NewEncryptedSSHIdentity(pub, data, func() ([]byte, error) { return readPassphrase(source) })
	}
	if err != nil {
		return nil, err
	}
	out := Identity{Identity: id, Source: source}
	if public != nil {
		out.Public = strings.TrimSpace(string(ssh.MarshalAuthorizedKey(public)))
	}
	return []Identity{out}, nil
}

// readPassphrase asks for an SSH key's passphrase; tests replace it.
var readPassphrase = passphrase

// passphrase asks for an SSH key's passphrase on the terminal.
func passphrase(source string) ([]byte, error) {
	fd := int(os.Stdin.Fd())
	if !term.IsTerminal(fd) {
		return nil, fmt.Errorf("%s is encrypted and there is no terminal to ask for its passphrase", source)
	}
	fmt.Fprintf(os.Stderr, "Passphrase for %s: ", source)
	defer fmt.Fprintln(os.Stderr)
	return term.ReadPassword(fd)
}
