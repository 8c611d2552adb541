package service

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/felixmq/felix/internal/testclock"
)

// countingSink counts the results it gets per request id.
type countingSink struct {
	mu  sync.Mutex
	got map[uint64]int
}

func (s *countingSink) Result(id uint64, _ Result) {
	s.mu.Lock()
	s.got[id]++
	s.mu.Unlock()
}

// Responders come and go, answer their requests (some twice, some with
// ids they never got, some after the timeout) while requesters send and
// timers fire, all at once. Afterwards every accepted request has had
// exactly one result, and each service's counters add up: requests =
// replies + responder errors + timeouts + responder gone.
func TestServiceCountersUnderChurn(t *testing.T) {
	clk := testclock.New()
	r := newReg(clk, Options{MaxInFlight: 4, MaxPending: 1 << 20})
	names := []Key{{"t", "ns", "a"}, {"t", "ns", "b"}, {"t", "ns", "c"}}
	var wg sync.WaitGroup
	var stop atomic.Bool

	// Responders: each serves a while, answering what it got, then leaves.
	for w := range 6 {
		wg.Go(func() {
			rnd := rand.New(rand.NewPCG(uint64(w), 1))
			for !stop.Load() {
				f := &fakeResponder{}
				s := r.Serve(names[rnd.IntN(len(names))], f, 1+rnd.IntN(4))
				for range 50 + rnd.IntN(50) {
					ids := f.ids()
					if len(ids) == 0 {
						time.Sleep(10 * time.Microsecond)
						continue
					}
					id := ids[rnd.IntN(len(ids))]
					switch rnd.IntN(5) {
					case 0:
						s.Fail(id, "no")
					case 1:
						s.Reply(id+1000, nil) // maybe never sent to it
					default:
						s.Reply(id, nil) // maybe again
					}
				}
				s.Close()
			}
		})
	}
	// Requesters, each with its own ids; none goes away.
	sinks := make([]*countingSink, 3)
	accepted := make([]map[uint64]bool, len(sinks))
	var reqs sync.WaitGroup
	for i := range sinks {
		sinks[i] = &countingSink{got: map[uint64]int{}}
		accepted[i] = map[uint64]bool{}
		q := r.NewRequester(sinks[i])
		reqs.Go(func() {
			rnd := rand.New(rand.NewPCG(uint64(i), 2))
			for id := uint64(1); len(accepted[i]) < 500; id++ {
				timeout := time.Duration(1+rnd.IntN(3)) * time.Millisecond
				if q.Request(id, names[rnd.IntN(len(names))], nil, timeout) == nil {
					accepted[i][id] = true
				} else {
					time.Sleep(20 * time.Microsecond) // let responders come
				}
			}
		})
	}
	// The clock.
	wg.Go(func() {
		for !stop.Load() {
			clk.Advance(time.Millisecond)
			r.Expire(clk.Now())
			time.Sleep(20 * time.Microsecond)
		}
	})
	reqs.Wait()
	stop.Store(true)
	wg.Wait()
	clk.Advance(time.Minute) // every request still in flight times out
	r.Expire(clk.Now())

	for i, s := range sinks {
		s.mu.Lock()
		for id := range accepted[i] {
			if n := s.got[id]; n != 1 {
				t.Errorf("requester %d, request %d: %d results", i, id, n)
			}
		}
		if len(s.got) != len(accepted[i]) {
			t.Errorf("requester %d: results for %d requests, %d accepted", i, len(s.got), len(accepted[i]))
		}
		s.mu.Unlock()
	}
	var total Counts
	for _, in := range r.Services() {
		c := in.Counts
		if in.Responders != 0 || in.InFlight != 0 {
			t.Errorf("%s: %d responders, %d in flight after all left", in.Key, in.Responders, in.InFlight)
		}
		if c.Requests != c.Replies+c.ResponderErrors+c.Timeouts+c.ResponderGone {
			t.Errorf("%s: counters do not add up: %+v", in.Key, c)
		}
		total.Requests += c.Requests
		total.Replies += c.Replies
		total.NoResponders += c.NoResponders
	}
	st := r.Stats()
	if st.Requests != total.Requests || st.Replies != total.Replies || st.NoResponders != total.NoResponders || st.Responders != 0 {
		t.Errorf("registry %+v, services' sum %+v", st, total)
	}
	if st.Requests == 0 || st.Timeouts == 0 || st.ResponderGone == 0 || st.UnknownReplies == 0 {
		t.Logf("weak run (test setup): %+v", st)
	}
}

// However many made-up names requesters use, the registry holds at most
// the served services plus MaxIdleServices, from many goroutines at once.
func TestIdleServicesBoundedConcurrently(t *testing.T) {
	r := newReg(testclock.New(), Options{MaxIdleServices: 8})
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			q := r.NewRequester(&fakeSink{})
			for i := range 2000 {
				k := Key{"t", "ns", fmt.Sprint("made-up-", g, "-", i)}
				if i%50 == 0 { // a served one, that leaves with its counts
					s := r.Serve(k, &fakeResponder{}, 0)
					if err := q.Request(uint64(i), k, nil, 0); err != nil {
						t.Errorf("request to a served service: %v", err)
					}
					s.Close()
					continue
				}
				q.Request(uint64(i), k, nil, 0)
			}
		})
	}
	wg.Wait()
	if n := len(r.Services()); n > 8 {
		t.Fatalf("%d services kept, bound 8", n)
	}
	r.mu.Lock()
	n, idle := len(r.services), r.idle.Len()
	r.mu.Unlock()
	if n != idle {
		t.Fatalf("%d services, %d of them on the idle list: the rest leak", n, idle)
	}
}
