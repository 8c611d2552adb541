package queue

import (
	"context"
	"errors"
)

// reap dead-letters the doomed records: DeadLetter is called for each
// (outside the lock); the ones it accepts are done and recorded in the
// state log, the ones it refuses stay doomed for the next Tick (unless it
// says ErrDeadLetterDropped: done, the drop counted). Failures are counted
// in Stats. Once the group is closed it dead-letters nothing: Close has
// written the group's final state, and the doomed records stay pending
// for the next run. Close waits for a reap under way, and cancels the
// context of its DeadLetter calls.
func (g *Group) reap(ctx context.Context) {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return
	}
	// A record the stream no longer holds (a purge, or retention, removed
	// it while it waited, say after a failed DeadLetter) is not
	// dead-lettered: it is done and counted lost (goneLocked).
	oldest := g.stream.Oldest()
	batch := g.doomed[:0]
	for _, e := range g.doomed {
		if !g.goneLocked(e, oldest) {
			e.state = stDying
			batch = append(batch, e)
		}
	}
	g.doomed = nil
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
			e.state = stDoomed // for the next run
			g.doomed = append(g.doomed, e)
			g.mu.Unlock()
			continue
		}
		err := ErrDeadLetterDropped // no DeadLetter func: dropped
		if g.opts.DeadLetter != nil {
			err = g.opts.DeadLetter(dctx, e.rec, e.attempts, e.reason)
		}
		dropped := errors.Is(err, ErrDeadLetterDropped)
		if dropped {
			err = nil // done all the same: never retried
		}
		g.mu.Lock()
		if dropped {
			g.stats.DeadLettersDropped++
		}
		if err != nil {
			e.state = stDoomed
			g.doomed = append(g.doomed, e)
			g.stats.DeadLetterErrors++
		} else {
			if g.state != nil {
				ops = append(ops, op{kind: opDead, off: e.rec.Offset})
			}
			g.doneLocked(e)
			g.stats.DeadLettered++
		}
		g.mu.Unlock()
	}
	g.mu.Lock()
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
