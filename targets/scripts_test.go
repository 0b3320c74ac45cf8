package targets

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/djship/djship/internal/testenv"
)

// embeddedScripts are the names of the files under scripts/.
func embeddedScripts(t *testing.T) []string {
	t.Helper()
	entries, err := fs.ReadDir(scriptFiles, "scripts")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
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
			out, err := exec.Command(shellcheck, "--shell=sh", "--severity=style", filepath.Join("scripts", name)).CombinedOutput()
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
		p := filepath.Join("scripts", name)
		if out, err := exec.Command(python, "-c", "import sys; compile(open(sys.argv[1]).read(), sys.argv[1], 'exec')", p).CombinedOutput(); err != nil {
			t.Errorf("%s does not compile: %v\n%s", name, err, out)
		}
	}
}

// TestScriptsAreDocumentedAndUsed keeps scripts/ honest: each script
// says what it does, and the code runs each one.
func TestScriptsAreDocumentedAndUsed(t *testing.T) {
	var code strings.Builder
	sources, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range sources {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		code.Write(b)
	}
	for _, name := range embeddedScripts(t) {
		text := script(name)
		if strings.HasSuffix(name, ".sh") && !strings.HasPrefix(text, "#!/bin/sh\n# ") {
			t.Errorf("%s does not start with #!/bin/sh and a comment that says what it does", name)
		}
		if strings.HasSuffix(name, ".py") && !strings.HasPrefix(text, "# ") {
			t.Errorf("%s does not start with a comment that says what it does", name)
		}
		base := strings.TrimSuffix(strings.TrimSuffix(name, ".sh"), ".py")
		used := regexp.MustCompile(`"` + regexp.QuoteMeta(base) + `(\.sh|\.py)?"`)
		if !used.MatchString(code.String()) {
			t.Errorf("no code runs %s", name)
		}
	}
}

func TestShScriptPassesDataAsArguments(t *testing.T) {
	sh := testenv.Command(t, "sh", "dash")
	marker := filepath.Join(t.TempDir(), "ran")
	for _, value := range []string{"$(touch " + marker + ")", "a'b\"c", "two\nlines", "; touch " + marker, "`touch " + marker + "`", "-n", "%s %d"} {
		log := filepath.Join(t.TempDir(), "deploy.log")
		if out, err := exec.Command(sh, "-c", shScript("append-log", log, value)).CombinedOutput(); err != nil {
			t.Fatalf("%q: %v: %s", value, err, out)
		}
		got, err := os.ReadFile(log)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != value+"\n" {
			t.Errorf("append-log wrote %q, want %q", got, value+"\n")
		}
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("an argument ran as a command")
	}
}
