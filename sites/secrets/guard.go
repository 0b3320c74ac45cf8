package secrets

import (
	"context"
	"fmt"
	"path"
	"strings"

	"github.com/djship/djship/internal/gitsafe"
)

// plaintextNames are file names that hold secrets in clear.
var plaintextNames = []string{
	"*.secrets", "*.secrets.yaml", "*.secrets.yml", "*.secrets.json", "*.secrets.env", "*.secrets.txt",
	"secrets.py", "secrets.env", "secrets.yaml", "secrets.yml", "secrets.json",
}

// Tracked lists files that git tracks in root and that look like secrets
// in plain text. Outside a git checkout it finds nothing.
// git runs with gitsafe's guards: nothing of the project runs.
func Tracked(root string) ([]string, error) {
	out, err := gitsafe.Run(context.Background(), root, false, "ls-files", "-z")
	if err != nil {
		return nil, nil // not a git checkout, or no git: nothing is tracked
	}
	var found []string
	for _, f := range strings.Split(out, "\x00") {
		base := path.Base(f)
		for _, pattern := range plaintextNames {
			if ok, _ := path.Match(pattern, base); ok {
				found = append(found, f)
				break
			}
		}
	}
	return found, nil
}

// Guard refuses to go on when git tracks a plaintext secrets file.
func Guard(root string) error {
	found, err := Tracked(root)
	if err != nil || len(found) == 0 {
		return err
	}
	return fmt.Errorf("git tracks secrets in plain text: %s\n"+
		"  Encrypt them: paste the values into mage secrets:edit <env> (or pipe each into mage secrets:set <env> NAME),\n"+
		"  then git rm --cached the file, add it to .gitignore, and change the values: they are in the git history",
		strings.Join(found, ", "))
}
