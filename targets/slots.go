package targets

import (
	"context"
	"fmt"
	"path"
	"time"

	"github.com/djship/djship/remote"
)

// A uWSGI site runs in two slots, a and b: two instances of Debian's
// uWSGI init script (<project>.a and <project>.b), each serving the
// release its slot link (<base>/slot-a, <base>/slot-b) points to. The web
// server connects through one more link, <base>/app.sock, to the socket
// of the live slot. A new release starts in the other slot beside the
// live one and must answer a request there before app.sock switches to
// it; the old instance stops once it has no request left. Starting takes
// one import of the application whatever the number of workers, a release
// that does not answer never serves a visitor, and switching back is one
// link while the old instance still runs.

// uwsgiSlots are the two slots.
var uwsgiSlots = []string{"a", "b"}

// otherSlot is the slot that is not slot; "a" when none is live.
func otherSlot(slot string) string {
	if slot == "a" {
		return "b"
	}
	return "a"
}

// stopSlotScript stops a slot's instance: drained first when visitors
// may have reached it.
func (d *Deploy) stopSlotScript(slot string, drain bool) string {
	return d.mode.stopSlot(d, slot, drain)
}

// startSlot starts release in the slot that does not serve visitors and
// waits until its workers answer the health request there. When they do
// not, the instance is stopped again and the error carries their answer
// and the application server's log; visitors never saw it.
func (d *Deploy) startSlot(ctx context.Context, release, revision string) error {
	slot := otherSlot(d.slots.serving)
	label := d.app().label(slot)
	if d.Check {
		d.plan("start %s with release %s beside the live one, then switch to it", label, release)
		return nil
	}
	d.slots.started = slot
	if err := d.mode.startSlot(ctx, d, release, slot); err != nil {
		return d.failStart(ctx, fmt.Errorf("%s with %s did not start, the live release keeps serving: %w", label, release, err))
	}
	r, good, target, err := d.askSlot(ctx, slot, revision)
	if err != nil {
		return d.failStart(ctx, fmt.Errorf("%w; the live release keeps serving", err))
	}
	if !good {
		why := "status " + r.status
		if _, w := d.ok(r, revision); w != "" {
			why = w
		}
		msg := fmt.Sprintf("the new workers of %s (%s) do not answer %s well: %s", release, label, target, why)
		if r.excerpt != "" {
			msg += "\n  body: " + r.excerpt
		}
		return d.failStart(ctx, fmt.Errorf("%s; the live release keeps serving", msg))
	}
	return nil
}

// startUWSGISlot starts release in a slot's uWSGI instance.
func (d *Deploy) startUWSGISlot(ctx context.Context, release, slot string) error {
	available, enabled := d.app().ini(slot)
	_, err := d.run(ctx, shScript("start-slot", d.app().instance(slot), d.Paths.slot(slot), path.Join("releases", release), available, enabled, script("stop-instance.sh"), script("uwsgi-instance.sh")))
	return err
}

// failStart stops the instance a failed start left and words the error
// with the application server's log.
func (d *Deploy) failStart(ctx context.Context, err error) error {
	err = d.withAppLog(ctx, err)
	d.stopStarted(ctx, false)
	return err
}

// stopStarted stops the instance this run started: at once when it never
// served (drain false), else once its requests are done.
func (d *Deploy) stopStarted(ctx context.Context, drain bool) {
	if d.slots.started == "" {
		return
	}
	if _, err := d.run(context.WithoutCancel(ctx), d.stopSlotScript(d.slots.started, drain)); err != nil {
		d.note("warning: could not stop %s: %v", d.app().label(d.slots.started), err)
		return
	}
	d.slots.started = ""
}

// pointSocket switches app.sock to a slot's socket atomically: the web
// server's next connection reaches that instance.
func (d *Deploy) pointSocket(ctx context.Context, slot string) error {
	tmp := d.Paths.AppSocket + ".djship-new"
	_, err := d.run(ctx, remote.Sh("ln", "-sfn", "--", d.app().socket(slot), tmp)+" && "+remote.Sh("mv", "-fT", "--", tmp, d.Paths.AppSocket))
	if err != nil {
		return fmt.Errorf("switching %s to %s: %w", d.Paths.AppSocket, d.app().label(slot), err)
	}
	return nil
}

// switchSlot makes the slot this run started the one visitors reach; the
// slot that served until now is retired later (retireStep).
func (d *Deploy) switchSlot(ctx context.Context) error {
	if d.slots.started == "" {
		return nil
	}
	if err := d.pointSocket(ctx, d.slots.started); err != nil {
		return err
	}
	d.slots.retiring, d.slots.serving, d.slots.started = d.slots.serving, d.slots.started, ""
	return nil
}

// switchSlotBack points app.sock at the slot that served before this run
// and stops the new one. It reports false when no old instance runs to
// go back to.
func (d *Deploy) switchSlotBack(ctx context.Context) (bool, error) {
	if d.slots.retiring == "" {
		return false, nil
	}
	if err := d.pointSocket(ctx, d.slots.retiring); err != nil {
		return true, err
	}
	d.slots.started, d.slots.serving, d.slots.retiring = d.slots.serving, d.slots.retiring, ""
	d.stopStarted(ctx, true)
	return true, nil
}

// retire stops the instance that served before the switch once it has
// finished its requests: on the host, detached, so that a long request
// does not hold up the run (the next start of that slot waits for it).
func (d *Deploy) retire(ctx context.Context) error {
	if d.slots.retiring == "" {
		return nil
	}
	if _, err := d.run(ctx, d.mode.drainSlot(d, d.slots.retiring)); err != nil {
		return fmt.Errorf("stopping %s, which served before: %w", d.app().label(d.slots.retiring), err)
	}
	d.slots.retiring = ""
	return nil
}

// startStep checks that the release answers before anything switches:
// uWSGI starts its workers beside the live ones, to serve after the
// switch; gunicorn runs it as a trial (trial.go), and its reload starts
// the workers that serve.
type startStep struct{}

func (startStep) Name() string { return "start new workers" }

// Skip leaves a worker host alone: it serves no visitors.
func (startStep) Skip(d *Deploy) bool { return !d.serves() }

func (startStep) Run(ctx context.Context, d *Deploy) (bool, error) {
	start := time.Now()
	if !d.slotted() {
		if err := d.tryGunicorn(ctx, d.Release, d.Revision); err != nil {
			return true, err
		}
		d.note("release %s answers on a trial gunicorn (%s)", d.Release, time.Since(start).Round(time.Millisecond))
		return true, nil
	}
	if err := d.startSlot(ctx, d.Release, d.Revision); err != nil {
		return true, err
	}
	d.note("%s answers with %s (%s)", d.app().label(d.slots.started), d.Release, time.Since(start).Round(time.Millisecond))
	return true, nil
}

// retireStep stops the workers that served before the switch once they
// are idle: only after the health check passed, so that switching back
// stays one link.
type retireStep struct{}

func (retireStep) Name() string { return "stop old workers" }

func (retireStep) Skip(d *Deploy) bool { return !d.slotted() || !d.serves() }

func (retireStep) Run(ctx context.Context, d *Deploy) (bool, error) {
	if d.slots.retiring == "" {
		return false, nil
	}
	if err := d.retire(ctx); err != nil {
		d.note("warning: %v; the new release is live", err)
	}
	return true, nil
}

// activateLive serves the live release from a fresh uWSGI instance: after
// provision changed the configuration, when no slot instance runs (a
// reboot that lost /run, or a host whose site ran before slots), or to
// take over from a host's single instance of earlier djship versions,
// whose files are removed once the new instance serves.
func (d *Deploy) activateLive(ctx context.Context, changed bool) (bool, error) {
	if !changed && d.slots.serving != "" {
		if _, err := d.run(ctx, d.app().service(d.slots.serving).status); err == nil {
			return false, nil
		}
	}
	if err := d.startSlot(ctx, d.facts.live, ""); err != nil {
		return true, err
	}
	if d.Check {
		return true, nil
	}
	if err := d.switchSlot(ctx); err != nil {
		d.stopStarted(ctx, false)
		return true, err
	}
	if err := d.retire(ctx); err != nil {
		d.note("warning: %v", err)
	}
	return true, nil
}

// slotName is the live slot's instance, "" when none is live.
func (d *Deploy) slotName() string {
	if d.slots.serving == "" {
		return ""
	}
	return d.app().instance(d.slots.serving)
}

// removeLegacyUWSGI stops the single uWSGI instance of earlier djship
// versions once a slot serves the site and the web server reaches it
// through app.sock, then removes its configuration.
func (d *Deploy) removeLegacyUWSGI(ctx context.Context) (bool, error) {
	a, p := d.app(), d.Settings.Instance
	available, enabled := a.legacyIni()
	out, err := d.probe(ctx, shScript("uwsgi-legacy", enabled, available, p))
	if err != nil || out != "legacy" {
		return false, err
	}
	if d.Check {
		d.plan("stop uwsgi %s, the single instance of earlier djship versions, and remove %s", p, available)
		return true, nil
	}
	if _, err := d.run(ctx, a.stopScript(p, enabled, true)+" && "+remote.Sh("rm", "-f", "--", available)); err != nil {
		return false, fmt.Errorf("stopping uwsgi %s, the single instance of earlier djship versions: %w", p, err)
	}
	d.note("uwsgi %s (one instance, as earlier djship versions ran it) stopped and removed: uwsgi %s serves the site", p, d.slotName())
	return true, nil
}
