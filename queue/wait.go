package queue

import (
	"context"
	"fmt"
)

// How blocked members are woken.
//
// A member blocked in Next either has a full prefetch — it waits for its
// own deliveries to end, and takeBackLocked wakes it — or has room and
// waits for work. Of the latter, one (Group.streamWaiter) waits on the
// stream for new records and the others queue in Group.idle. Work that
// appears (a redelivery made ready, records left in the buffer by a Next
// that filled its batch) wakes one idle member with wakeOneLocked; every
// Next, as it returns, passes the turn on: it wakes the next idle member
// if work is left or if nobody watches the stream any more. So a record
// wakes one member, not all of them, and no work is left with an idle
// member asleep.
//
// Members take turns: when nobody watches the stream, the idle member
// woken is made the stream waiter at once (before it runs), so the member
// whose Next just returned, coming back first, queues behind the others
// instead of taking the watch back. Records that arrive one at a time go
// round the waiting members. A member holds the watch only while it is in
// Next: Next clears it as it returns.

// idleRef is a member's place in Group.idle; stale once the member was
// woken (its idleGen moved on).
type idleRef struct {
	m   *Member
	gen uint64
}

func (r idleRef) live() bool { return r.m.idle && r.m.idleGen == r.gen }

// block waits, with g.mu released, until m is woken or, when m is the
// stream waiter, the stream grows past readPos. room: m has room in its
// prefetch and waits for work. It returns with g.mu held.
func (m *Member) block(ctx context.Context, room bool) error {
	g := m.g
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	m.wake = cancel
	onStream := false
	if room {
		if !g.refilling && (g.streamWaiter == nil || g.streamWaiter == m) {
			g.streamWaiter, onStream = m, true
		} else {
			if g.streamWaiter == m {
				g.streamWaiter = nil // handed the watch during a refill: the refill's end passes it on
			}
			m.idle = true
			m.idleGen++
			g.idle.push(idleRef{m: m, gen: m.idleGen})
			if n := g.idle.len(); n >= 64 && n > 2*len(g.members) {
				g.idle.filter(idleRef.live)
			}
		}
	}
	after := g.readPos
	g.mu.Unlock()
	var err error
	if onStream {
		err = g.stream.Wait(wctx, after)
	} else {
		<-wctx.Done()
	}
	g.mu.Lock()
	m.wake, m.idle = nil, false
	if onStream && g.streamWaiter == m {
		g.streamWaiter = nil
	}
	if cerr := ctx.Err(); cerr != nil {
		return cerr
	}
	if err != nil && wctx.Err() == nil {
		return fmt.Errorf("queue: group %q: wait for stream: %w", g.name, err)
	}
	return nil
}

// wakeLocked wakes m if it is blocked in Next.
func (g *Group) wakeLocked(m *Member) {
	if m.wake != nil {
		m.wake()
		m.wake, m.idle = nil, false
	}
}

// wakeOneLocked wakes the first idle member or, with none and work
// waiting, the stream waiter.
func (g *Group) wakeOneLocked() {
	for g.idle.len() > 0 {
		if r := g.idle.pop(); r.live() {
			if g.streamWaiter == nil && !g.refilling {
				g.streamWaiter = r.m // its turn to watch the stream (see above)
			}
			g.wakeLocked(r.m)
			return
		}
	}
	if g.streamWaiter != nil && g.ready.len()+len(g.buf) > 0 {
		g.wakeLocked(g.streamWaiter)
	}
}

// passOnLocked runs as a Next returns: work left over, or a stream that
// nobody waits on any more, goes to the next idle member.
func (g *Group) passOnLocked() {
	if g.ready.len()+len(g.buf) > 0 || g.streamWaiter == nil {
		g.wakeOneLocked()
	}
}

// wakeEveryoneLocked wakes all blocked members (the group closes).
func (g *Group) wakeEveryoneLocked() {
	for _, m := range g.members {
		g.wakeLocked(m)
	}
}
