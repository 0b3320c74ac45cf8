package targets

import (
	"context"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"

	"github.com/aymanbagabas/go-udiff"
	"github.com/djship/djship/remote"
)

// file is a file djship keeps on a host.
type file struct {
	Path         string
	Data         []byte
	Mode         fs.FileMode
	Owner, Group string
	// Secret hides the content from plan diffs.
	Secret bool
}

// ensureFile writes f unless the host has it already with the same
// content, mode and owner. In check mode it records a unified diff.
func (d *Deploy) ensureFile(ctx context.Context, f file) (bool, error) {
	if !d.Check {
		changed, err := d.Host.Upload(ctx, remote.Upload{Path: f.Path, Data: f.Data, Mode: f.Mode, Owner: f.Owner, Group: f.Group, Become: true})
		if err != nil {
			return false, err
		}
		return changed, nil
	}
	res, err := d.run(ctx, shScript("file-state", f.Path))
	if err != nil {
		return false, err
	}
	first, content, _ := strings.Cut(string(res.Stdout), "\n")
	if first == "missing" {
		d.plan("create %s (%s %s:%s)", f.Path, modeString(f.Mode), f.Owner, f.Group)
		d.planDiff(f, "", string(f.Data))
		return true, nil
	}
	changed := false
	if want := fmt.Sprintf("%s %s %s", modeString(f.Mode), f.Owner, f.Group); first != want {
		d.plan("set %s to %s (now %s)", f.Path, want, first)
		changed = true
	}
	if content != string(f.Data) {
		d.plan("update %s", f.Path)
		d.planDiff(f, content, string(f.Data))
		changed = true
	}
	return changed, nil
}

// ensureFiles is ensureFile for several files, in order, stopping at the
// first that fails; it reports whether any changed.
func (d *Deploy) ensureFiles(ctx context.Context, files ...file) (bool, error) {
	changed := false
	for _, f := range files {
		c, err := d.ensureFile(ctx, f)
		if err != nil {
			return changed, err
		}
		changed = changed || c
	}
	return changed, nil
}

func (d *Deploy) planDiff(f file, old, new string) {
	if f.Secret {
		d.Planned = append(d.Planned, fmt.Sprintf("--- %s\n+++ %s\n<secret changed>", f.Path, f.Path))
		return
	}
	d.Planned = append(d.Planned, strings.TrimRight(udiff.Unified(f.Path, f.Path, old, new), "\n"))
}

func modeString(m fs.FileMode) string {
	return fmt.Sprintf("%o", uint32(m.Perm())|setgidBit(m))
}

func setgidBit(m fs.FileMode) uint32 {
	if m&fs.ModeSetgid != 0 {
		return 0o2000
	}
	return 0
}

// ensureLink makes link a symbolic link to target, replacing it
// atomically (new link, then rename) when it points elsewhere.
func (d *Deploy) ensureLink(ctx context.Context, link, target string) (bool, error) {
	current, err := d.probe(ctx, remote.Sh("readlink", "--", link)+" || true")
	if err != nil {
		return false, err
	}
	if current == target {
		return false, nil
	}
	tmp := path.Join(path.Dir(link), "."+path.Base(link)+".djship-new")
	script := remote.Sh("ln", "-sfn", "--", target, tmp) + " && " + remote.Sh("mv", "-fT", "--", tmp, link)
	return true, d.do(ctx, fmt.Sprintf("link %s -> %s", link, target), script)
}

// dir is a folder of the host layout with its owner, mode and ACLs.
type dir struct {
	Path         string
	Owner, Group string
	Mode         fs.FileMode
	// Named are extra ACL entries such as "group:www-data:--x"; Default,
	// when set, is the default ACL that new files and folders inherit.
	Named, Default []string
	// KeepExisting leaves owner, mode and ACLs of an existing folder alone
	// (the deployment root may hold other sites).
	KeepExisting bool
}

// acl is the full access ACL the folder must have, as getfacl prints it.
func (f dir) acl() []string {
	perms := func(bits fs.FileMode) string {
		b := []byte("---")
		if bits&4 != 0 {
			b[0] = 'r'
		}
		if bits&2 != 0 {
			b[1] = 'w'
		}
		if bits&1 != 0 {
			b[2] = 'x'
		}
		return string(b)
	}
	mode := f.Mode.Perm()
	lines := []string{"user::" + perms(mode>>6), "group::" + perms(mode>>3&7), "other::" + perms(mode&7)}
	if len(f.Named) > 0 {
		lines = append(lines, f.Named...)
		lines = append(lines, "mask::"+perms(mode>>3&7))
	}
	for _, l := range f.Default {
		lines = append(lines, "default:"+l)
	}
	sort.Strings(lines)
	return lines
}

// ensureDir creates the folder or corrects its owner, mode and ACLs. The
// ACL is set whole (setfacl --set), so re-runs converge on the same
// state instead of adding to it.
func (d *Deploy) ensureDir(ctx context.Context, f dir) (bool, error) {
	return d.ensureDirs(ctx, []dir{f})
}

// ensureDirs is ensureDir for several folders, parents first: one session
// reads them all, one more corrects what differs.
func (d *Deploy) ensureDirs(ctx context.Context, dirs []dir) (bool, error) {
	var paths []string
	for _, f := range dirs {
		paths = append(paths, f.Path)
	}
	out, err := d.probe(ctx, shScript("folder-state", paths...))
	if err != nil {
		return false, err
	}
	states := map[string][]string{}
	var current string
	for _, l := range strings.Split(out, "\n") {
		if p, ok := strings.CutPrefix(l, "=== "); ok {
			current = p
			continue
		}
		states[current] = append(states[current], l)
	}
	var scripts, what []string
	for _, f := range dirs {
		description, script := f.action(states[f.Path])
		if script != "" {
			scripts, what = append(scripts, script), append(what, description)
		}
	}
	if len(scripts) == 0 {
		return false, nil
	}
	if d.Check {
		for _, w := range what {
			d.plan("%s", w)
		}
		return true, nil
	}
	if _, err := d.run(ctx, strings.Join(scripts, " && ")); err != nil {
		return false, fmt.Errorf("%s: %w", strings.Join(what, "; "), err)
	}
	return true, nil
}

// action is what brings the folder from its state on the host (stat's
// owner line, then its ACL; or "missing") to f: a description and a
// script, or none when it is right.
func (f dir) action(state []string) (description, script string) {
	if len(state) == 0 {
		state = []string{"missing"}
	}
	wantOwner := fmt.Sprintf("%s %s %s", f.Owner, f.Group, modeString(f.Mode))
	if state[0] == "missing" {
		return fmt.Sprintf("create %s (%s)", f.Path, wantOwner),
			remote.Sh("install", "-d", "-o", f.Owner, "-g", f.Group, "-m", modeString(f.Mode), "--", f.Path) + f.setACL()
	}
	if f.KeepExisting {
		return "", ""
	}
	var got []string
	for _, l := range state[1:] {
		if l = strings.TrimSpace(l); l != "" {
			got = append(got, l)
		}
	}
	sort.Strings(got)
	if state[0] == wantOwner && strings.Join(got, ",") == strings.Join(f.acl(), ",") {
		return "", ""
	}
	return fmt.Sprintf("set %s to %s with ACL %s (now %s: %s)", f.Path, wantOwner, strings.Join(f.acl(), ","), state[0], strings.Join(got, ",")),
		remote.Sh("chown", "--", f.Owner+":"+f.Group, f.Path) + " && " + remote.Sh("chmod", "--", modeString(f.Mode), f.Path) + f.setACL()
}

// setACL is the shell suffix that sets the folder's whole ACL.
func (f dir) setACL() string {
	var access []string
	for _, l := range f.acl() {
		if !strings.HasPrefix(l, "default:") {
			access = append(access, l)
		}
	}
	s := " && " + remote.Sh("setfacl", "--set", strings.Join(access, ","), "--", f.Path)
	if len(f.Default) > 0 {
		s += " && " + remote.Sh("setfacl", "-d", "--set", strings.Join(f.Default, ","), "--", f.Path)
	} else {
		s += " && " + remote.Sh("setfacl", "-k", "--", f.Path)
	}
	return s
}
