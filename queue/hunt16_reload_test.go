package queue

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/felixmq/felix/commitlog"
)

// Records nacked with a delay drop their payload while they wait, and
// Next reads them again when it redelivers them: one Read per run of
// consecutive offsets. A Read returns about commitlog.DefaultReadBytes of
// payload however many records it is asked for, so a run of large records
// comes back in part: the rest must be read again, not counted lost and
// dropped (before, every record after the first MiB of a run was done,
// never redelivered, and counted in Stats.Lost).
func TestHunt16ReloadShortReadLosesNothing(t *testing.T) {
	for _, kind := range []string{"memory", "disk"} {
		t.Run(kind, func(t *testing.T) {
			const n, size = 64, 48 << 10 // 3 MiB: three reads' worth
			var stream commitlog.Log
			if kind == "memory" {
				stream = commitlog.NewMemory(n, 1<<30)
			} else {
				d, err := commitlog.Open(t.TempDir(), commitlog.Options{RetentionInterval: -1})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { d.Close() })
				stream = d
			}
			payloads := make([][]byte, n)
			for i := range payloads {
				payloads[i] = bytes.Repeat([]byte{byte(i)}, size)
			}
			if _, err := stream.Append(context.Background(), payloads); err != nil {
				t.Fatal(err)
			}
			clock := newFakeClock()
			g := newGroupT(t, stream, Options{Clock: clock})
			defer g.Close()
			m := joinT(t, g, "m", n)
			var got []Delivery
			for len(got) < n {
				got = append(got, nextT(t, m, 0)...)
			}
			for _, d := range got {
				if err := m.Nack(context.Background(), d.Offset, time.Second); err != nil {
					t.Fatal(err)
				}
			}
			clock.Advance(time.Second)
			seen := map[uint64]bool{}
			for g.Stats().Pending > 0 {
				for _, d := range nextT(t, m, 0) {
					if d.Attempt != 2 || !bytes.Equal(d.Payload, payloads[d.Offset]) {
						t.Fatalf("redelivery of %d: attempt %d, %d bytes", d.Offset, d.Attempt, len(d.Payload))
					}
					seen[d.Offset] = true
				}
			}
			if s := g.Stats(); len(seen) != n || s.Lost != 0 || s.InFlight != n {
				t.Fatalf("%d of %d records redelivered; stats %+v", len(seen), n, s)
			}
		})
	}
}

// A Next that reads delayed records again reads no more payload than its
// member may take (Options.MaxInFlightBytes, less what it holds; at least
// one record): the records it cannot take stay unloaded, for the Next
// that delivers them. Before, it read as many as its prefetch had room
// for, and the ones it could not take held their payloads in the ready
// queue (Stats.PendingBytes) however large they were.
func TestHunt16ReloadBoundedByInFlightBytes(t *testing.T) {
	const n, size = 8, 1 << 20
	stream := commitlog.NewMemory(n, 1<<30)
	for i := range n {
		if _, err := stream.Append(context.Background(), [][]byte{bytes.Repeat([]byte{byte(i)}, size)}); err != nil {
			t.Fatal(err)
		}
	}
	clock := newFakeClock()
	g := newGroupT(t, stream, Options{Clock: clock, MaxInFlightBytes: 2 * size})
	defer g.Close()
	var ms []*Member
	for i := range n / 2 {
		m := joinT(t, g, fmt.Sprint("m", i), n)
		for _, d := range nextT(t, m, 0) {
			if err := m.Nack(context.Background(), d.Offset, time.Second); err != nil {
				t.Fatal(err)
			}
		}
		ms = append(ms, m)
	}
	if s := g.Stats(); s.Unloaded != n || s.PendingBytes != 0 {
		t.Fatalf("after the nacks: %+v", s)
	}
	clock.Advance(time.Second)
	for i, m := range ms {
		ds := nextT(t, m, 0)
		if len(ds) != 2 {
			t.Fatalf("%s got %v, want 2 records (its byte bound)", m.ID(), offsets(ds))
		}
		if s := g.Stats(); s.PendingBytes != 0 || s.Unloaded != n-2*(i+1) {
			t.Fatalf("after %s's Next: %d bytes held for %d records pending, %d unloaded; want 0 bytes, %d unloaded",
				m.ID(), s.PendingBytes, s.Pending, s.Unloaded, n-2*(i+1))
		}
	}
}
