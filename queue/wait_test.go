package queue

import (
	"context"
	"fmt"
	"testing"
	"testing/synctest"
)

// Idle members: a new record wakes one of them, not all; whoever stops
// waiting (ctx cancelled) hands the watch on, so the last one left still
// sees the next record; records and redeliveries left over by one member
// go on to the next idle one.
func TestIdleMembersWakeOneAtATime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		stream := memStream(t, 0)
		g := newGroupT(t, stream, Options{Clock: newFakeClock()})
		defer g.Close()
		const k = 5
		members := make([]*Member, k)
		cancels := make([]context.CancelFunc, k)
		results := make([]<-chan nextResult, k)
		start := func(i int) {
			var ctx context.Context
			ctx, cancels[i] = context.WithCancel(context.Background())
			results[i] = asyncNext(ctx, members[i], 0)
		}
		for i := range members {
			members[i] = joinT(t, g, fmt.Sprint("m", i), 1)
			start(i)
		}
		synctest.Wait()
		// done returns the indexes of the members whose Next returned.
		done := func() []int {
			var out []int
			for i, ch := range results {
				select {
				case r := <-ch:
					if r.err != nil && r.err != context.Canceled {
						t.Fatalf("member %d: %v", i, r.err)
					}
					out = append(out, i)
				default:
				}
			}
			return out
		}

		fill(t, stream, 1)
		synctest.Wait()
		woken := done()
		if len(woken) != 1 {
			t.Fatalf("one record woke %v", woken)
		}
		ackT(t, members[woken[0]], 0)
		start(woken[0])

		// Cancel all but one, whichever watches the stream.
		for i := range k - 1 {
			cancels[i]()
		}
		synctest.Wait()
		if got := done(); len(got) != k-1 {
			t.Fatalf("cancelled %v", got)
		}
		fill(t, stream, 1)
		synctest.Wait()
		if got := done(); len(got) != 1 || got[0] != k-1 {
			t.Fatalf("after the others left the wait, the record went to %v", got)
		}
		ackT(t, members[k-1], 1)

		// Three records for five idle members with prefetch 1: three get one each.
		for i := range members {
			start(i)
		}
		synctest.Wait()
		fill(t, stream, 3)
		synctest.Wait()
		if got := done(); len(got) != 3 {
			t.Fatalf("three records went to %v", got)
		}
		if s := g.Stats(); s.InFlight != 3 || s.Buffered != 0 {
			t.Fatalf("stats: %+v", s)
		}
		for _, c := range cancels {
			c()
		}
	})
}
