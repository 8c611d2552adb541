package queue

import (
	"testing"

	"github.com/felixmq/felix/commitlog"
)

// Options.StartAt places a new group, kept within the stream's retained
// range; records below it are neither delivered nor lag nor lost. A group
// rebuilt from its state ignores it.
func TestStartAt(t *testing.T) {
	at := func(n uint64) *uint64 { return &n }
	stream := commitlog.NewMemory(1000, 1<<20)
	fill(t, stream, 10)
	for _, tc := range []struct {
		start *uint64
		want  uint64
	}{{nil, 0}, {at(4), 4}, {at(10), 10}, {at(99), 10}} {
		g := newGroupT(t, stream, Options{StartAt: tc.start})
		st := g.Stats()
		if st.Cursor != tc.want || st.Lag != 10-tc.want || st.Lost != 0 {
			t.Fatalf("start %v: cursor %d lag %d lost %d; want cursor %d, lag %d, nothing lost", tc.start, st.Cursor, st.Lag, st.Lost, tc.want, 10-tc.want)
		}
		if tc.want < 10 {
			m := joinT(t, g, "m", 1)
			if ds := nextT(t, m, 1); ds[0].Offset != tc.want {
				t.Fatalf("start %v: first delivery %d, want %d", tc.start, ds[0].Offset, tc.want)
			}
		}
		g.Close()
	}
	// Below the oldest retained record: the oldest.
	if _, _, err := stream.Purge(); err != nil {
		t.Fatal(err)
	}
	fill(t, stream, 2)
	g := newGroupT(t, stream, Options{StartAt: at(3)})
	if st := g.Stats(); st.Cursor != 10 || st.Lost != 0 {
		t.Fatalf("start below the oldest: cursor %d, lost %d; want 10 and 0", st.Cursor, st.Lost)
	}
	g.Close()

	// Durable state: the first snapshot is at the start, and a reload
	// keeps it whatever StartAt says then.
	state := commitlog.NewMemory(1000, 1<<20)
	g = newGroupT(t, stream, Options{StateLog: state, StartAt: at(11)})
	if st := g.Stats(); st.Cursor != 11 {
		t.Fatalf("durable group: cursor %d, want 11", st.Cursor)
	}
	g.Close()
	g = newGroupT(t, stream, Options{StateLog: state, StartAt: at(10)})
	if st := g.Stats(); st.Cursor != 11 {
		t.Fatalf("reloaded group: cursor %d, want 11 (its state's)", st.Cursor)
	}
	g.Close()
}
