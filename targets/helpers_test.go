package targets

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/djship/djship/internal/testarchive"
	"github.com/djship/djship/internal/testsite"
	"github.com/djship/djship/release"
	"github.com/djship/djship/sites"
)

// The project and tarball helpers the host tests share with the release
// package's tests.
var (
	project     = testsite.Project
	writeSite   = testsite.WriteSite
	copyTree    = testsite.CopyTree
	write       = testsite.Write
	readTarball = testarchive.Read
)

// buildRelease runs mage release for the site into its dist/, with env
// as the whole environment.
func buildRelease(t testing.TB, site *sites.Site, env map[string]string) (*release.Artifact, error) {
	t.Helper()
	return release.Build(context.Background(), site, release.Options{Dist: filepath.Join(site.Root, "dist"), Getenv: testsite.Getenv(env)})
}
