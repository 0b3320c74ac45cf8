package targets

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/djship/djship/sites"
)

// HostStatus is what status reports of one host.
type HostStatus struct {
	Host, Live, Revision, DeployedBy, DeployedAt, Previous string
	Kept                                                   int
	App, Web, Processes, Lock, Health                      string
	// Image is the live release's image, pinned by digest, in container
	// mode; "" in process mode.
	Image string
	// HeldOut lists, on an lb host, the web hosts its balancer holds out
	// (as the site file names them).
	HeldOut []string
}

// Status reports every host of the environment: the live release and who
// deployed it when, the previous one, the releases kept, whether the
// application and web servers run, the lock, and a health check now. A
// host that cannot be reached or read is a row that says why; the table
// shows every host, and the error names the hosts that failed.
func Status(ctx context.Context, site *sites.Site, envName string, opts Options) ([]HostStatus, error) {
	if opts.Out == nil {
		opts.Out = os.Stdout
	}
	reports, err := report(ctx, site, envName, actionStatus, opts, func(ctx context.Context, d *Deploy) (HostStatus, error) {
		return d.status(ctx), nil
	})
	if reports == nil {
		return nil, err
	}
	statuses := make([]HostStatus, len(reports))
	heldOut := map[string]bool{}
	for i, r := range reports {
		statuses[i] = r.found
		if r.err != nil {
			statuses[i] = unknownStatus(r.d.Host.Name())
			statuses[i].Health = "unknown: " + firstLine(r.err.Error())
		}
		for _, h := range statuses[i].HeldOut {
			heldOut[h] = true
		}
	}
	// The release the fleet serves is the one most hosts in the balancer
	// run; a host held out counts only when no host is in.
	var apps, serving []int
	for i, r := range reports {
		if r.err == nil && r.d.runsSite() {
			apps = append(apps, i)
			if !heldOut[r.d.Entry.String()] {
				serving = append(serving, i)
			}
		}
	}
	if len(serving) == 0 {
		serving = apps
	}
	if apart := markApart(statuses, apps, serving); apart != "" {
		err = errors.Join(err, fmt.Errorf("the hosts do not run one release: %s: mage ship:%s brings every host to one release", apart, envName))
	}
	tw := tabwriter.NewWriter(opts.Out, 0, 4, 2, ' ', 0)
	images := false
	for _, s := range statuses {
		images = images || s.Image != ""
	}
	head := "HOST\tLIVE\tREVISION\tDEPLOYED BY\tAT\tPREVIOUS\tKEPT\tAPP\tWEB\tPROCESSES\tLOCK\tHEALTH"
	if images {
		head += "\tIMAGE"
	}
	fmt.Fprintln(tw, head)
	for _, s := range statuses {
		kept := "?"
		if s.Kept >= 0 {
			kept = fmt.Sprint(s.Kept)
		}
		line := fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s", s.Host, s.Live, s.Revision, s.DeployedBy, s.DeployedAt, s.Previous, kept, s.App, s.Web, s.Processes, s.Lock, s.Health)
		if images {
			line += "\t" + s.Image
		}
		fmt.Fprintln(tw, line)
	}
	if ferr := tw.Flush(); err == nil {
		err = ferr
	}
	return statuses, err
}

// markApart marks, among the rows apps, the hosts whose live release is
// not the one most of the rows serving run, and says which; "" when they
// all run one.
func markApart(statuses []HostStatus, apps, serving []int) string {
	all := map[string]bool{}
	for _, i := range apps {
		all[statuses[i].Live] = true
	}
	if len(all) < 2 {
		return ""
	}
	count := map[string]int{}
	for _, i := range serving {
		count[statuses[i].Live]++
	}
	most, n := "", 0
	for live, c := range count {
		if c > n || (c == n && live > most) {
			most, n = live, c
		}
	}
	var apart []string
	for _, i := range apps {
		if s := &statuses[i]; s.Live != most {
			apart = append(apart, s.Host+" runs "+s.Live)
			s.Live += " (apart)"
		}
	}
	return fmt.Sprintf("%s, the others %s", strings.Join(apart, ", "), most)
}

// unknownStatus is the row of a host that could not be read.
func unknownStatus(host string) HostStatus {
	return HostStatus{Host: host, Live: "?", Revision: "?", DeployedBy: "?", DeployedAt: "?", Previous: "?", Kept: -1, App: "?", Web: "?", Processes: "?", Lock: "?", Health: "unknown"}
}

// firstLine is the first line of a message.
func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

func (d *Deploy) status(ctx context.Context) HostStatus {
	s := HostStatus{Host: d.Host.Name(), Live: "-", Revision: "-", DeployedBy: "-", DeployedAt: "-", Previous: "-", App: "stopped", Web: "stopped", Processes: "-", Lock: "free", Health: "-"}
	entries, _ := d.readLog(ctx)
	live := liveHistory(entries)
	if d.facts.live != "" {
		s.Live = d.facts.live
		for i := len(live) - 1; i >= 0; i-- {
			if live[i].Release == d.facts.live {
				s.Revision, s.DeployedBy, s.DeployedAt = live[i].Revision, live[i].User, live[i].Time
				if live[i].Previous != "" {
					s.Previous = live[i].Previous
				}
				break
			}
		}
	}
	if d.facts.live != "" {
		s.Image = d.mode.image(ctx, d, d.facts.live)
	}
	if out, err := d.probe(ctx, shScript("count-complete", d.Paths.Releases)); err == nil {
		fmt.Sscan(out, &s.Kept)
	}
	switch {
	case !d.serves():
		// A worker, db or lb host runs no application server; only an
		// lb host runs a web server (its balancer).
		s.App, s.Web = "-", "-"
		if d.hasRole(sites.RoleLB) {
			s.Web = "stopped"
			if _, err := d.run(ctx, d.balancerService().status); err == nil {
				s.Web = "running"
			}
			if down := d.balancerDown(ctx); len(down) > 0 {
				s.HeldOut = slices.Sorted(maps.Keys(down))
				s.Health = "holds out " + strings.Join(s.HeldOut, ", ")
			}
		}
	default:
		if _, err := d.run(ctx, d.app().service(d.slots.serving).status); err == nil {
			s.App = "running"
		}
		if _, err := d.run(ctx, d.webService().status); err == nil {
			s.Web = "running"
		}
	}
	s.Processes = d.processStatus(ctx)
	if out, _ := d.probe(ctx, shScript("read-file", d.Paths.Lock+"/info")); out != "" {
		s.Lock = "held: " + describeHolder(out)
	}
	if d.facts.live != "" && d.serves() {
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
