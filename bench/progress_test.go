package bench

import (
	"bytes"
	"strings"
	"testing"
)

func TestProgressLinesWhenNotATerminal(t *testing.T) {
	var buf bytes.Buffer
	if IsTerminal(&buf) {
		t.Fatal("a buffer is not a terminal")
	}
	p := NewProgress(ProgressOptions{W: &buf, Cases: 2})
	p.Logf("broker at %s", "127.0.0.1:1")
	p.Start("case one")
	p.Done()
	p.Finish()
	if got := buf.String(); got != "broker at 127.0.0.1:1\ncase one ...\n" {
		t.Fatalf("output %q", got)
	}
}

func TestProgressQuietAndNil(t *testing.T) {
	var buf bytes.Buffer
	p := NewProgress(ProgressOptions{W: &buf, Cases: 2, Quiet: true})
	p.Logf("x")
	p.Start("y")
	p.Done()
	p.Finish()
	var none *Progress
	none.Logf("x")
	none.Start("y")
	none.Done()
	none.Finish()
	if buf.Len() != 0 {
		t.Fatalf("quiet printed %q", buf.String())
	}
}

func TestProgressBar(t *testing.T) {
	var buf bytes.Buffer
	on := true
	p := NewProgress(ProgressOptions{W: &buf, Cases: 2, Bar: &on})
	p.Start("first case")
	p.Done()
	p.Start("second case")
	p.Done()
	p.Finish()
	// Renders are throttled (100 ms), so only the first is certain; Finish
	// clears the line.
	if out := buf.String(); !strings.Contains(out, "(0/2)") || !strings.Contains(out, "first case") ||
		!strings.HasSuffix(out, "\r") {
		t.Fatalf("bar output %q", out)
	}
}
