package queue

import (
	"bytes"
	"context"
	"slices"
	"testing"
	"testing/synctest"

	"github.com/felixmq/felix/commitlog"
)

// appendSized appends one record per size, its payload that many bytes.
func appendSized(t testing.TB, l commitlog.Log, sizes ...int) {
	t.Helper()
	for _, n := range sizes {
		if _, err := l.Append(context.Background(), [][]byte{bytes.Repeat([]byte{'x'}, n)}); err != nil {
			t.Fatalf("append: %v", err)
		}
	}
}

// Options.MaxInFlightBytes bounds what a member holds in flight in
// payload bytes, whatever its prefetch: Next stops at the record that
// would pass the bound (counted in Stats.InFlightBytesLimited), and the
// member gets more as its acks free bytes. A record larger than the bound
// goes to a member that holds nothing. Before, a member took records up
// to its prefetch whatever their size.
func TestMaxInFlightBytesBoundsAMember(t *testing.T) {
	const kib = 1 << 10
	stream := memStream(t, 0)
	appendSized(t, stream, kib, kib, kib, kib, 5*kib)
	g := newGroupT(t, stream, Options{Clock: newFakeClock(), MaxInFlightBytes: 3 * kib})
	defer g.Close()
	m := joinT(t, g, "a", 100)
	if got := offsets(nextT(t, m, 0)); !slices.Equal(got, []uint64{0, 1, 2}) {
		t.Fatalf("first Next got %v, want [0 1 2]: 3 KiB of a 3 KiB bound", got)
	}
	if s := g.Stats(); s.InFlightBytes != 3*kib || s.InFlightBytesLimited != 1 || s.Buffered != 2 {
		t.Fatalf("stats %+v, want 3 KiB in flight, limited once, 2 buffered", s)
	}
	ackT(t, m, 0)
	if got := offsets(nextT(t, m, 0)); !slices.Equal(got, []uint64{3}) {
		t.Fatalf("after an ack, Next got %v, want [3]", got)
	}
	// 4 (5 KiB) is larger than the bound: it waits until m holds nothing,
	// then goes alone.
	ackT(t, m, 1, 2)
	ch := asyncNext(t.Context(), m, 0)
	ackT(t, m, 3)
	r := <-ch
	if r.err != nil || !slices.Equal(offsets(r.ds), []uint64{4}) {
		t.Fatalf("Next got %v, %v; want [4] once the member held nothing", offsets(r.ds), r.err)
	}
	if s := g.Stats(); s.InFlightBytes != 5*kib || s.InFlight != 1 {
		t.Fatalf("stats %+v, want the 5 KiB record alone in flight", s)
	}
	ackT(t, m, 4)
	if s := g.Stats(); s.InFlightBytes != 0 || s.Lag != 0 {
		t.Fatalf("stats %+v, want nothing in flight or left", s)
	}
}

// A member whose in-flight bytes are full does not sit on the work it
// cannot take, nor on the watch of the stream: a record it was woken for
// goes to the next idle member, and new records still wake someone.
func TestMaxInFlightBytesHandsWorkOn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const kib = 1 << 10
		stream := memStream(t, 0)
		g := newGroupT(t, stream, Options{Clock: newFakeClock(), MaxInFlightBytes: 2 * kib})
		defer g.Close()
		a, b := joinT(t, g, "a", 100), joinT(t, g, "b", 100)
		appendSized(t, stream, kib, kib)
		if got := offsets(nextT(t, a, 0)); !slices.Equal(got, []uint64{0, 1}) {
			t.Fatalf("a got %v, want [0 1]", got)
		}
		ra := asyncNext(t.Context(), a, 0) // a watches the stream, its bytes full
		synctest.Wait()
		rb := asyncNext(t.Context(), b, 0) // b waits, idle
		synctest.Wait()

		appendSized(t, stream, kib) // wakes a, which cannot take it: b must
		synctest.Wait()
		select {
		case r := <-rb:
			if r.err != nil || !slices.Equal(offsets(r.ds), []uint64{2}) {
				t.Fatalf("b got %v, %v; want [2]", offsets(r.ds), r.err)
			}
		default:
			t.Fatal("record 2 went to nobody: a, full, kept it from idle b")
		}
		rb = asyncNext(t.Context(), b, 0)
		synctest.Wait()
		appendSized(t, stream, kib) // someone still watches the stream
		synctest.Wait()
		select {
		case r := <-rb:
			if r.err != nil || !slices.Equal(offsets(r.ds), []uint64{3}) {
				t.Fatalf("b got %v, %v; want [3]", offsets(r.ds), r.err)
			}
		default:
			t.Fatal("record 3 woke nobody")
		}
		select {
		case r := <-ra:
			t.Fatalf("a, its bytes full, got %v, %v", offsets(r.ds), r.err)
		default:
		}
		ackT(t, a, 0) // room for one more record
		appendSized(t, stream, kib)
		synctest.Wait()
		if r := <-ra; r.err != nil || !slices.Equal(offsets(r.ds), []uint64{4}) {
			t.Fatalf("a got %v, %v; want [4]", offsets(r.ds), r.err)
		}
		if s := g.Stats(); s.InFlightBytes != 4*kib || s.InFlight != 4 {
			t.Fatalf("stats %+v", s)
		}
	})
}
