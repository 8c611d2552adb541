package broker

import (
	"context"
	"encoding/binary"
	"errors"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/felixmq/felix/commitlog"
	"github.com/felixmq/felix/wire"
)

func newTestStream(t *testing.T, o Options) (*Broker, *Stream) {
	t.Helper()
	b := New(o)
	s, err := b.DeclareStream("t", "ns", "s")
	if err != nil {
		t.Fatal(err)
	}
	return b, s
}

func seqPayload(i uint64) []byte { return binary.BigEndian.AppendUint64(nil, i) }

// drain decodes every queued frame of sub into payload sequence numbers.
func drain(t *testing.T, sub *Subscription) []uint64 {
	t.Helper()
	var out []uint64
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		b, _, err := sub.NextBatch(ctx, nil)
		cancel()
		if err != nil {
			return out
		}
		out = append(out, decodeFrames(t, b)...)
	}
}

func decodeFrames(t *testing.T, b []byte) []uint64 {
	t.Helper()
	var out []uint64
	var eb wire.BinaryEventBatch
	for len(b) > 0 {
		f, rest, err := wire.DecodeFrame(b, 0)
		if err != nil {
			t.Fatalf("frame: %v", err)
		}
		if err := wire.DecodeEventBatch(f.Flags, f.Payload, &eb); err != nil {
			t.Fatalf("batch: %v", err)
		}
		for _, p := range eb.Payloads {
			out = append(out, binary.BigEndian.Uint64(p))
		}
		b = rest
	}
	return out
}

func checkSeq(t *testing.T, got []uint64, from, n uint64) {
	t.Helper()
	if uint64(len(got)) != n {
		t.Fatalf("got %d events, want %d", len(got), n)
	}
	for i, v := range got {
		if v != from+uint64(i) {
			t.Fatalf("event %d = %d, want %d", i, v, from+uint64(i))
		}
	}
}

func TestFanoutInOrderToEverySubscriber(t *testing.T) {
	_, s := newTestStream(t, Options{QueueCapacity: 10000})
	subs := make([]*Subscription, 5)
	for i := range subs {
		subs[i], _ = s.Subscribe(SubscribeOptions{})
	}
	for i := range uint64(1000) {
		if _, err := s.Publish(context.Background(), [][]byte{seqPayload(i)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, sub := range subs {
		checkSeq(t, drain(t, sub), 0, 1000)
	}
	if st := s.Stats(); st.Published != 1000 || st.Tail != 1000 {
		t.Fatalf("stats %+v", st)
	}
}

func TestBatchSplitAndSharedFrames(t *testing.T) {
	_, s := newTestStream(t, Options{MaxEventsPerFrame: 10, MaxBytesPerFrame: 40})
	a, _ := s.Subscribe(SubscribeOptions{})
	b, _ := s.Subscribe(SubscribeOptions{})
	var batch [][]byte
	for i := range uint64(25) {
		batch = append(batch, seqPayload(i))
	}
	first, err := s.Publish(context.Background(), batch)
	if err != nil || first != 0 {
		t.Fatal(first, err)
	}
	// 8-byte payloads, 40 bytes per frame → 5 events per frame → 5 frames.
	if len(a.q) != 5 {
		t.Fatalf("frames queued %d, want 5", len(a.q))
	}
	da, db := <-a.q, <-b.q
	if &da.Frame[0] != &db.Frame[0] {
		t.Fatal("subscribers got different copies of the same frame")
	}
	checkSeq(t, append(decodeFrames(t, da.Frame), drain(t, a)...), 0, 25)
}

func TestDropNewCountsAndKeepsOldest(t *testing.T) {
	_, s := newTestStream(t, Options{QueueCapacity: 4})
	slow, _ := s.Subscribe(SubscribeOptions{})
	for i := range uint64(10) {
		s.Publish(context.Background(), [][]byte{seqPayload(i)})
	}
	st := slow.Stats()
	if st.Dropped != 6 || st.Enqueued != 4 {
		t.Fatalf("stats %+v", st)
	}
	checkSeq(t, drain(t, slow), 0, 4)
}

func TestDropOldKeepsNewest(t *testing.T) {
	p := DropOld
	_, s := newTestStream(t, Options{QueueCapacity: 4})
	slow, _ := s.Subscribe(SubscribeOptions{Policy: &p})
	for i := range uint64(10) {
		s.Publish(context.Background(), [][]byte{seqPayload(i)})
	}
	if st := slow.Stats(); st.Dropped != 6 {
		t.Fatalf("stats %+v", st)
	}
	checkSeq(t, drain(t, slow), 6, 4)
}

func TestBlockIsLosslessAndReleasedByClose(t *testing.T) {
	p := Block
	_, s := newTestStream(t, Options{QueueCapacity: 2})
	sub, _ := s.Subscribe(SubscribeOptions{Policy: &p})
	var got []uint64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for len(got) < 100 {
			b, _, err := sub.NextBatch(context.Background(), nil)
			if err != nil {
				return
			}
			got = append(got, decodeFrames(t, b)...)
		}
	}()
	for i := range uint64(100) {
		if _, err := s.Publish(context.Background(), [][]byte{seqPayload(i)}); err != nil {
			t.Fatal(err)
		}
	}
	<-done
	checkSeq(t, got, 0, 100)

	// A stalled blocking subscriber holds the publisher until ctx ends...
	stalled, _ := s.Subscribe(SubscribeOptions{Policy: &p})
	sub.Close()
	for i := range 2 {
		s.Publish(context.Background(), [][]byte{seqPayload(uint64(i))})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	_, err := s.Publish(ctx, [][]byte{seqPayload(2)})
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) || stalled.Stats().Dropped != 1 {
		t.Fatalf("blocked publish: %v, stats %+v", err, stalled.Stats())
	}
	// ...or until the subscriber goes away.
	released := make(chan error, 1)
	go func() {
		_, err := s.Publish(context.Background(), [][]byte{seqPayload(3)})
		released <- err
	}()
	time.Sleep(5 * time.Millisecond) // let it block (not required for correctness)
	stalled.Close()
	if err := <-released; err != nil {
		t.Fatal(err)
	}
}

func TestDropPoliciesNeverBlockPublisher(t *testing.T) {
	for _, p := range []QueuePolicy{DropNew, DropOld} {
		_, s := newTestStream(t, Options{QueueCapacity: 1})
		pp := p
		s.Subscribe(SubscribeOptions{Policy: &pp}) // never read
		ctx, cancel := context.WithCancel(context.Background())
		cancel() // a publisher that would block would fail now
		for i := range uint64(1000) {
			if _, err := s.Publish(ctx, [][]byte{seqPayload(i)}); err != nil {
				t.Fatalf("%v: publish waited: %v", p, err)
			}
		}
	}
}

func TestReplayFromRing(t *testing.T) {
	cases := []struct {
		start wire.StartPosition
		from  uint64
		err   *CursorError
	}{
		{wire.StartPosition{Kind: wire.StartEarliest}, 50, nil},
		{wire.StartPosition{Kind: wire.StartOffset, Offset: 120}, 120, nil},
		{wire.StartPosition{Kind: wire.StartOffset, Offset: 150}, 150, nil},
		{wire.StartPosition{Kind: wire.StartOffset, Offset: 49}, 0, &CursorError{TooOld: true, Requested: 49, Available: 50}},
		{wire.StartPosition{Kind: wire.StartOffset, Offset: 151}, 0, &CursorError{Requested: 151, Available: 150}},
	}
	for _, c := range cases {
		_, s := newTestStream(t, Options{RingCapacity: 100})
		for i := range uint64(150) {
			s.Publish(context.Background(), [][]byte{seqPayload(i)})
		}
		sub, err := s.Subscribe(SubscribeOptions{Start: c.start, WantOffsets: true})
		if c.err != nil {
			var ce *CursorError
			if !errors.As(err, &ce) || *ce != *c.err {
				t.Fatalf("start %+v: err %v, want %v", c.start, err, c.err)
			}
			if len(s.Subscriptions()) != 0 {
				t.Fatal("rejected subscribe left a subscription behind")
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		// The replay is read before the live event evicts the ring's
		// oldest (a replay skips what the ring evicts).
		got := drain(t, sub)
		s.Publish(context.Background(), [][]byte{seqPayload(150)})
		checkSeq(t, append(got, drain(t, sub)...), c.from, 151-c.from)
	}
}

func TestResumeHandoffNoGapNoDuplicate(t *testing.T) {
	_, s := newTestStream(t, Options{RingCapacity: 100000, QueueCapacity: 100000})
	ctx := context.Background()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range uint64(20000) {
			s.Publish(ctx, [][]byte{seqPayload(i)})
		}
	}()
	// Subscribe at various offsets while publishing continues.
	var subs []*Subscription
	for len(subs) < 5 {
		tail := s.Tail()
		if tail < uint64(len(subs)*1000) {
			continue
		}
		sub, err := s.Subscribe(SubscribeOptions{Start: wire.StartPosition{Kind: wire.StartOffset, Offset: tail / 2}})
		if err != nil {
			t.Fatal(err)
		}
		subs = append(subs, sub)
	}
	wg.Wait()
	for _, sub := range subs {
		got := drain(t, sub)
		if len(got) == 0 {
			t.Fatal("nothing delivered")
		}
		checkSeq(t, got, got[0], 20000-got[0])
	}
}

func TestDeleteStreamDrainsThenEnds(t *testing.T) {
	b, s := newTestStream(t, Options{})
	sub, _ := s.Subscribe(SubscribeOptions{})
	s.Publish(context.Background(), [][]byte{seqPayload(1)})
	if err := b.DeleteStream("t", "ns", "s"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Publish(context.Background(), [][]byte{seqPayload(2)}); !errors.Is(err, ErrStreamDeleted) {
		t.Fatalf("publish after delete: %v", err)
	}
	bts, _, err := sub.NextBatch(context.Background(), nil)
	if err != nil || decodeFrames(t, bts)[0] != 1 {
		t.Fatalf("queued frame lost: %v", err)
	}
	if _, _, err := sub.NextBatch(context.Background(), nil); !errors.Is(err, ErrSubscriptionEnded) || !errors.Is(err, ErrStreamDeleted) {
		t.Fatalf("after drain: %v", err)
	}
	var nf *NotFoundError
	if _, err := b.Stream("t", "ns", "s"); !errors.As(err, &nf) ||
		err.Error() != "stream not found: tenant=t namespace=ns stream=s" {
		t.Fatalf("lookup after delete: %v", err)
	}
}

func TestRegistry(t *testing.T) {
	b := New(Options{})
	if _, err := b.CreateStream("x", "y", "z"); !errors.Is(err, ErrTenantNotFound) {
		t.Fatal(err)
	}
	b.CreateTenant("x")
	if _, err := b.CreateStream("x", "y", "z"); !errors.Is(err, ErrNamespaceNotFound) {
		t.Fatal(err)
	}
	for _, bad := range []string{"", "a/b", "a\nb", "\xff"} {
		if err := b.CreateTenant(bad); !errors.Is(err, ErrInvalidName) {
			t.Fatalf("%q accepted: %v", bad, err)
		}
	}
	auto := New(Options{AutoCreateStreams: true})
	s, err := auto.Stream("a", "b", "c")
	if err != nil || s.Key() != (StreamKey{"a", "b", "c"}) {
		t.Fatal(err)
	}
	s2, _ := auto.Stream("a", "b", "c")
	if s != s2 {
		t.Fatal("auto-create made two streams")
	}
	auto.Close()
	if _, err := auto.Stream("a", "b", "d"); !errors.Is(err, ErrClosed) {
		t.Fatal(err)
	}
}

func TestNextBatchCoalesces(t *testing.T) {
	_, s := newTestStream(t, Options{WriteMaxBytes: 100})
	sub, _ := s.Subscribe(SubscribeOptions{})
	for i := range uint64(20) {
		s.Publish(context.Background(), [][]byte{seqPayload(i)})
	}
	// each frame: 12 + 4 + 4 + 8 = 28 bytes → 3 per write (a 4th would make
	// 112 > 100: it starts the next write)
	b, n, err := sub.NextBatch(context.Background(), nil)
	if err != nil || n != 3 || len(b) != 84 {
		t.Fatalf("n=%d len=%d err=%v", n, len(b), err)
	}
	checkSeq(t, append(decodeFrames(t, b), drain(t, sub)...), 0, 20)
	if st := sub.Stats(); st.Delivered != 20 {
		t.Fatalf("%+v", st)
	}
}

func TestParseQueuePolicy(t *testing.T) {
	for _, p := range []QueuePolicy{DropNew, DropOld, Block} {
		q, err := ParseQueuePolicy(p.String())
		if err != nil || q != p {
			t.Fatal(p, err)
		}
	}
	if _, err := ParseQueuePolicy("drop_all"); err == nil {
		t.Fatal("bad policy accepted")
	}
}

// recSink is a test Sink that records frames and can refuse them.
type recSink struct {
	mu     sync.Mutex
	full   bool
	frames [][]byte
}

func (r *recSink) TryWrite(f []byte) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.full {
		return false
	}
	r.frames = append(r.frames, f)
	return true
}

func (r *recSink) write(b []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.frames = append(r.frames, b)
}

func (r *recSink) setFull(v bool) {
	r.mu.Lock()
	r.full = v
	r.mu.Unlock()
}

// Direct writes never overtake frames that are queued or being written.
func TestSinkKeepsOrder(t *testing.T) {
	_, s := newTestStream(t, Options{})
	sub, _ := s.Subscribe(SubscribeOptions{})
	sink := &recSink{}
	sub.SetSink(sink)
	pub := func(from, to uint64) {
		for i := from; i < to; i++ {
			s.Publish(context.Background(), [][]byte{seqPayload(i)})
		}
	}
	pub(0, 5) // direct
	sink.setFull(true)
	pub(5, 10) // refused → queued
	sink.setFull(false)
	pub(10, 15) // sink has room again, but frames are queued: must queue too
	if len(sub.q) != 10 {
		t.Fatalf("queued %d frames, want 10", len(sub.q))
	}
	b, _, err := sub.NextBatch(context.Background(), nil) // the writer takes the queue
	if err != nil {
		t.Fatal(err)
	}
	pub(15, 17) // the batch is being written: still queued
	sink.write(b)
	for len(sub.q) > 0 {
		b, _, _ = sub.NextBatch(context.Background(), nil)
		sink.write(b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	sub.NextBatch(ctx, nil) // releases the last batch, then idles
	cancel()
	pub(17, 20) // direct again
	var all []byte
	for _, f := range sink.frames {
		all = append(all, f...)
	}
	checkSeq(t, decodeFrames(t, all), 0, 20)
	if st := sub.Stats(); st.Delivered != 20 || st.Dropped != 0 {
		t.Fatalf("%+v", st)
	}
}

// A publisher blocked by a full subscriber queue (Block policy) holds the
// stream for as long as that lasts; the stream's counters (what /metrics
// and the dashboard read) must not wait for it, and must be right.
func TestStatsDoNotWaitForABlockedPublisher(t *testing.T) {
	p := Block
	for _, durable := range []bool{false, true} {
		var s *Stream
		if durable {
			_, s = newLoggedStream(t, Options{QueueCapacity: 1}, commitlog.NewMemory(1<<20, 1<<30))
		} else {
			_, s = newTestStream(t, Options{QueueCapacity: 1})
		}
		stalled, _ := s.Subscribe(SubscribeOptions{Policy: &p})
		gone, _ := s.Subscribe(SubscribeOptions{})
		gone.Close() // its counts move to the retired totals
		if _, err := s.Publish(context.Background(), [][]byte{[]byte("fills the queue")}); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		blocked := make(chan error, 1)
		go func() {
			_, err := s.Publish(ctx, [][]byte{[]byte("waits")})
			blocked <- err
		}()
		for s.mu.TryLock() { // until the publisher holds the stream
			s.mu.Unlock()
			select {
			case err := <-blocked:
				t.Fatalf("durable=%v: the publish did not block: %v", durable, err)
			default:
				runtime.Gosched()
			}
		}
		read := make(chan struct{})
		go func() {
			defer close(read)
			st, tot := s.Stats(), s.SubTotals()
			if st.Tail < 1 || st.Published < 1 || tot.Subscriptions != 1 || tot.Enqueued < 1 {
				t.Errorf("durable=%v: stats %+v totals %+v", durable, st, tot)
			}
		}()
		select {
		case <-read:
		case <-time.After(5 * time.Second):
			t.Fatalf("durable=%v: Stats/SubTotals waited for the blocked publisher", durable)
		}
		cancel()
		if err := <-blocked; !errors.Is(err, context.Canceled) {
			t.Fatalf("durable=%v: blocked publish: %v", durable, err)
		}
		stalled.Close()
	}
}
