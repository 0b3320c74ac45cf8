// Package scripts holds the shell programs (and the one Python program)
// that djship runs on hosts, and, for container mode, on the machine that
// runs mage release. Each takes its data only as arguments or on standard
// input, never pasted into its text, and starts with a comment that says
// what it does and lists its arguments; the tests check each with
// shellcheck. The package imports nothing of djship: the host side
// (targets) and the release side (release) both use it.
package scripts

import (
	"embed"
	"fmt"
	"io/fs"
)

// files are the embedded programs, by name.
//
//go:embed *.sh *.py
var files embed.FS

// Text is the text of the program file (e.g. "lock.sh"). It panics on a
// name that is not embedded: a name is always a constant of the code.
func Text(file string) string {
	b, err := files.ReadFile(file)
	if err != nil {
		panic(fmt.Sprintf("scripts: no embedded script %s", file))
	}
	return string(b)
}

// Names lists the embedded programs' file names, sorted.
func Names() []string {
	entries, err := fs.ReadDir(files, ".")
	if err != nil {
		panic(err) // the embedded folder is always readable
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}
