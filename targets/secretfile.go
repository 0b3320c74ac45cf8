package targets

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// secretFileStep writes the secret file that settings read through
// DJANGO_SETTINGS_SECRET_FILE: root's, readable by the application's group
// only, never by the web server. Values are Python string literals (JSON
// strings are valid ones), so no value can change the code around it.
type secretFileStep struct{}

func (secretFileStep) Name() string { return "secret file" }

// secretPython renders secrets as Python assignments.
func secretPython(secrets map[string]string) ([]byte, error) {
	var b strings.Builder
	b.WriteString("# Managed by djship: secrets for the application, read through DJANGO_SETTINGS_SECRET_FILE.\n")
	names := make([]string, 0, len(secrets))
	for k := range secrets {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if !pythonIdentifier(k) {
			return nil, fmt.Errorf("secret name %q is not a Python identifier", k)
		}
		v, err := json.Marshal(secrets[k])
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(&b, "%s = %s\n", k, v)
	}
	return []byte(b.String()), nil
}

func pythonIdentifier(s string) bool {
	for i, r := range s {
		if !(r == '_' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || i > 0 && r >= '0' && r <= '9') {
			return false
		}
	}
	return s != ""
}

func (secretFileStep) Run(ctx context.Context, d *Deploy) (bool, error) {
	data, err := secretPython(d.Secrets)
	if err != nil {
		return false, err
	}
	changed, err := d.ensureFile(ctx, file{Path: d.Paths.SecretPy, Data: data, Mode: 0o640, Owner: "root", Group: d.Settings.App.Group, Secret: true})
	if changed {
		d.reload["app"] = true
	}
	return changed, err
}
