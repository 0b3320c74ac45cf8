package targets

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/djship/djship/internal/testenv"
	"github.com/djship/djship/sites"
)

// BenchmarkFleetShip ships the example project (nginx, uWSGI, PostgreSQL
// on a db host) to 1, 4 and 8 simulated web hosts: fresh systemd machines
// of the fleet image on one bridge, all on this machine's cores. For each
// size, after a first ship, every round times a code-only ship (provision
// and upgrade, as mage ship:<env> runs them) done two ways, side by side:
//
//   - djship: the environment's hosts in phases (every host builds, one
//     migrates, every web host starts its workers, all switch at once);
//   - baseline: each host an environment of its own, all shipped at
//     once, each running the whole sequence alone (djship before phases:
//     a migrate on every host, no common switch).
//
// It prints the medians, the ratio to one host, the switch window (first
// to last switch) and the CPU seconds this machine spent per ship, which
// bound what 8 hosts can do on its cores. Then, with an nginx load
// balancer in front of the web hosts, it counts the requests that fail
// through it during a rolling ship (25% of the web hosts at a time) and
// during the rolling rollback after it. bench/fleet.sh runs it:
//
//	DJSHIP_BENCH_ROUNDS=3 DJSHIP_BENCH_HOSTS=1,4,8 go test -run '^$' -bench '^BenchmarkFleetShip$' -benchtime 1x -timeout 60m ./targets
func BenchmarkFleetShip(b *testing.B) {
	needMachineExample(b)
	rounds := 3
	if v, err := strconv.Atoi(os.Getenv("DJSHIP_BENCH_ROUNDS")); err == nil && v > 0 {
		rounds = v
	}
	sizes := []int{1, 4, 8}
	if v := os.Getenv("DJSHIP_BENCH_HOSTS"); v != "" {
		sizes = nil
		for _, f := range strings.Split(v, ",") {
			if n, err := strconv.Atoi(strings.TrimSpace(f)); err == nil && n > 0 {
				sizes = append(sizes, n)
			}
		}
	}
	results := map[int]*fleetFigures{}
	for _, n := range sizes {
		b.Run(fmt.Sprintf("hosts=%d", n), func(b *testing.B) {
			results[n] = benchFleetSize(b, n, rounds)
		})
	}
	printFleetFigures(sizes, results, rounds)
}

// fleetFigures are one size's measurements, every round.
type fleetFigures struct {
	first                      time.Duration
	rolling, rollback          time.Duration
	rollingLoad, rollbackLoad  loadCount
	djship, baseline           []time.Duration
	window, baselineWindow     []time.Duration
	cpu, baselineCPU           []float64
	migrations, baselineMigrat []int
}

func benchFleetSize(b *testing.B, n, rounds int) *fleetFigures {
	f := testenv.NewFleet(b, n+2, false)
	roles := append(repeat(n, "web"), "db", "lb")
	site, src := fleetSite(b, f, 91, roles, "")
	base := baselineSite(b, site, f, n)
	revisions := 0
	tarball := func() string {
		revisions++
		views := filepath.Join(src, "notes", "views.py")
		data := must(os.ReadFile(views))
		os.WriteFile(views, append(data, fmt.Sprintf("# b%d\n", revisions)...), 0o644)
		a, err := buildRelease(b, site, map[string]string{"REVISION": fmt.Sprintf("b%d", revisions)})
		if err != nil {
			b.Fatal(err)
		}
		return a.Path
	}
	fig := &fleetFigures{}
	start := time.Now()
	benchShipFleet(b, site, []string{"test"}, tarball())
	fig.first = time.Since(start)
	for r := 0; r < rounds; r++ {
		res := benchShipFleet(b, site, []string{"test"}, tarball())
		fig.djship, fig.window, fig.cpu, fig.migrations = append(fig.djship, res.wall), append(fig.window, res.window), append(fig.cpu, res.cpu), append(fig.migrations, res.migrations)
		res = benchShipFleet(b, base, base.EnvironmentNames(), tarball())
		fig.baseline, fig.baselineWindow, fig.baselineCPU, fig.baselineMigrat = append(fig.baseline, res.wall), append(fig.baselineWindow, res.window), append(fig.baselineCPU, res.cpu), append(fig.baselineMigrat, res.migrations)
	}
	// A rolling ship (a quarter of the web hosts at a time, each out of
	// the balancer while it switches) and a rolling rollback, under load
	// through the load balancer.
	site.Environments["test"].Settings.Fleet.Rolling = sites.Rolling{Batch: "25%"}
	lb := f.Hosts[n+1].Addr
	l := balancedLoad(site, lb, 4, 0)
	fig.rolling = benchShipFleet(b, site, []string{"test"}, tarball()).wall
	fig.rollingLoad = finishLoad(l)
	l = balancedLoad(site, lb, 4, 0)
	start = time.Now()
	var out bytes.Buffer
	if _, err := Rollback(context.Background(), site, "test", RollbackOptions{Options: Options{Out: &out, Secrets: shipSecrets}}); err != nil {
		b.Fatalf("rollback: %v\n%s", err, out.String())
	}
	fig.rollback = time.Since(start)
	fig.rollbackLoad = finishLoad(l)
	return fig
}

// loadCount is what the load saw: requests, failed connections, answers
// other than 200.
type loadCount struct{ total, failed, bad int64 }

func finishLoad(l *load) loadCount {
	time.Sleep(500 * time.Millisecond)
	total, failed, bad, _ := l.finish()
	return loadCount{total, failed, bad}
}

// repeat is n copies of s.
func repeat(n int, s string) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}

// baselineSite is the fleet site with each web host an environment of
// its own (h0, h1, …) that reaches the db host's database by its address.
func baselineSite(b *testing.B, site *sites.Site, f *testenv.Fleet, n int) *sites.Site {
	data := must(os.ReadFile(site.File))
	head, _, _ := strings.Cut(string(data), "environments:\n")
	head = strings.Replace(head, "database: {engine: postgres}", "database: {engine: postgres, host: "+f.Hosts[n].Addr+"}", 1)
	var envs strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&envs, "  h%d:\n    hosts: [%s@%s]\n", i, testenv.SudoUser, f.Hosts[i].SSHAddr())
	}
	dir := filepath.Dir(filepath.Dir(site.File))
	s, err := sites.Parse(filepath.Join(dir, "sites", "baseline.yaml"), []byte(head+"environments:\n"+envs.String()))
	if err != nil {
		b.Fatal(err)
	}
	s.Root = site.Root
	return s
}

// fleetRun is one timed ship of one or more environments at once.
type fleetRun struct {
	wall, window time.Duration
	cpu          float64
	migrations   int
}

// benchShipFleet ships the tarball to every environment of envs at once
// (provision, then upgrade, over one connection per host) and measures
// the time, the switch window over all hosts, this machine's CPU seconds
// and the migrations run.
func benchShipFleet(b *testing.B, site *sites.Site, envs []string, tarball string) fleetRun {
	cpu := cpuSeconds()
	start := time.Now()
	var wg sync.WaitGroup
	outs := make([]bytes.Buffer, len(envs))
	deploys := make([][]*Deploy, len(envs))
	errs := make([]error, len(envs))
	for i, env := range envs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			deploys[i], errs[i] = Ship(context.Background(), site, env, tarball, Options{Out: &outs[i], Secrets: shipSecrets})
		}()
	}
	wg.Wait()
	r := fleetRun{wall: time.Since(start), cpu: cpuSeconds() - cpu}
	var first, last time.Time
	for i := range envs {
		if errs[i] != nil {
			b.Fatalf("ship %s: %v\n%s", envs[i], errs[i], outs[i].String())
		}
		r.migrations += strings.Count(outs[i].String(), "changed  migrate (")
		for _, d := range deploys[i] {
			at := d.progress.switchedAt
			if at.IsZero() {
				continue
			}
			if first.IsZero() || at.Before(first) {
				first = at
			}
			if at.After(last) {
				last = at
			}
		}
	}
	r.window = last.Sub(first)
	return r
}

// cpuSeconds is the CPU time this machine has spent, all cores, from
// /proc/stat (user, nice, system, irq, softirq), in seconds.
func cpuSeconds() float64 {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(data), "\n")
	f := strings.Fields(line)
	total := 0.0
	for _, i := range []int{1, 2, 3, 6, 7} {
		if i < len(f) {
			v, _ := strconv.ParseFloat(f[i], 64)
			total += v
		}
	}
	return total / 100 // USER_HZ
}

func printFleetFigures(sizes []int, results map[int]*fleetFigures, rounds int) {
	one := results[1]
	fmt.Printf("\ncode-only ship to N web hosts and a db host, medians of %d rounds (this machine: %d cores for every host)\n", rounds, runtime.NumCPU())
	fmt.Printf("%-6s %10s %10s %9s %9s %14s %14s %9s %9s %10s\n", "hosts", "djship", "baseline", "ratio", "vs 1 host", "window", "base window", "cpu-s", "base cpu", "migrates")
	for _, n := range sizes {
		r := results[n]
		if r == nil || len(r.djship) == 0 {
			continue
		}
		vs := "-"
		if one != nil && len(one.djship) > 0 {
			vs = fmt.Sprintf("%.2f×", median(r.djship).Seconds()/median(one.djship).Seconds())
		}
		fmt.Printf("%-6d %9.2fs %9.2fs %8.2f× %9s %14s %14s %9.1f %9.1f %5d/%-4d\n", n,
			median(r.djship).Seconds(), median(r.baseline).Seconds(), median(r.djship).Seconds()/median(r.baseline).Seconds(), vs,
			median(r.window).Round(time.Millisecond), median(r.baselineWindow).Round(time.Millisecond),
			medianFloat(r.cpu), medianFloat(r.baselineCPU), medianInt(r.migrations), medianInt(r.baselineMigrat))
	}
	fmt.Printf("\nthrough the load balancer, 4 clients, each request on a new connection\n")
	fmt.Printf("%-6s %14s %22s %14s %22s\n", "hosts", "rolling ship", "requests/failed/non-200", "rollback", "requests/failed/non-200")
	for _, n := range sizes {
		if r := results[n]; r != nil {
			fmt.Printf("%-6d %13.2fs %22s %13.2fs %22s\n", n, r.rolling.Seconds(), fmt.Sprintf("%d/%d/%d", r.rollingLoad.total, r.rollingLoad.failed, r.rollingLoad.bad),
				r.rollback.Seconds(), fmt.Sprintf("%d/%d/%d", r.rollbackLoad.total, r.rollbackLoad.failed, r.rollbackLoad.bad))
		}
	}
	for _, n := range sizes {
		if r := results[n]; r != nil {
			fmt.Printf("%d hosts: first ship %.1fs; rounds djship %s, baseline %s\n", n, r.first.Seconds(), secondsList(r.djship), secondsList(r.baseline))
		}
	}
}

func secondsList(ds []time.Duration) string {
	var parts []string
	for _, d := range ds {
		parts = append(parts, fmt.Sprintf("%.2f", d.Seconds()))
	}
	return strings.Join(parts, " ")
}

func medianFloat(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64{}, v...)
	sort.Float64s(s)
	return s[len(s)/2]
}
