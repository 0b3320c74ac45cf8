package targets

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/djship/djship/remote"
	"github.com/djship/djship/sites"
)

// ConnectOptions tune Connect.
type ConnectOptions struct {
	// TrustNewHosts records the keys of hosts missing from known_hosts
	// instead of refusing them.
	TrustNewHosts bool
	// Output prints the hosts' progress.
	Output *remote.Output
}

// Connect opens one connection to every host of env, in parallel. If any
// host cannot be reached, the others are closed again and the error names
// every failing host.
func Connect(ctx context.Context, site *sites.Site, env *sites.Environment, opts ConnectOptions) ([]remote.Host, error) {
	hosts, errs := connectEach(ctx, site, env, opts)
	if err := errors.Join(errs...); err != nil {
		closeHosts(hosts)
		return nil, fmt.Errorf("connect to %s: %w", env.Name, err)
	}
	return hosts, nil
}

// connectEach opens one connection to every host of env, in parallel,
// and returns host by host the connection or why it failed.
func connectEach(ctx context.Context, site *sites.Site, env *sites.Environment, opts ConnectOptions) ([]remote.Host, []error) {
	hosts := make([]remote.Host, len(env.Hosts))
	errs := make([]error, len(env.Hosts))
	var wg sync.WaitGroup
	for i, h := range env.Hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			hosts[i], errs[i] = connectHost(ctx, site, h, opts)
		}()
	}
	wg.Wait()
	return hosts, errs
}

// closeHosts closes every connection that was opened.
func closeHosts(hosts []remote.Host) {
	for _, h := range hosts {
		if h != nil {
			h.Close()
		}
	}
}

func connectHost(ctx context.Context, site *sites.Site, h sites.Host, opts ConnectOptions) (remote.Host, error) {
	s := h.Settings
	if s.Connection == "local" {
		return remote.NewLocal(opts.Output), nil
	}
	o := remote.SSHOptions{
		Address:        h.Address,
		User:           h.User,
		Port:           h.Port,
		ProxyJump:      s.SSH.ProxyJump,
		TrustNewHosts:  opts.TrustNewHosts,
		ConnectTimeout: time.Duration(s.SSH.ConnectTimeout) * time.Second,
		Output:         opts.Output,

		SessionPerCommand: s.SSH.SessionPerCommand,
	}
	if s.SSH.Identity != "" {
		o.IdentityFiles = []string{expandHome(site, s.SSH.Identity)}
	}
	if s.SSH.KnownHosts != "" {
		o.KnownHosts = []string{expandHome(site, s.SSH.KnownHosts)}
	}
	host, err := remote.DialSSH(ctx, o)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", h, err)
	}
	return host, nil
}

// expandHome resolves ~/ against the home folder and other relative paths
// against the project root.
func expandHome(site *sites.Site, p string) string {
	if strings.HasPrefix(p, "~/") {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, p[2:])
		}
	}
	return site.Path(p)
}
