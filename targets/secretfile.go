package targets

import (
	"context"
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/djship/djship/remote"
	"github.com/djship/djship/sites"
	"github.com/djship/djship/sites/secrets"
	"github.com/djship/djship/templates"
)

// SecretStore is the encrypted secrets file of one environment.
func SecretStore(site *sites.Site, env *sites.Environment) secrets.Store {
	return secrets.Store{Path: secrets.FileName(site.File, env.Name), Recipients: env.Settings.Secrets.Recipients}
}

// LoadSecrets decrypts an environment's secrets for shipping. It refuses
// when git tracks a plaintext secrets file, and names every value the
// site needs that the secrets lack.
func LoadSecrets(site *sites.Site, envName string) (map[string]string, error) {
	if err := secrets.Guard(site.Root); err != nil {
		return nil, err
	}
	env, err := site.Environment(envName)
	if err != nil {
		return nil, err
	}
	store := SecretStore(site, env)
	ids, err := secrets.Identities()
	if err != nil {
		return nil, err
	}
	needed := map[string]string{}
	for _, h := range env.Hosts {
		s := h.Settings
		for _, k := range s.Secrets.Keys {
			needed[k] = "secrets.keys"
		}
		if s.TLS.Certificate != "" && s.TLS.Certificate != "self-signed" {
			needed[s.TLS.KeySecret] = "tls.key_secret"
		}
		if s.Database.Engine == "postgres" {
			needed[s.Database.PasswordSecret] = "database.password_secret"
		}
	}
	// An absent file holds nothing; a file that cannot be opened is an
	// error even when nothing is required, or provision would replace the
	// host's secrets with an empty file.
	values, _, err := store.Load(ids)
	if err != nil {
		return nil, err
	}
	var missing []string
	for k, why := range needed {
		if _, ok := values[k]; !ok {
			missing = append(missing, fmt.Sprintf("%s (%s)", k, why))
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return nil, fmt.Errorf("the secrets of %s (%s) lack %s: add each with mage secrets:set %s NAME < value-file, or mage secrets:edit %s",
			envName, store.Path, strings.Join(missing, ", "), envName, envName)
	}
	return values, nil
}

// ReadSecrets decrypts an environment's secrets when it has any, without
// requiring the values a ship needs: what rollback and status use, so
// that what they print is masked all the same.
func ReadSecrets(site *sites.Site, envName string) (map[string]string, error) {
	env, err := site.Environment(envName)
	if err != nil {
		return nil, err
	}
	ids, err := secrets.Identities()
	if err != nil {
		return nil, err
	}
	values, _, err := SecretStore(site, env).Load(ids)
	return values, err
}

// secretFileStep writes the application's secrets in the two forms the
// host needs, root's and readable by the application's group only, never
// by the web server: secrets.py for DJANGO_SETTINGS_SECRET_FILE, and
// environment.json, the application's whole environment (secrets,
// DATABASE_URL and the rest), which the launchers read. The secrets.env
// of earlier versions is removed.
type secretFileStep struct{}

func (secretFileStep) Name() string { return "secret file" }

func (secretFileStep) Run(ctx context.Context, d *Deploy) (bool, error) {
	py, err := secrets.PythonFile(d.appSecrets())
	if err != nil {
		return false, err
	}
	values, skipped := d.applicationEnvironment()
	for _, k := range skipped {
		d.note("warning: %s contains a NUL byte, which no environment variable can hold; it is only in %s", k, d.Paths.SecretPy)
	}
	env, err := templates.RenderEnvironment(values)
	if err != nil {
		return false, err
	}
	changed, err := d.ensureFiles(ctx,
		file{Path: d.Paths.SecretPy, Data: py, Mode: 0o640, Owner: "root", Group: d.Settings.App.Group, Secret: true},
		file{Path: d.Paths.Environment, Data: env, Mode: 0o640, Owner: "root", Group: d.Settings.App.Group, Secret: true})
	if err != nil {
		return changed, err
	}
	legacy := path.Join(d.Paths.Base, "secrets.env")
	if out, err := d.probe(ctx, remote.Sh("sh", "-c", `if [ -e "$1" ]; then echo legacy; fi`, "probe", legacy)); err != nil {
		return changed, err
	} else if out == "legacy" {
		changed = true
		if err := d.do(ctx, "remove "+legacy+", which earlier versions wrote", remote.Sh("rm", "-f", "--", legacy)); err != nil {
			return changed, err
		}
	}
	if changed {
		d.reload["app"] = true
	}
	return changed, nil
}
