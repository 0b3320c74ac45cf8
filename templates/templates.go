// Package templates renders the files djship writes: configuration files
// for the host and the release manifest. Rendering is pure: the same data
// always gives the same bytes.
package templates

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"text/template"
)

//go:embed *.tmpl
var files embed.FS

var all = template.Must(template.New("").Funcs(template.FuncMap{
	"json": func(v any) (string, error) {
		b, err := json.Marshal(v)
		return string(b), err
	},
}).ParseFS(files, "*.tmpl"))

// Render executes the named template with data.
func Render(name string, data any) ([]byte, error) {
	var b bytes.Buffer
	if err := all.ExecuteTemplate(&b, name, data); err != nil {
		return nil, fmt.Errorf("render %s: %w", name, err)
	}
	return b.Bytes(), nil
}

// Manifest describes a release; it is written as DJSHIP-MANIFEST.json at
// the top of every tarball and read back on the host.
type Manifest struct {
	// Project is the site's project name.
	Project string `json:"project"`
	// Revision is the value ${REVISION} expanded to.
	Revision string `json:"revision"`
	// Source says where the files came from: a path or a git repository,
	// with the commit.
	Source string `json:"source"`
	// Files is the number of regular files packaged.
	Files int `json:"files"`
	// FilesSHA256 hashes the list of packaged paths, modes and contents.
	FilesSHA256 string `json:"files_sha256"`
	// Created is the fixed time of every entry (RFC 3339).
	Created string `json:"created"`
}

// RenderManifest renders the release manifest as JSON.
func RenderManifest(m Manifest) ([]byte, error) {
	return Render("manifest.json.tmpl", m)
}
