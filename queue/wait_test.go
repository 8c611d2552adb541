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
	members := make([]*Member, k)
	delivered := make(chan int, n) // the index of the member each record went to
	var wg sync.WaitGroup
	for i := range k {
		m := joinT(t, g, fmt.Sprint("m", i), 8)
		members[i] = m
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
					delivered <- i
				}
			}
		})
	}
	// Each record is appended once every member is back in Next with room
	// (one watching the stream, the others idle), so the turns do not
	// depend on how the Go scheduler runs the member goroutines: a member
	// not yet back in Next would rightly be passed over.
	allWaiting := func() {
		for {
			g.mu.Lock()
			waiting := 0
			for _, m := range members {
				if m.idle || g.streamWaiter == m {
					waiting++
				}
			}
			g.mu.Unlock()
			if waiting == k {
				return
			}
			runtime.Gosched()
		}
	}
	seq := make([]int, 0, n)
	for range n {
		allWaiting()
		fill(t, stream, 1)
		select {
		case i := <-delivered:
			seq = append(seq, i)
		case <-time.After(10 * time.Second):
			t.Fatal("a record was not delivered")
		}
	}
	cancel()
	wg.Wait()
	// Round robin: every k consecutive records went to k different members.
	for j := k; j <= n; j++ {
		seen := map[int]bool{}
		for _, i := range seq[j-k : j] {
			seen[i] = true
		}
		if len(seen) != k {
			t.Fatalf("records %d..%d went to %v, not to each of the %d members in turn (all: %v)", j-k, j-1, seq[j-k:j], k, seq)
		}
	}
}
