package targets

import (
	"context"
	"fmt"
	"path"
	"strings"

	"github.com/djship/djship/templates"
)

// A gunicorn site has one master that serves visitors; its reload starts
// the new release's workers beside the old ones on the same socket, so a
// release that cannot answer would reach visitors there. Before anything
// switches, the release therefore runs once as a trial: a gunicorn of its
// own with one worker, on a socket no visitor reaches, which must answer
// the health request as the web server would ask it (scripts/
// gunicorn-trial.sh, scripts/app-probe.py). Then the trial stops, and the
// reload starts the release for visitors.

// tryGunicorn runs the new release as a trial and fails, with its
// traceback, unless it answers the health request well. Nothing that
// serves visitors is touched.
func (d *Deploy) tryGunicorn(ctx context.Context, release, revision string) error {
	s := d.Settings
	if d.Check {
		d.plan("try release %s on a gunicorn of its own before gunicorn %s reloads", release, d.app().unit())
		return nil
	}
	dir := path.Join(d.Paths.Releases, release)
	res, err := d.run(ctx, shScript("gunicorn-trial", "start", path.Join(dir, "venv", "bin", "python"), templates.GunicornLauncherPath,
		path.Join(dir, "src", path.Clean(s.Django.SourceFolder)), s.App.User, s.App.Group, d.Paths.Environment,
		s.Django.SettingsFolder+".wsgi:application", fmt.Sprint(s.App.Timeout)))
	trial := ""
	if res != nil {
		trial = strings.TrimSpace(string(res.Stdout))
	}
	// A failed trial's log stays in the release folder, which is kept
	// until pruned.
	kept := path.Join(dir, "trial.log")
	stop := func(keep string) {
		if trial == "" {
			return
		}
		words := []string{"stop", trial}
		if keep != "" {
			words = append(words, keep)
		}
		if _, err := d.run(context.WithoutCancel(ctx), shScript("gunicorn-trial", words...)); err != nil {
			d.note("warning: could not stop the trial gunicorn in %s: %v", trial, err)
		}
	}
	fail := func(err error) error {
		stop(kept)
		return withLog(err, d.logTail(ctx, kept), kept)
	}
	if err != nil {
		return fail(fmt.Errorf("the trial gunicorn of %s did not start, the live release keeps serving: %w", release, err))
	}
	r, good, target, err := d.askApp(ctx, "http", path.Join(trial, "socket"), path.Join(trial, "pid"), revision)
	if err != nil {
		return fail(fmt.Errorf("asking the trial gunicorn of %s: %w; the live release keeps serving", release, err))
	}
	if good {
		stop("")
		return nil
	}
	why := "status " + r.status
	if _, w := d.ok(r, revision); w != "" {
		why = w
	}
	msg := fmt.Sprintf("release %s, tried on a gunicorn of its own, does not answer %s well: %s", release, target, why)
	if r.excerpt != "" {
		msg += "\n  body: " + r.excerpt
	}
	return fail(fmt.Errorf("%s; the live release keeps serving", msg))
}
