package targets

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/djship/djship/remote"
)

// switchBack makes the release that was live before this run live again:
// current back, and for uWSGI app.sock back to its instance, which still
// runs (or, when it is gone, a fresh one); gunicorn reloads.
func (d *Deploy) switchBack(ctx context.Context) error {
	if err := d.switchTo(ctx, d.facts.live); err != nil {
		return err
	}
	if !d.serves() {
		return nil // a worker host: recover restarts its processes
	}
	if !d.slotted() {
		return d.reloadApp(ctx)
	}
	if back, err := d.switchSlotBack(ctx); back || err != nil {
		return err
	}
	// app.sock never left the old instance: it serves if it runs.
	if _, err := d.run(ctx, d.app().service(d.slots.serving).status); d.slots.serving != "" && err == nil {
		return nil
	}
	failed := d.slots.serving
	if err := d.startSlot(ctx, d.facts.live, ""); err != nil {
		return err
	}
	if err := d.switchSlot(ctx); err != nil {
		return err
	}
	d.slots.retiring = failed
	return d.retire(ctx)
}

// recover puts the host back as it was after a failed upgrade or
// rollback: the database as it was before a rollback restored it, current
// back to the previous release (reloaded and checked) if the switch had
// happened, and the release folder this run built marked failed so that
// it never counts among the kept releases. It runs even after Ctrl-C, and
// returns cause with what it could not put back, or did, when the error
// alone would mislead.
func (d *Deploy) recover(ctx context.Context, cause error) error {
	ctx = context.WithoutCancel(ctx)
	if d.Release == "" {
		return cause
	}
	if errors.Is(cause, remote.ErrConnectionLost) {
		if err := d.reconnect(ctx); err != nil {
			return fmt.Errorf("%w\n  %s", cause, d.unreachable(err))
		}
	}
	if d.rollback.beforeRestore != "" {
		cause = d.undoRestore(ctx, cause)
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	d.stopStarted(ctx, false) // started beside the live release, never switched to
	if d.progress.switched {
		if d.facts.live != "" {
			d.note("switching back to %s", d.facts.live)
			if err := d.switchBack(ctx); err != nil {
				d.note("error: could not switch back to %s: %v", d.facts.live, err)
			} else if !d.serves() {
				d.note("%s is live again", d.facts.live)
			} else if err := d.checkHealth(ctx, ""); err != nil {
				d.note("error: the previous release does not answer either: %v", err)
			} else {
				d.note("%s is live again and answers", d.facts.live)
			}
			if d.progress.processes {
				if _, err := d.startProcesses(ctx, true); err != nil {
					d.note("error: could not restart the processes on %s: %v", d.facts.live, err)
				}
			}
		} else {
			// The first release failed: nothing was live before, nothing is now.
			d.run(ctx, remote.Sh("rm", "-f", "--", d.Paths.Current, d.Paths.AppSocket))
			switch {
			case !d.serves():
			case d.slotted():
				d.slots.started = d.slots.serving
				d.stopStarted(ctx, true)
			default:
				d.run(ctx, d.app().service("").stop)
			}
			for _, name := range d.processNames() {
				d.run(ctx, d.processService(name).stop)
			}
		}
	}
	if d.progress.built {
		if _, err := d.run(ctx, shScript("mark-release", d.releaseDir(), "failed")); err != nil {
			d.removeUnmarked(ctx, err)
		}
	}
	if d.lockHeld != "" && d.runsSite() {
		result := "failed"
		if errors.Is(cause, context.Canceled) {
			result = "cancelled"
		}
		d.logResult(ctx, result)
	}
	return cause
}

// reconnector is a host whose lost connection can be replaced by a new
// one (remote.SSH).
type reconnector interface {
	Reconnect(ctx context.Context) error
}

// reconnect connects to the host again after the connection was lost, so
// that recover can put the host back and the lock be released.
func (d *Deploy) reconnect(ctx context.Context) error {
	r, ok := d.Host.(reconnector)
	if !ok {
		return errors.New("this host cannot be connected to again")
	}
	d.note("the connection was lost: connecting again to put the host back")
	if err := r.Reconnect(ctx); err != nil {
		return err
	}
	d.note("connected again")
	return nil
}

// unreachable says what is left on a host that could not be reached
// again, and what to run once it answers. The lock stays: this run can
// no longer release it.
func (d *Deploy) unreachable(err error) string {
	d.holding("")
	d.progress.lost = true
	msg := fmt.Sprintf("djship could not connect again (%v), so this run's lock %s is still held and release %s is not marked failed.", err, d.Paths.Lock, d.Release)
	switch {
	case d.progress.switched && d.facts.live != "":
		msg += fmt.Sprintf(" The switch to %s had happened. Once the host answers, mage ship:%s brings it to one release with the others, or mage rollback:%s -to=%s makes %s live again (mage status:%s shows what is live).", d.Release, d.Env.Name, d.Env.Name, d.facts.live, d.facts.live, d.Env.Name)
	case d.progress.switched:
		msg += fmt.Sprintf(" The switch to %s, the first release, had happened. Once the host answers: mage status:%s, and ship again.", d.Release, d.Env.Name)
	case d.facts.live != "":
		msg += fmt.Sprintf(" Nothing switched: %s is still live. Once the host answers, the next ship removes the unfinished %s.", d.facts.live, d.Release)
	default:
		msg += fmt.Sprintf(" Nothing switched on this host. Once it answers, mage ship:%s ships again.", d.Env.Name)
	}
	// The next run from this machine finds the lock stale; one from
	// another machine cannot know that this run has ended.
	return msg + fmt.Sprintf(" The next run from this machine breaks the lock; from another machine, run mage unlock:%s first.", d.Env.Name)
}

// removeUnmarked removes this run's release folder when it could not be
// marked failed (a full disk, most often), so that it frees its space at
// once; the database snapshot stays. One that was ever live is only
// reported.
func (d *Deploy) removeUnmarked(ctx context.Context, err error) {
	if d.progress.switched {
		d.note("warning: could not mark %s failed: %v", d.Release, err)
		return
	}
	if _, rmErr := d.run(ctx, remote.Sh("rm", "-rf", "--", d.releaseDir())); rmErr != nil {
		d.note("warning: could not mark %s failed (%v) nor remove it (%v)", d.Release, err, rmErr)
		return
	}
	d.note("removed the unfinished %s, which could not be marked failed: %v", d.Release, err)
}
