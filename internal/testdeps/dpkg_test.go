package testdeps_test

import (
	"context"
	"reflect"
	"testing"

	"github.com/djship/djship/internal/testdeps"
	"github.com/djship/djship/internal/testenv"
)

// TestMissingAsksDpkg asks the machine's dpkg about a package every Debian
// system has and one none has.
func TestMissingAsksDpkg(t *testing.T) {
	testenv.Command(t, "dpkg-query", "dpkg")
	got, err := testdeps.Missing(context.Background(), []string{"dpkg", "djship-no-such-package"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"djship-no-such-package"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Missing = %q, want %q", got, want)
	}
}
