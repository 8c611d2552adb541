package bench

import (
	"strings"
	"testing"
)

func TestTailBufferKeepsTheEnd(t *testing.T) {
	var tb tailBuffer // zero value: 4 KiB
	for range 100 {
		tb.Write([]byte(strings.Repeat("x", 100)))
	}
	tb.Write([]byte("the end"))
	if s := tb.String(); len(s) != 4096 || !strings.HasSuffix(s, "the end") {
		t.Fatalf("kept %d bytes ending %q", len(s), s[len(s)-10:])
	}
}
