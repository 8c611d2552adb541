package queue

import (
	"context"
	"errors"
)

// reap dead-letters the doomed records: DeadLetter is called for each
// (outside the lock); the ones it accepts are done and recorded in the
// state log, the ones it refuses stay doomed for the next Tick (unless it
// says ErrDeadLetterDropped: done, the drop counted). Failures are counted
// in Stats.
func (g *Group) reap(ctx context.Context) {
	g.mu.Lock()
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
	g.mu.Unlock()
	if len(batch) == 0 {
		return
	}
	var ops []op
	for _, e := range batch {
		err := ErrDeadLetterDropped // no DeadLetter func: dropped
		if g.opts.DeadLetter != nil {
			err = g.opts.DeadLetter(ctx, e.rec, e.attempts, e.reason)
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
	if len(ops) > 0 {
		g.mu.Lock()
		ops = g.takeDirtyLocked(ops)
		g.mu.Unlock()
		g.persist(ctx, ops) // failures are counted in Stats.StateErrors
	}
}
