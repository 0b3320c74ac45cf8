package targets

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

// Tarball is a release tarball checked on this machine before any host
// is touched.
type Tarball struct {
	// Path is the tarball on this machine.
	Path string
	// SHA256 is its checksum.
	SHA256 string
	// Manifest is the DJSHIP-MANIFEST.json it carries.
	Manifest templates.Manifest
}

// Name is the tarball's file name.
func (t *Tarball) Name() string { return path.Base(t.Path) }

// InspectTarball reads a release tarball and refuses it, before anything
// on a host changes, when an entry is absolute, climbs out with .., is a
// link leading out of the release or is a special file — in the tarball
// itself and in each archive the site unpacks from it.
func InspectTarball(p string, s sites.Settings) (*Tarball, error) {
	sum, err := fileSHA256(p)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	t := &Tarball{Path: p, SHA256: sum}
	deflate := map[string]sites.Deflate{}
	for _, d := range s.Django.ArchivesToDeflate {
		deflate[path.Clean(path.Join(s.Django.SourceFolder, d.Archive))] = d
	}
	var problems []string
	found := map[string]bool{}
	err = walkTar(p, func(h *tar.Header, r io.Reader) error {
		if problem := entryProblem(h.Name, h.Typeflag, h.Linkname); problem != "" {
			problems = append(problems, problem)
			return nil
		}
		name := path.Clean(h.Name)
		if name == ManifestName {
			if err := json.NewDecoder(r).Decode(&t.Manifest); err != nil {
				return fmt.Errorf("%s: %w", ManifestName, err)
			}
		}
		if d, ok := deflate[name]; ok {
			found[name] = true
			data, err := io.ReadAll(r)
			if err != nil {
				return err
			}
			for _, p := range innerArchiveProblems(d.Archive, data) {
				problems = append(problems, d.Archive+": "+p)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	for name := range deflate {
		if !found[name] {
			problems = append(problems, fmt.Sprintf("%s: django.archives_to_deflate names it, but the tarball has no such file", name))
		}
	}
	if t.Manifest.Revision == "" {
		problems = append(problems, "no "+ManifestName+": build the tarball with mage release")
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("%s is refused, nothing on the hosts changed:\n  %s", p, strings.Join(problems, "\n  "))
	}
	return t, nil
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
		if err != nil {
			return err
		}
		if err := fn(h, tr); err != nil {
			return err
		}
	}
}

// entryProblem says why an archive entry could write outside the release.
func entryProblem(name string, typ byte, link string) string {
	clean := path.Clean(name)
	switch {
	case strings.HasPrefix(name, "/"):
		return fmt.Sprintf("%s: an absolute path", name)
	case clean == ".." || strings.HasPrefix(clean, "../"):
		return fmt.Sprintf("%s: climbs out of the release with ..", name)
	}
	switch typ {
	case tar.TypeReg, tar.TypeRegA, tar.TypeDir, tar.TypeXGlobalHeader, tar.TypeXHeader:
		return ""
	case tar.TypeSymlink:
		if p := linkProblem(clean, link); p != "" {
			return fmt.Sprintf("%s -> %s: %s", name, link, p)
		}
		return ""
	case tar.TypeLink:
		if target := path.Clean(link); strings.HasPrefix(link, "/") || target == ".." || strings.HasPrefix(target, "../") {
			return fmt.Sprintf("%s => %s: a hard link out of the release", name, link)
		}
		return ""
	}
	return fmt.Sprintf("%s: a special file (type %q)", name, typ)
}

// innerArchiveProblems checks an archive the site unpacks: zip or tar.*.
func innerArchiveProblems(name string, data []byte) []string {
	var problems []string
	if strings.HasSuffix(name, ".zip") {
		zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return []string{"not a readable zip: " + err.Error()}
		}
		for _, f := range zr.File {
			typ, link := byte(tar.TypeReg), ""
			if f.Mode()&os.ModeSymlink != 0 {
				typ = tar.TypeSymlink
				rc, err := f.Open()
				if err == nil {
					b, _ := io.ReadAll(rc)
					rc.Close()
					link = string(b)
				}
			} else if f.FileInfo().IsDir() {
				typ = tar.TypeDir
			}
			if p := entryProblem(f.Name, typ, link); p != "" {
				problems = append(problems, p)
			}
		}
		return problems
	}
	comp, err := compression(name)
	if err != nil {
		return []string{err.Error()}
	}
	r, err := comp.OpenReader(bytes.NewReader(data))
	if err != nil {
		return []string{err.Error()}
	}
	defer r.Close()
	err = walkTarStream(r, func(h *tar.Header, _ io.Reader) error {
		if p := entryProblem(h.Name, h.Typeflag, h.Linkname); p != "" {
			problems = append(problems, p)
		}
		return nil
	})
	if err != nil {
		problems = append(problems, err.Error())
	}
	return problems
}
