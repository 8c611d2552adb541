package queue

import (
	"testing"

	"github.com/felixmq/felix/commitlog"
)

// Records the stream dropped before the group read them are not lag: the
// group will never deliver them (they count in Lost when it gets there).
// (Before, Stats.Lag of an idle group over a stream with retention grew
// with every record ever published, past the records the stream holds.)
func TestLagExcludesRecordsTheStreamDropped(t *testing.T) {
	stream := commitlog.NewMemory(4, 0)
	g := newGroupT(t, stream, Options{Clock: newFakeClock()})
	defer g.Close()
	fill(t, stream, 10) // keeps 6..9
	if s := g.Stats(); s.Lag != 4 {
		t.Fatalf("lag %d with 4 records retained: %+v", s.Lag, s)
	}
	m := joinT(t, g, "m", 2)
	nextT(t, m, 0) // 6 7; the buffer holds 8 9
	if s := g.Stats(); s.Lag != 4 || s.Lost != 6 || s.Buffered != 2 {
		t.Fatalf("after a delivery: %+v", s)
	}
	fill(t, stream, 6) // keeps 12..15; 8 9 stay buffered, 10 11 are gone
	if s := g.Stats(); s.Lag != 2+2+4 {
		t.Fatalf("lag %d, want 2 in flight + 2 buffered + 4 retained: %+v", s.Lag, s)
	}
}
