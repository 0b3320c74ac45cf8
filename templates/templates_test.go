package templates

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	p := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(p, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run go test ./templates -update to create it)", err)
	}
	if string(got) != string(want) {
		t.Errorf("%s differs\n--- got\n%s--- want\n%s", p, got, want)
	}
}

func TestManifest(t *testing.T) {
	m := Manifest{
		Project:     "example",
		Revision:    "1a2b3c4",
		Source:      `path:example@1a2b3c4d5e6f "quoted"`,
		Files:       12,
		FilesSHA256: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		Created:     "2026-11-23T12:00:00Z",
	}
	got, err := RenderManifest(m)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "manifest.json", got)
	var back Manifest
	if err := json.Unmarshal(got, &back); err != nil {
		t.Fatalf("manifest is not JSON: %v", err)
	}
	if back != m {
		t.Errorf("round trip: got %+v, want %+v", back, m)
	}
}
