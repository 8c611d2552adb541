package broker

// SubTotals sum a stream's subscription counters over every subscription
// the stream has had, ended ones included, so they only grow (what a
// Prometheus counter needs); Subscriptions and QueueLen are gauges over the
// live subscriptions. Events a subscription handles after it is removed
// (the rest of its queue) are not counted.
type SubTotals struct {
	Subscriptions int    // live subscriptions, those replaying a log included
	QueueLen      int    // frames waiting in the live subscriptions' queues
	Enqueued      uint64 // events accepted into subscription queues
	Dropped       uint64 // events dropped by queue policies
	Delivered     uint64 // events handed to subscription writers
}

// add folds sub's counters into t.
func (t *SubTotals) add(sub *Subscription) {
	t.Enqueued += sub.enqueued.Load()
	t.Dropped += sub.dropped.Load()
	t.Delivered += sub.delivered.Load()
}

// SubTotals returns the stream's subscription totals. It reads them under
// statsMu, the lock that moves a removed subscription's counts into the
// retired totals together with its removal from the list, so two reads
// never see a counter go down; it never waits for a publisher.
func (s *Stream) SubTotals() SubTotals {
	s.statsMu.Lock()
	defer s.statsMu.Unlock()
	t := s.retired
	t.Subscriptions, t.QueueLen = 0, 0
	for _, sub := range *s.subs.Load() {
		t.add(sub)
		t.Subscriptions++
		t.QueueLen += len(sub.q)
	}
	for sub := range s.catching { // replaying the log: live, not yet in subs
		t.add(sub)
		t.Subscriptions++
	}
	return t
}
