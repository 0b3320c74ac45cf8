package targets

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/djship/djship/remote"
	"github.com/djship/djship/sites"
)

// ManageOptions tune Manage.
type ManageOptions struct {
	Options
	// Host picks the host, by its name in the site file (user@address:port)
	// or its address; the environment's first when empty.
	Host string
	// Terminal is where the command reads and writes; with TTY the host
	// gives it a terminal (manage.py shell, createsuperuser, dbshell).
	Terminal remote.Terminal
}

// Manage runs manage.py with args in the live release of one host of the
// environment, as the application's user, in the application's
// environment, connected to opts.Terminal. It changes nothing else.
func Manage(ctx context.Context, site *sites.Site, envName string, args []string, opts ManageOptions) error {
	env, err := site.Environment(envName)
	if err != nil {
		return err
	}
	host, err := pickHost(env, opts.Host)
	if err != nil {
		return err
	}
	if opts.Out == nil {
		opts.Out = os.Stdout
	}
	one := *env
	one.Hosts = []sites.Host{host}
	redactor := newRedactor(env, opts.Secrets)
	out := remote.NewOutput(opts.Out, redactor)
	hosts, err := Connect(ctx, site, &one, ConnectOptions{TrustNewHosts: opts.TrustNewHosts, Output: out})
	if err != nil {
		return err
	}
	defer closeHosts(hosts)
	d := NewDeploy(site, &one, host.Settings, hosts[0], out)
	d.Action = actionManage
	for k, v := range opts.Secrets {
		d.Secrets[k] = v
	}
	if _, err := (factsStep{}).Run(ctx, d); err != nil {
		return redactor.RedactError(fmt.Errorf("%s: %w", host, err))
	}
	if d.facts.live == "" {
		return fmt.Errorf("%s: no release is live, so there is no manage.py to run: ship one first (mage ship:%s)", host, envName)
	}
	c := d.manageCommand(d.facts.live, nil, args...)
	terminal := opts.Terminal
	c.Terminal = &terminal
	if _, err := d.Host.Run(ctx, c); err != nil {
		return redactor.RedactError(fmt.Errorf("manage.py %s on %s: %w", strings.Join(args, " "), host, err))
	}
	return nil
}

// pickHost is the host of env that name names, or the first.
func pickHost(env *sites.Environment, name string) (sites.Host, error) {
	if len(env.Hosts) == 0 {
		return sites.Host{}, fmt.Errorf("the environment %s has no host", env.Name)
	}
	if name == "" {
		return env.Hosts[0], nil
	}
	var names []string
	for _, h := range env.Hosts {
		if h.String() == name || h.Address == name {
			return h, nil
		}
		names = append(names, h.String())
	}
	return sites.Host{}, fmt.Errorf("%s has no host %q: choose one of %s", env.Name, name, strings.Join(names, ", "))
}
