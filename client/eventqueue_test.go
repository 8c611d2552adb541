package client

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"
)

func evs(from, n int) []Event {
	out := make([]Event, n)
	for i := range out {
		out[i] = Event{Offset: uint64(from + i)}
	}
	return out
}

func TestEventQueueOrderAndBound(t *testing.T) {
	q := newEventQueue(3)
	done := make(chan struct{})
	pushed := make(chan bool, 1)
	go func() { pushed <- q.push(evs(0, 10), done) }() // larger than the bound
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for i := range 10 {
		ev, ok, err := q.pop(ctx)
		if err != nil || !ok || ev.Offset != uint64(i) {
			t.Fatalf("pop %d: %+v %v %v", i, ev, ok, err)
		}
		q.mu.Lock()
		if n := len(q.items) - q.head; n > 3 {
			t.Fatalf("queue holds %d > bound 3", n)
		}
		q.mu.Unlock()
	}
	if !<-pushed {
		t.Fatal("push failed")
	}
	q.push(evs(10, 2), done)
	q.close()
	for i := 10; i < 12; i++ { // queued events survive close
		if ev, ok, _ := q.pop(ctx); !ok || ev.Offset != uint64(i) {
			t.Fatalf("after close: %+v %v", ev, ok)
		}
	}
	if _, ok, err := q.pop(ctx); ok || err != nil {
		t.Fatalf("drained closed queue: ok=%v err=%v", ok, err)
	}
}

func TestEventQueuePushUnblocksOnDone(t *testing.T) {
	q := newEventQueue(1)
	done := make(chan struct{})
	res := make(chan bool, 1)
	go func() { res <- q.push(evs(0, 5), done) }()
	close(done)
	if <-res {
		t.Fatal("push into a full queue reported success after done")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	q2 := newEventQueue(1)
	if _, _, err := q2.pop(ctx); err == nil {
		t.Fatal("pop on an empty queue ignored a cancelled context")
	}
}

// Closing the queue wakes every goroutine waiting in pop, not only one:
// Subscription.Next called by several goroutines at once all return
// when the subscription ends (Close, Client.Close, or an error).
func TestEventQueueCloseWakesEveryWaiter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newEventQueue(4)
		const waiters = 3
		res := make(chan error, waiters)
		for range waiters {
			go func() {
				_, ok, err := q.pop(context.Background())
				if ok {
					err = errors.New("got an event from an empty queue")
				}
				res <- err
			}()
		}
		synctest.Wait() // every waiter is blocked in pop
		q.close()
		for i := range waiters {
			if err := <-res; err != nil { // a waiter left asleep deadlocks the bubble here
				t.Fatalf("waiter %d: %v", i, err)
			}
		}
	})
}
