package targets

import "testing"

func TestAppServerNamesAndPlaces(t *testing.T) {
	uwsgi := appServer{kind: "uwsgi", project: "shop", init: "sysv", drainWait: 350}
	gunicorn := appServer{kind: "gunicorn", project: "shop", init: "sysv"}
	systemd := appServer{kind: "gunicorn", project: "shop", init: "systemd"}
	available, enabled := uwsgi.ini("b")
	for _, c := range []struct{ name, got, want string }{
		{"uWSGI instance", uwsgi.instance("a"), "shop.a"},
		{"uWSGI socket", uwsgi.socket("b"), "/run/uwsgi/app/shop.b/socket"},
		{"uWSGI pid file", uwsgi.pidFile("a"), "/run/uwsgi/app/shop.a/pid"},
		{"uWSGI ini", available, "/etc/uwsgi/apps-available/shop.b.ini"},
		{"uWSGI enabled ini", enabled, "/etc/uwsgi/apps-enabled/shop.b.ini"},
		{"uWSGI log", uwsgi.log("b"), "/var/log/uwsgi/app/shop.b.log"},
		{"uWSGI status", uwsgi.service("b").status, shScript("uwsgi-instance", "status", "shop.b")},
		{"uWSGI with no slot live is slot a", uwsgi.service("").start, shScript("uwsgi-instance", "start", "shop.a")},
		{"slot of a socket", uwsgi.slotOf("/run/uwsgi/app/shop.b/socket"), "b"},
		{"slot of another socket", uwsgi.slotOf("/run/uwsgi/app/other.b/socket"), ""},
		{"gunicorn unit", gunicorn.unit(), "gunicorn-shop"},
		{"gunicorn run folder", gunicorn.runDir(), "/run/gunicorn-shop"},
		{"gunicorn log", gunicorn.log(""), "/var/log/gunicorn-shop.log"},
		{"gunicorn init script", gunicorn.service("").reload, "/etc/init.d/gunicorn-shop reload"},
		{"gunicorn restart without systemd re-executes", gunicorn.service("").restart, "/etc/init.d/gunicorn-shop reload"},
		{"gunicorn status under systemd asks the socket", systemd.service("").status, "systemctl is-active --quiet gunicorn-shop.socket"},
		{"gunicorn restart under systemd", systemd.service("").restart, "systemctl restart gunicorn-shop.service"},
		{"gunicorn service unit", systemd.systemdUnit("service"), "/etc/systemd/system/gunicorn-shop.service"},
	} {
		if c.got != c.want {
			t.Errorf("%s: %q, want %q", c.name, c.got, c.want)
		}
	}
	if args := uwsgi.stopArgs("shop.a", enabled, true); args[2] != "yes" || args[3] != "350" {
		t.Errorf("stop arguments %q: want a drain of 350 tenths of a second", args)
	}
	if !runsScript(uwsgi.service("a").stop, "stop-instance") {
		t.Errorf("a uWSGI instance does not stop through stop-instance.sh: %s", uwsgi.service("a").stop)
	}
}
