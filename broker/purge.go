package broker

import "fmt"

// PurgeResult says what a Purge removed.
type PurgeResult struct {
	// Purged is the number of events removed: those the stream still held
	// (its log's retained range, or its replay ring).
	Purged uint64
	// Offset is the first offset the stream keeps after the purge: the
	// offset the next event gets. Offsets are never reused.
	Offset uint64
}

// Purge removes every event the stream holds (NATS `stream purge`,
// RabbitMQ queue.purge). Offsets continue where they were: the next event
// gets the offset it would have had, so a consumer's saved position stays
// meaningful and a start by offset below the purge point gets the too-old
// answer, as after retention.
//
// Live subscriptions go on and receive every event published after the
// purge; a subscription replaying the log (catching up) or an in-memory
// stream's ring skips to the purge point and counts the events it skipped
// as dropped, as when retention overtakes it. A ring replay hands its
// consumer no purged event once Purge has returned (only the frame it
// may have taken before); a log replay may still deliver what it had
// read. Consumer groups deliver no purged record again (those
// not read, read ahead or awaiting a redelivery count as lost in
// queue.Stats.Lost); one a member holds in flight may still be acked.
//
// On a log-backed stream, events appended concurrently with the purge
// (their publish calls overlapping it) may be kept or removed, but an
// event is never half removed and nothing published after Purge returns
// is removed; see commitlog.Log.Purge for what happens on disk. An
// in-memory stream waits for a publisher blocked on a full subscriber
// queue (the block policy), as other publishers do.
func (s *Stream) Purge() (PurgeResult, error) {
	if s.lg != nil {
		if err := s.Err(); err != nil {
			return PurgeResult{}, err
		}
		first, purged, err := s.lg.log.Purge()
		s.purged.Add(purged) // on an error, what it deleted to make room on a full disk
		if err != nil {
			if reason := s.Err(); reason != nil {
				return PurgeResult{}, reason // deleted (its log closed) meanwhile
			}
			outcome := "purge not done"
			if purged > 0 {
				outcome = fmt.Sprintf("purge cut short after removing %d events", purged)
			}
			return PurgeResult{}, &StorageError{Key: s.key, Outcome: outcome, Err: err}
		}
		return PurgeResult{Offset: first, Purged: purged}, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended != nil {
		return PurgeResult{}, s.ended
	}
	res := PurgeResult{Purged: uint64(s.ring.n), Offset: s.tail}
	s.ringMu.Lock() // a replay in progress reads nothing of it from now on
	s.ring.reset()
	s.ringMu.Unlock()
	s.oldestNow.Store(s.tail)
	s.purged.Add(res.Purged)
	return res, nil
}

// reset empties the ring and frees its slot array (it grows again on
// demand), keeping its bounds.
func (r *ring) reset() {
	*r = ring{capacity: r.capacity, maxBytes: r.maxBytes}
}
