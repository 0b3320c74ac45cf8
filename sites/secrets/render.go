package secrets

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"
)

func sortedNames(values map[string]string) []string {
	names := make([]string, 0, len(values))
	for k := range values {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

// PythonFile renders values as the Python assignments that settings read
// through exec(open(os.environ["DJANGO_SETTINGS_SECRET_FILE"]).read(), d).
// Each value is a JSON string, which is also a Python string literal that
// evaluates to exactly the value: no quote, backslash, newline, NUL or
// ”' can end it early or add code.
func PythonFile(values map[string]string) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString("# Managed by djship: the application's secrets, read through DJANGO_SETTINGS_SECRET_FILE.\n")
	for _, k := range sortedNames(values) {
		if err := CheckName(k); err != nil {
			return nil, err
		}
		if !utf8.ValidString(values[k]) {
			return nil, fmt.Errorf("secret %s is not valid UTF-8 text", k)
		}
		var lit bytes.Buffer
		enc := json.NewEncoder(&lit)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(values[k]); err != nil {
			return nil, fmt.Errorf("secret %s: %w", k, err)
		}
		fmt.Fprintf(&b, "%s = %s", k, lit.Bytes())
	}
	return b.Bytes(), nil
}

// envEscaper escapes what is special inside double quotes to both the
// shell and systemd's EnvironmentFile parser.
var envEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "$", `\$`, "`", "\\`")

// EnvEscape is v as a systemd or shell environment file writes it between
// double quotes (NAME="value").
func EnvEscape(v string) string { return envEscaper.Replace(v) }

// Forms are the ways this package writes v on a host that the generic
// ones (raw, JSON, URL and shell escaping) do not cover: v itself and its
// environment-file form. A run registers them all for masking.
func Forms(v string) []string {
	return []string{v, EnvEscape(v)}
}
