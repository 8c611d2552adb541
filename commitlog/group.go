package commitlog

import "sync"

// Group write: concurrent AppendNoWait calls share one write call.
//
// An appender joins the open group (under groupQueue.mu, never under
// DiskLog.mu). The one that opened the group is its leader: it takes
// DiskLog.mu — waiting there while the previous group is written, which is
// when the others join — closes the group, so later appenders open the
// next one, and writes every record of the group with one write call
// (writeLocked: one buffer, one write, rolling first if needed, the
// failure cut off as for any append). It then hands the outcome to the
// group's other appenders (followers), which wait on the group's
// condition. Each appender's records are consecutive within the group, in
// the order the appenders joined it, so each learns its own offsets; a
// failed write fails every appender of the group, and none of its records
// is stored. A follower's payloads are not copied: it is blocked until the
// write is done, so the leader encodes them from the follower's slices.
//
// A lone appender is its own leader and writes at once: the group adds
// three short critical sections of groupQueue.mu and no wait. Batching
// needs appenders that overlap: at least one arriving while a write is
// under way.

// writeGroup is the appends of one group write.
type writeGroup struct {
	payloads [][]byte // every appender's, in the order they joined
	calls    int      // appenders in the group

	// Set by the leader once the group is written (or not), under
	// groupQueue.mu; followers read them after done.
	done    bool
	first   uint64 // offset of payloads[0]
	err     error
	waiters int // followers that have not yet read the outcome

	cond sync.Cond // L is &groupQueue.mu; followers wait for done
	next *writeGroup
}

// groupQueue gathers the appenders of the open group.
type groupQueue struct {
	mu     sync.Mutex
	open   *writeGroup // the group appenders join; nil when none is open
	free   *writeGroup // written groups kept for reuse (at most keepGroups)
	nfree  int
	queued int // appenders in the open group (Stats.Queued)
}

// keepGroups bounds the written groups kept for reuse.
const keepGroups = 4

// keepGroupPayloads bounds the payload list a reused group keeps.
const keepGroupPayloads = 1024

// getLocked returns an empty group; q.mu is held.
func (q *groupQueue) getLocked() *writeGroup {
	g := q.free
	if g == nil {
		g = &writeGroup{}
		g.cond.L = &q.mu
		return g
	}
	q.free, g.next = g.next, nil
	q.nfree--
	return g
}

// putLocked keeps g for reuse once its leader and every follower are done
// with it; q.mu is held.
func (q *groupQueue) putLocked(g *writeGroup) {
	if !g.done || g.waiters > 0 {
		return
	}
	clear(g.payloads) // do not pin the appenders' buffers
	if cap(g.payloads) > keepGroupPayloads {
		g.payloads = nil
	}
	g.payloads, g.calls, g.done, g.first, g.err = g.payloads[:0], 0, false, 0, nil
	if q.nfree < keepGroups {
		g.next, q.free = q.free, g
		q.nfree++
	}
}

// appendGrouped writes payloads (sizes checked, at least one) as
// consecutive records, in one write call shared with the concurrent
// appenders of its group, and returns the first offset and the offset
// after the last.
func (l *DiskLog) appendGrouped(payloads [][]byte) (first, end uint64, err error) {
	q := &l.group
	q.mu.Lock()
	g := q.open
	leader := g == nil
	if leader {
		g = q.getLocked()
		q.open = g
	} else {
		g.waiters++
	}
	idx := len(g.payloads)
	g.payloads = append(g.payloads, payloads...)
	g.calls++
	q.queued++
	if !leader {
		for !g.done {
			g.cond.Wait()
		}
		first, err = g.first+uint64(idx), g.err
		g.waiters--
		q.putLocked(g)
		q.mu.Unlock()
		if err != nil {
			return 0, 0, err
		}
		return first, first + uint64(len(payloads)), nil
	}
	q.mu.Unlock()

	l.lockForWrite(func() int64 {
		// An estimate of the group's size, for the decision to fsync the
		// active segment before taking the lock again (see lockForWrite);
		// the group may still grow.
		q.mu.Lock()
		defer q.mu.Unlock()
		return payloadsSize(g.payloads)
	})
	q.mu.Lock()
	q.open = nil // later appenders open the next group
	q.queued -= g.calls
	q.mu.Unlock()
	// The group is closed: g.payloads and g.calls no longer change.
	ts := l.opts.Clock().UnixMicro()
	gfirst, _, werr := l.writeLocked(len(g.payloads), g.calls, func(int) int64 { return ts }, func(i int) []byte { return g.payloads[i] })
	l.unlockWrite()
	if werr == nil {
		l.notifyWrite()
	}
	q.mu.Lock()
	g.done, g.first, g.err = true, gfirst, werr
	g.cond.Broadcast()
	q.putLocked(g)
	q.mu.Unlock()
	if werr != nil {
		return 0, 0, werr
	}
	return gfirst + uint64(idx), gfirst + uint64(idx+len(payloads)), nil
}

// payloadsSize is the bytes the payloads take as records.
func payloadsSize(payloads [][]byte) int64 {
	n := int64(0)
	for _, p := range payloads {
		n += int64(encodedSize(len(p)))
	}
	return n
}

// queued is the appenders in the open group (Stats.Queued).
func (l *DiskLog) queued() int {
	l.group.mu.Lock()
	defer l.group.mu.Unlock()
	return l.group.queued
}
