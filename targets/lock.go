package targets

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
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
	info := fmt.Sprintf("user=%s host=%s pid=%d time=%s target=%s revision=%s run=%s", who, host, os.Getpid(), time.Now().UTC().Format(time.RFC3339), target, revision, runID())
	if id := thisMachine(); id != "" {
		info += " machine=" + id
	}
	return info
}

// thisMachine names this machine in a lock's info: a digest of its
// systemd machine id, which host names (often alike: "laptop",
// "MacBook-Pro") are not. "" where it has none: a lock of such a machine
// is never taken for stale.
var thisMachine = sync.OnceValue(func() string {
	for _, f := range []string{"/etc/machine-id", "/var/lib/dbus/machine-id"} {
		if data, err := os.ReadFile(f); err == nil && len(strings.TrimSpace(string(data))) >= 16 {
			sum := sha256.Sum256([]byte("djship lock " + strings.TrimSpace(string(data))))
			return hex.EncodeToString(sum[:6])
		}
	}
	return ""
})

// runID tells apart the runs of one process that take a lock within the
// same second.
func runID() string {
	b := make([]byte, 6)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// heldHere holds the lock infos of the runs of this process that hold
// their lock now: a lock that names this process but is not among them
// was left by a run that ended without releasing it (its host was
// unreachable at the end).
var heldHere sync.Map

// holding records that this run holds the lock with info, or, for "",
// that it holds none any more.
func (d *Deploy) holding(info string) {
	if d.lockHeld != "" && d.lockHeld != info {
		heldHere.Delete(d.lockHeld)
	}
	d.lockHeld = info
	if info != "" {
		heldHere.Store(info, true)
	}
}

func (lockStep) Run(ctx context.Context, d *Deploy) (bool, error) {
	if d.Check || d.lockHeld != "" {
		return false, nil
	}
	info := lockInfo(d.Action+":"+d.Env.Name, d.Revision)
	// Held here from before it is taken, so that another run of this
	// process never takes it for stale in between.
	heldHere.Store(info, true)
	defer func() {
		if d.lockHeld != info {
			heldHere.Delete(info)
		}
	}()
	deadline := time.Now().Add(d.LockWait)
	waited := false
	broken := "" // the info of a stale lock this run broke
	for {
		out, err := d.probe(ctx, shScript("lock", d.Paths.Lock, info))
		if err != nil {
			return false, fmt.Errorf("taking the lock %s: %w", d.Paths.Lock, err)
		}
		status, rest, _ := strings.Cut(out, "\n")
		rest = strings.TrimSpace(rest)
		switch {
		case status == "taken":
			d.holding(info)
			return false, nil // holding the lock changes nothing of the site
		case strings.HasPrefix(status, "failed"):
			return false, d.lockFailure(strings.TrimSpace(strings.TrimPrefix(status, "failed")), rest)
		case status != "held":
			return false, fmt.Errorf("taking the lock %s: unexpected answer %q: run again, and report it if it stays", d.Paths.Lock, out)
		}
		if why := staleHolder(rest); why != "" && rest != broken {
			// A run of this machine that was killed, or that lost its
			// host, left it: nobody holds it any more.
			if err := d.breakStaleLock(ctx, rest); err != nil {
				return false, err
			}
			d.note("broke the lock left by %s: %s", describeRun(rest), why)
			broken = rest
			continue
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
	s := describeRun(info)
	if why := staleHolder(info); why != "" {
		return s + "; it is stale: " + why
	}
	if t, err := time.Parse(time.RFC3339, lockFields(info)["time"]); err == nil && time.Since(t) > time.Hour {
		return s + fmt.Sprintf("; it may be stale: taken %s ago", time.Since(t).Round(time.Minute))
	}
	return s
}

// describeRun words the run a lock's info names.
func describeRun(info string) string {
	f := lockFields(info)
	return fmt.Sprintf("%s of %s on %s (pid %s, %s, revision %s)", f["target"], f["user"], f["host"], f["pid"], f["time"], f["revision"])
}

// lockFields are the key=value fields of a lock's info.
func lockFields(info string) map[string]string {
	fields := map[string]string{}
	for _, f := range strings.Fields(info) {
		if k, v, ok := strings.Cut(f, "="); ok {
			fields[k] = v
		}
	}
	return fields
}

// staleHolder says why the run a lock's info names has ended, or ""
// when it may still run. Only a run of this machine (the same machine
// id, not just the same host name) can be known to have ended: its
// process no longer runs, or it is this process and no run of it holds
// that lock. A run of another machine may still run.
func staleHolder(info string) string {
	f := lockFields(info)
	pid, err := strconv.Atoi(f["pid"])
	if err != nil || pid <= 0 || thisMachine() == "" || f["machine"] != thisMachine() {
		return ""
	}
	if pid == os.Getpid() {
		if _, held := heldHere.Load(info); held {
			return ""
		}
		return "the run of this process that took it has ended"
	}
	if syscall.Kill(pid, 0) == syscall.ESRCH {
		return "that process no longer runs"
	}
	return ""
}

// staleLocksFile opens the file whose flock lets one run of this user at
// a time break a stale lock.
func staleLocksFile() (*os.File, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		return nil, err
	}
	dir = filepath.Join(dir, "djship")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	return os.OpenFile(filepath.Join(dir, "stale-locks"), os.O_CREATE|os.O_RDWR|syscall.O_NOFOLLOW, 0o600)
}

// breakStaleLock removes the lock only if it still holds info (unlock
// checks that), one run of this machine at a time, so that of two runs
// that found the same stale lock the second never removes the lock the
// first has taken since.
func (d *Deploy) breakStaleLock(ctx context.Context, info string) error {
	// In the user's own cache folder: a file in /tmp could be made and
	// held by another local user.
	f, err := staleLocksFile()
	if err == nil {
		defer f.Close()
		if syscall.Flock(int(f.Fd()), syscall.LOCK_EX) == nil {
			defer syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		}
	}
	if _, err := d.run(ctx, shScript("unlock", d.Paths.Lock, info)); err != nil {
		return fmt.Errorf("breaking the stale lock %s: %w", d.Paths.Lock, err)
	}
	return nil
}

// unlock releases the lock if this run holds it.
func (d *Deploy) unlock(ctx context.Context) {
	if d.lockHeld == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	_, err := d.run(ctx, shScript("unlock", d.Paths.Lock, d.lockHeld))
	// The run is over either way: a lock it could not release is stale
	// to the next run.
	d.holding("")
	if err != nil {
		d.note("warning: could not release %s: %v; the next run from this machine breaks it", d.Paths.Lock, err)
	}
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
