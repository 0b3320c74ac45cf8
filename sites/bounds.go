package sites

import (
	"fmt"
	"path"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"
)

// The bounds of a site file: how far its YAML aliases may expand, which
// host folders its root and its container mounts may name, and where its
// source may come from.

// MaxExpandedNodes is the most YAML nodes a site file may expand to with
// its aliases followed, each alias counting the whole value it names. A
// real site file is a few hundred nodes; a few kilobytes of aliases of
// aliases would otherwise expand to billions and take the loader minutes
// and gigabytes.
const MaxExpandedNodes = 100_000

// MaxDecodedNodes is the most YAML nodes the loader decodes for a site
// file, aliases expanded: the shared settings once for the file, again
// for every environment and again for every host written as a mapping,
// each with its own overrides.
const MaxDecodedNodes = 1_000_000

// expansion measures YAML nodes with their aliases expanded. Sizes are
// remembered per node, so measuring a value aliased many times costs
// the same as measuring it once; they stop growing past limit.
type expansion struct {
	limit    int
	sizes    map[*yaml.Node]int
	visiting map[*yaml.Node]bool
}

func newExpansion(limit int) *expansion {
	return &expansion{limit: limit, sizes: map[*yaml.Node]int{}, visiting: map[*yaml.Node]bool{}}
}

// size returns how many nodes n stands for with its aliases expanded,
// at most limit+1. An alias inside the value it names (which would
// expand forever) is returned as loop, with size 0.
func (e *expansion) size(n *yaml.Node) (size int, loop *yaml.Node) {
	if n == nil {
		return 0, nil
	}
	if n.Kind == yaml.AliasNode {
		if n.Alias == nil {
			return 1, nil
		}
		if e.visiting[n.Alias] {
			return 0, n
		}
		return e.size(n.Alias)
	}
	if s, ok := e.sizes[n]; ok {
		return s, nil
	}
	e.visiting[n] = true
	defer delete(e.visiting, n)
	total := 1
	for _, c := range n.Content {
		s, loop := e.size(c)
		if loop != nil {
			return 0, loop
		}
		total = min(total+s, e.limit+1)
	}
	e.sizes[n] = total
	return total, nil
}

// aliasProblem walks a document in the order it is written, counting
// its nodes with aliases expanded, and reports the alias that takes it
// past MaxExpandedNodes, or an alias inside the value it names.
func aliasProblem(doc *yaml.Node) *Problem {
	e := newExpansion(MaxExpandedNodes)
	total := 0
	var walk func(n *yaml.Node) *Problem
	walk = func(n *yaml.Node) *Problem {
		if n.Kind == yaml.AliasNode {
			s, loop := e.size(n)
			if loop != nil {
				return &Problem{Line: loop.Line, Message: fmt.Sprintf("the alias *%s is inside the value its anchor &%s names (line %d), which would contain itself without end: alias a value written before and outside it", loop.Value, loop.Value, loop.Alias.Line)}
			}
			if total += s; total > MaxExpandedNodes {
				return &Problem{Line: n.Line, Message: fmt.Sprintf("the file expands YAML aliases past %d nodes at this alias, *%s: a site file needs far fewer; alias small values only, or write them out", MaxExpandedNodes, n.Value)}
			}
			return nil
		}
		if total++; total > MaxExpandedNodes {
			return &Problem{Line: n.Line, Message: fmt.Sprintf("the file has more than %d YAML nodes: a site file needs far fewer; give each site a file of its own", MaxExpandedNodes)}
		}
		for _, c := range n.Content {
			if p := walk(c); p != nil {
				return p
			}
		}
		return nil
	}
	return walk(doc)
}

// decodeProblem reports the environment or host at which the loader
// would decode more than MaxDecodedNodes: every environment decodes the
// shared settings again with its own, and every host written as a
// mapping decodes its environment's again with its own. top has passed
// checkStructure and aliasProblem.
func decodeProblem(top *yaml.Node) *Problem {
	e := newExpansion(MaxDecodedNodes)
	shared, _ := e.size(without(top, "environments"))
	total := shared
	envs := lookup(top, "environments")
	if envs == nil || envs.Kind != yaml.MappingNode {
		return nil
	}
	over := func(line int, where string) *Problem {
		return &Problem{Line: line, Message: fmt.Sprintf("%s: every environment, and every host written as a mapping, decodes the shared settings (%d YAML nodes with their aliases expanded) again, and here the file passes %d: keep aliases for small values, or write the hosts as user@host:port", where, shared, MaxDecodedNodes)}
	}
	for i := 0; i+1 < len(envs.Content); i += 2 {
		key, val := envs.Content[i], resolve(envs.Content[i+1])
		where := "environments." + key.Value
		env := 0
		if val.Kind == yaml.MappingNode {
			env, _ = e.size(without(val, "hosts"))
		}
		if total += shared + env; total > MaxDecodedNodes {
			return over(key.Line, where)
		}
		hosts := lookup(val, "hosts")
		if hosts == nil || hosts.Kind != yaml.SequenceNode {
			continue
		}
		for j, h := range hosts.Content {
			if resolve(h).Kind != yaml.MappingNode {
				continue
			}
			host, _ := e.size(h)
			if total += shared + env + host; total > MaxDecodedNodes {
				return over(h.Line, fmt.Sprintf("%s.hosts[%d]", where, j))
			}
		}
	}
	return nil
}

// systemTrees are host folders that neither a site's root nor a
// container's mount may be, or be inside: the system's programs,
// configuration, state, logs, devices and the root user's home.
var systemTrees = []string{
	"/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/libx32", "/lost+found",
	"/proc", "/root", "/run", "/sbin", "/snap", "/sys", "/tmp", "/usr",
	"/var/backups", "/var/cache", "/var/lib", "/var/lock", "/var/log", "/var/mail",
	"/var/run", "/var/spool", "/var/tmp",
}

// systemFolders are host folders that may not be a site's root or a
// mount themselves, though folders inside them may: /srv/www, /var/www,
// /opt/sites, /home/deploy/apps, /mnt/data/sites.
var systemFolders = []string{"/", "/home", "/media", "/mnt", "/opt", "/var"}

// systemFolder says which host system folder p (an absolute path) is or
// is inside, as "is …" for a message, or "" when it is none. A home
// folder (/home/deploy) counts; folders inside one do not.
func systemFolder(p string) string {
	p = path.Clean(p)
	for _, f := range systemTrees {
		if p == f {
			return "is the system folder " + f
		}
		if strings.HasPrefix(p, f+"/") {
			return "is inside the system folder " + f
		}
	}
	for _, f := range systemFolders {
		if p == f {
			if f == "/" {
				return "is the top of the file system"
			}
			return "is the system folder " + f
		}
	}
	if path.Dir(p) == "/home" {
		return "is a user's home folder"
	}
	return ""
}

// systemRoot refuses a root (absolute, then cleaned) in which provision
// would take the system's own folders.
func (c checker) systemRoot(root string) {
	if why := systemFolder(path.Clean(root)); why != "" {
		c.problem("root", "root %q %s: provision makes <root>/<instance> there and sets its owner, mode and ACLs, replacing those of a folder already there (root: /etc with instance: ssl would take /etc/ssl from the system); use a folder of the sites' own, e.g. root: /srv/www", root, why)
	}
}

// hostMountProblem says why a container must not mount the host path p
// (absolute and clean), as "is …", or "".
func hostMountProblem(p string) string {
	switch {
	case p == "/var/run/docker.sock" || p == "/run/docker.sock":
		return "is the Docker socket (whoever holds it is root on the host)"
	case (strings.HasPrefix(p, "/run/") || strings.HasPrefix(p, "/var/run/")) && strings.HasSuffix(p, ".sock"):
		return "is a socket of a system service"
	case p == "/var/lib/docker" || strings.HasPrefix(p, "/var/lib/docker/"):
		return "is Docker's own state, its images and containers"
	}
	return systemFolder(p)
}

// hostMount refuses a mount of compose.volumes or compose.services whose
// host side is a host system folder, unless the site allows it.
func (c checker) hostMount(s Settings, keyPath, name, volume string) {
	if s.Compose.AllowHostSystemMounts {
		return
	}
	host, _, _ := strings.Cut(volume, ":")
	if !strings.HasPrefix(host, "/") {
		return // a named volume
	}
	if why := hostMountProblem(path.Clean(host)); why != "" {
		c.problem(keyPath, "%s %q mounts %s, which %s: a container that reads or writes there can take over the host; mount a folder of the site's own such as /srv/%s-data, or set compose.allow_host_system_mounts: true if the site needs this on purpose", name, volume, host, why, s.Instance)
	}
}

// sourceInside refuses a source.path outside the project root, written
// so or through a symbolic link. When the folder exists, where its links
// lead decides; a folder that does not exist yet is checked as written
// (mage release reports it missing).
func (c checker) sourceInside(root, p string) {
	if p == "" || root == "" {
		return
	}
	dir := filepath.Clean(p)
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(root, dir)
	}
	fix := "move the source into the repository, e.g. source: {path: src}, or name its repository with source: {git: URL, ref: main}"
	outside := func() {
		c.problem("source.path", "source.path %q is outside the project root %s (the folder that holds sites/), which mage release packages from: %s", p, root, fix)
	}
	target, err := filepath.EvalSymlinks(dir)
	if err != nil {
		if !inside(root, dir) {
			outside()
		}
		return
	}
	realRoot, err := filepath.EvalSymlinks(root)
	switch {
	case err != nil:
		if !inside(root, dir) {
			outside()
		}
	case inside(realRoot, target):
	case inside(root, dir):
		c.problem("source.path", "source.path %q leads out of the project root %s through a symbolic link, to %s: %s", p, root, target, fix)
	default:
		outside()
	}
}

// inside reports whether the clean path p is root or inside it.
func inside(root, p string) bool {
	rel, err := filepath.Rel(root, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
}
