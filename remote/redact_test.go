package remote

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"unicode/utf16"

	"github.com/djship/djship/sites/secrets"
)

// jsonInner is v as a JSON string without its quotes; html escapes <, >
// and & as encoding/json does by default.
func jsonInner(t *testing.T, v string, html bool) string {
	t.Helper()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(html)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	s := strings.TrimSuffix(b.String(), "\n")
	return s[1 : len(s)-1]
}

// pythonJSON is v as Python's json.dumps writes it (ensure_ascii), without
// its quotes.
func pythonJSON(t *testing.T, v string) string {
	var b strings.Builder
	for _, r := range jsonInner(t, v, false) {
		if r < 0x80 {
			b.WriteRune(r)
			continue
		}
		for _, u := range utf16.Encode([]rune{r}) {
			fmt.Fprintf(&b, `\u%04x`, u)
		}
	}
	return b.String()
}

// TestRedactorMasksEveryForm registers secret values of every length from
// 1 to 12 characters, made of characters that each form escapes, the way
// a run registers them, and prints each in every form it can take in
// output: raw, JSON-escaped (secrets.py), URL-escaped, shell-quoted, the
// environment file's escaping, and each line of a multi-line value. None
// may be left.
func TestRedactorMasksEveryForm(t *testing.T) {
	const alphabet = "k\"é'$\\ /&<`%+日?#=\tZ9"
	runes := []rune(alphabet)
	var values []string
	for n := 1; n <= 12; n++ {
		for start := 0; start < len(runes); start++ {
			var v []rune
			for i := 0; i < n; i++ {
				v = append(v, runes[(start+i)%len(runes)])
			}
			if strings.TrimSpace(string(v)) != "" {
				values = append(values, string(v))
			}
		}
	}
	values = append(values, "first line\nsecond\n\nx\r\nlast", "-----BEGIN KEY-----\nAbC\n-----END KEY-----\n")
	forms := map[string]func(string) []string{
		"raw":              func(v string) []string { return []string{v} },
		"JSON":             func(v string) []string { return []string{jsonInner(t, v, false), `"` + jsonInner(t, v, false) + `"`} },
		"JSON, HTML-safe":  func(v string) []string { return []string{jsonInner(t, v, true)} },
		"JSON, ASCII":      func(v string) []string { return []string{pythonJSON(t, v)} },
		"URL query":        func(v string) []string { return []string{url.QueryEscape(v)} },
		"URL path":         func(v string) []string { return []string{url.PathEscape(v)} },
		"URL password":     func(v string) []string { return []string{strings.TrimPrefix(url.UserPassword("", v).String(), ":")} },
		"shell-quoted":     func(v string) []string { return []string{Quote(v), Sh("echo", v)} },
		"environment file": func(v string) []string { return []string{`"` + secrets.EnvEscape(v) + `"`} },
		"each line": func(v string) []string {
			var lines []string
			for _, l := range strings.Split(v, "\n") {
				if strings.TrimSpace(l) != "" {
					lines = append(lines, l, strings.TrimSuffix(l, "\r"))
				}
			}
			return lines
		},
	}
	for _, v := range values {
		r := &Redactor{}
		r.Add(secrets.Forms(v)...)
		for name, form := range forms {
			for _, f := range form(v) {
				// Output is checked line by line, as it is printed; a line of
				// the form that is only quotes holds nothing of the value.
				for _, text := range strings.Split("«"+f+"» and (x "+f+")", "\n") {
					got := strings.ReplaceAll(r.Redact(text), Mask, "\x00")
					for _, line := range strings.Split(f, "\n") {
						quotesOnly := strings.Contains(f, "\n") && strings.Trim(line, "'\" \t\r") == ""
						if quotesOnly || strings.TrimSpace(line) == "" || !strings.Contains(text, line) {
							continue
						}
						if strings.Contains(got, line) {
							t.Errorf("%q, %s: %q left in %q", v, name, line, r.Redact(text))
						}
					}
				}
			}
		}
	}
}

// TestShortValuesMaskedAsWholeTokens: a value of 1 to 3 characters is
// masked where it stands alone, and left inside a longer run of letters
// and digits, which masking would garble; from 4 characters on a value is
// masked everywhere.
func TestShortValuesMaskedAsWholeTokens(t *testing.T) {
	tests := []struct{ value, text, want string }{
		{"x", "x", Mask},
		{"x", "password=x;", "password=" + Mask + ";"},
		{"x", "max extra", "max extra"},
		{"7", "exit 7", "exit " + Mask},
		{"7", "took 17s", "took 17s"},
		{"ab", "ab ab_ab (ab)", Mask + " " + Mask + "_" + Mask + " (" + Mask + ")"},
		{"ab", "cab abc", "cab abc"},
		{"日本", "日本 日本語", Mask + " 日本語"},
		{"-x", "a-x", "a" + Mask},
		{"a-", "a-b", Mask + "b"},
		{"a-", "ba-b", "ba-b"},
		{`"`, `say "hi"`, "say " + Mask + "hi" + Mask},
		{"abc", `"abc"`, `"` + Mask + `"`},
		{"abc", "abcd", "abcd"},
		{"abcd", "xabcdx", "x" + Mask + "x"},
		{"abcd", "abcd", Mask},
	}
	for _, tt := range tests {
		r := &Redactor{}
		r.Add(tt.value)
		if got := r.Redact(tt.text); got != tt.want {
			t.Errorf("value %q: Redact(%q) = %q, want %q", tt.value, tt.text, got, tt.want)
		}
	}
}
