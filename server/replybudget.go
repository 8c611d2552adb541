package server

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/felixmq/felix/wire"
)

// DefaultMaxReplyBytesPerConn is Options.MaxReplyBytesPerConn's default.
const DefaultMaxReplyBytesPerConn = 64 << 20

// replyBudget bounds the bytes of replies a connection's control streams
// hold unwritten: built, and waiting for the client to read (QUIC flow
// control) before they are written. A cache read is the one request whose
// reply can be far larger than itself (a get of a 16 MiB value is a few
// dozen bytes): a client that pipelines such requests on many streams and
// reads none of the replies would otherwise make the broker hold a reply
// per stream, up to the frame limit each, thousands of streams a
// connection. So a cache read first reserves room for the largest reply
// (see control.reserveReply) and waits, not reading its stream further,
// while the connection's unwritten replies fill the budget.
type replyBudget struct {
	limit   int64
	held    atomic.Int64 // bytes counted: replies unwritten, reservations
	waiting atomic.Int32 // reservations waiting for room

	mu   sync.Mutex
	wake chan struct{} // closed (and replaced) when bytes are given back while some wait
}

func newReplyBudget(limit int64) *replyBudget {
	return &replyBudget{limit: limit, wake: make(chan struct{})}
}

// tryReserve counts n bytes if they fit (or nothing else is counted: a
// reservation larger than the budget goes alone).
func (b *replyBudget) tryReserve(n int64) bool {
	for {
		cur := b.held.Load()
		if cur > 0 && cur+n > b.limit {
			return false
		}
		if b.held.CompareAndSwap(cur, cur+n) {
			return true
		}
	}
}

// reserve counts n bytes, waiting for room until ctx ends.
func (b *replyBudget) reserve(ctx context.Context, n int64) error {
	for {
		if b.tryReserve(n) {
			return nil
		}
		// Registered as waiting before the channel is taken and the
		// budget looked at again: a release after that closes this
		// channel, one before it left room seen below.
		b.waiting.Add(1)
		b.mu.Lock()
		wake := b.wake
		b.mu.Unlock()
		if b.tryReserve(n) {
			b.waiting.Add(-1)
			return nil
		}
		select {
		case <-wake:
			b.waiting.Add(-1)
		case <-ctx.Done():
			b.waiting.Add(-1)
			return context.Cause(ctx)
		}
	}
}

// add counts n more bytes (n < 0: gives them back) without waiting.
func (b *replyBudget) add(n int64) {
	if n == 0 {
		return
	}
	b.held.Add(n)
	if n < 0 && b.waiting.Load() > 0 {
		b.mu.Lock()
		close(b.wake)
		b.wake = make(chan struct{})
		b.mu.Unlock()
	}
}

// maxReplyBytes is the largest reply frame a request can get: replies are
// held to the frame limit (see cacheReply).
func (s *Server) maxReplyBytes() int64 { return int64(s.maxFrame() + wire.HeaderSize) }

// reserveReply reserves room in the connection's reply budget for the
// reply of the cache read being served, before it is built: the read
// waits while the connection's unwritten replies fill the budget (their
// clients do not read them), after writing this stream's own (which it
// would otherwise wait for). Such a wait is counted
// (Counters.ReplyBudgetWaits) and does not hold up a drain. The
// reservation becomes the reply's size once it is built (see account).
func (ctl *control) reserveReply() error {
	b, n := ctl.c.replies, ctl.c.s.maxReplyBytes()
	if b.tryReserve(n) {
		ctl.reserved = n
		return nil
	}
	ctl.c.s.stats.ReplyBudgetWaits.Add(1)
	if err := ctl.flush(); err != nil {
		return err
	}
	ctl.c.s.busy.Add(-1) // waiting for a client to read is not a request in progress
	defer ctl.c.s.busy.Add(1)
	if err := b.reserve(ctl.ctx, n); err != nil {
		return err
	}
	ctl.reserved = n
	return nil
}

// account counts, after a request was served, the replies it added to
// ctl.out, in place of its reservation if it made one.
func (ctl *control) account() {
	n := int64(len(ctl.out)) - ctl.counted
	ctl.c.replies.add(n - ctl.reserved)
	ctl.counted += n
	ctl.reserved = 0
}

// written gives back the bytes counted for the replies a flush wrote (or
// failed to: they will never be written).
func (ctl *control) written() {
	ctl.c.replies.add(-ctl.counted)
	ctl.counted = 0
}

// uncount gives back everything the stream counted, when it ends.
func (ctl *control) uncount() {
	ctl.c.replies.add(-(ctl.counted + ctl.reserved))
	ctl.counted, ctl.reserved = 0, 0
}
