package service

import (
	"testing"

	"github.com/felixmq/felix/internal/testclock"
)

// Responders that leave and come back (a worker that reconnects after
// each request, a pool under churn) still share the requests
// round-robin. Before, a responder leaving from before the round-robin
// cursor left the cursor one place too far: the responder after it was
// skipped, and here one responder got every request while the other two
// starved.
func TestRoundRobinFairUnderChurn(t *testing.T) {
	r := newReg(testclock.New(), Options{})
	const n, rounds = 3, 10
	resp := make([]*fakeResponder, n)
	serving := make([]*Serving, n)
	for i := range n {
		resp[i] = &fakeResponder{}
		serving[i] = r.Serve(key, resp[i], 0)
	}
	q := r.NewRequester(&fakeSink{})
	got := make([]int, n)
	for id := range uint64(n * rounds) {
		if err := q.Request(id, key, nil, 0); err != nil {
			t.Fatal(err)
		}
		for i, f := range resp {
			if ids := f.ids(); len(ids) > 0 {
				got[i]++
				serving[i].Reply(ids[0], nil)
				serving[i].Close() // reconnects: serves again, last in turn
				resp[i] = &fakeResponder{}
				serving[i] = r.Serve(key, resp[i], 0)
			}
		}
	}
	for _, c := range got {
		if c != rounds {
			t.Errorf("requests per responder %v, want %d each", got, rounds)
			break
		}
	}
	// And when one leaves for good: the next in turn is served next.
	for i := range n {
		serving[i].Close()
	}
	a, b, c := &fakeResponder{}, &fakeResponder{}, &fakeResponder{}
	sa := r.Serve(key, a, 0)
	r.Serve(key, b, 0)
	r.Serve(key, c, 0)
	for id := range uint64(2) { // a, then b
		if err := q.Request(100+id, key, nil, 0); err != nil {
			t.Fatal(err)
		}
	}
	sa.Close()
	if err := q.Request(200, key, nil, 0); err != nil {
		t.Fatal(err)
	}
	if len(b.ids()) != 1 || len(c.ids()) != 1 {
		t.Errorf("after a left: b got %d, c got %d requests, want 1 each", len(b.ids()), len(c.ids()))
	}
}
