package secrets

import (
	"bytes"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"
	"filippo.io/age/armor"
)

// marker is the content of every file of the corpus: a secret that must
// never show in an error. It is a valid secret name, so that it can also
// stand as a key.
const marker = "ZQ7_MARKER_X9"

// armoured wraps data in age's ASCII armour, 64 columns a line.
func armoured(data string) string {
	enc := base64.StdEncoding.EncodeToString([]byte(data))
	var b strings.Builder
	b.WriteString(armor.Header + "\n")
	for len(enc) > 64 {
		b.WriteString(enc[:64] + "\n")
		enc = enc[64:]
	}
	b.WriteString(enc + "\n" + armor.Footer + "\n")
	return b.String()
}

// TestErrorsNeverShowFileContent opens a corpus of damaged, mistaken and
// invalid secrets files whose content holds a marker value, in every
// shape: plain text where the encrypted file should be, a YAML mapping,
// broken and truncated armour, binary, tampered ciphertext, and encrypted
// text that is not a valid secrets mapping. No error may show the marker;
// each must still say what is wrong.
func TestErrorsNeverShowFileContent(t *testing.T) {
	id, recipient := ageKey(t)
	r, err := age.ParseX25519Recipient(recipient)
	if err != nil {
		t.Fatal(err)
	}
	encrypted := func(plaintext string) string {
		t.Helper()
		file := filepath.Join(t.TempDir(), "enc.age")
		if err := Encrypt(file, []byte(plaintext), []age.Recipient{r}); err != nil {
			t.Fatal(err)
		}
		data, _ := os.ReadFile(file)
		return string(data)
	}
	good := encrypted("SECRET_KEY: " + marker + "\n" + strings.Repeat("PADDING: "+marker+"\n", 20))
	lines := strings.Split(good, "\n")
	tampered := strings.Join(lines[:3], "\n") + "\n" + strings.Map(func(r rune) rune {
		if r == 'A' {
			return 'B'
		}
		return 'A'
	}, lines[3]) + "\n" + strings.Join(lines[4:], "\n")

	// Files on disk where the encrypted secrets should be.
	files := []struct{ name, content, want string }{
		{"plain text", marker + "\n", "not an age-encrypted file"},
		{"plain text without newline", marker, "not an age-encrypted file"},
		{"plain YAML mapping", "SECRET_KEY: " + marker + "\nOTHER: x\n", "not an age-encrypted file"},
		{"plain text after blank lines", "\n\n   " + marker + "\n", "not an age-encrypted file"},
		{"binary", "\x00\x01\xfe\xff" + marker + "\x00\n", "not an age-encrypted file"},
		{"armour header, then plain text", armor.Header + "\n" + marker + "\n" + armor.Footer + "\n", "damaged"},
		{"armour header, then plain YAML", armor.Header + "\nSECRET_KEY: " + marker + "\n", "damaged"},
		{"armour with plain text as closing line", armor.Header + "\n" + base64.StdEncoding.EncodeToString([]byte("short")) + "\n" + marker + "\n", "damaged"},
		{"armour around plain text", armoured("SECRET_KEY: " + marker + "\n"), "damaged"},
		{"armour around an age header holding the text", armoured("age-encryption.org/v1\n-> " + marker + "\n--- " + marker + "\n"), "damaged"},
		{"armour around a broken stanza", armoured("age-encryption.org/v1\n-> X25519 " + marker + "\n" + marker + "\n--- x\n"), "damaged"},
		{"armour, then plain text after it", good + marker + "\n", "damaged"},
		{"truncated armour", good[:len(good)/2], "damaged"},
		{"truncated armour of plain text", armor.Header + "\n" + base64.StdEncoding.EncodeToString([]byte(strings.Repeat(marker, 4)))[:64] + "\n", "damaged"},
		{"tampered ciphertext", tampered, "damaged"},
		{"empty", "", "empty"},
		// Encrypted as it should be, but what it holds is not a mapping of
		// secrets.
		{"encrypted invalid YAML", encrypted("SECRET_KEY: [" + marker + "\n"), "line 1"},
		{"encrypted unknown alias", encrypted("SECRET_KEY: *" + marker + "\n"), "alias"},
		{"encrypted unclosed tag", encrypted("SECRET_KEY: !<" + marker + " x\n"), "not valid YAML"},
		{"encrypted tab", encrypted("SECRET_KEY:\n\t" + marker + "\n"), "line 2"},
		{"encrypted bad name", encrypted(marker + "-x: value\n"), "line 1"},
		{"encrypted name written twice", encrypted(marker + ": a\n" + marker + ": b\n"), "line 2"},
		{"encrypted not a mapping", encrypted("- " + marker + "\n"), "line 1"},
		{"encrypted plain text", encrypted(marker + "\n"), "line 1"},
		{"encrypted list value", encrypted("SECRET_KEY: [" + marker + "]\n"), "line 1"},
		{"encrypted invalid UTF-8", encrypted("SECRET_KEY: \xff" + marker + "\n"), ""},
	}
	for _, f := range files {
		t.Run(f.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "shop.production.secrets.age")
			if err := os.WriteFile(path, []byte(f.content), 0o644); err != nil {
				t.Fatal(err)
			}
			store := Store{Path: path, Recipients: []string{recipient}}
			_, _, err := store.Load([]Identity{id})
			if err == nil {
				t.Fatal("no error")
			}
			if strings.Contains(err.Error(), "MARKER") {
				t.Errorf("the error shows the file's content:\n%v", err)
			}
			if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), f.want) {
				t.Errorf("the error should name %s and say %q:\n%v", path, f.want, err)
			}
			// Someone else's key meets the same file: still nothing of it.
			other, _ := ageKey(t)
			if _, _, err := store.Load([]Identity{other}); err == nil || strings.Contains(err.Error(), "MARKER") {
				t.Errorf("with another key: %v", err)
			}
		})
	}

	// The plain text a person types: Parse never repeats it either.
	texts := []string{
		marker, "SECRET_KEY: [" + marker, "SECRET_KEY: *" + marker, "SECRET_KEY: &" + marker + " x\nB: *" + marker + "x",
		"SECRET_KEY: !<" + marker, marker + "-x: v", marker + ": a\n" + marker + ": b", "- " + marker,
		"SECRET_KEY: [" + marker + "]", "SECRET_KEY: {" + marker + ": x}", "SECRET_KEY: \xff" + marker,
		"SECRET_KEY: \"" + marker, "SECRET_KEY: '" + marker, marker + ":\n  - x", "? [" + marker + "]\n: x",
		"%" + marker + "\n---\nA: b", "SECRET_KEY: a\n " + marker + ": b", "\x00" + marker,
	}
	for _, text := range texts {
		_, err := Parse([]byte(text))
		if err == nil {
			t.Errorf("Parse(%q) gave no error", text)
			continue
		}
		if bytes.Contains([]byte(err.Error()), []byte("MARKER")) {
			t.Errorf("Parse(%q): the error shows the text:\n%v", text, err)
		}
	}
}
