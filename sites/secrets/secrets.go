// Package secrets keeps a site's secret values encrypted with age in the
// repository, one file per environment (sites/<site>.<env>.secrets.age),
// and renders them for the host. Plain text exists only in memory, and
// for the length of an edit in a private temporary file.
package secrets

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"unicode/utf8"

	"filippo.io/age"
	"filippo.io/age/agessh"
	"filippo.io/age/armor"
	"github.com/djship/djship/internal/fileutil"
	"go.yaml.in/yaml/v3"
)

// FileName is the encrypted secrets file of a site's environment, in the
// folder of the site file.
func FileName(siteFile, env string) string {
	site := strings.TrimSuffix(filepath.Base(siteFile), filepath.Ext(siteFile))
	return filepath.Join(filepath.Dir(siteFile), site+"."+env+".secrets.age")
}

// ParseRecipients reads age recipients (age1…) and SSH public keys
// (ssh-ed25519, ssh-rsa).
func ParseRecipients(list []string) ([]age.Recipient, error) {
	if len(list) == 0 {
		return nil, errors.New("no recipients: list the age or SSH public keys of everyone who may read the secrets under secrets.recipients in the site file")
	}
	var out []age.Recipient
	for _, s := range list {
		r, err := ParseRecipient(s)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// ParseRecipient reads one age recipient or SSH public key.
func ParseRecipient(s string) (age.Recipient, error) {
	s = strings.TrimSpace(s)
	switch {
	case strings.HasPrefix(s, "age1"):
		r, err := age.ParseX25519Recipient(s)
		if err != nil {
			return nil, fmt.Errorf("recipient %q: %w", short(s), err)
		}
		return r, nil
	case strings.HasPrefix(s, "ssh-"):
		r, err := agessh.ParseRecipient(s)
		if err != nil {
			return nil, fmt.Errorf("recipient %q: %w", short(s), err)
		}
		return r, nil
	}
	return nil, fmt.Errorf("recipient %q is neither an age public key (age1…) nor an SSH public key (ssh-ed25519 …, ssh-rsa …)", short(s))
}

func short(s string) string {
	if len(s) > 40 {
		return s[:37] + "…"
	}
	return s
}

// Encrypt writes plaintext to path encrypted (and ASCII-armoured) for the
// recipients, atomically: a reader never sees half a file.
func Encrypt(path string, plaintext []byte, recipients []age.Recipient) error {
	var buf bytes.Buffer
	aw := armor.NewWriter(&buf)
	w, err := age.Encrypt(aw, recipients...)
	if err != nil {
		return fmt.Errorf("encrypt %s: %w", path, err)
	}
	if _, err := w.Write(plaintext); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	if err := aw.Close(); err != nil {
		return err
	}
	if err := fileutil.WriteAtomic(path, 0o644, func(w io.Writer) error {
		_, err := w.Write(buf.Bytes())
		return err
	}); err != nil {
		return fmt.Errorf("encrypt %s: %w", path, err)
	}
	return nil
}

// Decrypt reads an encrypted secrets file with the first identity that
// matches. recipients, the ones the site file lists, go into the error
// when none does.
func Decrypt(path string, identities []Identity, recipients []string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read secrets: %w", err)
	}
	defer f.Close()
	ids := make([]age.Identity, len(identities))
	for i, id := range identities {
		ids[i] = id.Identity
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("decrypt %s: no identity found: set DJSHIP_AGE_IDENTITY to an age identity file, DJSHIP_AGE_KEY to the key itself (in CI), or keep one in ~/.config/djship/identity or ~/.ssh/id_ed25519", path)
	}
	r, err := age.Decrypt(armor.NewReader(f), ids...)
	if err != nil {
		var none *age.NoIdentityMatchError
		if errors.As(err, &none) {
			names := make([]string, len(identities))
			for i, id := range identities {
				names[i] = id.Source
			}
			listed := "secrets.recipients lists none"
			if len(recipients) > 0 {
				shown := make([]string, len(recipients))
				for i, r := range recipients {
					shown[i] = short(r)
				}
				listed = "it is encrypted for the recipients in secrets.recipients: " + strings.Join(shown, ", ")
			}
			return nil, fmt.Errorf("decrypt %s: none of your identities (%s) can open it; %s. Ask someone who can to add your public key there and run mage secrets:recipients", path, strings.Join(names, ", "), listed)
		}
		return nil, fmt.Errorf("decrypt %s: %w", path, err)
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("decrypt %s: %w", path, err)
	}
	return data, nil
}

var nameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// pythonKeywords cannot be assigned to in the secret file.
var pythonKeywords = map[string]bool{
	"False": true, "None": true, "True": true, "and": true, "as": true, "assert": true, "async": true, "await": true,
	"break": true, "class": true, "continue": true, "def": true, "del": true, "elif": true, "else": true, "except": true,
	"finally": true, "for": true, "from": true, "global": true, "if": true, "import": true, "in": true, "is": true,
	"lambda": true, "nonlocal": true, "not": true, "or": true, "pass": true, "raise": true, "return": true, "try": true,
	"while": true, "with": true, "yield": true,
}

// CheckName reports a secret name that cannot be both a Python variable
// and an environment variable.
func CheckName(name string) error {
	if !nameRE.MatchString(name) || pythonKeywords[name] {
		return fmt.Errorf("secret name %q: use letters, digits and _ (such as SECRET_KEY), not a Python keyword", name)
	}
	return nil
}

// Parse reads the plain text of a secrets file: a YAML mapping of names
// to text values.
func Parse(plaintext []byte) (map[string]string, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(plaintext, &doc); err != nil {
		return nil, fmt.Errorf("the secrets are not valid YAML: %w", err)
	}
	values := map[string]string{}
	if len(doc.Content) == 0 {
		return values, nil
	}
	top := doc.Content[0]
	if top.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("line %d: the secrets must be a mapping of NAME: value", top.Line)
	}
	var problems []string
	for i := 0; i < len(top.Content); i += 2 {
		k, v := top.Content[i], top.Content[i+1]
		if err := CheckName(k.Value); err != nil {
			problems = append(problems, fmt.Sprintf("line %d: %v", k.Line, err))
			continue
		}
		if _, dup := values[k.Value]; dup {
			problems = append(problems, fmt.Sprintf("line %d: %s is written twice", k.Line, k.Value))
			continue
		}
		if v.Kind != yaml.ScalarNode {
			problems = append(problems, fmt.Sprintf("line %d: %s must be a text value", v.Line, k.Value))
			continue
		}
		if !utf8.ValidString(v.Value) {
			problems = append(problems, fmt.Sprintf("line %d: %s is not valid UTF-8", v.Line, k.Value))
			continue
		}
		values[k.Value] = v.Value
	}
	if len(problems) > 0 {
		return nil, errors.New(strings.Join(problems, "\n"))
	}
	return values, nil
}

// Format writes values as the YAML a person edits.
func Format(values map[string]string) []byte {
	var b bytes.Buffer
	b.WriteString("# djship secrets: NAME: value, one per line (a | block for multi-line values).\n")
	names := make([]string, 0, len(values))
	for k := range values {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		out, _ := yaml.Marshal(map[string]string{k: values[k]})
		b.Write(out)
	}
	return b.Bytes()
}
