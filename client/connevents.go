package client

import (
	"sync"
	"sync/atomic"
)

// ConnEvent describes a change of state of one of the client's pooled
// connections, for Options.OnDisconnect and Options.OnReconnect.
type ConnEvent struct {
	// Kind is the pool the connection belongs to: ConnKindPublish,
	// ConnKindEvent or ConnKindCache.
	Kind string
	// Index is the connection's place in its pool, from 0 (below
	// Options.PublishConns, EventConns or CacheConns).
	Index int
	// Addr is the broker address the client dials.
	Addr string
	// Err is, for OnDisconnect, why the connection ended: the QUIC error
	// (a *quic.ApplicationError when the broker closed it, such as at
	// its shutdown; a *quic.IdleTimeoutError when it stopped answering;
	// a *quic.StatelessResetError from a broker that restarted). It is nil
	// for OnReconnect.
	Err error
	// FailedDials is, for OnReconnect, the number of dials that failed
	// before the one that succeeded.
	FailedDials int
}

// The kinds of pooled connection (ConnEvent.Kind).
const (
	// ConnKindPublish: a publish connection (Publish, PublishBatch,
	// Publisher).
	ConnKindPublish = "publish"
	// ConnKindEvent: an event connection (subscriptions, queue
	// consumers, services).
	ConnKindEvent = "event"
	// ConnKindCache: a cache connection (cache requests and
	// Client.Request).
	ConnKindCache = "cache"
)

// ConnEventBuffer is the number of connection events queued for
// Options.OnDisconnect and OnReconnect while a callback runs; an event
// that finds the queue full is dropped and counted
// (Client.DroppedConnEvents). A disconnect is queued only while there is
// room left for the reconnect that will follow it, so each connection's
// events stay paired: a reconnect is delivered exactly when its
// disconnect was.
const ConnEventBuffer = 64

// connNote is a queued connection event.
type connNote struct {
	ev   ConnEvent
	lost bool // OnDisconnect, else OnReconnect
}

// connNotes holds a client's queue of connection events.
type connNotes struct {
	ch      chan connNote // nil when neither callback is set
	dropped atomic.Uint64

	// mu makes the room check and the send one step. reserved is the
	// room kept in ch for the reconnects of queued disconnects:
	// len(ch)+reserved never exceeds its capacity.
	mu       sync.Mutex
	reserved int
}

// startConnEvents starts the goroutine that runs the connection
// callbacks, when there are any; Close ends it (and waits for it).
func (c *Client) startConnEvents() {
	if c.opts.OnDisconnect == nil && c.opts.OnReconnect == nil {
		return
	}
	c.notes.ch = make(chan connNote, ConnEventBuffer)
	c.wg.Go(c.runConnEvents)
}

// runConnEvents calls the callbacks with each queued event until Close.
func (c *Client) runConnEvents() {
	done := c.ctx.Done()
	for {
		select {
		case <-done:
			return
		case n := <-c.notes.ch:
			if c.isClosed() {
				return
			}
			f := c.opts.OnReconnect
			if n.lost {
				f = c.opts.OnDisconnect
			}
			if f != nil {
				f(n.ev)
			}
		}
	}
}

// notifyLost queues a disconnect for OnDisconnect without waiting, and
// reports whether it did. It is queued only with room left for the
// reconnect that follows it, which is then reserved (unless the client
// never reconnects, Reconnect.Disabled); otherwise it is dropped and
// counted, and so will its reconnect be (notifyBack).
func (c *Client) notifyLost(ev ConnEvent) bool {
	if c.notes.ch == nil {
		return false
	}
	n := &c.notes
	n.mu.Lock()
	defer n.mu.Unlock()
	need := 1
	if !c.opts.Reconnect.Disabled {
		need = 2
	}
	if len(n.ch)+n.reserved+need > cap(n.ch) {
		c.dropConnEvent(ev)
		return false
	}
	n.ch <- connNote{ev: ev, lost: true} // never blocks: the room was checked under mu
	if need == 2 {
		n.reserved++
	}
	return true
}

// notifyBack queues the reconnect of a connection whose loss was reported
// (notifyLost): in the room reserved for it when the disconnect was
// queued (queued), else it is dropped and counted, as its disconnect was,
// so that OnReconnect never comes without its OnDisconnect.
func (c *Client) notifyBack(ev ConnEvent, queued bool) {
	if c.notes.ch == nil {
		return
	}
	if !queued {
		c.dropConnEvent(ev)
		return
	}
	n := &c.notes
	n.mu.Lock()
	defer n.mu.Unlock()
	if !c.opts.Reconnect.Disabled { // else notifyLost reserved nothing
		n.reserved--
	}
	select {
	case n.ch <- connNote{ev: ev}: // the reserved room: never full
	default:
		c.dropConnEvent(ev)
	}
}

// dropConnEvent counts an event not delivered.
func (c *Client) dropConnEvent(ev ConnEvent) {
	d := c.notes.dropped.Add(1)
	c.log.Debug("felix: connection event dropped: the callback is behind", "conn", ev.Kind, "index", ev.Index, "dropped", d)
}

// DroppedConnEvents is the number of connection events not delivered to
// Options.OnDisconnect or OnReconnect because ConnEventBuffer events were
// already waiting for a callback that was still running.
func (c *Client) DroppedConnEvents() uint64 { return c.notes.dropped.Load() }
