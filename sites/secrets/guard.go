package secrets

import (
	"fmt"
	"os/exec"
	"path"
	"strings"
)

// plaintextNames are file names that hold secrets in clear.
var plaintextNames = []string{
	"*.secrets", "*.secrets.yaml", "*.secrets.yml", "*.secrets.json", "*.secrets.env", "*.secrets.txt",
	"secrets.py", "secrets.env", "secrets.yaml", "secrets.yml", "secrets.json",
}

// Tracked lists files that git tracks in root and that look like secrets
// in plain text. Outside a git checkout it finds nothing.
func Tracked(root string) ([]string, error) {
	cmd := exec.Command("git", "ls-files", "-z")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		return nil, nil // not a git checkout, or no git: nothing is tracked
	}
	var found []string
	for _, f := range strings.Split(string(out), "\x00") {
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
