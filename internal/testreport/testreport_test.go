package testreport

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestFilterReadsARealRun runs go test -json on a small module with a
// passing, a failing, a skipped and a subtest-skipping test, and checks
// the plain report and the counts.
func TestFilterReadsARealRun(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module example.com/m\n\ngo 1.22\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "m_test.go"), []byte(`package m

import "testing"

func TestPasses(t *testing.T) { t.Log("quiet when it passes") }
func TestFails(t *testing.T)  { t.Error("this one fails loudly") }
func TestSkips(t *testing.T)  { t.Skip("needs root") }
func TestSome(t *testing.T) {
	t.Run("runs", func(t *testing.T) {})
	t.Run("skips", func(t *testing.T) { t.Skip("needs nginx") })
}
`), 0o644)
	cmd := exec.Command("go", "test", "-count=1", "-json", "./...")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS=", "GOWORK=off")
	out, _ := cmd.Output() // the run fails: one test fails
	var plain bytes.Buffer
	s, err := Filter(bytes.NewReader(out), &plain)
	if err != nil {
		t.Fatal(err)
	}
	got := plain.String()
	for _, want := range []string{"--- FAIL: TestFails", "this one fails loudly", "FAIL\texample.com/m"} {
		if !strings.Contains(got, want) {
			t.Errorf("report lacks %q:\n%s", want, got)
		}
	}
	for _, unwanted := range []string{"quiet when it passes", "=== RUN", "needs root"} {
		if strings.Contains(got, unwanted) {
			t.Errorf("report shows %q:\n%s", unwanted, got)
		}
	}
	if s.Failed != 1 || s.Skipped != 2 || s.Passed != 3 {
		t.Errorf("summary = %+v, want 3 passed (TestPasses, TestSome, TestSome/runs), 1 failed, 2 skipped", s)
	}
	if strings.Join(s.SkippedTests, ",") != "example.com/m.TestSkips,example.com/m.TestSome/skips" {
		t.Errorf("skipped = %v", s.SkippedTests)
	}
	var timed []string
	for _, d := range s.Durations {
		timed = append(timed, d.Test)
	}
	if len(timed) != 3 || !slices.Contains(timed, "example.com/m.TestSome") || slices.Contains(timed, "example.com/m.TestSome/runs") {
		t.Errorf("durations of %v; want TestPasses, TestFails and TestSome (top-level tests that ended, not skipped)", timed)
	}
}

func TestSlowestComeFirst(t *testing.T) {
	run := `{"Action":"pass","Package":"p","Test":"TestQuick","Elapsed":0.5}
{"Action":"pass","Package":"p","Test":"TestSlow/sub","Elapsed":90}
{"Action":"pass","Package":"p","Test":"TestSlow","Elapsed":91}
{"Action":"fail","Package":"q","Test":"TestMiddle","Elapsed":12}
`
	s, err := Filter(strings.NewReader(run), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprint(s.Slowest(2))
	if want := "[{p.TestSlow 91} {q.TestMiddle 12}]"; got != want {
		t.Errorf("slowest two: %s; want %s", got, want)
	}
	if n := len(s.Slowest(10)); n != 3 {
		t.Errorf("slowest ten of three tests: %d", n)
	}
}

func TestFilterCopiesOtherLines(t *testing.T) {
	var out bytes.Buffer
	s, err := Filter(strings.NewReader("go: downloading x\n{\"Action\":\"output\",\"Package\":\"p\",\"Output\":\"ok  \\tp\\t0.1s\\n\"}\n"), &out)
	if err != nil || out.String() != "go: downloading x\nok  \tp\t0.1s\n" || s.Passed+s.Failed+s.Skipped != 0 {
		t.Errorf("got %q, %+v, %v", out.String(), s, err)
	}
}

func TestFilterShowsTestsThatNeverEnded(t *testing.T) {
	events := strings.Join([]string{
		`{"Action":"run","Package":"p","Test":"TestSlow"}`,
		`{"Action":"output","Package":"p","Test":"TestSlow","Output":"=== RUN   TestSlow\n"}`,
		`{"Action":"output","Package":"p","Test":"TestSlow","Output":"panic: test timed out after 10m0s\n"}`,
		`{"Action":"output","Package":"p","Output":"FAIL\tp\t600.018s\n"}`,
		`{"Action":"fail","Package":"p","Elapsed":600}`,
	}, "\n")
	var out strings.Builder
	s, err := Filter(strings.NewReader(events), &out)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "--- UNFINISHED: p TestSlow\npanic: test timed out after 10m0s\n") || s.Failed != 1 {
		t.Errorf("failed %d, report:\n%s", s.Failed, out.String())
	}
}
