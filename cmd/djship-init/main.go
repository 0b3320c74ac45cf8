// Command djship-init adopts djship in the Django repository it runs in:
// it finds the Django project and writes go.mod, magefiles/magefile.go,
// sites/<project>.yaml, dist/ in .gitignore and a CI example. Run it at
// the top of the repository:
//
//	go run github.com/djship/djship/cmd/djship-init@latest
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime/debug"

	"github.com/djship/djship/internal/scaffold"
)

func main() {
	dir := flag.String("dir", ".", "the repository")
	django := flag.String("django", "", "the folder of manage.py, when the repository holds several")
	replace := flag.String("replace", "", "a djship checkout for go.mod to use instead of the published module")
	flag.Parse()
	if err := run(*dir, *django, *replace); err != nil {
		fmt.Fprintln(os.Stderr, "djship-init:", err)
		os.Exit(1)
	}
}

func run(dir, django, replace string) error {
	var p scaffold.Project
	var err error
	if django != "" {
		p, err = scaffold.DetectIn(dir, django)
	} else {
		p, err = scaffold.Detect(dir)
	}
	if err != nil {
		return err
	}
	fmt.Printf("Django project %s: manage.py in %s, settings %s, wsgi.py in %s", p.Name, p.DjangoFolder, p.SettingsModule, p.SettingsFolder)
	if p.Django != "" {
		fmt.Printf(", %s", p.Django)
	}
	fmt.Println()
	opts := scaffold.Options{Replace: replace}
	if info, ok := debug.ReadBuildInfo(); ok && info.Main.Path == scaffold.Module && info.Main.Version != "(devel)" {
		opts.Version = info.Main.Version
	}
	files, err := scaffold.Write(p, opts)
	for _, f := range files {
		fmt.Printf("  wrote %-32s %s\n", f.Path, f.Purpose)
	}
	if err != nil {
		return err
	}
	fmt.Printf(`
Next:
  1. Fill in url and the hosts in sites/%s.yaml, then: go tool mage check
  2. Store the secrets:                                  go tool mage secrets:edit production
  3. Ship:                                               go tool mage ship:production
`, p.Name)
	return nil
}
