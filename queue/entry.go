package queue

import (
	"time"

	"github.com/felixmq/felix/commitlog"
)

// entryState is where a delivered, not yet done record is.
type entryState uint8

const (
	stInFlight entryState = iota + 1 // handed to entry.member, ack deadline running
	stReady                          // in Group.ready, to be redelivered now
	stDelayed                        // in Group.delayed until entry.due
	stDoomed                         // in Group.doomed, to be dead-lettered
	stDying                          // DeadLetter is being called for it
)

// entry is a record that was delivered at least once (or was pending at
// a restart) and is not done yet. The group holds one per such offset.
type entry struct {
	rec      commitlog.Record
	attempts int // deliveries so far
	state    entryState
	member   *Member   // stInFlight: the member holding it
	gen      uint64    // bumped per delivery; tells stale timeout items apart
	deadline time.Time // stInFlight: ack deadline
	due      time.Time // stDelayed: when it becomes ready
	heapIdx  int       // stDelayed: index in Group.delayed
	reason   string    // stDoomed, stDying: why the last attempt ended
	// unloaded: the group dropped rec.Payload (nil now) while the record
	// waits for a redelivery (stDelayed, or stReady once due) or for its
	// dead letter (stDoomed, stDying, after a failed DeadLetter call or a
	// restart); Next, or the dead-lettering, reads it again from the
	// stream. Entries in flight are never unloaded.
	unloaded bool
}

// fifo is a queue on a slice; popped slots are reclaimed when the live
// part has moved far enough along, and an emptied array larger than
// maxIdleFifo is dropped.
type fifo[T any] struct {
	items []T
	head  int
}

const maxIdleFifo = 1024

func (q *fifo[T]) len() int { return len(q.items) - q.head }

func (q *fifo[T]) push(v T) { q.items = append(q.items, v) }

func (q *fifo[T]) front() T { return q.items[q.head] }

func (q *fifo[T]) pop() T {
	var zero T
	v := q.items[q.head]
	q.items[q.head] = zero
	q.head++
	if q.head == len(q.items) {
		q.items, q.head = q.items[:0], 0
		if cap(q.items) > maxIdleFifo {
			q.items = nil // a burst's array goes back to the runtime
		}
	} else if q.head >= 1024 && q.head*2 >= len(q.items) {
		n := copy(q.items, q.items[q.head:])
		clear(q.items[n:])
		q.items, q.head = q.items[:n], 0
	}
	return v
}

// filter keeps the items keep accepts, in order.
func (q *fifo[T]) filter(keep func(T) bool) {
	var zero T
	n := 0
	for _, v := range q.items[q.head:] {
		if keep(v) {
			q.items[n] = v
			n++
		}
	}
	for i := n; i < len(q.items); i++ {
		q.items[i] = zero
	}
	q.items, q.head = q.items[:n], 0
}

// timeoutItem is one delivery in the ack-deadline queue. Deadlines are
// pushed in delivery order, so with a fixed AckTimeout the queue is sorted;
// an item is stale once its entry was acked, nacked or redelivered (state
// or gen changed). Stale items are dropped when they reach the front or
// when they outnumber the live ones.
type timeoutItem struct {
	e   *entry
	gen uint64
}

func (it timeoutItem) live() bool { return it.e.state == stInFlight && it.e.gen == it.gen }

// delayHeap orders delayed entries by due time, then offset. It implements
// container/heap.Interface.
type delayHeap []*entry

func (h delayHeap) Len() int { return len(h) }

func (h delayHeap) Less(i, j int) bool {
	if !h[i].due.Equal(h[j].due) {
		return h[i].due.Before(h[j].due)
	}
	return h[i].rec.Offset < h[j].rec.Offset
}

func (h delayHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].heapIdx = i
	h[j].heapIdx = j
}

func (h *delayHeap) Push(x any) {
	e := x.(*entry)
	e.heapIdx = len(*h)
	*h = append(*h, e)
}

func (h *delayHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	e.heapIdx = -1
	return e
}
