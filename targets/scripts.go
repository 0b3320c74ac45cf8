package targets

import (
	"embed"
	"fmt"

	"github.com/djship/djship/remote"
)

// scriptFiles are the shell programs (and the one Python program) that
// steps run on hosts. Each takes its data only as arguments or on
// standard input, never pasted into its text; the test command checks
// them with shellcheck.
//
//go:embed scripts/*.sh scripts/*.py
var scriptFiles embed.FS

// script is the text of scripts/<file>.
func script(file string) string {
	b, err := scriptFiles.ReadFile("scripts/" + file)
	if err != nil {
		panic(fmt.Sprintf("targets: no embedded script %s", file))
	}
	return string(b)
}

// shScript is the command line that runs scripts/<name>.sh with args as
// its positional parameters ($0 is its name).
func shScript(name string, args ...string) string {
	return remote.Sh(append([]string{"sh", "-c", script(name + ".sh"), name}, args...)...)
}
