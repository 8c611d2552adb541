package commitlog

import (
	"context"
	"sync"
)

// notifier wakes every goroutine waiting for "something changed". A waiter
// takes the channel, re-checks its condition, then blocks on the channel;
// broadcast closes it. The channel is made only when someone waits, so a
// broadcast with no waiters costs a lock and nothing else.
type notifier struct {
	mu sync.Mutex
	ch chan struct{}
}

// wait returns a channel closed by the next broadcast.
func (n *notifier) wait() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.ch == nil {
		n.ch = make(chan struct{})
	}
	return n.ch
}

func (n *notifier) broadcast() {
	n.mu.Lock()
	if n.ch != nil {
		close(n.ch)
		n.ch = nil
	}
	n.mu.Unlock()
}

// waitUntil blocks until ready reports true or an error, or ctx ends. Every
// change that can make ready true must be followed by note.broadcast().
func waitUntil(ctx context.Context, note *notifier, ready func() (bool, error)) error {
	for {
		ch := note.wait()
		if ok, err := ready(); ok || err != nil {
			return err
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// checkContiguous reports whether records start at next and follow each
// other without a gap.
func checkContiguous(next uint64, records []Record) error {
	for i, r := range records {
		if want := next + uint64(i); r.Offset != want {
			return &OffsetMismatchError{Want: want, Got: r.Offset}
		}
	}
	return nil
}

// readBounds applies the defaults to Read's bounds.
func readBounds(maxRecords, maxBytes int) (int, int) {
	if maxRecords <= 0 {
		maxRecords = DefaultReadRecords
	}
	if maxBytes <= 0 {
		maxBytes = DefaultReadBytes
	}
	return maxRecords, maxBytes
}
