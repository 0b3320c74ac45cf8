// Package paint colours the words of djship's reports: the progress
// lines, the summary table, mage release's report. fatih/color turns the
// colours off for NO_COLOR, TERM=dumb and when standard output is not a
// terminal.
package paint

import "github.com/fatih/color"

var (
	// Bold is for headings and names.
	Bold = color.New(color.Bold).SprintFunc()
	// Green is for what went well.
	Green = color.New(color.FgGreen).SprintFunc()
	// Yellow is for what changed or deserves a look.
	Yellow = color.New(color.FgYellow).SprintFunc()
	// Red is for failures.
	Red = color.New(color.FgRed).SprintFunc()
	// Faint is for details.
	Faint = color.New(color.Faint).SprintFunc()
)
