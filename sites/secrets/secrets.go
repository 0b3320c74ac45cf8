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
	"strconv"
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

// ErrNotEncrypted is the error of a secrets file that is not an
// age-encrypted file in ASCII armour at all: plain text, binary, or an
// age file written without --armor.
var ErrNotEncrypted = errors.New("not an age-encrypted file in ASCII armour")

// ErrDamaged is the error of a secrets file that begins as an
// ASCII-armoured age file but cannot be read to its end: truncated,
// altered, or not written by age.
var ErrDamaged = errors.New("the encrypted file is damaged")

// Decrypt reads an encrypted secrets file with the first identity that
// matches. recipients, the ones the site file lists, go into the error
// when none does. No error holds any of the file's content, which may be
// a secret in plain text: age's own messages quote the lines they could
// not read, so only the kind of failure is reported.
func Decrypt(path string, identities []Identity, recipients []string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read secrets: %w", err)
	}
	if len(identities) == 0 {
		return nil, fmt.Errorf("decrypt %s: no identity found: set DJSHIP_AGE_IDENTITY to an age identity file, DJSHIP_AGE_KEY to the key itself (in CI), or keep one in ~/.config/djship/identity or ~/.ssh/id_ed25519", path)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, fmt.Errorf("decrypt %s: the file is empty, %w. Remove it (a missing file holds no secrets) and put the values in with mage secrets:edit <env>", path, ErrNotEncrypted)
	}
	if first, _, _ := strings.Cut(strings.TrimLeft(string(data), " \t\r\n"), "\n"); strings.TrimSuffix(first, "\r") != armor.Header {
		return nil, fmt.Errorf("decrypt %s: %w: its first line is not %s. If it holds secrets in plain text, move it out of the repository, put the values in with mage secrets:edit <env>, and change every value that git has seen", path, ErrNotEncrypted, armor.Header)
	}
	r, err := age.Decrypt(armor.NewReader(bytes.NewReader(data)), sourced(identities)...)
	if err != nil {
		var none *age.NoIdentityMatchError
		var idErr *identityError
		switch {
		case errors.As(err, &none):
			names := make([]string, len(identities))
			for i, id := range identities {
				names[i] = id.Source
			}
			listed := "secrets.recipients lists none"
			if len(recipients) > 0 {
				listed = "it is encrypted for the recipients in secrets.recipients: " + describeRecipients(recipients)
			}
			return nil, fmt.Errorf("decrypt %s: none of your identities (%s) can open it; %s. Ask someone who can to add your public key there and run mage secrets:recipients", path, strings.Join(names, ", "), listed)
		case errors.As(err, &idErr):
			return nil, fmt.Errorf("decrypt %s with %s: %w", path, idErr.source, idErr.err)
		}
		return nil, damaged(path)
	}
	plaintext, err := io.ReadAll(r)
	if err != nil {
		return nil, damaged(path)
	}
	return plaintext, nil
}

func damaged(path string) error {
	return fmt.Errorf("decrypt %s: %w: it begins as an age file in ASCII armour but cannot be read to its end (truncated, altered, or not written by age). Restore it from git (git checkout -- %s) or from whoever wrote it last", path, ErrDamaged, path)
}

// identityError is an identity's own failure (such as a wrong passphrase),
// with where the identity came from.
type identityError struct {
	source string
	err    error
}

func (e *identityError) Error() string { return e.source + ": " + e.err.Error() }
func (e *identityError) Unwrap() error { return e.err }

// sourcedIdentity marks an identity's failures with its source, so that
// they can be told from failures to read the file.
type sourcedIdentity struct {
	age.Identity
	source string
}

func (s sourcedIdentity) Unwrap(stanzas []*age.Stanza) ([]byte, error) {
	key, err := s.Identity.Unwrap(stanzas)
	if err != nil && !errors.Is(err, age.ErrIncorrectIdentity) {
		return nil, &identityError{source: s.source, err: err}
	}
	return key, err
}

// sourced wraps the identities for age.Decrypt, the ones that need no
// passphrase first, as age itself orders them: an encrypted SSH key asks
// only when no other key opens the file.
func sourced(identities []Identity) []age.Identity {
	var native, other []age.Identity
	for _, id := range identities {
		switch id.Identity.(type) {
		case *age.X25519Identity, *age.HybridIdentity, *age.ScryptIdentity:
			native = append(native, sourcedIdentity{id.Identity, id.Source})
		default:
			other = append(other, sourcedIdentity{id.Identity, id.Source})
		}
	}
	return append(native, other...)
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

// Problem is one thing wrong with the plain text of a secrets file. It
// never quotes the text, which holds secrets: it names a line and says
// what is wrong there.
type Problem struct {
	// Line is the line of the text, from 1; 0 when unknown.
	Line int
	// Text says what is wrong.
	Text string
	// first is the line where a name written twice is first, or 0.
	first int
}

// ParseError lists every problem of the plain text of a secrets file.
type ParseError struct {
	Problems []Problem
}

func (e *ParseError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

func (p Problem) String() string {
	text := p.Text
	if p.first > 0 {
		text = fmt.Sprintf("%s (first on line %d)", text, p.first)
	}
	if p.Line > 0 {
		return fmt.Sprintf("line %d: %s", p.Line, text)
	}
	return text
}

// shift moves the problem's lines down by n, for text shown below n
// other lines.
func (p Problem) shift(n int) Problem {
	if p.Line > 0 {
		p.Line += n
	}
	if p.first > 0 {
		p.first += n
	}
	return p
}

var (
	yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)
	// Anchor names come from the text.
	yamlAnchor = regexp.MustCompile(`^yaml: (unknown )?anchor '(.*)' (referenced|value contains itself)$`)
	// yaml's scanner and parser write fixed messages that quote single
	// punctuation marks (expected ',' or ']'); anything longer in quotes
	// is left out all the same.
	yamlQuoted = regexp.MustCompile(`'[^' ]{2,}'|"[^"]*"|` + "`[^`]*`")
)

// yamlParserProblems are the problems of yaml's parser, whose line it
// counts from 0 (its scanner counts from 1).
var yamlParserProblems = map[string]bool{
	"did not find expected ',' or ']'": true, "did not find expected ',' or '}'": true,
	"did not find expected '-' indicator": true, "did not find expected <document start>": true,
	"did not find expected <stream-start>": true, "did not find expected key": true,
	"did not find expected node content": true, "found duplicate %TAG directive": true,
	"found duplicate %YAML directive": true, "found incompatible YAML document": true,
	"found undefined tag handle": true,
}

// yamlProblem turns a YAML error about plaintext into a Problem without
// any of the text, on the line it is about.
func yamlProblem(err error, plaintext []byte) Problem {
	msg := err.Error()
	if m := yamlAnchor.FindStringSubmatch(msg); m != nil {
		text, sigil := "an alias (*name) refers to no anchor (&name); quote a value that starts with *", "*"
		if m[3] != "referenced" {
			text, sigil = "an anchor (&name) holds an alias of itself", "&"
		}
		p := Problem{Text: "not valid YAML: " + text}
		for i, line := range strings.Split(string(plaintext), "\n") {
			if strings.Contains(line, sigil+m[2]) {
				p.Line = i + 1
				break
			}
		}
		return p
	}
	line := 1 // yaml leaves out the first line's number
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
		if yamlParserProblems[msg] {
			line++
		}
	}
	// A problem found at the end of the text is about its last line.
	if last := len(strings.Split(strings.TrimRight(string(plaintext), " \t\r\n"), "\n")); line > last {
		line = last
	}
	msg = yamlQuoted.ReplaceAllString(strings.TrimPrefix(msg, "yaml: "), "…")
	return Problem{Line: line, Text: "not valid YAML: " + msg}
}

// Parse reads the plain text of a secrets file: a YAML mapping of names
// to text values. Its error is a *ParseError, which never quotes the
// text.
func Parse(plaintext []byte) (map[string]string, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(plaintext, &doc); err != nil {
		return nil, &ParseError{Problems: []Problem{yamlProblem(err, plaintext)}}
	}
	values := map[string]string{}
	if len(doc.Content) == 0 {
		return values, nil
	}
	top := doc.Content[0]
	if top.Kind != yaml.MappingNode {
		return nil, &ParseError{Problems: []Problem{{Line: top.Line, Text: "the secrets must be a mapping of NAME: value, one per line"}}}
	}
	var problems []Problem
	lines := map[string]int{}
	for i := 0; i < len(top.Content); i += 2 {
		k, v := top.Content[i], top.Content[i+1]
		if k.Kind != yaml.ScalarNode || CheckName(k.Value) != nil {
			problems = append(problems, Problem{Line: k.Line, Text: "a secret name is letters, digits and _ (such as SECRET_KEY), and not a Python keyword"})
			continue
		}
		if first, dup := lines[k.Value]; dup {
			problems = append(problems, Problem{Line: k.Line, Text: "this name is written twice: keep one", first: first})
			continue
		}
		lines[k.Value] = k.Line
		if v.Kind != yaml.ScalarNode {
			problems = append(problems, Problem{Line: v.Line, Text: "the value must be text: quote it, or write several lines as a | block"})
			continue
		}
		if !utf8.ValidString(v.Value) {
			problems = append(problems, Problem{Line: v.Line, Text: "the value is not valid UTF-8 text"})
			continue
		}
		values[k.Value] = v.Value
	}
	if len(problems) > 0 {
		return nil, &ParseError{Problems: problems}
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
