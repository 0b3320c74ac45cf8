package targets

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/djship/djship/remote"
)

// TestDiskFullSaysWhereToFreeSpace checks what a failed step's error
// says, from the host's own message or from what df answers after it.
func TestDiskFullSaysWhereToFreeSpace(t *testing.T) {
	for _, c := range []struct {
		name, df string
		err      error
		want     string // "" when the error must come back unchanged
		asksDF   bool
	}{
		{name: "the host says so", err: errors.New("tar: src/app.py: Cannot write: No space left on device"),
			want: "the disk of fake is full (tar: src/app.py: Cannot write: No space left on device): free space on /srv/www/shop (df -h /srv/www/shop"},
		{name: "df finds the releases' file system full", err: errors.New("mark-release: 4: printf: printf: I/O error"),
			df: "120 /srv/www/shop/releases\n812000 /\n812000 /", asksDF: true,
			want: "the disk of fake is full (mark-release: 4: printf: printf: I/O error): free space on /srv/www/shop/releases (df -h /srv/www/shop/releases"},
		{name: "df finds /tmp full", err: errors.New("pip: error"),
			df: "812000 /\n812000 /\n0 /tmp", asksDF: true,
			want: "free space on /tmp (df -h /tmp"},
		{name: "room left", err: errors.New("migrate: exited with 1"), df: "812000 /\n812000 /\n812000 /tmp", asksDF: true},
		{name: "df cannot tell", err: errors.New("migrate: exited with 1"), asksDF: true},
		{name: "the connection is lost", err: fmt.Errorf("fake: new session: EOF (%w)", remote.ErrConnectionLost)},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := &fakeHost{}
			if c.df != "" {
				h.rules = []fakeRule{{contains: "df -Pk ", stdout: c.df}}
			}
			d, _ := fakeDeploy(h, 3)
			got := diskFull(context.Background(), d, c.err)
			if c.want == "" {
				if got != c.err {
					t.Errorf("the error became %v, want it unchanged", got)
				}
			} else if !strings.Contains(got.Error(), c.want) || !errors.Is(got, c.err) || !strings.Contains(got.Error(), "then ship again") {
				t.Errorf("the error is\n%v\nwant it to contain %q, wrap the step's and say to ship again", got, c.want)
			}
			if asked := len(h.commands("df -Pk ")) > 0; asked != c.asksDF {
				t.Errorf("df asked: %v, want %v (%q)", asked, c.asksDF, h.ran)
			}
		})
	}
}
