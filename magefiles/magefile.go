//go:build mage

// djship ships a Django site of sites/ to its hosts. Every target but
// demo and test comes from djship's djmage package, which any Django
// repository imports into its own magefile the same way.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	//mage:import
	_ "github.com/djship/djship/djmage"
	"github.com/djship/djship/internal/testdeps"
	"github.com/djship/djship/internal/testreport"
	"github.com/djship/djship/remote"
	"github.com/djship/djship/targets"
)

// Demo ships the example site to this machine (its demo environment) and prints the address where it answers.
func Demo(ctx context.Context) error {
	return targets.Demo(ctx, os.Stdout)
}

// machineTests are the end-to-end tests that boot fresh machines of their
// own (systemd-nspawn): the test command runs them in a go test of their
// own, side by side with every other test, since they share nothing of
// this machine's services with those.
const machineTests = "^(TestFleet|TestFleetFaults|TestFreshSystemdHosts|TestTwelveFactorOnAFreshHost|TestDemoOnAMachineWithOnlyGo|TestContainerModeOnAFreshSystemdHost)$"

// goTestSideBySide runs every test in two go test runs at once: the
// machine tests of targets/ (beside each other), and all the others;
// it prints what plain go test would and returns the two runs' summary.
func goTestSideBySide() (testreport.Summary, error) {
	runs := [][]string{
		{"test", "-count=1", "-timeout", "90m", "-json", "-skip", machineTests, "./..."},
		{"test", "-count=1", "-timeout", "90m", "-json", "-parallel", "4", "-run", machineTests, "./targets"},
	}
	out := remote.NewLockedWriter(os.Stdout)
	summaries := make([]testreport.Summary, len(runs))
	errs := make([]error, len(runs))
	var wg sync.WaitGroup
	for i, args := range runs {
		wg.Go(func() { summaries[i], errs[i] = goTest(args, out) })
	}
	wg.Wait()
	return testreport.Combine(summaries...), errors.Join(errs...)
}

// goTest runs go with args (a go test -json) and copies its report to out.
func goTest(args []string, out io.Writer) (testreport.Summary, error) {
	test := exec.Command("go", args...)
	test.Stderr = os.Stderr
	events, err := test.StdoutPipe()
	if err != nil {
		return testreport.Summary{}, err
	}
	if err := test.Start(); err != nil {
		return testreport.Summary{}, fmt.Errorf("go test: %w", err)
	}
	summary, readErr := testreport.Filter(events, out)
	if err := test.Wait(); err != nil {
		return summary, fmt.Errorf("go %s: %w", strings.Join(args, " "), err)
	}
	if readErr != nil {
		return summary, fmt.Errorf("go test: reading its report: %w", readErr)
	}
	return summary, nil
}

// Test checks formatting, runs go vet and runs every test, as CI does. As
// root on Debian it first installs the Debian packages the tests need and
// starts their services.
func Test(ctx context.Context) error {
	if os.Geteuid() == 0 {
		if err := testdeps.Ensure(ctx, os.Stdout); err != nil {
			return fmt.Errorf("preparing this machine for the tests: %w", err)
		}
	}
	out, err := exec.Command("gofmt", "-l", ".").Output()
	if err != nil {
		return fmt.Errorf("gofmt: %w", err)
	}
	if files := strings.TrimSpace(string(out)); files != "" {
		return fmt.Errorf("these files need gofmt -w:\n%s", files)
	}
	vet := exec.Command("go", "vet", "./...")
	vet.Stdout, vet.Stderr = os.Stdout, os.Stderr
	if err := vet.Run(); err != nil {
		return fmt.Errorf("go vet: %w", err)
	}
	start := time.Now()
	summary, err := goTestSideBySide()
	took := time.Since(start).Round(time.Second)
	if summary.Skipped > 0 {
		fmt.Printf("\n%d TESTS WERE SKIPPED: they need root and Debian's services (nginx, Apache, uWSGI, gunicorn, PostgreSQL, OpenSSH, Django).\n", summary.Skipped)
		fmt.Println(`Run every one of them as root, which installs the packages they need first: go tool mage test (with sudo: sudo env PATH="$PATH" go tool mage test)`)
	}
	if slowest := summary.Slowest(10); len(slowest) > 0 {
		fmt.Println("\nThe 10 slowest tests:")
		for _, d := range slowest {
			fmt.Printf("  %8.1fs  %s\n", d.Seconds, d.Test)
		}
	}
	if err != nil {
		return err
	}
	fmt.Printf("%d tests passed, %d skipped, in %s\n", summary.Passed, summary.Skipped, took)
	return nil
}
