package targets

import (
	"fmt"
	"io"

	"github.com/fatih/color"
)

// Colours of progress output. fatih/color turns them off for NO_COLOR,
// TERM=dumb and when standard output is not a terminal.
var (
	bold   = color.New(color.Bold).SprintFunc()
	green  = color.New(color.FgGreen).SprintFunc()
	yellow = color.New(color.FgYellow).SprintFunc()
	faint  = color.New(color.Faint).SprintFunc()
)

// printArtifact reports a written release tarball.
func printArtifact(w io.Writer, a *Artifact, excluded int, dirty bool) {
	m := a.Manifest
	fmt.Fprintf(w, "%s %s\n", green("release"), bold(a.Path))
	fmt.Fprintf(w, "  %s %s (%d bytes)\n", faint("size    "), humanBytes(a.Size), a.Size)
	fmt.Fprintf(w, "  %s %s\n", faint("sha256  "), a.SHA256)
	fmt.Fprintf(w, "  %s %s from %s\n", faint("revision"), m.Revision, m.Source)
	fmt.Fprintf(w, "  %s %d packaged, %d left out by the excludes\n", faint("files   "), m.Files, excluded)
	if dirty {
		fmt.Fprintf(w, "%s the source has uncommitted changes; the revision says -dirty\n", yellow("warning"))
	}
}

// humanBytes formats a size with a binary unit.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
