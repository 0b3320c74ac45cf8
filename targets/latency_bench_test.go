package targets

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/djship/djship/internal/testenv"
	"github.com/djship/djship/sites"
)

// BenchmarkLatency ships the example site (nginx, uWSGI, sqlite) to this
// machine over SSH through a proxy that delays each direction by each
// one-way delay of DJSHIP_BENCH_DELAYS (milliseconds, default 0,25,50),
// as a distant host would be. Each round times djship's full ship to a
// clean host and code-only ship, and the floor's (one ssh session doing
// the same work, bench/ship.sh); it prints the medians and, for each
// delay, the time added over the first delay divided by the round trip
// added: the round trips each kind of ship waits for. bench/latency.sh
// runs it:
//
//	DJSHIP_BENCH_ROUNDS=3 go test -run '^$' -bench '^BenchmarkLatency$' -benchtime 1x -timeout 60m ./targets
func BenchmarkLatency(b *testing.B) {
	client, sshd, rounds := benchStack(b, 3)
	delays, err := benchDelays(os.Getenv("DJSHIP_BENCH_DELAYS"))
	if err != nil {
		b.Fatal(err)
	}
	site, src := exampleSite(b, shipCase{web: "nginx", app: "uwsgi", db: "sqlite", connection: "ssh"}, 61, sshd)
	env := site.Environments["test"]
	tarball := codeOnlyReleases(b, site, src)
	first, firstRev := tarball()
	var rows []latencyRow
	for range b.N {
		rows = nil
		for _, delay := range delays {
			proxy := testenv.StartDelayProxy(b, sshd.Addr(), delay)
			through := *sshd
			through.Port, through.KnownHosts = proxy.Port, proxy.KnownHosts(b, sshd)
			env.Hosts[0].Port = proxy.Port
			eachHost(env, func(s *sites.Settings) { s.SSH.KnownHosts = through.KnownHosts })
			row := latencyRow{delay: delay}
			for range rounds {
				removeSite(site)
				full := benchDjship(b, site, &through, first)
				code, _ := tarball()
				codeOnly := benchDjship(b, site, &through, code)
				removeSite(site)
				fullFloor := benchFloor(b, client, site, &through, first, firstRev, true)
				code, rev := tarball()
				codeFloor := benchFloor(b, client, site, &through, code, rev, false)
				row.full, row.code = append(row.full, full.wall), append(row.code, codeOnly.wall)
				row.fullFloor, row.codeFloor = append(row.fullFloor, fullFloor), append(row.codeFloor, codeFloor)
				row.sessions = append(row.sessions, codeOnly.sessions)
				row.commands = append(row.commands, codeOnly.commands)
			}
			rows = append(rows, row)
		}
	}
	printLatency(os.Stdout, rounds, rows)
	for _, r := range rows[1:] {
		unit := fmt.Sprintf("-%dms", r.delay.Milliseconds())
		b.ReportMetric(roundTrips(rows[0].code, r.code, rows[0].delay, r.delay), "code-only-round-trips"+unit)
		b.ReportMetric(roundTrips(rows[0].full, r.full, rows[0].delay, r.delay), "full-round-trips"+unit)
	}
}

// benchDelays parses a list of one-way delays in milliseconds.
func benchDelays(list string) ([]time.Duration, error) {
	if list == "" {
		list = "0,25,50"
	}
	var out []time.Duration
	for _, f := range strings.Split(list, ",") {
		ms, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || ms < 0 {
			return nil, fmt.Errorf("DJSHIP_BENCH_DELAYS=%q: want one-way delays in milliseconds, like 0,25,50", list)
		}
		out = append(out, time.Duration(ms)*time.Millisecond)
	}
	if len(out) < 2 {
		return nil, fmt.Errorf("DJSHIP_BENCH_DELAYS=%q: want at least two delays, the first the baseline", list)
	}
	return out, nil
}

// latencyRow is every round's times at one delay.
type latencyRow struct {
	delay                            time.Duration
	full, code, fullFloor, codeFloor []time.Duration
	sessions, commands               []int
}

// roundTrips is how many round trips the time a kind of ship took at
// delay over what it took at baseDelay stands for: the medians'
// difference over the round-trip time added.
func roundTrips(baseTimes, times []time.Duration, baseDelay, delay time.Duration) float64 {
	added := median(times) - median(baseTimes)
	return added.Seconds() / (2 * (delay - baseDelay)).Seconds()
}

func printLatency(w io.Writer, rounds int, rows []latencyRow) {
	sec := func(ds []time.Duration) string { return fmt.Sprintf("%.2f s", median(ds).Seconds()) }
	base := rows[0]
	fmt.Fprintf(w, "\nship of the example site over SSH through a delaying proxy, medians of %d rounds\n", rounds)
	fmt.Fprintf(w, "%-10s %-8s %-11s %-11s %-15s %-15s %s\n", "one way", "RTT", "full ship", "full floor", "code-only ship", "code-only floor", "sessions / commands (code-only)")
	for _, r := range rows {
		fmt.Fprintf(w, "%-10s %-8s %-11s %-11s %-15s %-15s %d / %d\n", r.delay, 2*r.delay, sec(r.full), sec(r.fullFloor), sec(r.code), sec(r.codeFloor), medianInt(r.sessions), medianInt(r.commands))
	}
	fmt.Fprintf(w, "round trips waited for (time added over %s one way, divided by the round trip added):\n", base.delay)
	fmt.Fprintf(w, "%-10s %-11s %-11s %-15s %s\n", "one way", "full ship", "full floor", "code-only ship", "code-only floor")
	for _, r := range rows[1:] {
		rt := func(b, t []time.Duration) string { return fmt.Sprintf("%.0f", roundTrips(b, t, base.delay, r.delay)) }
		fmt.Fprintf(w, "%-10s %-11s %-11s %-15s %s\n", r.delay, rt(base.full, r.full), rt(base.fullFloor, r.fullFloor), rt(base.code, r.code), rt(base.codeFloor, r.codeFloor))
	}
}
