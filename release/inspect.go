package release

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"github.com/djship/djship/sites"
	"github.com/djship/djship/templates"
)

// Tarball is a release tarball checked by Inspect on this machine before
// any host is touched: what the host side ships.
type Tarball struct {
	// Path is the tarball on this machine.
	Path string
	// SHA256 is its checksum.
	SHA256 string
	// Manifest is the DJSHIP-MANIFEST.json it carries.
	Manifest templates.Manifest
}

// Name is the tarball's file name, which it keeps on the hosts.
func (t *Tarball) Name() string { return path.Base(t.Path) }

// TarFlag is the flag with which GNU tar unpacks the tarball on a host
// (-z, -j, --zstd or -J), from its name's extension; an error names the
// extensions djship knows.
func (t *Tarball) TarFlag() (string, error) {
	f, err := formatOf(t.Name())
	return f.tarFlag, err
}

// Inspect reads a release tarball and refuses it, before anything
// on a host changes, when unpacking it could write outside the release:
// an entry that is absolute or climbs out with .., a link that leads out
// once every link of the tree is followed as the kernel would, a hard
// link to anything but an earlier file, a duplicate or garbled name, a
// special file. It judges the same way, for each settings (one per host:
// each its own django.source_folder), the archives that host unpacks from
// the tarball, whose entries land in their into folder of the same tree.
func Inspect(p string, settings ...sites.Settings) (*Tarball, error) {
	sum, err := fileSHA256(p)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	t := &Tarball{Path: p, SHA256: sum}
	tree := newLinkTree("release")
	top := tree.archive(nil, 0, "")
	var problems []string
	index := 0
	err = walkTar(p, func(h *tar.Header, r io.Reader) error {
		e, problem, skip := tarTreeEntry(h, index)
		index++
		switch {
		case problem != "":
			problems = append(problems, problem)
			return nil
		case skip:
			return nil
		}
		top.add(e)
		if path.Clean(h.Name) == ManifestName && e.kind == kindFile {
			if err := json.NewDecoder(r).Decode(&t.Manifest); err != nil {
				return fmt.Errorf("%s: %w", ManifestName, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	problems = append(problems, top.problems...)
	problems = append(problems, tree.check()...)

	// The archives each host unpacks, read in a second pass once the
	// tree tells which entries they are.
	plans := deflatePlans(settings)
	wanted := map[int]bool{}
	for _, plan := range plans {
		for _, d := range plan.archives {
			if _, n, problem := tree.lookup(path.Join(plan.folder, d.Archive)); problem == "" && n != nil && n.kind == kindFile {
				wanted[n.index] = true
			}
		}
	}
	data := map[int][]byte{}
	if len(wanted) > 0 {
		index = 0
		err = walkTar(p, func(h *tar.Header, r io.Reader) error {
			i := index
			index++
			if !wanted[i] {
				return nil
			}
			b, err := io.ReadAll(r)
			data[i] = b
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", p, err)
		}
	}
	for _, plan := range plans {
		problems = append(problems, plan.judge(tree, data)...)
	}
	if t.Manifest.Revision == "" {
		problems = append(problems, "no "+ManifestName+": build the tarball with mage release")
	}
	if problems = unique(problems); len(problems) > 0 {
		return nil, fmt.Errorf("%s is refused, nothing on the hosts changed:\n  %s", p, strings.Join(problems, "\n  "))
	}
	return t, nil
}

// deflatePlan is what one host unpacks besides the tarball.
type deflatePlan struct {
	folder   string // django.source_folder
	archives []sites.Deflate
}

// deflatePlans lists the distinct source folders with their archives.
func deflatePlans(settings []sites.Settings) []deflatePlan {
	var plans []deflatePlan
	seen := map[string]bool{}
	for _, s := range settings {
		plan := deflatePlan{folder: s.Django.SourceFolder, archives: s.Django.ArchivesToDeflate}
		key := fmt.Sprintf("%q %q", plan.folder, plan.archives)
		if !seen[key] {
			seen[key] = true
			plans = append(plans, plan)
		}
	}
	return plans
}

// judge unpacks the plan's archives, in order, into a copy of the
// tarball's tree, and judges the result.
func (plan deflatePlan) judge(tarball *linkTree, data map[int][]byte) []string {
	tree := tarball.clone()
	var problems []string
	if _, n, problem := tree.lookup(plan.folder); problem != "" {
		return []string{fmt.Sprintf("django.source_folder %s: %s", plan.folder, problem)}
	} else if n != nil && n.kind != kindDir {
		return []string{fmt.Sprintf("django.source_folder %s: %s in the tarball, not a folder", plan.folder, n.kind)}
	}
	for i, d := range plan.archives {
		name := path.Join(plan.folder, d.Archive)
		_, n, problem := tree.lookup(name)
		switch {
		case problem != "":
			problems = append(problems, fmt.Sprintf("%s: django.archives_to_deflate names it, but it %s", name, problem))
			continue
		case n == nil || n.kind != kindFile:
			problems = append(problems, fmt.Sprintf("%s: django.archives_to_deflate names it, but the tarball has no such file", name))
			continue
		}
		into, target, problem := tree.lookup(path.Join(plan.folder, d.Into))
		switch {
		case problem != "":
			problems = append(problems, fmt.Sprintf("%s: into %s: %s", d.Archive, d.Into, problem))
			continue
		case target != nil && target.kind != kindDir:
			problems = append(problems, fmt.Sprintf("%s: into %s: %s in the tarball, not a folder", d.Archive, d.Into, target.kind))
			continue
		}
		if problem := tree.makeDirs(into, i+1); problem != "" {
			problems = append(problems, fmt.Sprintf("%s: into %s: %s", d.Archive, d.Into, problem))
			continue
		}
		j := tree.archive(into, i+1, d.Archive+": ")
		for _, p := range innerArchiveProblems(d.Archive, data[n.index], j) {
			problems = append(problems, d.Archive+": "+p)
		}
		problems = append(problems, j.problems...)
	}
	return append(problems, tree.check()...)
}

// unique drops repeated problems, keeping the first of each.
func unique(problems []string) []string {
	seen := map[string]bool{}
	out := problems[:0]
	for _, p := range problems {
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out
}

// walkTar calls fn for every entry of a compressed tarball.
func walkTar(p string, fn func(*tar.Header, io.Reader) error) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	comp, err := compression(p)
	if err != nil {
		return err
	}
	r, err := comp.OpenReader(f)
	if err != nil {
		return err
	}
	defer r.Close()
	return walkTarStream(r, fn)
}

func walkTarStream(r io.Reader, fn func(*tar.Header, io.Reader) error) error {
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		// With GODEBUG=tarinsecurepath=0 Go flags the names it judges
		// unsafe; they are judged here, with the rest.
		if err != nil && !(errors.Is(err, tar.ErrInsecurePath) && h != nil) {
			return err
		}
		if err := fn(h, tr); err != nil {
			return err
		}
	}
}

// tarTreeEntry reads one tar header as GNU tar will unpack it. A header
// that only describes the next (pax, GNU long names) is skipped; Go's
// reader has merged it already, and a global one may only carry a comment
// (as git archive writes), since GNU tar applies its keywords to every
// entry after it.
func tarTreeEntry(h *tar.Header, index int) (e treeEntry, problem string, skip bool) {
	e = treeEntry{name: h.Name, target: h.Linkname, index: index}
	switch h.Typeflag {
	case tar.TypeXGlobalHeader:
		for k := range h.PAXRecords {
			if k != "comment" {
				return e, fmt.Sprintf("a global pax header that changes every entry after it (%s)", show(k)), false
			}
		}
		return e, "", true
	case tar.TypeXHeader, tar.TypeGNULongName, tar.TypeGNULongLink:
		return e, "", true
	case tar.TypeReg, tar.TypeRegA:
		// GNU tar makes a folder of a regular entry named with a slash.
		e.kind = kindFile
		if strings.HasSuffix(h.Name, "/") {
			e.kind = kindDir
		}
	case tar.TypeDir:
		e.kind = kindDir
	case tar.TypeSymlink:
		e.kind = kindLink
	case tar.TypeLink:
		e.kind = kindHardlink
	default:
		return e, fmt.Sprintf("%s: a special file (type %q)", show(h.Name), h.Typeflag), false
	}
	return e, "", false
}

// innerArchiveProblems adds the entries of an archive the site unpacks,
// zip, tar or tar.*, to j, and says what could not be read.
func innerArchiveProblems(name string, data []byte, j *archiveJudge) []string {
	if strings.HasSuffix(name, ".zip") {
		zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
		if err != nil && !errors.Is(err, zip.ErrInsecurePath) {
			return []string{"not a readable zip: " + err.Error()}
		}
		var problems []string
		for i, f := range zr.File {
			e := treeEntry{name: f.Name, kind: kindFile, index: i}
			if p := zipNameProblem(data, f); p != "" {
				problems = append(problems, show(f.Name)+": "+p)
				continue
			}
			switch {
			case strings.HasSuffix(f.Name, "/"):
				// unzip makes a folder of a name with a slash, whatever its mode.
				e.kind = kindDir
			case zipLink(f):
				e.kind = kindLink
				rc, err := f.Open()
				if err != nil {
					problems = append(problems, show(f.Name)+": "+err.Error())
					continue
				}
				b, err := io.ReadAll(io.LimitReader(rc, 4096))
				rc.Close()
				if err != nil {
					problems = append(problems, show(f.Name)+": "+err.Error())
					continue
				}
				e.target = string(b)
			}
			j.add(e)
		}
		return problems
	}
	var r io.Reader = bytes.NewReader(data)
	if !strings.HasSuffix(name, ".tar") {
		comp, err := compression(name)
		if err != nil {
			return []string{err.Error()}
		}
		rc, err := comp.OpenReader(r)
		if err != nil {
			return []string{err.Error()}
		}
		defer rc.Close()
		r = rc
	}
	var problems []string
	index := 0
	err := walkTarStream(r, func(h *tar.Header, _ io.Reader) error {
		e, problem, skip := tarTreeEntry(h, index)
		index++
		switch {
		case problem != "":
			problems = append(problems, problem)
		case !skip:
			j.add(e)
		}
		return nil
	})
	if err != nil {
		problems = append(problems, err.Error())
	}
	return problems
}

// zipLink reports whether unzip may make a symbolic link of the entry:
// Go reads the mode only for Unix and macOS makers, unzip for several
// more (VMS, Atari, BeOS...), and from an ASi Unix extra field when the
// mode is 0. Any of them counts.
func zipLink(f *zip.File) bool {
	const ifmt, iflnk = 0o170000, 0o120000
	if f.Mode()&os.ModeSymlink != 0 || (f.ExternalAttrs>>16)&ifmt == iflnk {
		return true
	}
	for _, ef := range extraFields(f.Extra) {
		if ef.id == 0x756e && len(ef.data) >= 6 && (int(ef.data[4])|int(ef.data[5])<<8)&ifmt == iflnk {
			return true
		}
	}
	return false
}

// zipNameProblem refuses an entry that unzip could name differently from
// Go: an Info-ZIP Unicode path field (0x7075) replaces the name, in the
// central directory or in the entry's local header.
func zipNameProblem(data []byte, f *zip.File) string {
	extras := [][]byte{f.Extra}
	extras = append(extras, localExtras(data, f)...)
	for _, extra := range extras {
		for _, ef := range extraFields(extra) {
			if ef.id == 0x7075 {
				return "a second, Unicode name (an Info-ZIP 0x7075 field) that unzip would use instead"
			}
		}
	}
	return ""
}

type extraField struct {
	id   uint16
	data []byte
}

// extraFields splits a zip extra field into its blocks.
func extraFields(b []byte) []extraField {
	var out []extraField
	for len(b) >= 4 {
		id, n := uint16(b[0])|uint16(b[1])<<8, int(b[2])|int(b[3])<<8
		if 4+n > len(b) {
			// A block that runs past the end: unzip reads what is there.
			out = append(out, extraField{id: id, data: b[4:]})
			break
		}
		out = append(out, extraField{id: id, data: b[4 : 4+n]})
		b = b[4+n:]
	}
	return out
}

// localExtras returns the extra fields of every local header that may be
// f's: Go does not say where the header starts, only where the data does,
// so each signature before it whose lengths end exactly there counts.
func localExtras(data []byte, f *zip.File) [][]byte {
	off, err := f.DataOffset()
	if err != nil || off < 30 || off > int64(len(data)) {
		return nil
	}
	sig := []byte("PK\x03\x04")
	hi := int(off) - 30 + len(sig)
	lo := max(0, int(off)-30-2*0xffff)
	var out [][]byte
	for hi > lo {
		i := bytes.LastIndex(data[lo:hi], sig)
		if i < 0 {
			break
		}
		o := lo + i
		h := data[o : o+30]
		n, m := int(h[26])|int(h[27])<<8, int(h[28])|int(h[29])<<8
		if o+30+n+m == int(off) {
			out = append(out, data[o+30+n:off])
		}
		hi = o + len(sig) - 1
	}
	return out
}
