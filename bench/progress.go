package bench

import (
	"fmt"
	"io"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// Progress reports a run's progress on stderr: a progress bar over its
// cases when stderr is a terminal, else one line per case; nothing at all
// when quiet. The zero value and a nil *Progress print nothing.
type Progress struct {
	bar *progressbar.ProgressBar
	log io.Writer // nil: quiet
}

// ProgressOptions configures NewProgress. The zero value prints one line
// per case to nowhere (quiet); set W.
type ProgressOptions struct {
	// W is where progress goes (stderr). nil is quiet.
	W io.Writer
	// Cases is the number of Start/Done pairs the run makes; 0 never
	// shows a bar (for messages before the run's size is known).
	Cases int
	// Quiet prints nothing.
	Quiet bool
	// Bar forces the progress bar on (true) regardless of whether W is a
	// terminal; nil decides by IsTerminal(W).
	Bar *bool
}

// IsTerminal reports whether w is a terminal (a file descriptor that is a
// tty).
func IsTerminal(w io.Writer) bool {
	f, ok := w.(interface{ Fd() uintptr })
	return ok && term.IsTerminal(int(f.Fd()))
}

// NewProgress returns the progress reporter for a run.
func NewProgress(o ProgressOptions) *Progress {
	if o.Quiet || o.W == nil {
		return &Progress{}
	}
	bar := IsTerminal(o.W)
	if o.Bar != nil {
		bar = *o.Bar
	}
	if !bar || o.Cases <= 0 {
		return &Progress{log: o.W}
	}
	return &Progress{log: o.W, bar: progressbar.NewOptions(o.Cases,
		progressbar.OptionSetWriter(o.W),
		progressbar.OptionSetWidth(24),
		progressbar.OptionShowCount(),
		progressbar.OptionSetElapsedTime(true),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionShowDescriptionAtLineEnd(),
		progressbar.OptionClearOnFinish(),
	)}
}

// Logf prints one line (above the bar, if there is one).
func (p *Progress) Logf(format string, args ...any) {
	if p == nil || p.log == nil {
		return
	}
	if p.bar != nil {
		_ = p.bar.Clear()
	}
	fmt.Fprintf(p.log, format+"\n", args...)
	if p.bar != nil {
		_ = p.bar.RenderBlank()
	}
}

// Start says a case is running: the bar's description, or a line.
func (p *Progress) Start(desc string) {
	switch {
	case p == nil || p.log == nil:
	case p.bar != nil:
		p.bar.Describe(desc)
	default:
		fmt.Fprintln(p.log, desc+" ...")
	}
}

// Done counts one case done.
func (p *Progress) Done() {
	if p != nil && p.bar != nil {
		_ = p.bar.Add(1)
	}
}

// Finish removes the bar.
func (p *Progress) Finish() {
	if p != nil && p.bar != nil {
		_ = p.bar.Finish()
	}
}
