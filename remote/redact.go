package remote

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"sync"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// Redactor removes registered secret values from text before it is
// printed or put into an error. One Redactor is shared by every host of a
// run; it is safe for concurrent use.
//
// Every value is masked in each form it can take in output: as it is, its
// JSON escaping (what secrets.py holds, also with HTML-safe and
// ASCII-only escapes), its URL escaping (query and path), its shell
// quoting (Quote), and each line of a multi-line value. An escaping of
// the caller's own, such as the environment file's (secrets.Forms), is
// registered as one more value. A form of 4 characters or more is masked
// wherever it appears. A shorter one would garble output if masked
// everywhere, so it is masked where it stands as a whole token: not where
// it continues a longer run of letters and digits ("ab" is masked in
// "x=ab;" and "(ab)", not in "cab" or "abc"). Empty values and lines of
// blanks only are not masked.
type Redactor struct {
	mu sync.RWMutex
	// secrets are the registered forms, longest first; byFirst indexes
	// them by their first byte.
	secrets []secret
	seen    map[string]bool
	byFirst [256][]int
}

// secret is one registered form of a value.
type secret struct {
	text string
	// token: masked only as a whole token, for forms under shortSecret
	// characters.
	token bool
}

// shortSecret is the length, in characters, from which a form is masked
// everywhere rather than as a whole token only.
const shortSecret = 4

// Mask replaces every secret value.
const Mask = "<redacted>"

// Add registers secret values, each in every form it can take in output
// (see Redactor). Empty values are ignored; a multi-line value is also
// registered line by line, since output is printed by line.
func (r *Redactor) Add(values ...string) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.seen == nil {
		r.seen = map[string]bool{}
	}
	for _, v := range values {
		parts := []string{v}
		if strings.Contains(v, "\n") {
			for _, line := range strings.Split(v, "\n") {
				parts = append(parts, line, strings.TrimSuffix(line, "\r"))
			}
		}
		for _, part := range parts {
			if strings.TrimSpace(part) == "" {
				continue
			}
			for _, f := range forms(part) {
				if f == "" || r.seen[f] {
					continue
				}
				r.seen[f] = true
				r.secrets = append(r.secrets, secret{text: f, token: utf8.RuneCountInString(f) < shortSecret})
			}
		}
	}
	// Longest first, so that a secret containing another is masked whole.
	sort.SliceStable(r.secrets, func(i, j int) bool { return len(r.secrets[i].text) > len(r.secrets[j].text) })
	r.byFirst = [256][]int{}
	for i, s := range r.secrets {
		r.byFirst[s.text[0]] = append(r.byFirst[s.text[0]], i)
	}
}

// forms are the ways s can be written in output.
func forms(s string) []string {
	js := jsonEscape(s, false)
	return []string{
		s,
		js,
		jsonEscape(s, true),
		asciiEscape(js),
		url.QueryEscape(s),
		url.PathEscape(s),
		strings.TrimPrefix(url.UserPassword("", s).String(), ":"), // a URL's password (DATABASE_URL)
		Quote(s),
		strings.ReplaceAll(s, "'", `'"'"'`), // inside single quotes
	}
}

// jsonEscape is s as a JSON string, without its quotes.
func jsonEscape(s string, html bool) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(html)
	if err := enc.Encode(s); err != nil {
		return ""
	}
	out := strings.TrimSuffix(b.String(), "\n")
	return out[1 : len(out)-1]
}

// asciiEscape writes every non-ASCII character of a JSON string as \u
// escapes, as Python's json.dumps does.
func asciiEscape(js string) string {
	var b strings.Builder
	for _, c := range js {
		if c < utf8.RuneSelf {
			b.WriteRune(c)
			continue
		}
		for _, u := range utf16.Encode([]rune{c}) {
			fmt.Fprintf(&b, `\u%04x`, u)
		}
	}
	return b.String()
}

// Redact returns s with every registered secret replaced by Mask.
func (r *Redactor) Redact(s string) string {
	if r == nil {
		return s
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	if len(r.secrets) == 0 {
		return s
	}
	var b strings.Builder
	written := 0
	for i := 0; i < len(s); {
		n := r.match(s, i)
		if n == 0 {
			i++
			continue
		}
		b.WriteString(s[written:i])
		b.WriteString(Mask)
		i += n
		written = i
	}
	if written == 0 {
		return s
	}
	b.WriteString(s[written:])
	return b.String()
}

// match is the length of the longest secret at s[i:] that may be masked
// there, or 0.
func (r *Redactor) match(s string, i int) int {
	for _, k := range r.byFirst[s[i]] {
		sec := r.secrets[k]
		if strings.HasPrefix(s[i:], sec.text) && (!sec.token || wholeToken(s, i, i+len(sec.text))) {
			return len(sec.text)
		}
	}
	return 0
}

// wholeToken reports whether s[start:end] does not continue a run of
// letters and digits on either side.
func wholeToken(s string, start, end int) bool {
	if start > 0 {
		before, _ := utf8.DecodeLastRuneInString(s[:start])
		first, _ := utf8.DecodeRuneInString(s[start:end])
		if alnum(before) && alnum(first) {
			return false
		}
	}
	if end < len(s) {
		last, _ := utf8.DecodeLastRuneInString(s[start:end])
		after, _ := utf8.DecodeRuneInString(s[end:])
		if alnum(last) && alnum(after) {
			return false
		}
	}
	return true
}

func alnum(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }

// redactedError shows its error with the secrets masked, and still
// unwraps to it for errors.Is and errors.As.
type redactedError struct {
	err error
	r   *Redactor
}

func (e redactedError) Error() string { return e.r.Redact(e.err.Error()) }
func (e redactedError) Unwrap() error { return e.err }

// RedactError returns err with every registered secret masked in its
// message: what a target returns is printed by Mage.
func (r *Redactor) RedactError(err error) error {
	if err == nil || r == nil {
		return err
	}
	return redactedError{err: err, r: r}
}
