package scripts

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/djship/djship/internal/testenv"
)

// embeddedScripts are the names of the embedded files.
func embeddedScripts(t *testing.T) []string {
	t.Helper()
	names := Names()
	if len(names) < 10 {
		t.Fatalf("only %d scripts are embedded: %v", len(names), names)
	}
	return names
}

func TestScriptsPassShellcheck(t *testing.T) {
	shellcheck := testenv.Command(t, "shellcheck", "shellcheck")
	for _, name := range embeddedScripts(t) {
		if !strings.HasSuffix(name, ".sh") {
			continue
		}
		t.Run(name, func(t *testing.T) {
			// Every severity counts, style notes too: --severity=style.
			out, err := exec.Command(shellcheck, "--shell=sh", "--severity=style", name).CombinedOutput()
			if err != nil {
				t.Errorf("shellcheck %s: %v\n%s", name, err, out)
			}
		})
	}
}

func TestPythonScriptsCompile(t *testing.T) {
	python := testenv.Command(t, "python3", "python3")
	for _, name := range embeddedScripts(t) {
		if !strings.HasSuffix(name, ".py") {
			continue
		}
		if out, err := exec.Command(python, "-c", "import sys; compile(open(sys.argv[1]).read(), sys.argv[1], 'exec')", name).CombinedOutput(); err != nil {
			t.Errorf("%s does not compile: %v\n%s", name, err, out)
		}
	}
}

func TestTextPanicsOnAnUnknownName(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("Text of a name that is not embedded did not panic")
		}
	}()
	Text("no-such-script.sh")
}

// usingCode is the code, tests left out, of every package of the module
// that imports this one: the only code that can run a script.
// usingCode fails the test unless wanted (folders from the module's top)
// are among those packages.
func usingCode(t *testing.T, wanted ...string) string {
	t.Helper()
	const self = "github.com/djship/djship/scripts"
	top, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(top, "go.mod")); err != nil {
		t.Fatalf("the module's top is not %s: %v", top, err)
	}
	sources := map[string][]string{} // non-test Go files by folder
	users := map[string]bool{}
	err = filepath.WalkDir(top, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); p != top && (strings.HasPrefix(name, ".") || name == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		dir := filepath.Dir(p)
		sources[dir] = append(sources[dir], p)
		f, err := parser.ParseFile(token.NewFileSet(), p, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		for _, imp := range f.Imports {
			if path, _ := strconv.Unquote(imp.Path.Value); path == self {
				users[dir] = true
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range wanted {
		if !users[filepath.Join(top, w)] {
			t.Errorf("%s does not import %s", w, self)
		}
	}
	var code strings.Builder
	for dir := range users {
		for _, p := range sources[dir] {
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			code.Write(b)
		}
	}
	return code.String()
}

// TestScriptsAreDocumentedAndUsed keeps the scripts honest: each says
// what it does, and the code of a package that imports this one (the
// host side, targets, and the release side, release) names each one,
// as "<name>" for shScript or "<name>.sh" for Text.
func TestScriptsAreDocumentedAndUsed(t *testing.T) {
	code := usingCode(t, "targets", "release")
	for _, name := range embeddedScripts(t) {
		text := Text(name)
		if strings.HasSuffix(name, ".sh") && !strings.HasPrefix(text, "#!/bin/sh\n# ") {
			t.Errorf("%s does not start with #!/bin/sh and a comment that says what it does", name)
		}
		if strings.HasSuffix(name, ".py") && !strings.HasPrefix(text, "# ") {
			t.Errorf("%s does not start with a comment that says what it does", name)
		}
		base := strings.TrimSuffix(strings.TrimSuffix(name, ".sh"), ".py")
		used := regexp.MustCompile(`"` + regexp.QuoteMeta(base) + `(\.sh|\.py)?"`)
		if !used.MatchString(code) {
			t.Errorf("no code runs %s", name)
		}
	}
}
