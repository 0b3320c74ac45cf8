package targets

import (
	"github.com/djship/djship/remote"
	"github.com/djship/djship/scripts"
)

// script is the text of the program scripts/<file> (see the scripts
// package).
func script(file string) string { return scripts.Text(file) }

// shScript is the command line that runs scripts/<name>.sh with args as
// its positional parameters ($0 is its name).
func shScript(name string, args ...string) string {
	return remote.Sh(append([]string{"sh", "-c", script(name + ".sh"), name}, args...)...)
}
