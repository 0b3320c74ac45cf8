package release

import (
	"fmt"
	"path"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxLinks is how many symbolic links one path may follow, as in the
// Linux kernel (MAXSYMLINKS): more is a loop, or as good as one.
const maxLinks = 40

// nodeKind is what an entry makes: a folder, a file, a link.
type nodeKind uint8

const (
	kindDir nodeKind = iota + 1
	kindFile
	kindLink
	kindHardlink
)

func (k nodeKind) String() string {
	switch k {
	case kindDir:
		return "a folder"
	case kindFile, kindHardlink:
		return "a file"
	case kindLink:
		return "a link"
	}
	return "an entry"
}

// treeEntry is one entry of an archive or of a source tree as an unpacker
// sees it: a name and what it makes there.
type treeEntry struct {
	name   string // as the archive spells it
	kind   nodeKind
	target string // a link's target, or the entry a hard link names
	index  int    // position in its archive
}

// treeNode is what is at one real place of the tree.
type treeNode struct {
	kind     nodeKind
	target   string // a link's target
	name     string // the entry that made it, for messages
	origin   int    // the archive that made it: 0 the tarball, n the n-th inner one
	implicit bool   // a folder the unpacker makes for the entries below it
	index    int    // the entry holding a file's content
}

// placed is an entry as it was put into the tree, to be judged again once
// the whole tree is known.
type placed struct {
	entry  treeEntry
	base   []string // the folder its name is relative to
	origin int
	key    string // where it landed
	prefix string // how messages name its archive
}

// linkTree models a folder tree as tar or unzip builds it, entry after
// entry: every name and every link is resolved as the kernel would,
// following links in every component, links to links, up to maxLinks.
// Nodes are keyed by their real place, a slash path from the top without
// any link in it ("" is the top).
type linkTree struct {
	nodes  map[string]*treeNode
	placed []placed
	// where is what the top is called in messages: "release", "source tree".
	where string
}

func newLinkTree(where string) *linkTree {
	return &linkTree{nodes: map[string]*treeNode{}, where: where}
}

// clone copies the tree so that more archives can be unpacked into the
// copy; nodes are never changed in place, so sharing them is safe.
func (t *linkTree) clone() *linkTree {
	c := &linkTree{nodes: make(map[string]*treeNode, len(t.nodes)), where: t.where}
	for k, n := range t.nodes {
		c.nodes[k] = n
	}
	c.placed = append(c.placed, t.placed...)
	return c
}

// resolveError says why a path cannot be followed safely.
type resolveError struct {
	reason string
	via    *treeNode // the last link followed before it went wrong
}

func (e *resolveError) Error() string { return e.reason }

// anyOrigin lets resolve follow every link of the tree.
const anyOrigin = -1

// resolve follows p, relative to the real folder base, through the tree
// as the kernel does: ".." goes to the real parent of where the links
// led, a link met in any component is replaced by its target (the last
// component's only when followLast is set), and components that do not
// exist yet are taken as folders an unpacker would make. A regular file
// used as a folder is taken the same way (the kernel stops there with
// ENOTDIR; realpath -m, which the host checks with, goes on). It refuses
// to go above the top, absolute links, and more than maxLinks links.
// With origin other than anyOrigin it refuses to follow a link that
// another archive made (unpacking never follows those).
func (t *linkTree) resolve(base []string, p string, followLast bool, origin int) ([]string, error) {
	if strings.HasPrefix(p, "/") {
		return nil, &resolveError{reason: "absolute"}
	}
	cur := append([]string(nil), base...)
	todo := strings.Split(p, "/")
	var via *treeNode
	for follows := 0; len(todo) > 0; {
		c := todo[0]
		todo = todo[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(cur) == 0 {
				return nil, &resolveError{reason: "outside", via: via}
			}
			cur = cur[:len(cur)-1]
			continue
		}
		next := append(cur[:len(cur):len(cur)], c)
		n := t.nodes[strings.Join(next, "/")]
		switch {
		case n == nil:
		case n.kind == kindLink && (followLast || hasComponent(todo)):
			if origin != anyOrigin && n.origin != origin {
				return nil, &resolveError{reason: "foreign", via: n}
			}
			if follows++; follows > maxLinks {
				return nil, &resolveError{reason: "loop", via: n}
			}
			if strings.HasPrefix(n.target, "/") {
				return nil, &resolveError{reason: "absolute", via: n}
			}
			via = n
			todo = append(strings.Split(n.target, "/"), todo...)
			continue
		}
		cur = next
	}
	return cur, nil
}

// hasComponent reports whether a rest of a path still names something.
func hasComponent(rest []string) bool {
	for _, c := range rest {
		if c != "" && c != "." {
			return true
		}
	}
	return false
}

// explain words a resolve error for the entry it concerns.
func (t *linkTree) explain(err error, self *treeNode) string {
	re, ok := err.(*resolveError)
	if !ok {
		return err.Error()
	}
	once := ""
	if re.via != nil && re.via != self {
		once = fmt.Sprintf(" once %s -> %s is followed", show(re.via.name), show(re.via.target))
	}
	switch re.reason {
	case "absolute":
		if t.where == "source tree" {
			return "absolute links point at the build machine, not the release" + once
		}
		return "absolute links point outside the release" + once
	case "outside":
		if self != nil && self.kind == kindLink {
			return fmt.Sprintf("the link leads out of the %s%s", t.where, once)
		}
		return fmt.Sprintf("lands out of the %s%s", t.where, once)
	case "loop":
		return fmt.Sprintf("a loop of links, or a chain of more than %d", maxLinks)
	case "foreign":
		return fmt.Sprintf("goes through the link %s -> %s of the release, which unpacking never follows: unpack into its target instead", show(re.via.name), show(re.via.target))
	}
	return re.reason
}

// show prints a name as it is, or quoted when it holds characters that
// would garble a message.
func show(name string) string {
	for _, r := range name {
		if r == utf8.RuneError || !unicode.IsPrint(r) {
			return strconv.Quote(name)
		}
	}
	return name
}

// nameProblem says why an entry's name cannot be unpacked safely, or "".
func nameProblem(name string) string {
	switch {
	case name == "":
		return "an empty name"
	case strings.ContainsRune(name, '\\'):
		return "a name with a backslash: unzip and tar read it differently"
	case strings.IndexFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0:
		return "a name with a control character"
	case strings.HasPrefix(name, "/"):
		return "an absolute path"
	}
	if clean := path.Clean(name); clean == ".." || strings.HasPrefix(clean, "../") {
		return "climbs out of the release with .."
	}
	for _, c := range strings.Split(name, "/") {
		if c == ".." {
			return "a name with .. in it"
		}
	}
	return ""
}

// entryLabel is how messages name an entry: with its link target.
func entryLabel(e treeEntry) string {
	switch e.kind {
	case kindLink:
		return show(e.name) + " -> " + show(e.target)
	case kindHardlink:
		return show(e.name) + " => " + show(e.target)
	}
	return show(e.name)
}

// archiveJudge adds the entries of one archive to a tree, in their order,
// and collects what is wrong with them.
type archiveJudge struct {
	tree     *linkTree
	base     []string // the real folder the archive is unpacked into
	origin   int
	prefix   string // how messages name the archive: "vendor.zip: "
	seen     map[string]bool
	files    map[string]*treeNode // regular files by cleaned name, for hard links
	problems []string
}

// archive starts unpacking an archive into the real folder base.
func (t *linkTree) archive(base []string, origin int, prefix string) *archiveJudge {
	return &archiveJudge{tree: t, base: base, origin: origin, prefix: prefix, seen: map[string]bool{}, files: map[string]*treeNode{}}
}

func (j *archiveJudge) refuse(e treeEntry, format string, args ...any) {
	j.problems = append(j.problems, j.prefix+entryLabel(e)+": "+fmt.Sprintf(format, args...))
}

// add puts one entry into the tree where an unpacker would put it.
func (j *archiveJudge) add(e treeEntry) {
	if p := nameProblem(e.name); p != "" {
		j.refuse(e, "%s", p)
		return
	}
	if e.kind == kindLink || e.kind == kindHardlink {
		if strings.IndexFunc(e.target, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0 || e.target == "" {
			j.refuse(e, "a link target that is empty or has a control character")
			return
		}
	}
	clean := path.Clean(e.name)
	if clean == "." {
		if e.kind != kindDir {
			j.refuse(e, "%s at the top of the %s", e.kind, j.tree.where)
		}
		return
	}
	if j.seen[clean] {
		j.refuse(e, "a second entry with this name")
		return
	}
	j.seen[clean] = true
	if strings.HasSuffix(e.name, "/") && e.kind != kindDir {
		j.refuse(e, "%s named as a folder (with a trailing /)", e.kind)
		return
	}
	node := &treeNode{kind: e.kind, target: e.target, name: e.name, origin: j.origin, index: e.index}
	if e.kind == kindHardlink {
		target := path.Clean(e.target)
		if strings.HasPrefix(e.target, "/") || target == ".." || strings.HasPrefix(target, "../") {
			j.refuse(e, "a hard link out of the %s", j.tree.where)
			return
		}
		file := j.files[target]
		if file == nil {
			j.refuse(e, "a hard link to %s, which is not an earlier regular file of the archive", show(e.target))
			return
		}
		node.kind, node.index = kindFile, file.index
	}
	key, problem := j.tree.place(j.base, clean, node, j.origin)
	if problem != "" {
		j.refuse(e, "%s", problem)
		return
	}
	j.tree.placed = append(j.tree.placed, placed{entry: e, base: j.base, origin: j.origin, key: key, prefix: j.prefix})
	if node.kind == kindFile {
		j.files[clean] = node
	}
}

// place resolves the folder of name, makes the folders an unpacker would
// make on the way, and puts node there. It returns the real place.
func (t *linkTree) place(base []string, name string, node *treeNode, origin int) (string, string) {
	dir, leaf := path.Split(name)
	parent, err := t.resolve(base, dir, true, origin)
	if err != nil {
		return "", t.explain(err, nil)
	}
	if problem := t.makeDirs(parent, origin); problem != "" {
		return "", problem
	}
	key := strings.Join(append(parent[:len(parent):len(parent)], leaf), "/")
	old := t.nodes[key]
	switch {
	case old == nil:
	case old.kind == kindDir && node.kind == kindDir:
		if !old.implicit {
			return key, ""
		}
	case old.kind == kindFile && node.kind == kindFile && old.origin != origin:
		// A later archive replaces a file of an earlier one.
	default:
		return "", fmt.Sprintf("lands on %s, which is already %s", show(key), old.kind)
	}
	t.nodes[key] = node
	return key, ""
}

// makeDirs makes the missing folders of a real path, as tar and unzip
// make the folders above an entry.
func (t *linkTree) makeDirs(p []string, origin int) string {
	for i := range p {
		key := strings.Join(p[:i+1], "/")
		switch n := t.nodes[key]; {
		case n == nil:
			t.nodes[key] = &treeNode{kind: kindDir, name: key, origin: origin, implicit: true}
		case n.kind != kindDir:
			return fmt.Sprintf("goes through %s as if it were a folder, but it is %s", show(key), n.kind)
		}
	}
	return ""
}

// check judges the whole tree again, now that every entry is known: each
// link is followed to its end, each entry's folder resolved again (a link
// unpacked later may change where an earlier name leads). It returns the
// problems, each naming the entry.
func (t *linkTree) check() []string {
	var problems []string
	for _, p := range t.placed {
		e := p.entry
		dir, leaf := path.Split(path.Clean(e.name))
		parent, err := t.resolve(p.base, dir, true, p.origin)
		if err != nil {
			problems = append(problems, p.prefix+entryLabel(e)+": "+t.explain(err, nil))
			continue
		}
		if key := strings.Join(append(parent, leaf), "/"); key != p.key {
			problems = append(problems, fmt.Sprintf("%s%s: lands on %s once the links unpacked after it are there, not on %s", p.prefix, entryLabel(e), show(key), show(p.key)))
			continue
		}
		n := t.nodes[p.key]
		if n == nil || n.kind != kindLink || n.name != e.name {
			continue
		}
		if _, err := t.resolve(parent, n.target, true, anyOrigin); err != nil {
			problems = append(problems, p.prefix+entryLabel(e)+": "+t.explain(err, n))
		}
	}
	return problems
}

// lookup resolves a path of the tree that the site names (the archive to
// unpack, the folder to unpack it into), following every link.
func (t *linkTree) lookup(p string) ([]string, *treeNode, string) {
	real, err := t.resolve(nil, p, true, anyOrigin)
	if err != nil {
		return nil, nil, t.explain(err, nil)
	}
	return real, t.nodes[strings.Join(real, "/")], ""
}
