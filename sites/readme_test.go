package sites

import (
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// TestReadmeReferenceMatchesSchema keeps README.md's site-file reference
// and the schema from drifting: every key the schema accepts has a row,
// and every row names a key the schema accepts, in the same order.
func TestReadmeReferenceMatchesSchema(t *testing.T) {
	data, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(data), "## Site file reference")
	if !ok {
		t.Fatal(`README.md has no "## Site file reference" section`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	row := regexp.MustCompile("(?m)^\\| `([^`]+)` \\|")
	var documented []string
	for _, m := range row.FindAllStringSubmatch(section, -1) {
		documented = append(documented, m[1])
	}
	if want := KeyPaths(); !reflect.DeepEqual(documented, want) {
		t.Errorf("README reference rows differ from the schema\nmissing from README: %v\nnot in the schema:   %v\n(order must follow the schema)",
			difference(want, documented), difference(documented, want))
		if len(difference(want, documented)) == 0 && len(difference(documented, want)) == 0 {
			t.Errorf("same keys, different order:\nREADME: %v\nschema: %v", documented, want)
		}
	}
}

func difference(a, b []string) []string {
	in := map[string]bool{}
	for _, x := range b {
		in[x] = true
	}
	var out []string
	for _, x := range a {
		if !in[x] {
			out = append(out, x)
		}
	}
	return out
}
