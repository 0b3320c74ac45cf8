package release

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/fatih/color"
)

// Colours of mage release's report. fatih/color turns them off for
// NO_COLOR, TERM=dumb and when standard output is not a terminal.
var (
	bold   = color.New(color.Bold).SprintFunc()
	green  = color.New(color.FgGreen).SprintFunc()
	yellow = color.New(color.FgYellow).SprintFunc()
	faint  = color.New(color.Faint).SprintFunc()
)

// leftOutShown is how many left-out paths a release lists by name.
const leftOutShown = 50

// printArtifact reports a written release tarball: where it is, what it
// holds, every path the excludes kept out and why, and a warning for each
// credential packaged because source.include names it.
func printArtifact(w io.Writer, a *Artifact, dirty bool) {
	m := a.Manifest
	fmt.Fprintf(w, "%s %s\n", green("release"), bold(a.Path))
	fmt.Fprintf(w, "  %s %s (%d bytes)\n", faint("size    "), humanBytes(a.Size), a.Size)
	fmt.Fprintf(w, "  %s %s\n", faint("sha256  "), a.SHA256)
	fmt.Fprintf(w, "  %s %s from %s\n", faint("revision"), m.Revision, m.Source)
	fmt.Fprintf(w, "  %s %d packaged, %d left out\n", faint("files   "), m.Files, len(a.LeftOut))
	if len(a.LeftOut) > 0 {
		fmt.Fprintf(w, "  %s\n", faint("left out"))
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for i, l := range a.LeftOut {
			if i == leftOutShown {
				fmt.Fprintf(tw, "    … and %d more\n", len(a.LeftOut)-leftOutShown)
				break
			}
			fmt.Fprintf(tw, "    %s\t%s\n", l.Path, faint("("+l.Reason+")"))
		}
		tw.Flush()
	}
	for _, u := range a.Unscanned {
		fmt.Fprintf(w, "%s %s is packaged, but the scan for keys did not read all of it: %s\n", yellow("warning"), u.Path, u.Reason)
	}
	for _, c := range a.Credentials {
		fmt.Fprintf(w, "%s %s holds %s; it is packaged because source.include names it (%s)\n", yellow("warning"), c.Path, c.Holds, c.Include)
	}
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
