package service

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/felixmq/felix/internal/testclock"
)

// fakeResponder records what it is sent; full makes Send refuse.
type fakeResponder struct {
	mu   sync.Mutex
	got  []uint64
	data map[uint64]string
	full bool
}

func (f *fakeResponder) Send(id uint64, p []byte) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.full {
		return false
	}
	if f.data == nil {
		f.data = map[uint64]string{}
	}
	f.got = append(f.got, id)
	f.data[id] = string(p)
	return true
}

func (f *fakeResponder) ids() []uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]uint64(nil), f.got...)
}

type fakeSink struct {
	mu  sync.Mutex
	res map[uint64]Result
	n   int
}

func (s *fakeSink) Result(id uint64, r Result) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.res == nil {
		s.res = map[uint64]Result{}
	}
	s.res[id] = r
	s.n++
}

func (s *fakeSink) get(id uint64) (Result, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.res[id]
	return r, ok
}

func (s *fakeSink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

var key = Key{"t", "ns", "svc"}

func newReg(clk *testclock.Clock, o Options) *Registry {
	o.Now = clk.Now
	return New(o)
}

func TestRoundRobinAndReply(t *testing.T) {
	r := newReg(testclock.New(), Options{})
	a, b := &fakeResponder{}, &fakeResponder{}
	sa, sb := r.Serve(key, a, 0), r.Serve(key, b, 0)
	sink := &fakeSink{}
	q := r.NewRequester(sink)
	for i := range uint64(4) {
		if err := q.Request(i, key, []byte{byte('a' + i)}, 0); err != nil {
			t.Fatal(err)
		}
	}
	if len(a.ids()) != 2 || len(b.ids()) != 2 {
		t.Fatalf("not shared round-robin: a %v b %v", a.ids(), b.ids())
	}
	// The responders' ids map back to the requester's.
	for _, id := range a.ids() {
		sa.Reply(id, []byte("A"+a.data[id]))
	}
	sb.Fail(b.ids()[0], "boom")
	if sink.count() != 3 {
		t.Fatalf("%d results", sink.count())
	}
	if res, _ := sink.get(0); string(res.Payload) != "Aa" || res.Code != "" {
		t.Fatalf("request 0: %+v", res)
	}
	if res, _ := sink.get(1); res.Code != CodeResponderError || res.Message != "boom" {
		t.Fatalf("request 1: %+v", res)
	}
	if q.Pending() != 4 {
		t.Fatalf("pending %d before release", q.Pending())
	}
	q.Release(3)
	if q.Pending() != 1 {
		t.Fatalf("pending %d", q.Pending())
	}
	// A second answer to the same id is not in flight any more.
	sa.Reply(a.ids()[0], nil)
	if st := r.Stats(); st.Replies != 2 || st.ResponderErrors != 1 || st.UnknownReplies != 1 || st.Requests != 4 {
		t.Fatalf("stats %+v", st)
	}
}

func TestBoundSkipsAndNoResponders(t *testing.T) {
	r := newReg(testclock.New(), Options{MaxInFlight: 3})
	sink := &fakeSink{}
	q := r.NewRequester(sink)
	var e *Error
	if err := q.Request(1, key, nil, 0); !errors.As(err, &e) || e.Code != CodeNoResponders {
		t.Fatalf("nobody serving: %v", err)
	}
	a, b := &fakeResponder{}, &fakeResponder{}
	sa := r.Serve(key, a, 1)   // bound 1
	sb := r.Serve(key, b, 100) // capped at 3
	if sa.MaxInFlight() != 1 || sb.MaxInFlight() != 3 {
		t.Fatalf("bounds %d %d", sa.MaxInFlight(), sb.MaxInFlight())
	}
	for i := range uint64(4) {
		if err := q.Request(10+i, key, nil, 0); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	if len(a.ids()) != 1 || len(b.ids()) != 3 {
		t.Fatalf("a %v b %v", a.ids(), b.ids())
	}
	if err := q.Request(20, key, nil, 0); !errors.As(err, &e) || e.Code != CodeNoResponders {
		t.Fatalf("all at their bound: %v", err)
	}
	sa.Reply(a.ids()[0], nil) // room again at a
	if err := q.Request(21, key, nil, 0); err != nil || len(a.ids()) != 2 {
		t.Fatalf("%v, a %v", err, a.ids())
	}
	if st := r.Stats(); st.NoResponders != 2 || sink.count() != 1 {
		t.Fatalf("stats %+v, %d results", st, sink.count())
	}
	// Other keys are separate.
	if err := q.Request(22, Key{"t", "ns", "other"}, nil, 0); !errors.As(err, &e) || e.Code != CodeNoResponders {
		t.Fatalf("other service: %v", err)
	}
}

func TestTimeoutAndLateReply(t *testing.T) {
	clk := testclock.New()
	r := newReg(clk, Options{DefaultTimeout: 5 * time.Second, MaxTimeout: 10 * time.Second})
	a := &fakeResponder{}
	sa := r.Serve(key, a, 2)
	sink := &fakeSink{}
	q := r.NewRequester(sink)
	q.Request(1, key, nil, time.Second)
	q.Request(2, key, nil, 0)         // default 5s
	q.Request(3, key, nil, time.Hour) // capped at 10s... but a is at its bound
	if d, ok := r.NextDeadline(); !ok || !d.Equal(clk.Now().Add(time.Second)) {
		t.Fatalf("next deadline %v %v", d, ok)
	}
	r.Expire(clk.Advance(999 * time.Millisecond))
	if sink.count() != 0 {
		t.Fatal("expired early")
	}
	r.Expire(clk.Advance(time.Millisecond))
	if res, ok := sink.get(1); !ok || res.Code != CodeTimeout {
		t.Fatalf("request 1: %+v %v", res, ok)
	}
	// The timed-out request still holds its place at the responder.
	var e *Error
	if err := q.Request(4, key, nil, 0); !errors.As(err, &e) || e.Code != CodeNoResponders {
		t.Fatalf("want the bound to hold after a timeout: %v", err)
	}
	sa.Reply(a.ids()[0], []byte("late")) // the answer to 1: dropped
	if res, _ := sink.get(1); res.Code != CodeTimeout {
		t.Fatalf("late reply delivered: %+v", res)
	}
	if st := r.Stats(); st.LateReplies != 1 || st.Timeouts != 1 {
		t.Fatalf("stats %+v", st)
	}
	// Room again: a capped timeout.
	if err := q.Request(5, key, nil, time.Hour); err != nil {
		t.Fatal(err)
	}
	r.Expire(clk.Advance(4 * time.Second)) // request 2 at 5s
	if res, _ := sink.get(2); res.Code != CodeTimeout {
		t.Fatalf("request 2: %+v", res)
	}
	r.Expire(clk.Advance(5999 * time.Millisecond))
	if _, ok := sink.get(5); ok {
		t.Fatal("request 5 expired before its capped timeout")
	}
	r.Expire(clk.Advance(time.Millisecond))
	if res, _ := sink.get(5); res.Code != CodeTimeout {
		t.Fatalf("request 5 (capped at 10s): %+v", res)
	}
	if _, ok := r.NextDeadline(); ok {
		t.Fatal("timers left")
	}
}

func TestResponderGone(t *testing.T) {
	clk := testclock.New()
	r := newReg(clk, Options{})
	a, b := &fakeResponder{}, &fakeResponder{}
	sa := r.Serve(key, a, 0)
	r.Serve(key, b, 0)
	sink := &fakeSink{}
	q := r.NewRequester(sink)
	q.Request(1, key, nil, 0)
	q.Request(2, key, nil, 0)
	sa.Close()
	sa.Close()
	if res, _ := sink.get(1); res.Code != CodeResponderGone {
		t.Fatalf("request 1: %+v", res)
	}
	if _, ok := sink.get(2); ok {
		t.Fatal("request 2 at the other responder failed")
	}
	if r.Responders(key) != 1 {
		t.Fatalf("responders %d", r.Responders(key))
	}
	// Later requests go to the one left; its gone request never times out.
	q.Request(3, key, nil, 0)
	r.Expire(clk.Advance(time.Minute))
	if sink.count() != 3 || len(b.ids()) != 2 {
		t.Fatalf("%d results, b %v", sink.count(), b.ids())
	}
	if st := r.Stats(); st.ResponderGone != 1 || st.Timeouts != 2 || st.Responders != 1 {
		t.Fatalf("stats %+v", st)
	}
	// A responder whose Send fails is gone at once.
	b.full = true
	q.Request(4, key, nil, 0)
	if res, _ := sink.get(4); res.Code != CodeResponderGone || r.Responders(key) != 0 {
		t.Fatalf("request 4: %+v, %d responders", res, r.Responders(key))
	}
}

func TestRequesterLimitAndClose(t *testing.T) {
	r := newReg(testclock.New(), Options{MaxPending: 2})
	a := &fakeResponder{}
	sa := r.Serve(key, a, 0)
	sink := &fakeSink{}
	q := r.NewRequester(sink)
	q.Request(1, key, nil, 0)
	if q.Full() {
		t.Fatal("Full with 1 of 2 pending")
	}
	q.Request(2, key, nil, 0)
	if !q.Full() || r.Stats().Limited != 0 {
		t.Fatalf("Full %v, Limited %d with 2 of 2 pending: want true, 0 (asking counts nothing)", q.Full(), r.Stats().Limited)
	}
	var e *Error
	if err := q.Request(3, key, nil, 0); !errors.As(err, &e) || e.Code != CodeLimit {
		t.Fatalf("over the limit: %v", err)
	}
	sa.Reply(a.ids()[0], nil)
	if err := q.Request(3, key, nil, 0); !errors.As(err, &e) || e.Code != CodeLimit {
		t.Fatalf("a result not released still counts: %v", err)
	}
	q2 := r.NewRequester(&fakeSink{})
	q2.Request(9, key, nil, 0)
	if n := r.Pending(); n != 3 {
		t.Fatalf("registry pending %d, want 3", n)
	}
	q.Release(5) // more than it holds: only its own 2 go
	if n := r.Pending(); n != 1 {
		t.Fatalf("registry pending %d after the release, want 1", n)
	}
	q2.Close()
	if n := r.Pending(); n != 0 {
		t.Fatalf("registry pending %d after the other requester closed, want 0", n)
	}
	if err := q.Request(3, key, nil, 0); err != nil {
		t.Fatal(err)
	}
	q.Close()
	if n := r.Pending(); n != 0 {
		t.Fatalf("registry pending %d after the requester closed, want 0", n)
	}
	sa.Reply(a.ids()[1], nil)
	if sink.count() != 1 {
		t.Fatalf("results after the requester closed: %d", sink.count())
	}
	if _, ok := r.NextDeadline(); ok {
		t.Fatal("closed requester's timers left")
	}
	// Abandoned: q2's request 9, q's 2 and 3 (1 was answered).
	if st := r.Stats(); st.Limited != 2 || st.LateReplies != 1 || st.Abandoned != 3 {
		t.Fatalf("stats %+v", st)
	}
	if sv := r.Services(); len(sv) != 1 || sv[0].Abandoned != 3 || sv[0].Requests != 4 || sv[0].Replies != 1 {
		t.Fatalf("services %+v", sv)
	}
}

func TestRunTimers(t *testing.T) {
	r := New(Options{})
	r.Serve(key, &fakeResponder{}, 0)
	sink := &fakeSink{}
	q := r.NewRequester(sink)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.RunTimers(ctx) }()
	q.Request(1, key, nil, time.Millisecond) // wakes the timer loop
	for sink.count() == 0 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	<-done
	if res, _ := sink.get(1); res.Code != CodeTimeout {
		t.Fatalf("%+v", res)
	}
}

// A request on a closed requester (its connection going away) is refused
// without counting as a MaxPending refusal: Stats.Limited, exported as
// felix_service_limited_total, counted it with the bound's message.
func TestClosedRequesterRefusalIsNotLimited(t *testing.T) {
	r := newReg(testclock.New(), Options{MaxPending: 2})
	r.Serve(key, &fakeResponder{}, 0)
	q := r.NewRequester(&fakeSink{})
	q.Close()
	var e *Error
	if err := q.Request(1, key, nil, 0); !errors.As(err, &e) || !strings.Contains(e.Message, "closed") {
		t.Fatalf("request on a closed requester: %v, want a refusal saying it is closed", err)
	}
	if n := r.Stats().Limited; n != 0 {
		t.Fatalf("Limited = %d after a closed requester's refusal, want 0", n)
	}
}
