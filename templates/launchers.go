package templates

import "encoding/json"

// The application's environment lives in one file on the host, a JSON
// object of names and values (secrets among them, so root-owned and
// readable by the application's group only) named by DJSHIP_ENVIRONMENT.
// Small launchers, installed in LauncherDir, read it before they start
// anything, so that uWSGI, gunicorn (with or without systemd) and every
// manage.py command djship runs get the same environment. Each also
// sets DJANGO_STATIC_ROOT to the static/ folder of the release whose
// virtualenv runs it (collectstatic writes there, and the web server
// serves it) and DJSHIP_REVISION to that release's revision. A gunicorn
// master re-executed on USR2 inherits its old environment: the launcher
// first removes the names it set then (DJSHIP_ENVIRONMENT_NAMES), so
// that the new master has exactly the file's variables and its own
// release's.

// LauncherDir is where the launchers are installed on a host. It holds
// nothing else, and becomes sys.path[0] of a launcher: nothing there can
// hide a module.
const LauncherDir = "/usr/local/lib/djship"

// The launchers' paths on a host.
const (
	GunicornLauncherPath = LauncherDir + "/run_gunicorn.py"
	ManageLauncherPath   = LauncherDir + "/run_manage.py"
	ProcessLauncherPath  = LauncherDir + "/run_process.py"
	WSGILauncherPath     = LauncherDir + "/" + WSGIModule + ".py"
)

// WSGIModule is the module both application servers serve: uWSGI as its
// wsgi-file, gunicorn as WSGIModule:application (LauncherDir is its
// sys.path[0]).
const WSGIModule = "djship_wsgi"

// RenderEnvironment is the application's environment file as the
// launchers read it: one JSON object, its names sorted.
func RenderEnvironment(env map[string]string) ([]byte, error) {
	data, err := json.MarshalIndent(env, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(data, '\n'), nil
}

// loadEnvironment is the part every launcher starts with.
const loadEnvironment = `import json
import os
import sys


def load_environment():
    """Puts the site's environment, the JSON object in the file that
    DJSHIP_ENVIRONMENT names, into os.environ, in place of what an
    earlier load put there; then DJANGO_STATIC_ROOT, the static/ folder of
    the release this Python runs from, and DJSHIP_REVISION, its
    revision."""
    path = os.environ.get("DJSHIP_ENVIRONMENT")
    if not path:
        sys.exit("djship: DJSHIP_ENVIRONMENT names no environment file")
    with open(path, encoding="utf-8") as f:
        values = json.load(f)
    for name in os.environ.get("DJSHIP_ENVIRONMENT_NAMES", "").split():
        os.environ.pop(name, None)
    os.environ.pop("DJSHIP_REVISION", None)
    os.environ.update(values)
    os.environ["DJSHIP_ENVIRONMENT_NAMES"] = " ".join(sorted(values))
    release = os.path.dirname(os.path.realpath(sys.prefix))
    os.environ["DJANGO_STATIC_ROOT"] = os.path.join(release, "static")
    try:
        with open(os.path.join(release, "src", "DJSHIP-MANIFEST.json"), encoding="utf-8") as f:
            os.environ["DJSHIP_REVISION"] = json.load(f)["revision"]
    except (OSError, ValueError, KeyError):
        pass


load_environment()
`

// GunicornLauncher starts gunicorn from a file of its own rather than with
// python -m gunicorn: gunicorn re-executes itself on USR2 with the same
// argv, and re-running gunicorn/__main__.py would put gunicorn's package
// folder first on sys.path, where its http module hides the standard
// library's. A re-executed master reads the environment file again.
const GunicornLauncher = `# Managed by djship: starts gunicorn in the site's environment; see the
# gunicorn init script or unit.
` + loadEnvironment + `
from gunicorn.app.wsgiapp import run  # noqa: E402

run()
`

// ManageLauncher runs manage.py of the current folder with the arguments
// it is given, in the site's environment, with the Python that runs it
// (the release's virtualenv).
const ManageLauncher = `# Managed by djship: runs manage.py in the site's environment, e.g.
#   DJSHIP_ENVIRONMENT=... <release>/venv/bin/python run_manage.py migrate
# in the folder of manage.py.
` + loadEnvironment + `
os.execv(sys.executable, [sys.executable, "manage.py"] + sys.argv[1:])
`

// WSGILauncher is the application both servers serve: the site's
// environment first, then the project's WSGI application, named by
// DJSHIP_WSGI (module:callable). Django logs a request's error (with its
// traceback) to the logger django.request, which a production
// configuration often sends nowhere but to mail: the launcher adds a
// handler that writes those errors to standard error, which is the
// application server's log, where djship's health check and mage logs
// look.
const WSGILauncher = `# Managed by djship: the WSGI application of the site, in the site's
# environment, with Django's request errors written to the application
# server's log.
` + loadEnvironment + `
import importlib  # noqa: E402
import logging  # noqa: E402

_module, _, _name = os.environ["DJSHIP_WSGI"].partition(":")
application = getattr(importlib.import_module(_module), _name or "application")

_errors = logging.StreamHandler(sys.stderr)
_errors.setLevel(logging.ERROR)
_errors.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
logging.getLogger("django.request").addHandler(_errors)
`

// ProcessLauncher runs one of the site's processes: its program (from the
// release's virtualenv when the name has no /) with its arguments, in the
// site's environment.
const ProcessLauncher = `# Managed by djship: runs a process of the site in the site's environment:
#   <release>/venv/bin/python run_process.py PROGRAM ARGS...
` + loadEnvironment + `
import shutil  # noqa: E402

_program = sys.argv[1]
if "/" not in _program:
    _inside = os.path.join(os.path.dirname(sys.executable), _program)
    _program = _inside if os.access(_inside, os.X_OK) else (shutil.which(_program) or _program)
os.execv(_program, [_program] + sys.argv[2:])
`

// Launchers are the launchers by path, as provision installs them.
var Launchers = map[string]string{
	GunicornLauncherPath: GunicornLauncher,
	ManageLauncherPath:   ManageLauncher,
	ProcessLauncherPath:  ProcessLauncher,
	WSGILauncherPath:     WSGILauncher,
}
