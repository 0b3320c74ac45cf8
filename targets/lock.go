package targets

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// lockAll takes the lock on every host at once (each waits up to
// LockWait). When any host refuses, the locks taken are released again
// and nothing has changed anywhere.
func lockAll(ctx context.Context, deploys []*Deploy) error {
	errs := make([]error, len(deploys))
	var wg sync.WaitGroup
	for i, d := range deploys {
		wg.Go(func() { _, errs[i] = RunSteps(ctx, d, []Step{lockStep{}}) })
	}
	wg.Wait()
	var failed []error
	for _, err := range errs {
		if err != nil {
			failed = append(failed, err)
		}
	}
	if len(failed) == 0 {
		return nil
	}
	unlockAll(ctx, deploys)
	return fmt.Errorf("the lock could not be taken on %d of %d hosts, nothing changed on any host:\n%w", len(failed), len(deploys), errors.Join(failed...))
}

// lockStep takes the deploy lock: mkdir is atomic, so of two deploys
// only one gets it; the other is told who holds it. Only an existing lock
// is held by someone: any other failure of mkdir (no project folder, a
// read-only file system) says what failed and what to do.
type lockStep struct{}

func (lockStep) Name() string { return "lock" }

// lockInfo describes this run for the lock and the deploy log.
func lockInfo(target, revision string) string {
	who := "unknown"
	if u, err := user.Current(); err == nil {
		who = u.Username
	}
	host, _ := os.Hostname()
	return fmt.Sprintf("user=%s host=%s pid=%d time=%s target=%s revision=%s", who, host, os.Getpid(), time.Now().UTC().Format(time.RFC3339), target, revision)
}

func (lockStep) Run(ctx context.Context, d *Deploy) (bool, error) {
	if d.Check || d.lockHeld != "" {
		return false, nil
	}
	info := lockInfo(d.Action+":"+d.Env.Name, d.Revision)
	deadline := time.Now().Add(d.LockWait)
	waited := false
	for {
		out, err := d.probe(ctx, shScript("lock", d.Paths.Lock, info))
		if err != nil {
			return false, fmt.Errorf("taking the lock %s: %w", d.Paths.Lock, err)
		}
		status, rest, _ := strings.Cut(out, "\n")
		rest = strings.TrimSpace(rest)
		switch {
		case status == "taken":
			d.lockHeld = info
			return false, nil // holding the lock changes nothing of the site
		case strings.HasPrefix(status, "failed"):
			return false, d.lockFailure(strings.TrimSpace(strings.TrimPrefix(status, "failed")), rest)
		case status != "held":
			return false, fmt.Errorf("taking the lock %s: unexpected answer %q: run again, and report it if it stays", d.Paths.Lock, out)
		}
		if time.Now().Before(deadline) {
			if !waited {
				d.note("waiting up to %s for the lock held by %s", d.LockWait.Round(time.Second), describeHolder(rest))
				waited = true
			}
			select {
			case <-ctx.Done():
				return false, ctx.Err()
			case <-time.After(2 * time.Second):
			}
			continue
		}
		return false, fmt.Errorf("%s is held by %s: wait for that run to finish (DJSHIP_LOCK_WAIT=5m waits for it), or, if it died, break the lock with mage unlock:%s", d.Paths.Lock, describeHolder(rest), d.Env.Name)
	}
}

// lockFailure words a lock that could not be taken though nobody holds
// it: what failed, in the tool's words, and what to do.
func (d *Deploy) lockFailure(why, message string) error {
	if message == "" {
		message = "failed without a message"
	}
	if !strings.Contains(message, d.Paths.Lock) {
		message = d.Paths.Lock + ": " + message
	}
	base := d.Paths.Base
	switch why {
	case "missing":
		return fmt.Errorf("cannot take the lock: %s: %s does not exist, the host was never provisioned for %s: run mage provision:%s first", message, base, d.Settings.Instance, d.Env.Name)
	case "notdir":
		return fmt.Errorf("cannot take the lock: %s: %s is not a folder: move it away, then run mage provision:%s", message, base, d.Env.Name)
	case "notlock":
		return fmt.Errorf("cannot take the lock: %s: the lock is there but not a folder, so no djship run made it: look at it and remove it, then run again", message)
	case "info":
		return fmt.Errorf("cannot take the lock: writing its info failed: %s: free space on that file system or repair it, then run again", message)
	}
	return fmt.Errorf("cannot take the lock: %s: make %s writable for root (is its file system read-only or full, or is it immutable? lsattr -d shows that), then run again", message, base)
}

// describeHolder words a lock's info, and says when it looks stale: its
// process is gone from this machine, or it is hours old.
func describeHolder(info string) string {
	if info == "" {
		return "an unknown run (the lock has no info)"
	}
	fields := map[string]string{}
	for _, f := range strings.Fields(info) {
		if k, v, ok := strings.Cut(f, "="); ok {
			fields[k] = v
		}
	}
	s := fmt.Sprintf("%s of %s on %s (pid %s, %s, revision %s)", fields["target"], fields["user"], fields["host"], fields["pid"], fields["time"], fields["revision"])
	host, _ := os.Hostname()
	if pid, err := strconv.Atoi(fields["pid"]); err == nil && fields["host"] == host && syscall.Kill(pid, 0) == syscall.ESRCH {
		return s + "; it is stale: that process no longer runs"
	}
	if t, err := time.Parse(time.RFC3339, fields["time"]); err == nil && time.Since(t) > time.Hour {
		return s + fmt.Sprintf("; it may be stale: taken %s ago", time.Since(t).Round(time.Minute))
	}
	return s
}

// unlock releases the lock if this run holds it.
func (d *Deploy) unlock(ctx context.Context) {
	if d.lockHeld == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if _, err := d.run(ctx, shScript("unlock", d.Paths.Lock, d.lockHeld)); err != nil {
		d.note("warning: could not release %s: %v", d.Paths.Lock, err)
		return
	}
	d.lockHeld = ""
}

// unlockAll releases the locks this run holds on the hosts, each in
// parallel.
func unlockAll(ctx context.Context, deploys []*Deploy) {
	var wg sync.WaitGroup
	for _, d := range deploys {
		wg.Go(func() { d.unlock(ctx) })
	}
	wg.Wait()
}

// breakLock removes the lock whoever holds it, and says who did.
func (d *Deploy) breakLock(ctx context.Context) (bool, error) {
	out, err := d.probe(ctx, shScript("break-lock", d.Paths.Lock))
	if err != nil {
		return false, err
	}
	info, removed := strings.CutSuffix(out, "removed")
	if !removed {
		d.note("no lock was held")
		return false, nil
	}
	d.note("removed the lock held by %s", describeHolder(strings.TrimSpace(info)))
	return true, nil
}
