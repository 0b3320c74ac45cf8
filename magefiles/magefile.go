//go:build mage

// djship ships a Django site of sites/ to its hosts. Every target but
// demo and test comes from djship's djmage package, which any Django
// repository imports into its own magefile the same way.
package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"

	//mage:import
	_ "github.com/djship/djship/djmage"
	"github.com/djship/djship/internal/testdeps"
	"github.com/djship/djship/internal/testreport"
	"github.com/djship/djship/targets"
)

// Demo ships the example site to this machine (its demo environment) and prints the address where it answers.
func Demo(ctx context.Context) error {
	return targets.Demo(ctx, os.Stdout)
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
	// The end-to-end tests of targets/ take about ten minutes on two cores:
	// more than go test's default timeout.
	test := exec.Command("go", "test", "-count=1", "-timeout", "60m", "-json", "./...")
	test.Stderr = os.Stderr
	events, err := test.StdoutPipe()
	if err != nil {
		return err
	}
	if err := test.Start(); err != nil {
		return fmt.Errorf("go test: %w", err)
	}
	summary, readErr := testreport.Filter(events, os.Stdout)
	err = test.Wait()
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
		return fmt.Errorf("go test: %w", err)
	}
	if readErr != nil {
		return fmt.Errorf("go test: reading its report: %w", readErr)
	}
	fmt.Printf("%d tests passed, %d skipped\n", summary.Passed, summary.Skipped)
	return nil
}
