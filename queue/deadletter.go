package queue

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/felixmq/felix/commitlog"
)

// reap dead-letters the doomed records: DeadLetter is called for each
// (outside the lock); the ones it accepts are done and recorded in the
// state log, the ones it refuses stay doomed for the next Tick (unless it
// says ErrDeadLetterDropped: done, the drop counted). Failures are counted
// in Stats. Once the group is closed it dead-letters nothing: Close has
// written the group's final state, and the doomed records stay pending
// for the next run. Close waits for a reap under way, and cancels the
// context of its DeadLetter calls; if a call outlasts
// Options.CloseDeadLetterWait, Close gives up on the reap (see
// awaitReapsLocked), which then changes nothing once its call returns.
//
// only, when set, limits the reap to that record (a Nack's own): the
// others, whose calls failed before, wait for Tick's next round, so that
// a dead-letter stream that stays unavailable costs one call per record
// per round, not one per record per Nack. A round of Tick's whose calls
// all failed puts its next one off (deadLetterRetryMin, doubling to
// deadLetterRetryMax); one call that succeeds ends the backoff.
func (g *Group) reap(ctx context.Context, only *entry) {
	failed, succeeded := 0, 0
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return
	}
	// A record the stream no longer holds (a purge, or retention, removed
	// it while it waited, say after a failed DeadLetter) is not
	// dead-lettered: it is done and counted lost (goneLocked).
	oldest := g.stream.Oldest()
	var batch []*entry
	if only != nil {
		if i := slices.Index(g.doomed, only); i >= 0 {
			g.doomed = slices.Delete(g.doomed, i, i+1)
			if !g.goneLocked(only, oldest) {
				only.state = stDying
				batch = append(batch, only)
			}
		}
	} else {
		batch = g.doomed[:0]
		for _, e := range g.doomed {
			if !g.goneLocked(e, oldest) {
				e.state = stDying
				batch = append(batch, e)
			}
		}
		g.doomed = nil
	}
	if len(batch) == 0 {
		g.mu.Unlock()
		return
	}
	g.reaping++
	g.mu.Unlock()
	dctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(g.closing, cancel)()
	var ops []op
	for _, e := range batch {
		if g.closing.Err() != nil {
			g.mu.Lock()
			if g.abandoned {
				g.endAbandonedReapLocked()
				return
			}
			e.state = stDoomed // for the next run
			g.doomed = append(g.doomed, e)
			g.mu.Unlock()
			continue
		}
		rec, gone, err := g.deadRecord(e)
		if gone {
			g.mu.Lock()
			if g.abandoned {
				g.endAbandonedReapLocked()
				return
			}
			g.stats.Lost++ // not dead-lettered: the stream dropped it (goneLocked)
			g.doneLocked(e)
			g.skippedLocked()
			g.mu.Unlock()
			continue
		}
		if err == nil {
			err = ErrDeadLetterDropped // no DeadLetter func: dropped
			if g.opts.DeadLetter != nil {
				err = g.opts.DeadLetter(dctx, rec, e.attempts, e.reason)
			}
		}
		dropped := errors.Is(err, ErrDeadLetterDropped)
		if dropped {
			err = nil // done all the same: never retried
		}
		g.mu.Lock()
		if g.abandoned {
			// Close stopped waiting for this call and wrote the group's
			// final state with the record pending: whatever the call did,
			// the record is dead-lettered again after a restart.
			g.endAbandonedReapLocked()
			return
		}
		if dropped {
			g.stats.DeadLettersDropped++
		}
		if err != nil {
			failed++
			e.state = stDoomed
			g.doomed = append(g.doomed, e)
			g.stats.DeadLetterErrors++
			// It may wait long (the dead-letter stream stays unavailable),
			// with many others: the retry reads its payload again.
			g.unloadLocked(e)
		} else {
			succeeded++
			if g.state != nil {
				ops = append(ops, op{kind: opDead, off: e.rec.Offset})
			}
			g.doneLocked(e)
			g.stats.DeadLettered++
		}
		g.mu.Unlock()
	}
	g.mu.Lock()
	if g.abandoned {
		// Close gave up just after the last call returned: its final
		// snapshot holds the dead letters accepted (they are done).
		g.endAbandonedReapLocked()
		return
	}
	switch {
	case succeeded > 0:
		g.deadLetterBackoff, g.deadLetterRetryAt = 0, time.Time{}
	case failed > 0 && only == nil: // a Nack's own call does not put Tick's rounds off
		g.deadLetterBackoff = min(max(2*g.deadLetterBackoff, deadLetterRetryMin), deadLetterRetryMax)
		g.deadLetterRetryAt = g.opts.Clock.Now().Add(g.deadLetterBackoff)
	}
	var w stateWrite
	if len(ops) > 0 {
		w = g.writeStateLocked(ops, false)
	}
	if g.reaping--; g.reaping == 0 {
		g.settled.Broadcast() // Close writes after this record
	}
	g.mu.Unlock()
	g.awaitState(ctx, w) // failures are counted in Stats.StateErrors
}

// deadLetterRetryMin and deadLetterRetryMax bound the wait between two
// rounds of dead letters while every call fails: it starts at the minimum
// and doubles, so that a dead-letter stream refusing for long (a full
// disk) is not asked for every waiting record at every Tick.
const (
	deadLetterRetryMin = time.Second
	deadLetterRetryMax = 30 * time.Second
)

// endAbandonedReapLocked ends a reap that Close gave up waiting for: it
// changes no state (Close wrote the final state with its records
// pending, and the state log may be closed by now) and only leaves the
// count of reaps under way. g.mu is held; it is released.
func (g *Group) endAbandonedReapLocked() {
	g.reaping--
	g.mu.Unlock()
}

// awaitReapsLocked is Close's wait for the dead-letterings under way
// (g.reaping > 0), whose DeadLetter calls' contexts it has cancelled. A
// DeadLetter func that ignores its context (a publish stuck in a write
// that does not look at it) would hold Close, and the broker's shutdown,
// forever: after Options.CloseDeadLetterWait Close stops waiting. The
// records of the reaps it gives up on stay pending in the final state
// (a snapshot, which also records the dead letters those reaps had
// accepted and not yet written), counted in Stats.DeadLettersAbandoned:
// they are dead-lettered again after a restart (at-least-once), and the
// reaps change nothing once their calls return. g.mu is held (released
// while waiting).
func (g *Group) awaitReapsLocked() {
	if g.hooks.closeWaits != nil {
		g.hooks.closeWaits()
	}
	expired := false
	t := time.AfterFunc(g.opts.CloseDeadLetterWait, func() {
		g.mu.Lock()
		expired = true
		g.settled.Broadcast()
		g.mu.Unlock()
	})
	defer t.Stop()
	for g.reaping > 0 && !expired {
		g.settled.Wait()
	}
	if g.reaping == 0 {
		return
	}
	g.abandoned = true
	for _, e := range g.entries {
		if e.state == stDying {
			g.stats.DeadLettersAbandoned++
		}
	}
	g.resnap = true
}

// deadRecord is e's record for its DeadLetter call: e.rec, or, when the
// group dropped its payload (an earlier call failed; pending at a
// restart), the record read again from the stream (counted in
// Stats.Reloaded). gone: the stream no longer holds it. err: the read
// failed (the dead-lettering is retried, like a failed call). e is
// stDying: only this reap touches it, and the lock is not held.
func (g *Group) deadRecord(e *entry) (rec commitlog.Record, gone bool, err error) {
	if !e.unloaded {
		return e.rec, false, nil
	}
	recs, err := g.stream.Read(e.rec.Offset, 1, 0)
	var tooOld *commitlog.TooOldError
	switch {
	case errors.As(err, &tooOld):
		return rec, true, nil
	case err != nil:
		return rec, false, fmt.Errorf("queue: group %q: read stream at %d: %w", g.name, e.rec.Offset, err)
	case len(recs) == 0 || recs[0].Offset != e.rec.Offset:
		return rec, true, nil
	}
	g.mu.Lock()
	g.stats.Reloaded++
	g.mu.Unlock()
	return recs[0], false, nil
}
