package targets

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/djship/djship/remote"
	"github.com/djship/djship/sites"
	"github.com/djship/djship/sites/secrets"
)

// Options tune the targets that work on hosts.
type Options struct {
	// Out receives progress, plans and the summary; os.Stdout when nil.
	Out io.Writer
	// TrustNewHosts records unknown host keys instead of refusing them.
	TrustNewHosts bool
	// Secrets are the environment's decrypted secret values.
	Secrets map[string]string
	// Parallel is how many hosts are worked on at once; all when 0.
	Parallel int
	// LockWait is how long to wait for another run's deploy lock.
	LockWait time.Duration
	// Connections, when set, keeps the hosts' connections open for the
	// next target of the same run (Ship: provision, then upgrade, over one
	// connection per host); its owner closes them.
	Connections *Connections
}

// Connections are the open connections of one run, by environment, with
// the output they print to.
type Connections struct {
	out   *remote.Output
	hosts map[string][]remote.Host
}

// Close closes every connection.
func (c *Connections) Close() {
	for _, hosts := range c.hosts {
		for _, h := range hosts {
			h.Close()
		}
	}
	c.hosts = nil
}

// Sessions counts the SSH sessions opened on the connections so far (one
// per command, one per SFTP subsystem); local hosts open none.
func (c *Connections) Sessions() int {
	n := 0
	for _, hosts := range c.hosts {
		for _, h := range hosts {
			if s, ok := h.(interface{ Sessions() int }); ok {
				n += s.Sessions()
			}
		}
	}
	return n
}

// connect returns the environment's connections, opened by an earlier
// target of the run or now.
func (c *Connections) connect(ctx context.Context, site *sites.Site, env *sites.Environment, opts ConnectOptions) ([]remote.Host, *remote.Output, error) {
	if hosts, ok := c.hosts[env.Name]; ok {
		return hosts, c.out, nil
	}
	hosts, err := Connect(ctx, site, env, opts)
	if err != nil {
		return nil, nil, err
	}
	if c.hosts == nil {
		c.hosts = map[string][]remote.Host{}
	}
	c.hosts[env.Name], c.out = hosts, opts.Output
	return hosts, opts.Output, nil
}

// hostWork is what one target does on one host.
type hostWork func(ctx context.Context, d *Deploy) ([]StepResult, error)

// onHosts connects to every host of the environment, runs before once
// with every host's work prepared (when set), then work on each host in
// parallel; it prints the summary table and returns an error naming every
// host that failed.
func onHosts(ctx context.Context, site *sites.Site, envName, title string, opts Options, check bool, before func(context.Context, []*Deploy) error, work hostWork) ([]*Deploy, error) {
	env, err := site.Environment(envName)
	if err != nil {
		return nil, err
	}
	if opts.Out == nil {
		opts.Out = os.Stdout
	}
	redactor := &remote.Redactor{}
	for _, v := range opts.Secrets {
		redactor.Add(secrets.Forms(v)...)
	}
	// A proxy URL may carry a password.
	for _, h := range env.Hosts {
		if u, err := url.Parse(h.Settings.Proxy); err == nil && u.User != nil {
			if p, ok := u.User.Password(); ok {
				redactor.Add(p)
			}
		}
	}
	out := remote.NewOutput(opts.Out, redactor)
	conns := opts.Connections
	if conns == nil {
		conns = &Connections{}
		defer conns.Close()
	}
	hosts, out, err := conns.connect(ctx, site, env, ConnectOptions{TrustNewHosts: opts.TrustNewHosts, Output: out})
	if err != nil {
		return nil, err
	}
	deploys := make([]*Deploy, len(hosts))
	index := map[remote.Host]int{}
	for i, h := range hosts {
		index[h] = i
		deploys[i] = NewDeploy(site, env, env.Hosts[i].Settings, h, out)
		deploys[i].Check, deploys[i].LockWait, deploys[i].Action = check, opts.LockWait, title
		for k, v := range opts.Secrets {
			deploys[i].Secrets[k] = v
		}
	}
	if before != nil {
		if err := before(ctx, deploys); err != nil {
			return deploys, redactor.RedactError(err)
		}
	}
	rows := make([]SummaryRow, len(hosts))
	results := remote.Each(ctx, hosts, opts.Parallel, func(ctx context.Context, h remote.Host) error {
		i := index[h]
		steps, err := work(ctx, deploys[i])
		deploys[i].unlock(ctx)
		rows[i].Changed = Changed(steps)
		return err
	})
	// A host whose work never started (Ctrl-C while it waited for its
	// turn) may hold the lock that before took.
	for _, d := range deploys {
		d.unlock(ctx)
	}
	var failed []error
	for i, r := range results {
		rows[i].Host, rows[i].Duration, rows[i].Err = r.Host, r.Duration, r.Err
		rows[i].Release, rows[i].Revision = "-", "-"
		if d := deploys[i]; d.Release != "" {
			rows[i].Release, rows[i].Revision = d.Release, d.Revision
		}
		if r.Err != nil {
			failed = append(failed, r.Err)
		}
	}
	if check {
		for _, d := range deploys {
			printPlan(opts.Out, d)
		}
	}
	PrintSummary(opts.Out, title, rows, check)
	if len(failed) > 0 {
		return deploys, redactor.RedactError(fmt.Errorf("%s of %s failed on %d of %d hosts:\n%w", title, envName, len(failed), len(hosts), errors.Join(failed...)))
	}
	return deploys, nil
}

// Provision prepares and configures every host of the environment.
func Provision(ctx context.Context, site *sites.Site, env string, opts Options) error {
	_, err := onHosts(ctx, site, env, "provision", opts, false, nil, func(ctx context.Context, d *Deploy) ([]StepResult, error) {
		return RunSteps(ctx, d, ProvisionSteps())
	})
	return err
}

// Plan shows what Provision would change on every host of the
// environment, with a diff of every file, and changes nothing.
func Plan(ctx context.Context, site *sites.Site, env string, opts Options) ([]*Deploy, error) {
	return onHosts(ctx, site, env, "plan", opts, true, nil, func(ctx context.Context, d *Deploy) ([]StepResult, error) {
		return RunSteps(ctx, d, ProvisionSteps())
	})
}

// printPlan prints what a host's steps would do.
func printPlan(w io.Writer, d *Deploy) {
	fmt.Fprintf(w, "\n%s %s\n", bold("plan for"), bold(d.Host.Name()))
	if len(d.Planned) == 0 {
		fmt.Fprintln(w, "  nothing to change")
		return
	}
	for _, p := range d.Planned {
		if strings.HasPrefix(p, "--- ") {
			for _, l := range strings.Split(p, "\n") {
				switch {
				case strings.HasPrefix(l, "+") && !strings.HasPrefix(l, "+++"):
					l = green(l)
				case strings.HasPrefix(l, "-") && !strings.HasPrefix(l, "---"):
					l = red(l)
				}
				fmt.Fprintf(w, "    %s\n", l)
			}
			continue
		}
		fmt.Fprintf(w, "  %s %s\n", yellow("~"), p)
	}
}

// SummaryRow is one host's line of the summary table.
type SummaryRow struct {
	Host     string
	Release  string
	Revision string
	Changed  int
	Duration time.Duration
	Err      error
}
