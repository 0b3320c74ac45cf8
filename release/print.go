package release

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/djship/djship/internal/paint"
)

// leftOutShown is how many left-out paths a release lists by name.
const leftOutShown = 50

// printArtifact reports a written release tarball: where it is, what it
// holds, every path the excludes kept out and why, and a warning for each
// credential packaged because source.include names it.
func printArtifact(w io.Writer, a *Artifact, dirty bool) {
	m := a.Manifest
	fmt.Fprintf(w, "%s %s\n", paint.Green("release"), paint.Bold(a.Path))
	fmt.Fprintf(w, "  %s %s (%d bytes)\n", paint.Faint("size    "), humanBytes(a.Size), a.Size)
	fmt.Fprintf(w, "  %s %s\n", paint.Faint("sha256  "), a.SHA256)
	fmt.Fprintf(w, "  %s %s from %s\n", paint.Faint("revision"), m.Revision, m.Source)
	fmt.Fprintf(w, "  %s %d packaged, %d left out\n", paint.Faint("files   "), m.Files, len(a.LeftOut))
	if len(a.LeftOut) > 0 {
		fmt.Fprintf(w, "  %s\n", paint.Faint("left out"))
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for i, l := range a.LeftOut {
			if i == leftOutShown {
				fmt.Fprintf(tw, "    … and %d more\n", len(a.LeftOut)-leftOutShown)
				break
			}
			fmt.Fprintf(tw, "    %s\t%s\n", l.Path, paint.Faint("("+l.Reason+")"))
		}
		tw.Flush()
	}
	for _, u := range a.Unscanned {
		fmt.Fprintf(w, "%s %s is packaged, but the scan for keys did not read all of it: %s\n", paint.Yellow("warning"), u.Path, u.Reason)
	}
	for _, c := range a.Credentials {
		fmt.Fprintf(w, "%s %s holds %s; it is packaged because source.include names it (%s)\n", paint.Yellow("warning"), c.Path, c.Holds, c.Include)
	}
	if dirty {
		fmt.Fprintf(w, "%s the source has uncommitted changes; the revision says -dirty\n", paint.Yellow("warning"))
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
