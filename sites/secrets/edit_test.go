package secrets

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// scriptedEditor is an $EDITOR that acts like a person: on its n-th call
// it records the mode of the file and of its folder and what it was shown
// (seen-n), then replaces the file with write-n or runs sed-n on it when
// the test provides them (else saves it unchanged), and exits with exit-n
// (else 0).
const scriptedEditor = `#!/bin/sh
dir=$(dirname "$0")
n=$(( $(cat "$dir/calls" 2>/dev/null | wc -l) + 1 ))
echo "$n" >> "$dir/calls"
stat -c %a "$1" "$(dirname "$1")" | tr '\n' ' ' >> "$dir/modes"
echo >> "$dir/modes"
cp "$1" "$dir/seen-$n"
if [ -f "$dir/write-$n" ]; then cat "$dir/write-$n" > "$1"; fi
if [ -f "$dir/sed-$n" ]; then sed -i -f "$dir/sed-$n" "$1"; fi
exit "$(cat "$dir/exit-$n" 2>/dev/null || echo 0)"
`

// editorCalls reads what the scripted editor recorded.
type editorCalls struct{ dir string }

func (c editorCalls) count() int {
	data, _ := os.ReadFile(filepath.Join(c.dir, "calls"))
	return strings.Count(string(data), "\n")
}

func (c editorCalls) seen(n int) string {
	data, _ := os.ReadFile(filepath.Join(c.dir, fmt.Sprintf("seen-%d", n)))
	return string(data)
}

// newScriptedEditor writes the editor with its answers (call number to
// "write", "sed" or "exit" to content) and returns the $EDITOR value.
func newScriptedEditor(t *testing.T, answers map[int]map[string]string) (string, editorCalls) {
	t.Helper()
	dir := t.TempDir()
	script := filepath.Join(dir, "editor")
	if err := os.WriteFile(script, []byte(scriptedEditor), 0o755); err != nil {
		t.Fatal(err)
	}
	for n, files := range answers {
		for kind, content := range files {
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%s-%d", kind, n)), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return "sh " + script, editorCalls{dir}
}

// TestEditRefusesToRemoveEverySecret: an emptied buffer (nothing, or
// comments only) would delete every secret; the edit is refused, the
// encrypted file stays, and the error says how to remove secrets on
// purpose.
func TestEditRefusesToRemoveEverySecret(t *testing.T) {
	for name, content := range map[string]string{
		"emptied":       "",
		"comments only": "# SECRET_KEY: old\n",
		"blank lines":   "\n\n  \n",
	} {
		t.Run(name, func(t *testing.T) {
			store, ids, tmp := editStore(t)
			before, _ := os.ReadFile(store.Path)
			editor, calls := newScriptedEditor(t, map[int]map[string]string{1: {"write": content}})
			var out bytes.Buffer
			err := store.Edit(context.Background(), ids, editor, nil, &out, &out)
			if err == nil {
				t.Fatal("an emptied buffer removed every secret, and the command succeeded")
			}
			for _, want := range []string{"every secret", store.Path + " is unchanged", "delete their lines", "delete " + store.Path} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("the error does not say %q:\n%v", want, err)
				}
			}
			if after, _ := os.ReadFile(store.Path); !bytes.Equal(before, after) {
				t.Error("the encrypted file changed")
			}
			if values, _, err := store.Load(ids); err != nil || values["SECRET_KEY"] != "old" {
				t.Errorf("after the refusal: %v %v", values, err)
			}
			if n := calls.count(); n != 1 {
				t.Errorf("the editor ran %d times, want once", n)
			}
			if left := leftovers(t, tmp); len(left) > 0 {
				t.Errorf("plain text left behind in TMPDIR: %v", left)
			}
		})
	}
}

// TestEditReopensAnInvalidEdit: an invalid edit does not throw away what
// was typed. The editor opens again on the typed text with the problems
// at the top as comments, until the text is valid, or it is saved
// unchanged, or the editor fails; the last two leave the encrypted file
// as it was and fail.
func TestEditReopensAnInvalidEdit(t *testing.T) {
	const invalidYAML = "SECRET_KEY: old\nGREETING: [unclosed\n"
	tests := []struct {
		name    string
		answers map[int]map[string]string
		calls   int
		// err is empty when the edit must succeed.
		err      string
		problem  string // the typed line that the problems shown at the second call point to
		greeting string // the value after the edit
	}{
		{"bad YAML, then fixed", map[int]map[string]string{1: {"write": invalidYAML}, 2: {"write": "SECRET_KEY: old\nGREETING: fixed\n"}},
			2, "", "GREETING: [unclosed", "fixed"},
		{"bad YAML, then fixed below the problems", map[int]map[string]string{1: {"write": invalidYAML}, 2: {"sed": `s/\[unclosed/fixed below/`}},
			2, "", "GREETING: [unclosed", "fixed below"},
		{"bad name, then saved unchanged", map[int]map[string]string{1: {"write": "SECRET_KEY: old\nclass: x\n"}},
			2, "saved unchanged", "class: x", ""},
		{"duplicate, then the editor fails", map[int]map[string]string{1: {"write": "SECRET_KEY: old\nSECRET_KEY: new\n"}, 2: {"exit": "1"}},
			2, "the editor (", "SECRET_KEY: new", ""},
		{"the same invalid text twice", map[int]map[string]string{1: {"write": invalidYAML}, 2: {"write": invalidYAML}},
			2, "saved unchanged", "GREETING: [unclosed", ""},
		{"two invalid edits, then fixed", map[int]map[string]string{1: {"write": invalidYAML}, 2: {"write": "SECRET_KEY: old\nclass: x\n"}, 3: {"write": "SECRET_KEY: old\nGREETING: third\n"}},
			3, "", "GREETING: [unclosed", "third"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store, ids, tmp := editStore(t)
			before, _ := os.ReadFile(store.Path)
			editor, calls := newScriptedEditor(t, tt.answers)
			var out bytes.Buffer
			err := store.Edit(context.Background(), ids, editor, nil, &out, &out)
			if n := calls.count(); n != tt.calls {
				t.Errorf("the editor ran %d times, want %d", n, tt.calls)
			}
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) || !strings.Contains(err.Error(), store.Path+" is unchanged") {
					t.Errorf("got %v, want %q and that %s is unchanged", err, tt.err, store.Path)
				}
				if after, _ := os.ReadFile(store.Path); !bytes.Equal(before, after) {
					t.Error("a failed edit changed the encrypted file")
				}
			} else if err != nil {
				t.Fatalf("the edit failed: %v", err)
			}
			if calls.count() >= 2 {
				// The second call shows the problems as comments at the top,
				// then the text as typed.
				seen := calls.seen(2)
				typed, _ := os.ReadFile(filepath.Join(calls.dir, "write-1"))
				top, rest, _ := strings.Cut(seen, string(typed))
				if !strings.HasSuffix(seen, string(typed)) || rest != "" {
					t.Errorf("the typed text is not kept below the problems:\n%s", seen)
				}
				for _, line := range strings.Split(strings.TrimSuffix(top, "\n"), "\n") {
					if !strings.HasPrefix(line, "#") {
						t.Errorf("the problems are not comment lines: %q", line)
					}
				}
				// The line the problem names, in the file as shown, is the
				// line it is about.
				m := regexp.MustCompile(`line (\d+):`).FindStringSubmatch(top)
				shown := strings.Split(seen, "\n")
				if m == nil {
					t.Errorf("the problems at the top name no line:\n%s", top)
				} else if n, _ := strconv.Atoi(m[1]); n < 1 || n > len(shown) || shown[n-1] != tt.problem {
					t.Errorf("the problems point to line %s, want the line %q:\n%s", m[1], tt.problem, seen)
				}
			}
			values, plaintext, err := store.Load(ids)
			if err != nil || values["SECRET_KEY"] != "old" || values["GREETING"] != tt.greeting {
				t.Errorf("after the edit: %v, %v", values, err)
			}
			if bytes.Contains(plaintext, []byte("line 2")) {
				t.Errorf("the problems were saved with the secrets:\n%s", plaintext)
			}
			if left := leftovers(t, tmp); len(left) > 0 {
				t.Errorf("plain text left behind in TMPDIR: %v", left)
			}
			modes, _ := os.ReadFile(filepath.Join(calls.dir, "modes"))
			for _, m := range strings.Split(strings.TrimSpace(string(modes)), "\n") {
				if strings.Join(strings.Fields(m), " ") != "600 700" {
					t.Errorf("the plain text was in a file and folder of modes %q, want 600 and 700", m)
				}
			}
		})
	}
}
