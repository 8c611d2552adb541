package queue

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"testing/synctest"
	"time"
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

// Records that arrive one at a time go round the members that wait for
// work, as RabbitMQ round-robins a queue's consumers: a member that
// returns to Next at once does not take the watch of the stream back from
// the member its Next just handed it to.
func TestIdleMembersTakeTurns(t *testing.T) {
	stream := memStream(t, 0)
	g := newGroupT(t, stream, Options{})
	defer g.Close()
	const k, n = 4, 400
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make([]int, k)
	delivered := make(chan struct{}, n)
	var wg sync.WaitGroup
	for i := range k {
		m := joinT(t, g, fmt.Sprint("m", i), 8)
		wg.Go(func() {
			for {
				ds, err := m.Next(ctx, 0)
				if err != nil {
					return
				}
				for _, d := range ds {
					if err := m.Ack(ctx, d.Offset); err != nil {
						t.Error(err)
					}
					got[i]++
					delivered <- struct{}{}
				}
			}
		})
	}
	for waiting := 0; waiting < k; { // all four in Next: one on the stream, three idle
		g.mu.Lock()
		waiting = g.idle.len()
		if g.streamWaiter != nil {
			waiting++
		}
		g.mu.Unlock()
		runtime.Gosched()
	}
	for range n {
		fill(t, stream, 1)
		select {
		case <-delivered:
		case <-time.After(10 * time.Second):
			t.Fatal("a record was not delivered")
		}
	}
	cancel()
	wg.Wait()
	for i, c := range got {
		if c < n/k/2 {
			t.Errorf("member %d got %d of %d records (all: %v)", i, c, n, got)
		}
	}
}
