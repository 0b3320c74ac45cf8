package confparse

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// render lists directives as the tables write them: the line, then
// Directive.String.
func render(ds []Directive) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = fmt.Sprintf("%d %s", d.Line, d)
	}
	return out
}

// expect compares a parse with the directives or the error a table wants.
func expect(t *testing.T, ds []Directive, err error, want []string, wantErr string) {
	t.Helper()
	if wantErr != "" {
		var se *SyntaxError
		if !errors.As(err, &se) || se.Error() != wantErr {
			t.Fatalf("error = %v, want %s (directives %q)", err, wantErr, render(ds))
		}
		return
	}
	if err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
	got := render(ds)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("directives differ\n--- got\n%s\n--- want\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// golden reads a rendered file of the templates package.
func golden(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "templates", "testdata", name))
	if err != nil {
		t.Fatalf("%v (the templates package writes it: go test ./templates -update)", err)
	}
	return data
}

// blank replaces the bytes of s with spaces, keeping newlines, so that
// what follows keeps its line numbers.
func blank(text []byte, s span) {
	for i := s.start; i < s.end; i++ {
		if text[i] != '\n' {
			text[i] = ' '
		}
	}
}

// tempDir is a temporary folder whose name, unlike t.TempDir's, holds
// none of the characters of the test's name, which configuration syntaxes
// would read as their own.
func tempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "confparse")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}
