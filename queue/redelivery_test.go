package queue

import (
	"context"
	"errors"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/felixmq/felix/commitlog"
)

// A member that stops acking: after the ack timeout Tick takes its
// deliveries back; after the backoff they go to the other member, with
// Attempt 2. The stalled member's late ack is refused.
func TestAckTimeoutRedeliversToOthers(t *testing.T) {
	stream := memStream(t, 10)
	clock := newFakeClock()
	g := newGroupT(t, stream, Options{Clock: clock, AckTimeout: 30 * time.Second, BackoffMin: time.Second})
	defer g.Close()
	stalled := joinT(t, g, "stalled", 3)
	worker := joinT(t, g, "worker", 100)

	if got := offsets(nextT(t, stalled, 0)); !slices.Equal(got, []uint64{0, 1, 2}) {
		t.Fatalf("stalled got %v", got)
	}
	ds := nextT(t, worker, 0)
	if got := offsets(ds); !slices.Equal(got, []uint64{3, 4, 5, 6, 7, 8, 9}) {
		t.Fatalf("worker got %v", got)
	}
	ackT(t, worker, offsets(ds)...)

	// The worker waits: nothing for it until the timeout and backoff pass.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	res := asyncNext(ctx, worker, 0)

	g.Tick(clock.Advance(30*time.Second - time.Microsecond))
	if s := g.Stats(); s.TimedOut != 0 || s.InFlight != 3 || stalled.InFlight() != 3 {
		t.Fatalf("before the deadline: %+v", s)
	}
	g.Tick(clock.Advance(time.Microsecond))
	if s := g.Stats(); s.TimedOut != 3 || s.InFlight != 0 || s.Pending != 3 || s.Delayed != 3 || stalled.InFlight() != 0 {
		t.Fatalf("at the deadline: %+v", s)
	}
	g.Tick(clock.Advance(time.Second)) // backoff after attempt 1: BackoffMin
	r := <-res
	if r.err != nil || !slices.Equal(offsets(r.ds), []uint64{0, 1, 2}) || !slices.Equal(attempts(r.ds), []int{2, 2, 2}) {
		t.Fatalf("worker after the timeout: %v %v %v", offsets(r.ds), attempts(r.ds), r.err)
	}
	if string(r.ds[1].Payload) != "rec-1" {
		t.Fatalf("redelivered payload %q", r.ds[1].Payload)
	}
	wantNotInFlight(t, stalled.Ack(context.Background(), 0, 1), 0, 1)
	ackT(t, worker, 0, 1, 2)
	if s := g.Stats(); s.Acked != 10 || s.Redelivered != 3 || s.Lag != 0 || s.Floor != 10 {
		t.Fatalf("after all acks: %+v", s)
	}
}

// Leave gives the member's deliveries to the others at once, attempt
// counts kept, and wakes a Next blocked on the member that left.
func TestLeaveRedeliversAtOnce(t *testing.T) {
	stream := memStream(t, 4)
	g := newGroupT(t, stream, Options{Clock: newFakeClock()})
	defer g.Close()
	a := joinT(t, g, "a", 2)
	b := joinT(t, g, "b", 2)
	if got := offsets(nextT(t, a, 0)); !slices.Equal(got, []uint64{0, 1}) {
		t.Fatalf("a got %v", got)
	}
	ackT(t, b, offsets(nextT(t, b, 0))...) // 2, 3
	aBlocked := asyncNext(context.Background(), a, 0)
	bWaits := asyncNext(context.Background(), b, 0)

	a.Leave()
	if r := <-aBlocked; !errors.Is(r.err, ErrMemberLeft) {
		t.Fatalf("a's blocked Next: %v", r.err)
	}
	r := <-bWaits
	if r.err != nil || !slices.Equal(offsets(r.ds), []uint64{0, 1}) || !slices.Equal(attempts(r.ds), []int{2, 2}) {
		t.Fatalf("b after a left: %v %v %v", offsets(r.ds), attempts(r.ds), r.err)
	}
	if _, err := a.Next(context.Background(), 0); !errors.Is(err, ErrMemberLeft) {
		t.Fatalf("Next after Leave: %v", err)
	}
	a.Leave() // twice: nothing
	if s := g.Stats(); s.Members != 1 || s.InFlight != 2 || s.Redelivered != 2 || s.TimedOut != 0 {
		t.Fatalf("stats: %+v", s)
	}
	// The id is free again.
	joinT(t, g, "a", 1)
}

// A nacked record is redelivered after its delay and not before.
func TestNackDelay(t *testing.T) { synctest.Test(t, testNackDelay) }

func testNackDelay(t *testing.T) {
	stream := memStream(t, 2)
	clock := newFakeClock()
	g := newGroupT(t, stream, Options{Clock: clock})
	defer g.Close()
	m := joinT(t, g, "m", 10)
	ds := nextT(t, m, 1)
	if err := m.Nack(context.Background(), ds[0].Offset, 5*time.Second); err != nil {
		t.Fatalf("Nack: %v", err)
	}
	wantNotInFlight(t, m.Nack(context.Background(), 0, 0), 0)
	// Record 1 is new and comes now; record 0 waits.
	if d := nextT(t, m, 0); len(d) != 1 || d[0].Offset != 1 {
		t.Fatalf("after nack got %v", offsets(d))
	}
	res := asyncNext(context.Background(), m, 0)
	g.Tick(clock.Advance(5*time.Second - time.Millisecond))
	synctest.Wait()
	select {
	case r := <-res:
		t.Fatalf("redelivered before the delay: %v %v", offsets(r.ds), r.err)
	default:
	}
	if s := g.Stats(); s.Delayed != 1 || s.Pending != 1 || s.InFlight != 1 || s.Nacked != 1 {
		t.Fatalf("before the delay: %+v", s)
	}
	g.Tick(clock.Advance(time.Millisecond))
	r := <-res
	if r.err != nil || !slices.Equal(offsets(r.ds), []uint64{0}) || r.ds[0].Attempt != 2 {
		t.Fatalf("after the delay: %v %v %v", offsets(r.ds), attempts(r.ds), r.err)
	}
	// A nack without delay is ready at once, for any member.
	other := joinT(t, g, "other", 1)
	if err := m.Nack(context.Background(), 0, 0); err != nil {
		t.Fatal(err)
	}
	if d := nextT(t, other, 0); len(d) != 1 || d[0].Offset != 0 || d[0].Attempt != 3 {
		t.Fatalf("immediate redelivery: %v %v", offsets(d), attempts(d))
	}
}

// A record nacked on every delivery is dead-lettered, once, after
// MaxAttempts deliveries; the group moves past it.
func TestPoisonRecordDeadLettered(t *testing.T) {
	stream := memStream(t, 3)
	dl := &deadLetters{}
	g := newGroupT(t, stream, Options{Clock: newFakeClock(), DeadLetter: dl.fn})
	defer g.Close()
	m := joinT(t, g, "m", 1)
	for attempt := 1; attempt <= DefaultMaxAttempts; attempt++ {
		ds := nextT(t, m, 0)
		if len(ds) != 1 || ds[0].Offset != 0 || ds[0].Attempt != attempt {
			t.Fatalf("delivery %d: %v %v", attempt, offsets(ds), attempts(ds))
		}
		if n := len(dl.got()); n != 0 {
			t.Fatalf("dead-lettered after %d attempts", attempt-1)
		}
		if err := m.Nack(context.Background(), 0, 0); err != nil {
			t.Fatal(err)
		}
	}
	want := []deadCall{{0, "rec-0", 5, "max attempts (5) exceeded: nacked"}}
	if got := dl.got(); !slices.Equal(got, want) {
		t.Fatalf("dead letters %+v, want %+v", got, want)
	}
	ds := nextT(t, m, 0)
	if len(ds) != 1 || ds[0].Offset != 1 || ds[0].Attempt != 1 {
		t.Fatalf("after the dead letter: %v %v", offsets(ds), attempts(ds))
	}
	ackT(t, m, 1)
	g.Tick(newFakeClock().Advance(time.Hour))
	if s := g.Stats(); s.DeadLettered != 1 || s.Acked != 1 || s.Nacked != 5 || s.Floor != 2 || s.Lag != 1 || len(dl.got()) != 1 {
		t.Fatalf("stats: %+v, %d dead letters", s, len(dl.got()))
	}
}

// Timeouts count as attempts too; the backoff doubles per attempt up to
// BackoffMax. A failing DeadLetter is retried at the next Tick; without
// a DeadLetter func dead records are dropped and counted.
func TestTimeoutsBackoffAndDeadLetterRetry(t *testing.T) {
	stream := memStream(t, 1)
	clock := newFakeClock()
	dl := &deadLetters{fail: errors.New("dead-letter stream down")}
	g := newGroupT(t, stream, Options{Clock: clock, AckTimeout: 10 * time.Second, MaxAttempts: 4,
		BackoffMin: time.Second, BackoffMax: 3 * time.Second, DeadLetter: dl.fn})
	defer g.Close()
	m := joinT(t, g, "m", 1)
	backoffs := []time.Duration{time.Second, 2 * time.Second, 3 * time.Second} // after attempts 1, 2, 3
	for i, backoff := range backoffs {
		ds := nextT(t, m, 0)
		if len(ds) != 1 || ds[0].Attempt != i+1 {
			t.Fatalf("delivery %d: %v", i+1, attempts(ds))
		}
		g.Tick(clock.Advance(10 * time.Second))
		g.Tick(clock.Advance(backoff - time.Millisecond))
		if s := g.Stats(); s.Delayed != 1 {
			t.Fatalf("attempt %d: not delayed by %v: %+v", i+1, backoff, s)
		}
		g.Tick(clock.Advance(time.Millisecond))
	}
	if ds := nextT(t, m, 0); len(ds) != 1 || ds[0].Attempt != 4 {
		t.Fatalf("delivery 4: %v", attempts(ds))
	}
	g.Tick(clock.Advance(10 * time.Second)) // attempt 4 times out: dead, but DeadLetter fails
	if s := g.Stats(); s.DeadLettered != 0 || s.DeadLetterErrors != 1 || s.Pending != 1 || s.Lag != 1 {
		t.Fatalf("after a failed dead letter: %+v", s)
	}
	dl.mu.Lock()
	dl.fail = nil
	dl.mu.Unlock()
	g.Tick(clock.Advance(time.Second))
	want := []deadCall{{0, "rec-0", 4, "max attempts (4) exceeded: ack timeout"}}
	if got := dl.got(); !slices.Equal(got, want) {
		t.Fatalf("dead letters %+v, want %+v", got, want)
	}
	if s := g.Stats(); s.DeadLettered != 1 || s.TimedOut != 4 || s.Pending != 0 || s.Lag != 0 || s.Floor != 1 {
		t.Fatalf("after the dead letter: %+v", s)
	}

	// No DeadLetter func: dropped and counted.
	g2 := newGroupT(t, stream, Options{Clock: clock, MaxAttempts: 1})
	defer g2.Close()
	m2 := joinT(t, g2, "m", 1)
	nextT(t, m2, 0)
	if err := m2.Nack(context.Background(), 0, 0); err != nil {
		t.Fatal(err)
	}
	if s := g2.Stats(); s.DeadLettered != 1 || s.Lag != 0 {
		t.Fatalf("dropped dead letter: %+v", s)
	}
}

// Stats are exact in a scripted scenario.
func TestStatsExact(t *testing.T) {
	stream := memStream(t, 10)
	clock := newFakeClock()
	g := newGroupT(t, stream, Options{Clock: clock, ReadBatch: 4, AckTimeout: time.Minute})
	defer g.Close()
	want := Stats{Lag: 10}
	check := func(step string) {
		t.Helper()
		if got := g.Stats(); got != want {
			t.Fatalf("%s:\n got %+v\nwant %+v", step, got, want)
		}
	}
	check("new group")

	a := joinT(t, g, "a", 3)
	b := joinT(t, g, "b", 10)
	want.Members = 2
	check("joined")

	nextT(t, a, 0) // 0 1 2; the buffer holds 0-3
	want.InFlight, want.Delivered, want.Cursor, want.Buffered = 3, 3, 3, 1
	want.InFlightBytes = 3 * 5 // "rec-N": 5 bytes each
	check("a took 3")

	ackT(t, a, 1)
	want.InFlight, want.Acked, want.Lag, want.InFlightBytes = 2, 1, 9, 10
	check("a acked 1")

	ackT(t, a, 0)
	want.InFlight, want.Acked, want.Lag, want.Floor, want.InFlightBytes = 1, 2, 8, 2, 5
	check("a acked 0")

	nextT(t, b, 5) // 3, then a refill: 4 5 6 7
	want.InFlight, want.Delivered, want.Cursor, want.Buffered, want.InFlightBytes = 6, 8, 8, 0, 30
	check("b took 5")

	if err := b.Nack(context.Background(), 4, time.Second); err != nil {
		t.Fatal(err)
	}
	want.InFlight, want.Pending, want.Delayed, want.Nacked, want.InFlightBytes = 5, 1, 1, 1, 25
	want.Unloaded = 1 // waiting out its delay without its payload
	check("b nacked 4")

	g.Tick(clock.Advance(time.Second))
	want.Delayed = 0
	check("4 ready")

	ds := nextT(t, a, 0) // a has room for 2: 4 (redelivery) then 8 (buffer 8 9)
	if !slices.Equal(offsets(ds), []uint64{4, 8}) || !slices.Equal(attempts(ds), []int{2, 1}) {
		t.Fatalf("a got %v %v", offsets(ds), attempts(ds))
	}
	want.InFlight, want.Pending, want.Delivered, want.Redelivered, want.Cursor, want.Buffered = 7, 0, 10, 1, 9, 1
	want.InFlightBytes, want.Unloaded, want.Reloaded = 35, 0, 1 // 4 read again
	check("a took 4 and 8")

	b.Leave() // 3 5 6 7 back, ready
	want.Members, want.InFlight, want.Pending, want.InFlightBytes, want.PendingBytes = 1, 3, 4, 15, 20
	check("b left")

	g.Tick(clock.Advance(time.Minute)) // a's 2, 4 and 8 time out
	want.InFlight, want.Pending, want.Delayed, want.TimedOut, want.InFlightBytes = 0, 7, 3, 3, 0
	want.PendingBytes, want.Unloaded = 20, 3 // the 4 ready hold theirs, the 3 delayed none
	check("a timed out")

	fill(t, stream, 2)
	want.Lag = 10
	check("2 more records")
}

// Join refuses the id of a live member; Close wakes a blocked Next and
// refuses what follows.
func TestJoinDuplicateAndClose(t *testing.T) {
	stream := commitlog.NewMemory(0, 0)
	g := newGroupT(t, stream, Options{Clock: newFakeClock()})
	m := joinT(t, g, "m", 0)
	if m.Prefetch() != DefaultPrefetch {
		t.Fatalf("prefetch %d", m.Prefetch())
	}
	if _, err := g.Join("m", 1); !errors.Is(err, ErrMemberExists) {
		t.Fatalf("duplicate Join: %v", err)
	}
	blocked := asyncNext(context.Background(), m, 0) // empty stream: waits on it
	full := joinT(t, g, "full", 1)
	fill(t, stream, 1)
	// One of the two gets the record; the other stays blocked.
	var first nextResult
	var second <-chan nextResult
	other := asyncNext(context.Background(), full, 0)
	select {
	case first = <-blocked:
		second = other
	case first = <-other:
		second = blocked
	}
	if first.err != nil || len(first.ds) != 1 {
		t.Fatalf("first Next: %v %v", offsets(first.ds), first.err)
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	if r := <-second; !errors.Is(r.err, ErrClosed) {
		t.Fatalf("blocked Next after Close: %v", r.err)
	}
	if _, err := m.Next(context.Background(), 0); !errors.Is(err, ErrClosed) {
		t.Fatalf("Next after Close: %v", err)
	}
	if _, err := g.Join("x", 0); !errors.Is(err, ErrClosed) {
		t.Fatalf("Join after Close: %v", err)
	}
	if err := m.Ack(context.Background(), 0); !errors.Is(err, ErrClosed) {
		t.Fatalf("Ack after Close: %v", err)
	}
	if err := g.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// Next returns ctx's error when ctx ends, refuses a concurrent call on
// the same member, and with a full prefetch waits for an ack.
func TestNextBlocking(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		stream := memStream(t, 3)
		g := newGroupT(t, stream, Options{Clock: newFakeClock()})
		defer g.Close()
		m := joinT(t, g, "m", 2)
		nextT(t, m, 0)
		ctx, cancel := context.WithCancel(context.Background())
		res := asyncNext(ctx, m, 0) // prefetch full
		synctest.Wait()
		if _, err := m.Next(context.Background(), 0); !errors.Is(err, ErrConcurrentNext) {
			t.Fatalf("second Next: %v", err)
		}
		cancel()
		if r := <-res; !errors.Is(r.err, context.Canceled) {
			t.Fatalf("cancelled Next: %v", r.err)
		}
		if _, err := m.Next(ctx, 0); !errors.Is(err, context.Canceled) {
			t.Fatalf("Next with a done ctx: %v", err)
		}
		res = asyncNext(context.Background(), m, 0)
		synctest.Wait()
		ackT(t, m, 0)
		if r := <-res; r.err != nil || !slices.Equal(offsets(r.ds), []uint64{2}) {
			t.Fatalf("after an ack: %v %v", offsets(r.ds), r.err)
		}
		wantNotInFlight(t, m.Ack(context.Background(), 1, 0, 7), 0, 7)
		if s := g.Stats(); s.Acked != 2 || s.InFlight != 1 {
			t.Fatalf("stats: %+v", s)
		}
	})
}

// Records the stream drops before the group reads them are skipped and
// counted.
func TestStreamRetentionLoss(t *testing.T) {
	stream := commitlog.NewMemory(4, 0)
	g := newGroupT(t, stream, Options{Clock: newFakeClock()})
	defer g.Close()
	fill(t, stream, 10) // keeps 6..9
	m := joinT(t, g, "m", 0)
	ds := nextT(t, m, 0)
	if !slices.Equal(offsets(ds), []uint64{6, 7, 8, 9}) {
		t.Fatalf("got %v", offsets(ds))
	}
	ackT(t, m, offsets(ds)...)
	if s := g.Stats(); s.Lost != 6 || s.Floor != 10 || s.Lag != 0 {
		t.Fatalf("stats: %+v", s)
	}
	if err := stream.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Next(context.Background(), 0); !errors.Is(err, commitlog.ErrClosed) {
		t.Fatalf("Next on a closed stream: %v", err)
	}
}

// A member that leaves saying which deliveries its application took gives
// the others back without counting them as attempts: joining and leaving
// many times with a full prefetch buffer never dead-letters records nobody
// saw; the seen ones still count, as does leaving without a word.
func TestLeaveSeenDoesNotCountUnseen(t *testing.T) {
	stream := memStream(t, 3)
	dl := &deadLetters{}
	g := newGroupT(t, stream, Options{Clock: newFakeClock(), MaxAttempts: 2, DeadLetter: dl.fn})
	defer g.Close()
	for round := range 5 {
		m := joinT(t, g, "m", 3)
		ds := nextT(t, m, 0)
		if len(ds) != 3 {
			t.Fatalf("round %d: %v", round, offsets(ds))
		}
		for _, d := range ds {
			if d.Attempt != 1 {
				t.Fatalf("round %d: offset %d at attempt %d, want 1", round, d.Offset, d.Attempt)
			}
		}
		m.LeaveSeen()
	}
	if n := len(dl.got()); n != 0 {
		t.Fatalf("%d records dead-lettered, none was seen", n)
	}
	// Record 0 was seen (7 was never in flight): 0 keeps its attempt.
	m := joinT(t, g, "m", 3)
	nextT(t, m, 0)
	m.LeaveSeen(0, 7)
	m = joinT(t, g, "m", 3)
	ds := nextT(t, m, 0)
	if got := attempts(ds); len(ds) != 3 || ds[0].Offset != 0 || !slices.Equal(got, []int{2, 1, 1}) {
		t.Fatalf("after leaving with 0 seen: %v %v, want attempts 2 1 1", offsets(ds), got)
	}
	if s := g.Stats(); s.Released != 17 {
		t.Fatalf("stats %+v", s)
	}
	// Leaving without a word counts every delivery: 0 has used its two
	// attempts; 1 and 2 have one left.
	m.Leave()
	g.Tick(newFakeClock().Advance(time.Hour))
	if got := dl.got(); len(got) != 1 || got[0].off != 0 {
		t.Fatalf("dead letters %+v, want offset 0 only", got)
	}
}
