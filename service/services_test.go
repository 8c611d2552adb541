package service

import (
	"fmt"
	"testing"
	"time"

	"github.com/felixmq/felix/internal/testclock"
)

// info returns k's entry in r.Services(), or false.
func info(r *Registry, k Key) (Info, bool) {
	for _, in := range r.Services() {
		if in.Key == k {
			return in, true
		}
	}
	return Info{}, false
}

// keys lists the services of r.Services(), in its order.
func keys(r *Registry) []string {
	var out []string
	for _, in := range r.Services() {
		out = append(out, in.Key.String())
	}
	return out
}

// Services shows each service's responders, requests in flight and
// counters, sorted by key; a request to a service nobody serves shows
// it with its no_responders.
func TestServicesSnapshot(t *testing.T) {
	clk := testclock.New()
	r := newReg(clk, Options{})
	a, b := &fakeResponder{}, &fakeResponder{}
	sa, sb := r.Serve(key, a, 0), r.Serve(key, b, 0)
	other := Key{"t", "ns", "another"}
	r.Serve(other, &fakeResponder{}, 0)
	q := r.NewRequester(&fakeSink{})
	q.Request(1, key, nil, time.Second) // to a: replied
	q.Request(2, key, nil, time.Second) // to b: failed
	q.Request(3, key, nil, time.Second) // to a: times out, still held by a
	q.Request(4, key, nil, time.Minute) // to b: in flight
	q.Request(5, Key{"t", "ns", "nobody"}, nil, 0)
	sa.Reply(a.ids()[0], nil)
	sb.Fail(b.ids()[0], "boom")
	r.Expire(clk.Advance(time.Second))

	if got := fmt.Sprint(keys(r)); got != "[t/ns/another t/ns/nobody t/ns/svc]" {
		t.Fatalf("services %s", got)
	}
	want := Info{Key: key, Responders: 2, InFlight: 2,
		Counts: Counts{Requests: 4, Replies: 1, ResponderErrors: 1, Timeouts: 1}}
	if in, _ := info(r, key); in != want {
		t.Fatalf("%s: %+v, want %+v", key, in, want)
	}
	if in, _ := info(r, other); in != (Info{Key: other, Responders: 1}) {
		t.Fatalf("%s: %+v", other, in)
	}
	if in, _ := info(r, Key{"t", "ns", "nobody"}); in.Responders != 0 || in.Counts != (Counts{NoResponders: 1}) {
		t.Fatalf("nobody: %+v", in)
	}

	// b goes with request 4 in flight; a's late answer to 3 frees its place.
	sb.Close()
	sa.Reply(a.ids()[1], nil)
	want = Info{Key: key, Responders: 1, InFlight: 0,
		Counts: Counts{Requests: 4, Replies: 1, ResponderErrors: 1, Timeouts: 1, ResponderGone: 1}}
	if in, _ := info(r, key); in != want {
		t.Fatalf("after b left: %+v, want %+v", in, want)
	}
	// With its last responder gone a service keeps its counters, and goes
	// on counting where it stopped when served again.
	sa.Close()
	q.Request(6, key, nil, 0)
	if in, ok := info(r, key); !ok || in.Responders != 0 || in.NoResponders != 1 || in.Requests != 4 {
		t.Fatalf("served by nobody now: %+v %v", in, ok)
	}
	r.Serve(key, a, 0)
	q.Request(7, key, nil, 0)
	if in, _ := info(r, key); in.Responders != 1 || in.InFlight != 1 || in.Requests != 5 || in.NoResponders != 1 {
		t.Fatalf("served again: %+v", in)
	}
	if st := r.Stats(); st.Requests != 5 || st.NoResponders != 2 || st.ResponderGone != 1 {
		t.Fatalf("registry stats %+v", st)
	}
}

// Services with no responder are kept only with something to show, at
// most MaxIdleServices of them, the least recently used dropped first;
// served ones are always kept.
func TestIdleServicesBounded(t *testing.T) {
	r := newReg(testclock.New(), Options{MaxIdleServices: 2})
	q := r.NewRequester(&fakeSink{})
	name := func(i int) Key { return Key{"t", "ns", fmt.Sprint("s", i)} }

	// Served and left without a request: nothing to show, forgotten.
	r.Serve(name(9), &fakeResponder{}, 0).Close()
	if got := keys(r); len(got) != 0 {
		t.Fatalf("an unused service kept: %v", got)
	}
	served := r.Serve(name(0), &fakeResponder{}, 0)
	for i := 1; i <= 100; i++ {
		q.Request(uint64(i), name(i), nil, 0)
	}
	if got := fmt.Sprint(keys(r)); got != "[t/ns/s0 t/ns/s100 t/ns/s99]" {
		t.Fatalf("services %s, want the served one and the last 2", got)
	}
	// A refused request makes s99 the most recent: s100 goes first.
	q.Request(200, name(99), nil, 0)
	q.Request(201, name(7), nil, 0)
	if got := fmt.Sprint(keys(r)); got != "[t/ns/s0 t/ns/s7 t/ns/s99]" {
		t.Fatalf("services %s, want s100 dropped", got)
	}
	if in, _ := info(r, name(99)); in.NoResponders != 2 {
		t.Fatalf("s99: %+v", in)
	}
	// The served service turns idle, the most recent, when it leaves: it
	// counts among the bound, and s99 goes.
	q.Request(300, name(0), nil, 0)
	served.Close()
	if got := fmt.Sprint(keys(r)); got != "[t/ns/s0 t/ns/s7]" {
		t.Fatalf("services %s", got)
	}

	// Negative: no idle service kept at all.
	r = newReg(testclock.New(), Options{MaxIdleServices: -1})
	q = r.NewRequester(&fakeSink{})
	s := r.Serve(key, &fakeResponder{}, 0)
	q.Request(1, key, nil, 0)
	q.Request(2, Key{"t", "ns", "nobody"}, nil, 0)
	if got := fmt.Sprint(keys(r)); got != "[t/ns/svc]" {
		t.Fatalf("services %s", got)
	}
	s.Close()
	if got := keys(r); len(got) != 0 || r.Stats().NoResponders != 1 {
		t.Fatalf("services %v, stats %+v", got, r.Stats())
	}
}
