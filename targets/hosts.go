package targets

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"sync"
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
// per host shell or command run outside one, one per SFTP subsystem);
// local hosts open none.
func (c *Connections) Sessions() int {
	return c.count(func(h *remote.SSH) int { return h.Sessions() })
}

// Commands counts the commands run on every SSH connection so far.
func (c *Connections) Commands() int {
	return c.count(func(h *remote.SSH) int { return h.Commands() })
}

// count adds up f over the SSH connections.
func (c *Connections) count(f func(*remote.SSH) int) int {
	n := 0
	for _, hosts := range c.hosts {
		for _, h := range hosts {
			if s, ok := h.(*remote.SSH); ok {
				n += f(s)
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

// hostRun is what a target does on the hosts of an environment.
type hostRun struct {
	// action names the run in the lock, the deploy log and the summary.
	action string
	// title names the run in the summary and the errors when it is not
	// action (a ship runs as an upgrade on the hosts).
	title string
	// check asks the steps to change nothing and record what they would
	// do; the plan of every host is printed before the summary.
	check bool
	// readOnly makes the run a report: a host that cannot be reached is
	// one failed host among the others instead of the end of the run,
	// and the target prints its own table instead of the summary.
	readOnly bool
	// lockFirst takes the lock of every host before anything else, or
	// none (lock.go); otherwise a step of the work takes it.
	lockFirst bool
	// prepare gives each host's work what the run brings (a release,
	// a rollback's choice) before anything reaches the host.
	prepare func(*Deploy)
	// before runs once with every host's work prepared (and locked), before
	// work.
	before func(context.Context, []*Deploy) error
	// work is what the run does on each host.
	work hostWork
	// phased, when set instead of work, runs the hosts together in
	// phases (fleet.go) and returns each host's outcome.
	phased func(context.Context, []*Deploy) map[*Deploy]hostOutcome
}

// onHosts connects to every host of the environment, prepares one Deploy
// per host, takes the locks (lockFirst), runs before once (when set),
// then work on each host in parallel or the phases; it releases every
// lock the run took, prints the summary table and returns an error
// naming every host that failed. The run is the one owner of the locks:
// a step may take a host's lock (lockStep), only the run releases it.
func onHosts(ctx context.Context, site *sites.Site, envName string, opts Options, run hostRun) ([]*Deploy, error) {
	env, err := site.Environment(envName)
	if err != nil {
		return nil, err
	}
	if opts.Out == nil {
		opts.Out = os.Stdout
	}
	title := run.title
	if title == "" {
		title = run.action
	}
	redactor := newRedactor(env, opts.Secrets)
	hosts, out, closeAll, err := run.connect(ctx, site, env, opts, remote.NewOutput(opts.Out, redactor))
	if err != nil {
		return nil, err
	}
	defer closeAll()
	deploys := make([]*Deploy, len(hosts))
	for i, h := range hosts {
		// Connect returns one connection per host of the site file, in
		// its order: here each becomes the Deploy that stands for it.
		entry := env.Hosts[i]
		d := NewDeploy(site, env, entry.Settings, h, out)
		d.Entry, d.Roles = entry, entry.Roles
		d.Check, d.LockWait, d.Action = run.check, opts.LockWait, run.action
		for k, v := range opts.Secrets {
			d.Secrets[k] = v
		}
		if run.prepare != nil {
			run.prepare(d)
		}
		deploys[i] = d
	}
	// Every lock the run took is released when it ends, whatever the
	// way: also a host whose work never started (Ctrl-C while it waited
	// for its turn).
	defer unlockAll(ctx, deploys)
	if run.lockFirst {
		if err := lockAll(ctx, deploys); err != nil {
			return deploys, redactor.RedactError(err)
		}
	}
	if run.before != nil {
		if err := run.before(ctx, deploys); err != nil {
			return deploys, redactor.RedactError(err)
		}
	}
	var outcomes map[*Deploy]hostOutcome
	if run.phased != nil {
		outcomes = run.phased(ctx, deploys)
	} else {
		f := newFleet(deploys, opts.Parallel)
		f.eachHost(ctx, opts.Parallel, run.work)
		outcomes = f.results()
	}
	unlockAll(ctx, deploys)
	rows := make([]SummaryRow, len(deploys))
	var failed []error
	for i, d := range deploys {
		o := outcomes[d]
		rows[i] = SummaryRow{Host: d.Host.Name(), Release: "-", Revision: "-", Changed: Changed(o.steps), Duration: o.duration, Err: o.err}
		if d.Release != "" {
			rows[i].Release, rows[i].Revision = d.Release, d.Revision
		}
		if o.err != nil {
			failed = append(failed, o.err)
		}
	}
	if !run.readOnly {
		if run.check {
			for _, d := range deploys {
				printPlan(opts.Out, d)
			}
		}
		PrintSummary(opts.Out, title, rows, run.check)
	}
	if len(failed) > 0 {
		return deploys, redactor.RedactError(fmt.Errorf("%s of %s failed on %d of %d hosts:\n%w", title, envName, len(failed), len(hosts), errors.Join(failed...)))
	}
	return deploys, nil
}

// newRedactor masks every form of the secrets in output and errors, and
// the password a proxy URL may carry.
func newRedactor(env *sites.Environment, values map[string]string) *remote.Redactor {
	redactor := &remote.Redactor{}
	for _, v := range values {
		redactor.Add(secrets.Forms(v)...)
	}
	for _, h := range env.Hosts {
		if u, err := url.Parse(h.Settings.Proxy); err == nil && u.User != nil {
			if p, ok := u.User.Password(); ok {
				redactor.Add(p)
			}
		}
	}
	return redactor
}

// connect opens the run's connections: those an earlier target of the
// same run opened (opts.Connections), or new ones that closeAll closes. A
// read-only run goes on without the hosts it cannot reach: each stands in
// as an unreachable host whose every command fails with why.
func (run hostRun) connect(ctx context.Context, site *sites.Site, env *sites.Environment, opts Options, out *remote.Output) (hosts []remote.Host, _ *remote.Output, closeAll func(), err error) {
	copts := ConnectOptions{TrustNewHosts: opts.TrustNewHosts, Output: out}
	if run.readOnly {
		hosts, errs := connectEach(ctx, site, env, copts)
		for i, err := range errs {
			if err != nil {
				hosts[i] = unreachable{name: env.Hosts[i].String(), err: err}
			}
		}
		return hosts, out, func() { closeHosts(hosts) }, nil
	}
	conns := opts.Connections
	closeAll = func() {}
	if conns == nil {
		conns = &Connections{}
		closeAll = conns.Close
	}
	hosts, out, err = conns.connect(ctx, site, env, copts)
	return hosts, out, closeAll, err
}

// unreachable stands for a host that could not be connected to.
type unreachable struct {
	name string
	err  error
}

func (u unreachable) Name() string { return u.name }
func (u unreachable) Run(context.Context, remote.Command) (*remote.Result, error) {
	return nil, u.err
}
func (u unreachable) Upload(context.Context, remote.Upload) (bool, error) { return false, u.err }
func (u unreachable) ReadFile(context.Context, string, bool) ([]byte, error) {
	return nil, u.err
}
func (u unreachable) Close() error { return nil }

// hostReport is what a read-only target found on one host, or why it
// found nothing.
type hostReport[T any] struct {
	d     *Deploy
	found T
	err   error
}

// report looks at every host of the environment without changing any:
// the facts step, then look. It returns one report per host, in the
// environment's order, and an error that names the hosts that could not
// be reached or read; the Out of opts is the caller's, for its table.
func report[T any](ctx context.Context, site *sites.Site, envName, action string, opts Options, look func(context.Context, *Deploy) (T, error)) ([]hostReport[T], error) {
	quiet := opts
	quiet.Out = io.Discard
	found := map[*Deploy]hostReport[T]{}
	var mu sync.Mutex
	deploys, err := onHosts(ctx, site, envName, quiet, hostRun{action: action, check: true, readOnly: true, work: func(ctx context.Context, d *Deploy) ([]StepResult, error) {
		r := hostReport[T]{d: d}
		if _, r.err = (factsStep{}).Run(ctx, d); r.err == nil {
			r.found, r.err = look(ctx, d)
		}
		mu.Lock()
		found[d] = r
		mu.Unlock()
		return nil, r.err
	}})
	if deploys == nil {
		return nil, err
	}
	reports := make([]hostReport[T], len(deploys))
	for i, d := range deploys {
		r, ok := found[d]
		if !ok {
			r = hostReport[T]{d: d, err: fmt.Errorf("not asked: %w", context.Cause(ctx))}
		}
		reports[i] = r
	}
	return reports, err
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
