package client

import (
	"context"
	"sync"
)

// eventQueue is a subscription's bounded buffer between its stream reader
// and Next. The reader pushes a whole frame's events under one lock and
// wakes a waiting consumer at most once per push, instead of once per event
// as a channel would.
type eventQueue struct {
	mu       sync.Mutex
	items    []Event
	head     int
	max      int
	closed   bool
	notEmpty chan struct{} // cap 1: signalled after a push
	notFull  chan struct{} // cap 1: signalled after a pop from a full queue
}

func newEventQueue(max int) *eventQueue {
	return &eventQueue{max: max, notEmpty: make(chan struct{}, 1), notFull: make(chan struct{}, 1)}
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// push appends evs in order, waiting for room while the queue is full.
// It fails only when done is closed.
func (q *eventQueue) push(evs []Event, done <-chan struct{}) bool {
	for len(evs) > 0 {
		q.mu.Lock()
		room := q.max - (len(q.items) - q.head)
		if room <= 0 {
			q.mu.Unlock()
			select {
			case <-q.notFull:
				continue
			case <-done:
				return false
			}
		}
		n := min(room, len(evs))
		if q.head > 0 && len(q.items)+n > cap(q.items) { // reuse the consumed prefix
			k := copy(q.items, q.items[q.head:])
			clear(q.items[k:])
			q.items, q.head = q.items[:k], 0
		}
		q.items = append(q.items, evs[:n]...)
		q.mu.Unlock()
		signal(q.notEmpty)
		evs = evs[n:]
	}
	return true
}

// pop returns the next event, waiting until one arrives, the queue is
// closed (ok false, queue drained) or ctx ends.
func (q *eventQueue) pop(ctx context.Context) (ev Event, ok bool, err error) {
	for {
		q.mu.Lock()
		if q.head < len(q.items) {
			full := len(q.items)-q.head >= q.max
			ev = q.items[q.head]
			q.items[q.head] = Event{}
			q.head++
			if q.head == len(q.items) {
				q.items, q.head = q.items[:0], 0
			}
			more := q.head < len(q.items)
			q.mu.Unlock()
			if full {
				signal(q.notFull)
			}
			if more {
				signal(q.notEmpty) // keep another waiter (C's forwarder) going
			}
			return ev, true, nil
		}
		closed := q.closed
		q.mu.Unlock()
		if closed {
			// close signals once: pass the wake-up on to the next waiter
			// (several goroutines may wait in Next).
			signal(q.notEmpty)
			return Event{}, false, nil
		}
		select {
		case <-q.notEmpty:
		case <-ctx.Done():
			return Event{}, false, ctx.Err()
		}
	}
}

// discard drops the events queued, waking a full queue's pusher.
func (q *eventQueue) discard() {
	q.mu.Lock()
	clear(q.items)
	q.items, q.head = q.items[:0], 0
	q.mu.Unlock()
	signal(q.notFull)
}

// close wakes every waiter (each passes the wake-up on, see pop); events
// already queued can still be popped.
func (q *eventQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	signal(q.notEmpty)
}
