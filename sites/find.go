package sites

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// siteName is the name of a site file without .yaml: no folder, no ..
var siteName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)*$`)

// Find picks the site file in dir (normally "sites"): the one named by
// name (the SITE variable) when it is set, else the only one there.
func Find(dir, name string) (string, error) {
	names, err := List(dir)
	if err != nil {
		return "", err
	}
	if name != "" {
		if !siteName.MatchString(name) {
			return "", fmt.Errorf("SITE=%s: a site is named by its file in %s/ without .yaml, such as SITE=shop (letters, digits, . _ -; no /)", name, dir)
		}
		p := filepath.Join(dir, name+".yaml")
		if _, err := os.Stat(p); err != nil {
			if len(names) == 0 {
				return "", fmt.Errorf("SITE=%s: there is no %s and no other site file in %s/", name, p, dir)
			}
			return "", fmt.Errorf("SITE=%s: there is no %s; the sites are %s", name, p, strings.Join(names, ", "))
		}
		return p, nil
	}
	switch len(names) {
	case 0:
		return "", fmt.Errorf("no site file in %s/: create %s/<name>.yaml (sites/example.yaml in the djship repository is a commented start)", dir, dir)
	case 1:
		return filepath.Join(dir, names[0]+".yaml"), nil
	}
	return "", fmt.Errorf("%s/ holds several sites (%s): choose one with SITE=<name>, e.g. SITE=%s", dir, strings.Join(names, ", "), names[0])
}

// List returns the names of the site files in dir, sorted.
func List(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, fmt.Errorf("no %s/ folder here: run djship from the project root, the folder that holds %s/", dir, dir)
		}
		return nil, fmt.Errorf("list sites: %w", err)
	}
	var names []string
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() || !strings.HasSuffix(n, ".yaml") {
			continue
		}
		names = append(names, strings.TrimSuffix(n, ".yaml"))
	}
	sort.Strings(names)
	return names, nil
}

// Select finds and loads the site that `mage` targets work on: SITE names
// it, or it is the only file in sites/.
func Select() (*Site, error) {
	p, err := Find("sites", os.Getenv("SITE"))
	if err != nil {
		return nil, err
	}
	return Load(p)
}
