package djmage

import (
	"sync"

	"github.com/djship/djship/release"
	"github.com/djship/djship/sites"
	"github.com/djship/djship/targets"
)

// loaded is what this mage run has read and built, each once: the site
// file, each environment's decrypted secrets and the release. Targets
// that run one after the other in the same run (ship: release, then
// provision and upgrade) hand them on here: the site is parsed once, the
// secrets are decrypted once, and ship upgrades the very tarball release
// returned rather than the one dist/.last-release names.
var loaded runState

type runState struct {
	mu       sync.Mutex
	envs     map[string]map[string]string
	artifact *release.Artifact
}

// selectSite reads the site file of the repository once.
var selectSite = sync.OnceValues(sites.Select)

// site is the site file of the repository, read on first use.
func (r *runState) site() (*sites.Site, error) { return selectSite() }

// secrets are the environment's decrypted secrets, every one the hosts
// need (targets.LoadSecrets), decrypted on first use.
func (r *runState) secrets(site *sites.Site, env string) (map[string]string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if values, ok := r.envs[env]; ok {
		return values, nil
	}
	values, err := targets.LoadSecrets(site, env)
	if err != nil {
		return nil, err
	}
	if r.envs == nil {
		r.envs = map[string]map[string]string{}
	}
	r.envs[env] = values
	return values, nil
}

// setArtifact records the release this run built.
func (r *runState) setArtifact(a *release.Artifact) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.artifact = a
}

// lastArtifact is the release this run built, nil when none.
func (r *runState) lastArtifact() *release.Artifact {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.artifact
}
