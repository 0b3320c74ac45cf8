package targets

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"text/tabwriter"

	"github.com/djship/djship/remote"
	"github.com/djship/djship/sites"
)

// HostStatus is what status reports of one host.
type HostStatus struct {
	Host, Live, Revision, DeployedBy, DeployedAt, Previous string
	Kept                                                   int
	App, Web, Lock, Health                                 string
}

// Status reports every host of the environment: the live release and who
// deployed it when, the previous one, the releases kept, whether the
// application and web servers run, the lock, and a health check now.
func Status(ctx context.Context, site *sites.Site, envName string, opts Options) ([]HostStatus, error) {
	if opts.Out == nil {
		opts.Out = os.Stdout
	}
	quiet := opts
	quiet.Out = io.Discard
	found := map[*Deploy]HostStatus{}
	var mu sync.Mutex
	deploys, err := onHosts(ctx, site, envName, "status", quiet, true, nil, func(ctx context.Context, d *Deploy) ([]StepResult, error) {
		if _, err := (factsStep{}).Run(ctx, d); err != nil {
			return nil, err
		}
		s := d.status(ctx)
		mu.Lock()
		found[d] = s
		mu.Unlock()
		return nil, nil
	})
	if err != nil {
		return nil, err
	}
	statuses := make([]HostStatus, 0, len(deploys))
	for _, d := range deploys {
		statuses = append(statuses, found[d])
	}
	tw := tabwriter.NewWriter(opts.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "HOST\tLIVE\tREVISION\tDEPLOYED BY\tAT\tPREVIOUS\tKEPT\tAPP\tWEB\tLOCK\tHEALTH")
	for _, s := range statuses {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n", s.Host, s.Live, s.Revision, s.DeployedBy, s.DeployedAt, s.Previous, s.Kept, s.App, s.Web, s.Lock, s.Health)
	}
	return statuses, tw.Flush()
}

func (d *Deploy) status(ctx context.Context) HostStatus {
	s := HostStatus{Host: d.Host.Name(), Live: "-", Revision: "-", DeployedBy: "-", DeployedAt: "-", Previous: "-", App: "stopped", Web: "stopped", Lock: "free", Health: "-"}
	entries, _ := d.readLog(ctx)
	live := liveHistory(entries)
	if d.live {
		s.Live = d.previous
		for i := len(live) - 1; i >= 0; i-- {
			if live[i].Release == d.previous {
				s.Revision, s.DeployedBy, s.DeployedAt = live[i].Revision, live[i].User, live[i].Time
				if live[i].Previous != "" {
					s.Previous = live[i].Previous
				}
				break
			}
		}
	}
	if out, err := d.probe(ctx, shScript("count-complete", d.Paths.Releases)); err == nil {
		fmt.Sscan(out, &s.Kept)
	}
	if _, err := d.run(ctx, d.appService().status); err == nil {
		s.App = "running"
	}
	if _, err := d.run(ctx, remote.Sh("service", d.web().service, "status")); err == nil {
		s.Web = "running"
	}
	if out, _ := d.probe(ctx, shScript("read-file", d.Paths.Lock+"/info")); out != "" {
		s.Lock = "held: " + describeHolder(out)
	}
	if d.live {
		if err := d.checkHealthOnce(ctx, s.Revision); err != nil {
			s.Health = "failing: " + err.Error()
		} else {
			s.Health = "ok"
		}
	}
	return s
}

// checkHealthOnce asks the site once.
func (d *Deploy) checkHealthOnce(ctx context.Context, revision string) error {
	if d.Settings.Health.Revision == "none" || revision == "-" {
		revision = ""
	}
	r, err := d.askSite(ctx, revision)
	if err != nil {
		return err
	}
	if ok, why := d.ok(r, revision); !ok {
		return fmt.Errorf("%s", why)
	}
	return nil
}

// Releases prints the deploy log of every host: what was deployed or
// rolled back, when, by whom, and how it ended.
func Releases(ctx context.Context, site *sites.Site, envName string, opts Options) error {
	if opts.Out == nil {
		opts.Out = os.Stdout
	}
	quiet := opts
	quiet.Out = io.Discard
	logs := map[*Deploy][]logEntry{}
	var mu sync.Mutex
	deploys, err := onHosts(ctx, site, envName, "releases", quiet, true, nil, func(ctx context.Context, d *Deploy) ([]StepResult, error) {
		if _, err := (factsStep{}).Run(ctx, d); err != nil {
			return nil, err
		}
		entries, err := d.readLog(ctx)
		mu.Lock()
		logs[d] = entries
		mu.Unlock()
		return nil, err
	})
	if err != nil {
		return err
	}
	for _, d := range deploys {
		entries := logs[d]
		fmt.Fprintf(opts.Out, "%s\n", bold(d.Host.Name()))
		tw := tabwriter.NewWriter(opts.Out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  TIME\tACTION\tRELEASE\tREVISION\tUSER\tRESULT\t")
		for _, e := range entries {
			mark := ""
			if d.live && e.Release == d.previous && e.Result == "ok" {
				mark = "(live)"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Time, e.Action, e.Release, e.Revision, e.User, e.Result, mark)
		}
		tw.Flush()
	}
	return nil
}

// Unlock breaks the deploy lock of every host of the environment, after
// saying who held it.
func Unlock(ctx context.Context, site *sites.Site, envName string, opts Options) error {
	if opts.Out == nil {
		opts.Out = os.Stdout
	}
	_, err := onHosts(ctx, site, envName, "unlock", opts, false, nil, func(ctx context.Context, d *Deploy) ([]StepResult, error) {
		out, err := d.probe(ctx, shScript("break-lock", d.Paths.Lock))
		if err != nil {
			return nil, err
		}
		if !strings.HasSuffix(out, "removed") {
			d.note("no lock was held")
			return nil, nil
		}
		d.note("removed the lock held by %s", describeHolder(strings.TrimSpace(strings.TrimSuffix(out, "removed"))))
		return []StepResult{{Name: "unlock", Changed: true}}, nil
	})
	return err
}
