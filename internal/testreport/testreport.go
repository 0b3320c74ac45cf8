// Package testreport reads the event stream of `go test -json` and
// prints what a plain `go test` would (the output of failing tests, one
// line per package), while counting what it ran: so that the test
// command can end with a loud line when tests were skipped.
package testreport

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strings"
)

// event is one line of `go test -json` (cmd/test2json).
type event struct {
	Action  string
	Package string
	Test    string
	Output  string
	Elapsed float64
}

// Summary counts the tests of a run; subtests count on their own.
type Summary struct {
	Passed, Failed, Skipped int
	// SkippedTests are the skipped tests as package.TestName, sorted.
	SkippedTests []string
	// Durations are how long each top-level test that ended took, the
	// slowest first.
	Durations []Duration
}

// Duration is how long one test took.
type Duration struct {
	// Test is package.TestName.
	Test    string
	Seconds float64
}

// Slowest are the n slowest top-level tests of the run, the slowest
// first.
func (s Summary) Slowest(n int) []Duration {
	return s.Durations[:min(n, len(s.Durations))]
}

// Filter copies the run's report from r to w as plain go test prints
// it, and returns what ran. A line that is not an event (go's own
// messages) is copied as it is.
func Filter(r io.Reader, w io.Writer) (Summary, error) {
	var s Summary
	pending := map[string][]string{} // output of running tests, by package and name
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &e) != nil {
			fmt.Fprintf(w, "%s\n", line)
			continue
		}
		key := e.Package + " " + e.Test
		switch {
		case e.Action == "build-output":
			io.WriteString(w, e.Output)
		case e.Test == "" && e.Action == "output":
			// Package lines: ok, FAIL, "no test files", build errors; the
			// bare PASS that -json adds is not printed by plain go test.
			if strings.TrimSpace(e.Output) != "PASS" {
				io.WriteString(w, e.Output)
			}
		case e.Test == "":
		case e.Action == "output":
			// === RUN, PAUSE and CONT are the verbose mode's; plain go
			// test does not print them.
			if !strings.HasPrefix(e.Output, "=== ") {
				pending[key] = append(pending[key], e.Output)
			}
		case e.Action == "fail":
			s.Failed++
			s.addDuration(e)
			io.WriteString(w, strings.Join(pending[key], ""))
			delete(pending, key)
		case e.Action == "pass":
			s.Passed++
			s.addDuration(e)
			delete(pending, key)
		case e.Action == "skip":
			s.Skipped++
			s.SkippedTests = append(s.SkippedTests, e.Package+"."+e.Test)
			delete(pending, key)
		}
	}
	// A test that never ended (the package's timeout panicked, or its
	// binary died) has its output here still: it says why.
	for _, key := range slices.Sorted(maps.Keys(pending)) {
		fmt.Fprintf(w, "--- UNFINISHED: %s\n%s", strings.TrimSpace(key), strings.Join(pending[key], ""))
		s.Failed++
	}
	sort.Strings(s.SkippedTests)
	sort.SliceStable(s.Durations, func(i, j int) bool { return s.Durations[i].Seconds > s.Durations[j].Seconds })
	return s, sc.Err()
}

// Combine adds up the summaries of runs that went side by side.
func Combine(summaries ...Summary) Summary {
	var all Summary
	for _, s := range summaries {
		all.Passed += s.Passed
		all.Failed += s.Failed
		all.Skipped += s.Skipped
		all.SkippedTests = append(all.SkippedTests, s.SkippedTests...)
		all.Durations = append(all.Durations, s.Durations...)
	}
	sort.Strings(all.SkippedTests)
	sort.SliceStable(all.Durations, func(i, j int) bool { return all.Durations[i].Seconds > all.Durations[j].Seconds })
	return all
}

// addDuration records how long a top-level test took.
func (s *Summary) addDuration(e event) {
	if !strings.Contains(e.Test, "/") {
		s.Durations = append(s.Durations, Duration{Test: e.Package + "." + e.Test, Seconds: e.Elapsed})
	}
}
