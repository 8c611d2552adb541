package bench

import (
	"sync"
	"sync/atomic"
	"time"
)

// tracker receives every delivery of a run: per subscriber it records
// latency and tracks sequence numbers (a bitset over the run's sequence
// space) to count distinct deliveries, duplicates and reordering.
type tracker struct {
	clk     clock
	warmup  uint64 // sequence numbers below this are warm-up: not in latency
	limit   uint64 // sequence numbers at or above this are invalid
	subs    []subTracker
	sentAt  []atomic.Int64 // actual send time by sequence, set by the publisher
	closed  atomic.Bool    // set once the run stops counting
	invalid atomic.Int64   // deliveries to an unknown subscriber
	// distinct counts distinct deliveries over all subscribers; when it
	// reaches want, notify gets a (non-blocking) signal.
	distinct atomic.Int64
	want     atomic.Int64
	notify   chan struct{}
}

// subTracker is one subscriber's state. Its mutex is uncontended when the
// target delivers to each subscriber from one goroutine, as targets do.
type subTracker struct {
	mu       sync.Mutex
	hist     *Histogram // receive − stamped (scheduled) send time
	uhist    *Histogram // receive − actual send time
	seen     []uint64   // bitset of delivered sequence numbers
	maxSeq   int64      // highest sequence delivered, -1 before the first
	distinct int64      // distinct deliveries, warm-up included
	measured int64      // distinct deliveries after warm-up
	dups     int64
	ooo      int64
	invalid  int64 // payloads too short or with a sequence out of range
	lastRecv int64 // receive time of the latest measured delivery (clock ns)
	_        [64]byte
}

func newTracker(clk clock, subscribers int, warmup, limit uint64) *tracker {
	t := &tracker{clk: clk, warmup: warmup, limit: limit, notify: make(chan struct{}, 1)}
	t.sentAt = make([]atomic.Int64, limit)
	t.subs = make([]subTracker, subscribers)
	for i := range t.subs {
		t.subs[i].hist = NewHistogram()
		t.subs[i].uhist = NewHistogram()
		t.subs[i].seen = make([]uint64, (limit+63)/64)
		t.subs[i].maxSeq = -1
	}
	return t
}

// deliver is the callback handed to PubSubTarget.Setup.
func (t *tracker) deliver(sub int, payload []byte) {
	now := t.clk.now()
	if sub < 0 || sub >= len(t.subs) {
		t.invalid.Add(1)
		return
	}
	sent, seq, ok := readPayload(payload)
	s := &t.subs[sub]
	s.mu.Lock()
	if t.closed.Load() {
		s.mu.Unlock()
		return
	}
	if !ok || seq >= t.limit {
		s.invalid++
		s.mu.Unlock()
		return
	}
	word, bit := seq/64, uint64(1)<<(seq%64)
	if s.seen[word]&bit != 0 {
		s.dups++
		s.mu.Unlock()
		return
	}
	s.seen[word] |= bit
	s.distinct++
	if int64(seq) < s.maxSeq {
		s.ooo++
	} else {
		s.maxSeq = int64(seq)
	}
	if seq >= t.warmup {
		s.measured++
		s.hist.Record(time.Duration(now - sent))
		if at := t.sentAt[seq].Load(); at != 0 {
			s.uhist.Record(time.Duration(now - at))
		}
		if now > s.lastRecv {
			s.lastRecv = now
		}
	}
	s.mu.Unlock()
	if n := t.distinct.Add(1); n >= t.want.Load() {
		select {
		case t.notify <- struct{}{}:
		default:
		}
	}
}

// expect sets the number of distinct deliveries wait waits for.
func (t *tracker) expect(n int64) { t.want.Store(n) }

// wait blocks until the distinct deliveries reach the expected number or
// done is closed. It reports whether every expected delivery arrived.
func (t *tracker) wait(done <-chan struct{}) bool {
	for t.distinct.Load() < t.want.Load() {
		select {
		case <-t.notify:
		case <-done:
			return t.distinct.Load() >= t.want.Load()
		}
	}
	return true
}

// stop makes later deliveries no-ops and returns the totals.
func (t *tracker) stop() trackerTotals {
	t.closed.Store(true)
	tot := trackerTotals{latency: NewHistogram(), uncorrected: NewHistogram(), invalid: t.invalid.Load()}
	for i := range t.subs {
		s := &t.subs[i]
		s.mu.Lock()
		tot.latency.Merge(s.hist)
		tot.uncorrected.Merge(s.uhist)
		tot.distinct += s.distinct
		tot.measured += s.measured
		tot.dups += s.dups
		tot.ooo += s.ooo
		tot.invalid += s.invalid
		tot.lastRecv = max(tot.lastRecv, s.lastRecv)
		s.mu.Unlock()
	}
	return tot
}

type trackerTotals struct {
	latency, uncorrected *Histogram
	distinct, measured   int64
	dups, ooo, invalid   int64
	lastRecv             int64
}
