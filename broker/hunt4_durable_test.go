package broker

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/felixmq/felix/commitlog"
	"github.com/felixmq/felix/wire"
)

// waitGoroutineIn returns once some goroutine's stack holds every one of
// frames (function names), or fails if done fires first.
func waitGoroutineIn(t *testing.T, done <-chan error, frames ...string) {
	t.Helper()
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		for _, g := range strings.Split(string(buf[:n]), "\n\n") {
			all := true
			for _, f := range frames {
				all = all && strings.Contains(g, f)
			}
			if all {
				return
			}
		}
		select {
		case err := <-done:
			t.Fatalf("returned before reaching %v: %v", frames, err)
		default:
			runtime.Gosched()
		}
	}
}

// A durable subscription closed while its consumer is joining live
// delivery (it has read the whole log and waits for the stream lock, held
// here by the test as a publisher or a Subscribe would hold it) must not be
// added to the fanout after its Close: it would stay there for good,
// counted as a live subscription and offered every later frame.
func TestClosedCatchUpSubscriptionNeverJoinsFanout(t *testing.T) {
	_, s := newLoggedStream(t, Options{}, commitlog.NewMemory(1<<20, 1<<30))
	for i := range uint64(3) {
		if _, err := s.Publish(context.Background(), [][]byte{seqPayload(i)}); err != nil {
			t.Fatal(err)
		}
	}
	live, _ := s.Subscribe(SubscribeOptions{})
	catching, _ := s.Subscribe(SubscribeOptions{Start: wire.StartPosition{Kind: wire.StartEarliest}})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	s.mu.Lock()
	locked := true
	t.Cleanup(func() {
		if locked {
			s.mu.Unlock()
		}
	})
	// The catch-up reads offsets 0..2, then waits for the lock to join.
	joined := make(chan error, 1)
	got := make(chan []uint64, 1)
	go func() {
		var seen []uint64
		for {
			b, _, err := catching.NextBatch(ctx, nil)
			if err != nil {
				got <- seen
				joined <- err
				return
			}
			seen = append(seen, decodeFramesQuiet(b)...)
		}
	}()
	waitGoroutineIn(t, joined, "broker.(*Subscription).catchUpBatch", "sync.(*Mutex).Lock")
	catching.Close() // does not wait for the lock
	locked = false
	s.mu.Unlock()
	if err := <-joined; !errorsIsEnded(err) {
		t.Fatalf("closed subscription's NextBatch: %v", err)
	}
	checkSeq(t, <-got, 0, 3)
	if _, err := s.Publish(context.Background(), [][]byte{seqPayload(3)}); err != nil {
		t.Fatal(err)
	}
	checkSeq(t, drainN(t, live, 1), 3, 1)
	st := s.Stats()
	if len(st.Subscriptions) != 1 || st.Subscriptions[0].ID != live.ID() {
		t.Fatalf("a closed subscription is still in the fanout: %+v", st.Subscriptions)
	}
	if tot := s.SubTotals(); tot.Subscriptions != 1 {
		t.Fatalf("totals count %d live subscriptions, want 1", tot.Subscriptions)
	}
}

// pausingLog holds the next Append after it has written its records, until
// release is closed: the publisher then has offsets but has not fanned
// them out, as when it is descheduled between the two.
type pausingLog struct {
	commitlog.Log
	arm      chan struct{} // receive from it to be the paused append
	appended chan uint64
	release  chan struct{}
}

func newPausingLog(inner commitlog.Log) *pausingLog {
	return &pausingLog{Log: inner, arm: make(chan struct{}, 1), appended: make(chan uint64, 1), release: make(chan struct{})}
}

func (l *pausingLog) Append(ctx context.Context, p [][]byte) (uint64, error) {
	first, err := l.Log.Append(ctx, p)
	select {
	case <-l.arm:
		l.appended <- first
		<-l.release
	default:
	}
	return first, err
}

// newRetainingLogs returns a small memory log and a disk log with small
// segments and a small retention, so that a few publishes trim the head.
func newRetainingLogs(t *testing.T) map[string]func() (commitlog.Log, func()) {
	return map[string]func() (commitlog.Log, func()){
		"memory": func() (commitlog.Log, func()) {
			return commitlog.NewMemory(2, 1<<20), func() {}
		},
		"disk": func() (commitlog.Log, func()) {
			dl, err := commitlog.Open(t.TempDir(), commitlog.Options{Sync: commitlog.SyncNever, SegmentBytes: 64, RetentionBytes: 1, RetentionInterval: -1})
			if err != nil {
				t.Fatal(err)
			}
			return dl, func() {
				if err := dl.EnforceRetention(); err != nil {
					t.Fatal(err)
				}
			}
		},
	}
}

// Retention may trim records that are appended but not yet fanned out
// (their publisher is still on its way to the fanout). A subscription at
// latest or earliest made then must still start (at the fanned-out
// position: the trimmed records reach it live), not be refused with
// too_old; and an offset behind it is refused with an Available offset a
// subscription can actually start at.
func TestSubscribeWhileRetentionPassesFanout(t *testing.T) {
	for name, mk := range newRetainingLogs(t) {
		for _, start := range []wire.StartKind{wire.StartLatest, wire.StartEarliest} {
			t.Run(fmt.Sprintf("%s/start=%v", name, start), func(t *testing.T) {
				inner, trim := mk()
				pl := newPausingLog(inner)
				_, s := newLoggedStream(t, Options{}, pl)
				if _, err := s.Publish(context.Background(), [][]byte{seqPayload(0)}); err != nil {
					t.Fatal(err)
				}
				pl.arm <- struct{}{}
				aDone := make(chan error, 1)
				go func() { // A: offset 1, paused before its fanout
					_, err := s.Publish(context.Background(), [][]byte{seqPayload(1)})
					aDone <- err
				}()
				if first := <-pl.appended; first != 1 {
					t.Fatalf("A appended at %d", first)
				}
				bDone := make(chan error, 1)
				go func() { // B: offsets 2..5, waits for A's turn
					_, err := s.Publish(context.Background(), [][]byte{seqPayload(2), seqPayload(3), seqPayload(4), seqPayload(5)})
					bDone <- err
				}()
				waitGoroutineIn(t, bDone, "broker.(*Stream).publishLogged", "sync.(*Cond).Wait")
				trim()
				if oldest := pl.Oldest(); oldest <= 1 {
					t.Fatalf("retention did not pass the fanout: oldest %d", oldest)
				}
				sub, err := s.Subscribe(SubscribeOptions{Start: wire.StartPosition{Kind: start}, WantOffsets: true})
				if err != nil {
					t.Fatalf("subscribe at %v with fanned 1, oldest %d: %v", start, pl.Oldest(), err)
				}
				// Offset 0 is gone; the answer names where one can start.
				_, err = s.Subscribe(SubscribeOptions{Start: wire.StartPosition{Kind: wire.StartOffset, Offset: 0}})
				var ce *CursorError
				if !errors.As(err, &ce) || !ce.TooOld || ce.Available != 1 {
					t.Fatalf("subscribe at 0: %v (%+v)", err, ce)
				}
				close(pl.release)
				if err := <-aDone; err != nil {
					t.Fatal(err)
				}
				if err := <-bDone; err != nil {
					t.Fatal(err)
				}
				checkSeq(t, drainN(t, sub, 5), 1, 5)
			})
		}
	}
}

// offsetsOf decodes frames into (base offset, payload sequence numbers).
func offsetsOf(t *testing.T, b []byte) (bases []uint64, seqs []uint64) {
	t.Helper()
	var eb wire.BinaryEventBatch
	for len(b) > 0 {
		f, rest, err := wire.DecodeFrame(b, 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := wire.DecodeEventBatch(f.Flags, f.Payload, &eb); err != nil {
			t.Fatal(err)
		}
		if !eb.HasOffsets {
			t.Fatal("frame without offsets")
		}
		for i, p := range eb.Payloads {
			bases = append(bases, eb.BaseOffset+uint64(i))
			seqs = append(seqs, seqOf(p))
		}
		b = rest
	}
	return bases, seqs
}

// A subscription catching up on the log that retention overtakes behaves
// as a slow subscriber: it goes on from the oldest retained record, the
// skipped events are counted as dropped and show as a gap in the offsets,
// and it then joins live delivery. It is not ended (which the server turns
// into a reset of the event stream).
func TestCatchUpOvertakenByRetentionSkipsAndCounts(t *testing.T) {
	for name, mk := range newRetainingLogs(t) {
		t.Run(name, func(t *testing.T) {
			inner, trim := mk()
			_, s := newLoggedStream(t, Options{MaxEventsPerFrame: 1}, inner)
			if _, err := s.Publish(context.Background(), [][]byte{seqPayload(0)}); err != nil {
				t.Fatal(err)
			}
			sub, err := s.Subscribe(SubscribeOptions{Start: wire.StartPosition{Kind: wire.StartEarliest}, WantOffsets: true})
			if err != nil {
				t.Fatal(err)
			}
			for i := uint64(1); i < 6; i++ {
				if _, err := s.Publish(context.Background(), [][]byte{seqPayload(i)}); err != nil {
					t.Fatal(err)
				}
			}
			trim()
			oldest := s.Log().Oldest()
			if oldest == 0 || oldest >= 6 {
				t.Fatalf("oldest %d", oldest)
			}
			var offs, seqs []uint64
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			for len(offs) < 6-int(oldest) {
				b, _, err := sub.NextBatch(ctx, nil)
				if err != nil {
					t.Fatalf("catch-up overtaken by retention (oldest %d) ended: %v", oldest, err)
				}
				o, q := offsetsOf(t, b)
				offs, seqs = append(offs, o...), append(seqs, q...)
			}
			checkSeq(t, seqs, oldest, 6-oldest)
			checkSeq(t, offs, oldest, 6-oldest)
			if st := sub.Stats(); st.Dropped != oldest || st.Delivered != 6-oldest {
				t.Fatalf("skipped %d: stats %+v", oldest, st)
			}
			if _, err := s.Publish(context.Background(), [][]byte{seqPayload(6)}); err != nil {
				t.Fatal(err)
			}
			checkSeq(t, drainN(t, sub, 1), 6, 1)
		})
	}
}

// Concurrent publishers on a log with a small retention, subscriptions
// starting at earliest, at an offset and at latest while they publish,
// some closing midway: every subscription sees offsets strictly
// increasing, each event carrying its own offset's payload, and every
// offset it does not see between its first and its last is counted as
// dropped (retention overtaking its catch-up; the queues are large enough
// to drop nothing live).
func TestLoggedSubscribersUnderRetentionAndConcurrentPublishes(t *testing.T) {
	const pubs, each = 3, 300
	_, s := newLoggedStream(t, Options{QueueCapacity: 1 << 14, MaxEventsPerFrame: 4}, commitlog.NewMemory(64, 1<<20))
	// Payload == offset: one publish at a time (pmu) carries the log's
	// next offset. Publishers still race the subscribers' catch-up.
	pmu := make(chan struct{}, 1)
	publish := func() {
		pmu <- struct{}{}
		defer func() { <-pmu }()
		if _, err := s.Publish(context.Background(), [][]byte{seqPayload(s.Log().Next())}); err != nil {
			t.Error(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type result struct {
		offs, seqs []uint64
		st         SubStats
		err        error
	}
	results := make(chan result, 64)
	subsWG, pubWG := make(chan struct{}, 64), make(chan struct{}, pubs)
	startSub := func(i int) {
		starts := []wire.StartPosition{
			{Kind: wire.StartEarliest},
			{Kind: wire.StartLatest},
			{Kind: wire.StartOffset, Offset: s.Log().Oldest()},
		}
		sub, err := s.Subscribe(SubscribeOptions{Start: starts[i%3], WantOffsets: true})
		if err != nil {
			t.Error(err)
			return
		}
		subsWG <- struct{}{}
		go func() {
			var r result
			for n := 0; ; n++ {
				if i%4 == 3 && n == 5 {
					sub.Close()
				}
				b, _, err := sub.NextBatch(ctx, nil)
				if err != nil {
					r.err = err
					break
				}
				var eb wire.BinaryEventBatch
				for len(b) > 0 {
					f, rest, err := wire.DecodeFrame(b, 0)
					if err != nil || wire.DecodeEventBatch(f.Flags, f.Payload, &eb) != nil || !eb.HasOffsets {
						r.err = fmt.Errorf("bad frame: %v", err)
						break
					}
					for k, p := range eb.Payloads {
						r.offs = append(r.offs, eb.BaseOffset+uint64(k))
						r.seqs = append(r.seqs, seqOf(p))
					}
					b = rest
				}
			}
			r.st = sub.Stats()
			results <- r
		}()
	}
	for range pubs {
		pubWG <- struct{}{}
		go func() {
			defer func() { <-pubWG }()
			for range each {
				publish()
			}
		}()
	}
	for i := range 24 {
		startSub(i)
		for range 20 {
			publish()
		}
	}
	for range pubs {
		pubWG <- struct{}{}
	}
	s.b.DeleteStream("t", "ns", "s")
	for range len(subsWG) {
		r := <-results
		if !errorsIsEnded(r.err) {
			t.Fatalf("subscription ended with %v", r.err)
		}
		for k := range r.offs {
			if r.seqs[k] != r.offs[k] {
				t.Fatalf("offset %d carries event %d", r.offs[k], r.seqs[k])
			}
			if k > 0 && r.offs[k] <= r.offs[k-1] {
				t.Fatalf("offset %d after %d", r.offs[k], r.offs[k-1])
			}
		}
		if len(r.offs) > 1 {
			span := r.offs[len(r.offs)-1] - r.offs[0] + 1
			if missing := span - uint64(len(r.offs)); missing > r.st.Dropped {
				t.Fatalf("%d offsets missing between %d and %d, %d counted dropped", missing, r.offs[0], r.offs[len(r.offs)-1], r.st.Dropped)
			}
		}
		if uint64(len(r.offs)) != r.st.Delivered {
			t.Fatalf("received %d, delivered %d", len(r.offs), r.st.Delivered)
		}
	}
}

// SubTotals sum the counters of every subscription the stream has had: a
// subscription that replays the log and goes away before it catches up
// (or is still replaying when the stream is deleted) counts too, once.
func TestSubTotalsCountCatchUpSubscriptions(t *testing.T) {
	for _, how := range []string{"close", "delete then close"} {
		t.Run(how, func(t *testing.T) {
			b, s := newLoggedStream(t, Options{MaxEventsPerFrame: 2}, commitlog.NewMemory(1<<10, 1<<20))
			for i := range uint64(10) {
				if _, err := s.Publish(context.Background(), [][]byte{seqPayload(i)}); err != nil {
					t.Fatal(err)
				}
			}
			sub, _ := s.Subscribe(SubscribeOptions{Start: wire.StartPosition{Kind: wire.StartEarliest}})
			checkSeq(t, drainN(t, sub, 4), 0, 4) // still replaying
			// A replaying subscription is live: counted and listed.
			if tot := s.SubTotals(); tot.Delivered != 4 || tot.Subscriptions != 1 {
				t.Fatalf("totals while replaying %+v, want 1 subscription, 4 delivered", tot)
			}
			if subs := s.Stats().Subscriptions; len(subs) != 1 || !subs[0].CatchingUp || subs[0].ID != sub.ID() || subs[0].Delivered != 4 {
				t.Fatalf("stats while replaying list %+v, want the one subscription, catching up", subs)
			}
			if how != "close" {
				if err := b.DeleteStream("t", "ns", "s"); err != nil {
					t.Fatal(err)
				}
				if _, _, err := sub.NextBatch(context.Background(), nil); !errors.Is(err, ErrStreamDeleted) || !errorsIsEnded(err) {
					t.Fatalf("replay of a deleted stream: %v", err)
				}
			}
			sub.Close()
			sub.Close()
			if tot := s.SubTotals(); tot.Delivered != 4 || tot.Subscriptions != 0 {
				t.Fatalf("totals %+v, want 4 delivered by the gone subscription", tot)
			}
		})
	}
}

// beforeAppendLog runs hook before every Append.
type beforeAppendLog struct {
	commitlog.Log
	hook func()
}

func (l *beforeAppendLog) Append(ctx context.Context, p [][]byte) (uint64, error) {
	l.hook()
	return l.Log.Append(ctx, p)
}

// A publish racing the deletion of its durable stream (deleted after the
// publish checked it, before its append: the log is closed by then) fails
// with ErrStreamDeleted, as any publish to a deleted stream does (the
// server looks the stream up again on that error), not with the closed
// log's error.
func TestLoggedPublishRacingDeleteReportsDeleted(t *testing.T) {
	for _, how := range []string{"delete", "close"} {
		t.Run(how, func(t *testing.T) {
			lg := &beforeAppendLog{Log: commitlog.NewMemory(16, 1<<20), hook: func() {}}
			b, s := newLoggedStream(t, Options{}, lg)
			lg.hook = func() {
				if how == "delete" {
					b.DeleteStream("t", "ns", "s")
				} else {
					b.Close()
				}
			}
			want := ErrStreamDeleted
			if how == "close" {
				want = ErrClosed
			}
			if _, err := s.Publish(context.Background(), [][]byte{seqPayload(0)}); !errors.Is(err, want) {
				t.Fatalf("publish racing %s: %v, want %v", how, err, want)
			}
			if err := s.Err(); !errors.Is(err, want) {
				t.Fatalf("stream ended with %v, want %v", err, want)
			}
		})
	}
}

// A replaying subscription is listed once, as catching up, and once it has
// joined live delivery it is listed once more, not twice, as live.
func TestCatchUpSubscriptionListedOnce(t *testing.T) {
	_, s := newLoggedStream(t, Options{MaxEventsPerFrame: 2}, commitlog.NewMemory(1<<10, 1<<20))
	for i := range uint64(4) {
		if _, err := s.Publish(context.Background(), [][]byte{seqPayload(i)}); err != nil {
			t.Fatal(err)
		}
	}
	sub, err := s.Subscribe(SubscribeOptions{Start: wire.StartPosition{Kind: wire.StartEarliest}})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	if subs := s.Stats().Subscriptions; len(subs) != 1 || !subs[0].CatchingUp {
		t.Fatalf("before replaying: %+v", subs)
	}
	checkSeq(t, drainN(t, sub, 4), 0, 4)
	got := make(chan []uint64, 1)
	go func() { got <- drainN(t, sub, 1) }() // reaches the tail: joins, then waits live
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		subs := s.Stats().Subscriptions
		if len(subs) != 1 || subs[0].ID != sub.ID() {
			t.Fatalf("while joining live delivery: %+v, want it once", subs)
		}
		if !subs[0].CatchingUp {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the subscription never joined live delivery")
		}
	}
	if _, err := s.Publish(context.Background(), [][]byte{seqPayload(4)}); err != nil {
		t.Fatal(err)
	}
	checkSeq(t, <-got, 4, 1)
	if tot := s.SubTotals(); tot.Subscriptions != 1 || tot.Delivered != 5 {
		t.Fatalf("totals after joining %+v", tot)
	}
}
