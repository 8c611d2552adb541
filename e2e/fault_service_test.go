package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/felixmq/felix/client"
	"github.com/felixmq/felix/internal/faultnet"
	"github.com/felixmq/felix/internal/testbroker"
	"github.com/felixmq/felix/service"
	"github.com/felixmq/felix/wire"
)

// Request/reply (Client.Request, Client.Serve; docs/semantics.md,
// "Request/reply (services)") through the faultnet proxy.

const faultSvc = "fsvc"

// svcRequest is request i of requester goroutine g: a faultPayload (up to
// ~3 KB, so some requests and answers span several packets) whose bytes
// name it.
func svcRequest(g, i int) []byte { return faultPayload(byte(g), uint64(i)) }

// svcResponder is a handler of faultSvc, named name: its answer to a
// request is "<name>:" followed by the request, so a requester can tell
// its own answer from any other request's byte for byte. calls counts the
// handler's runs per request (by payload); slow requests (see svcSlow)
// are answered only after slowFor, long after their deadline.
type svcResponder struct {
	name    string
	slowFor time.Duration

	mu    sync.Mutex
	calls map[string]int
}

// svcSlow marks a request the responder answers late: its first byte
// (faultPayload's publisher byte) is at least svcSlow.
const svcSlow = 200

func (r *svcResponder) handle(ctx context.Context, p []byte) ([]byte, error) {
	r.mu.Lock()
	if r.calls == nil {
		r.calls = map[string]int{}
	}
	r.calls[string(p)]++
	r.mu.Unlock()
	if _, _, err := checkPayload(p); err != nil {
		return nil, fmt.Errorf("%s: corrupted request: %v", r.name, err)
	}
	switch {
	case p[0] >= svcSlow:
		select {
		case <-time.After(r.slowFor):
		case <-ctx.Done():
		}
	case p[8]%7 == 0: // the low byte of the request's sequence number
		// A short pause for some requests: answers leave the responder
		// in another order than their requests came, so the requester
		// must match them by request id.
		time.Sleep(2 * time.Millisecond)
	}
	return append([]byte(r.name+":"), p...), nil
}

// handled returns how many times the handler ran for p.
func (r *svcResponder) handled(p []byte) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls[string(p)]
}

func (r *svcResponder) total() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, v := range r.calls {
		n += v
	}
	return n
}

// serveSvc starts r on c; the service is closed when the test ends.
func serveSvc(t *testing.T, ctx context.Context, c *client.Client, r *svcResponder) *client.Service {
	t.Helper()
	s, err := c.Serve(ctx, "default", faultSvc, r.handle)
	if err != nil {
		t.Fatalf("serve %s: %v", r.name, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// checkAnswer reports what is wrong with got as the answer to req, given
// the names of the responders that may have answered.
func checkAnswer(got, req []byte, names ...string) error {
	for _, n := range names {
		if bytes.HasPrefix(got, []byte(n+":")) && bytes.Equal(got[len(n)+1:], req) {
			return nil
		}
	}
	// Whose answer is it, if anyone's?
	g, i, err := checkPayload(got[bytes.IndexByte(got, ':')+1:])
	return fmt.Errorf("wrong answer (%d bytes, %q...; the answer to request g%d/%d? %v)", len(got), got[:min(len(got), 12)], g, i, err)
}

// documentedRequestErr reports whether err is one of the failures
// Client.Request documents for a request that could not be answered
// (no responder, timeout, responder gone, lost connection).
func documentedRequestErr(err error) bool {
	var se *client.ServerError
	return errors.Is(err, client.ErrNoResponders) || errors.Is(err, client.ErrRequestTimeout) ||
		errors.Is(err, client.ErrDisconnected) ||
		(errors.As(err, &se) && se.Code == wire.RequestCodeResponderGone)
}

// svcFailures collects the failures of a test's worker goroutines, for
// the test's goroutine to report: a worker still running when the test
// gives up (a hung request) must not call t.
type svcFailures struct {
	mu   sync.Mutex
	n    int
	msgs []string
}

func (f *svcFailures) add(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.n++; len(f.msgs) < 10 {
		f.msgs = append(f.msgs, fmt.Sprintf(format, args...))
	}
}

// report fails the test with the failures collected so far.
func (f *svcFailures) report(t *testing.T) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, m := range f.msgs {
		t.Error(m)
	}
	if f.n > len(f.msgs) {
		t.Errorf("... and %d more failures", f.n-len(f.msgs))
	}
}

// waitWorkers waits for wg, or fails the test when ctx (the test's bound)
// ends first: a request hung.
func waitWorkers(t *testing.T, ctx context.Context, wg *sync.WaitGroup, f *svcFailures, what string) {
	t.Helper()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		f.report(t)
		t.Fatalf("%s: still running at the test's deadline: a request hung", what)
	}
}

// svcStats returns the broker's counters of faultSvc with the registry's.
func svcStats(tb *testbroker.Broker) (service.Stats, service.Info) {
	st := tb.Server.ServiceStats()
	for _, in := range tb.Server.Services() {
		if in.Key == (service.Key{Tenant: "default", Namespace: "default", Service: faultSvc}) {
			return st, in
		}
	}
	return st, service.Info{}
}

// Requests over the lossy link (5% loss, 0-5 ms jitter, 1% duplicates)
// from 16 goroutines to two responders, with the requester, the
// responders or both behind the proxy (2,000 requests; 1,024 when only
// one side is): QUIC retransmits, so every request
// gets its own answer byte for byte (never another request's), no request
// fails, each handler runs exactly once per request (no duplicate reaches
// a responder), both responders take a share, and the broker counts
// exactly n requests and n replies and nothing else.
func TestFaultServiceLossyLink(t *testing.T) {
	for _, tc := range []struct {
		name                     string
		requesterVia, respondVia bool
		each                     int // requests per goroutine
	}{
		{"both", true, true, 125},
		{"requester", true, false, 64},
		{"responders", false, true, 64},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tb := testbroker.Start(t)
			px := faultProxy(t, tb, badLink)
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			dialSide := func(via bool) *client.Client {
				if via {
					return dialVia(t, tb, px, client.Options{})
				}
				return dial(t, tb, client.Options{})
			}
			resps := []*svcResponder{{name: "r0"}, {name: "r1"}}
			var svcs []*client.Service
			for _, r := range resps {
				svcs = append(svcs, serveSvc(t, ctx, dialSide(tc.respondVia), r))
			}
			req := dialSide(tc.requesterVia)

			const workers = 16
			each := tc.each
			n := workers * each
			var answered atomic.Int64
			var fails svcFailures
			var wg sync.WaitGroup
			for g := range workers {
				wg.Go(func() {
					for i := range each {
						if ctx.Err() != nil {
							return
						}
						p := svcRequest(g, i)
						rctx, rcancel := context.WithTimeout(ctx, 20*time.Second)
						got, err := req.Request(rctx, "default", faultSvc, p)
						rcancel()
						if err == nil {
							err = checkAnswer(got, p, "r0", "r1")
						}
						if err != nil {
							fails.add("request g%d/%d: %v", g, i, err)
							continue
						}
						answered.Add(1)
					}
				})
			}
			waitWorkers(t, ctx, &wg, &fails, "the requests")
			fails.report(t)
			if a := answered.Load(); a != int64(n) {
				t.Fatalf("%d of %d requests answered", a, n)
			}
			for g := range workers {
				for i := range each {
					p := svcRequest(g, i)
					if h := resps[0].handled(p) + resps[1].handled(p); h != 1 {
						t.Fatalf("request g%d/%d handled %d times", g, i, h)
					}
				}
			}
			if resps[0].total() == 0 || resps[1].total() == 0 {
				t.Fatalf("one responder took everything: %d, %d", resps[0].total(), resps[1].total())
			}
			st, in := svcStats(tb)
			if want := (service.Stats{Requests: uint64(n), Replies: uint64(n), Responders: 2}); st != want {
				t.Fatalf("broker stats %+v, want %+v", st, want)
			}
			if want := (service.Counts{Requests: uint64(n), Replies: uint64(n)}); in.Counts != want || in.InFlight != 0 || in.Responders != 2 {
				t.Fatalf("service counts %+v, %d in flight, %d responders; want %+v, nothing in flight, 2 responders", in.Counts, in.InFlight, in.Responders, want)
			}
			for i, s := range svcs {
				select {
				case <-s.Done():
					t.Fatalf("service %d ended: %v", i, s.Err())
				default:
				}
				if err := s.Close(); err != nil || s.Err() != nil {
					t.Fatalf("service %d: Close %v, Err %v", i, err, s.Err())
				}
			}
			if s := px.Stats(); s.Dropped == 0 || s.Duplicated == 0 {
				t.Fatalf("the link lost or duplicated nothing: %+v", s)
			}
			t.Logf("handled %d + %d; %v", resps[0].total(), resps[1].total(), px)
		})
	}
}

// svcCall is one request of TestFaultServiceOutage: how it ended and how long
// it took against its deadline.
type svcCall struct {
	who      string
	err      error
	wrong    error // what is wrong with the answer, when err is nil
	took     time.Duration
	deadline time.Duration
}

// hangMargin is how far past its deadline a request may return on a
// loaded machine before it counts as hung.
const hangMargin = 5 * time.Second

// A blackhole longer than every idle timeout between a responder and the
// broker: the broker gives the responder up (its requests in flight fail
// with responder_gone or their timeout, later ones with no_responders),
// the responder's Serve notices the loss and serves again by itself once
// the link is back (Done stays open, Err nil), and requests after that
// are answered, from a requester that never lost its link and from one
// cut off with the responder. Every request made meanwhile ends with a
// documented failure (or its own right answer), within its deadline
// plus a margin: none hangs, none gets a wrong answer. The broker's
// counters account for every request it accepted exactly once.
func TestFaultServiceOutage(t *testing.T) {
	tb := testbroker.Start(t)
	px := faultProxy(t, tb, faultnet.Faults{})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	fast := shortIdle(0)
	resp := &svcResponder{name: "r"}
	s := serveSvc(t, ctx, dialVia(t, tb, px, fast), resp)
	direct := dial(t, tb, client.Options{})
	cut := dialVia(t, tb, px, fast)
	requesters := map[string]*client.Client{"direct": direct, "cut": cut}

	var mu sync.Mutex
	var calls []svcCall
	seq := map[string]int{}
	// call makes request seq of requester who with deadline d and checks
	// the answer, if any; it returns the error.
	call := func(who string, d time.Duration) error {
		mu.Lock()
		i := seq[who]
		seq[who]++
		mu.Unlock()
		g := 1
		if who == "cut" {
			g = 2
		}
		p := svcRequest(g, i)
		rctx, rcancel := context.WithTimeout(ctx, d)
		start := time.Now()
		got, err := requesters[who].Request(rctx, "default", faultSvc, p)
		took := time.Since(start)
		rcancel()
		var wrong error
		if err == nil {
			wrong = checkAnswer(got, p, "r")
		}
		mu.Lock()
		calls = append(calls, svcCall{who: who, err: err, wrong: wrong, took: took, deadline: d})
		mu.Unlock()
		return err
	}

	for range 20 {
		for who := range requesters {
			if err := call(who, 10*time.Second); err != nil {
				t.Fatalf("%s before the outage: %v", who, err)
			}
		}
	}
	connsBefore := tb.Server.Stats().ConnectionsTotal.Load()

	px.SetBlackhole(true)
	outageOver := make(chan struct{})
	var wg sync.WaitGroup
	for who := range requesters {
		// Short deadlines, and long ones beside them: a request does not
		// wait past its own deadline for another's (a stream open, say).
		for _, d := range []time.Duration{1500 * time.Millisecond, 1500 * time.Millisecond, 8 * time.Second} {
			wg.Go(func() {
				for range 300 {
					select {
					case <-outageOver:
						return
					default:
					}
					call(who, d)
					time.Sleep(10 * time.Millisecond)
				}
			})
		}
	}
	// The broker gives the responder up once its connection's idle
	// timeout passed (at least 5 s on quic-go); from then on a request
	// finds nobody, at once.
	for {
		st, _ := svcStats(tb)
		if st.Responders == 0 {
			break
		}
		within(t, ctx, "waiting for the broker to give the responder up")
		time.Sleep(20 * time.Millisecond)
	}
	if err := call("direct", 5*time.Second); !errors.Is(err, client.ErrNoResponders) {
		t.Errorf("request with the responder given up: %v, want ErrNoResponders", err)
	}
	time.Sleep(time.Second) // the SDK's redials fail for a while too
	select {
	case <-s.Done():
		t.Fatalf("the service ended during the outage: %v", s.Err())
	default:
	}
	px.SetBlackhole(false)
	close(outageOver)
	var fails svcFailures
	waitWorkers(t, ctx, &wg, &fails, "the requests during the outage")

	// Serve comes back by itself: poll until a request is answered, from
	// each requester (the cut one redials first).
	for who := range requesters {
		for {
			err := call(who, 3*time.Second)
			if err == nil {
				break
			}
			within(t, ctx, who+": waiting for an answer after the outage (last: "+err.Error()+")")
			select {
			case <-s.Done():
				t.Fatalf("the service ended: %v", s.Err())
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	// Then every request is answered.
	for who := range requesters {
		for range 4 {
			wg.Go(func() {
				for range 50 {
					if err := call(who, 15*time.Second); err != nil {
						fails.add("%s after the outage: %v", who, err)
					}
				}
			})
		}
	}
	waitWorkers(t, ctx, &wg, &fails, "the requests after the outage")
	fails.report(t)

	mu.Lock()
	var outcomes = map[string]int{}
	for _, c := range calls {
		if c.took > c.deadline+hangMargin {
			t.Errorf("%s request took %v with a deadline of %v: %v", c.who, c.took, c.deadline, c.err)
		}
		kind := "answered"
		switch {
		case c.err == nil && c.wrong != nil:
			t.Errorf("%s request: %v", c.who, c.wrong)
			kind = "wrong answer"
		case c.err == nil:
		case !documentedRequestErr(c.err):
			t.Errorf("%s request failed with an undocumented error: %v (%T)", c.who, c.err, c.err)
			kind = "undocumented"
		default:
			kind = c.err.Error()
			if len(kind) > 60 {
				kind = kind[:60]
			}
		}
		outcomes[c.who+" "+kind]++
	}
	mu.Unlock()

	// The broker accounted for each request it accepted exactly once: a
	// reply, a timeout, responder_gone, or abandoned with the cut
	// requester's connection. Those still open settle by their timeouts
	// and the idle timeout of the connections the outage killed.
	var st service.Stats
	for {
		st, _ = svcStats(tb)
		if st.Requests == st.Replies+st.ResponderErrors+st.Timeouts+st.ResponderGone+st.Abandoned {
			break
		}
		within(t, ctx, fmt.Sprintf("waiting for every request to settle: %+v", st))
		time.Sleep(20 * time.Millisecond)
	}
	if st.ResponderErrors != 0 || st.UnknownReplies != 0 || st.NoResponders == 0 || st.Responders != 1 {
		t.Errorf("broker stats %+v: want no responder error or unknown reply, some no_responders, 1 responder", st)
	}
	select {
	case <-s.Done():
		t.Fatalf("the service ended: %v", s.Err())
	default:
	}
	if err := s.Close(); err != nil || s.Err() != nil {
		t.Fatalf("Close %v, Err %v", err, s.Err())
	}
	if tb.Server.Stats().ConnectionsTotal.Load() == connsBefore {
		t.Fatal("no new connection: the outage did not cut the responder off")
	}
	t.Logf("outcomes %v; broker %+v; %v", outcomes, st, px)
}

// A responder that answers some requests long after their deadline, on
// the lossy link: those requests fail with ErrRequestTimeout within their
// deadline plus a margin, the broker counts each as a timeout and drops
// its late answer (LateReplies), the other requests, meanwhile, each get
// their own answer, and once everything is closed (service, clients,
// proxy, broker) no goroutine is left.
func TestFaultServiceSlowResponder(t *testing.T) {
	leakOpts := []goleak.Option{goleak.IgnoreCurrent()}
	tb := testbroker.Start(t)
	px := faultProxy(t, tb, badLink)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	resp := &svcResponder{name: "r", slowFor: 2500 * time.Millisecond}
	rc := dialVia(t, tb, px, client.Options{})
	s, err := rc.Serve(ctx, "default", faultSvc, resp.handle)
	if err != nil {
		t.Fatal(err)
	}
	req := dialVia(t, tb, px, client.Options{})

	const fastWorkers, fastEach = 6, 100
	const slowWorkers, slowEach = 2, 5
	const slowDeadline = 400 * time.Millisecond
	var wg sync.WaitGroup
	var answered, timedOut atomic.Int64
	var fails svcFailures
	report := fails.add
	for g := range fastWorkers {
		wg.Go(func() {
			for i := range fastEach {
				if ctx.Err() != nil {
					return
				}
				p := svcRequest(g, i)
				rctx, rcancel := context.WithTimeout(ctx, 20*time.Second)
				got, err := req.Request(rctx, "default", faultSvc, p)
				rcancel()
				if err == nil {
					err = checkAnswer(got, p, "r")
				}
				if err != nil {
					report("fast request g%d/%d: %v", g, i, err)
					continue
				}
				answered.Add(1)
			}
		})
	}
	for g := range slowWorkers {
		wg.Go(func() {
			for i := range slowEach {
				if ctx.Err() != nil {
					return
				}
				p := svcRequest(svcSlow+g, i)
				rctx, rcancel := context.WithTimeout(ctx, slowDeadline)
				start := time.Now()
				got, err := req.Request(rctx, "default", faultSvc, p)
				took := time.Since(start)
				rcancel()
				switch {
				case err == nil:
					report("slow request %d/%d answered in %v after its deadline of %v: %q", g, i, took, slowDeadline, got[:min(len(got), 12)])
				case !errors.Is(err, client.ErrRequestTimeout):
					report("slow request %d/%d: %v (%T), want ErrRequestTimeout", g, i, err, err)
				case took > slowDeadline+hangMargin:
					report("slow request %d/%d took %v, deadline %v", g, i, took, slowDeadline)
				default:
					timedOut.Add(1)
				}
			}
		})
	}
	waitWorkers(t, ctx, &wg, &fails, "the requests")
	fails.report(t)
	const nFast, nSlow = fastWorkers * fastEach, slowWorkers * slowEach
	if answered.Load() != nFast || timedOut.Load() != nSlow {
		t.Fatalf("%d of %d fast requests answered, %d of %d slow ones timed out", answered.Load(), nFast, timedOut.Load(), nSlow)
	}
	// The late answers reach the broker after the handlers' pause; it
	// drops them. Until then each holds its place at the responder.
	var st service.Stats
	var in service.Info
	for {
		if st, in = svcStats(tb); st.LateReplies == nSlow && in.InFlight == 0 {
			break
		}
		within(t, ctx, fmt.Sprintf("waiting for the late answers: %+v; in flight %d", st, in.InFlight))
		time.Sleep(20 * time.Millisecond)
	}
	if want := (service.Stats{Requests: nFast + nSlow, Replies: nFast, Timeouts: nSlow, LateReplies: nSlow, Responders: 1}); st != want {
		t.Fatalf("broker stats %+v, want %+v", st, want)
	}
	if want := (service.Counts{Requests: nFast + nSlow, Replies: nFast, Timeouts: nSlow}); in.Counts != want {
		t.Fatalf("service counts %+v, want %+v", in.Counts, want)
	}
	if h := resp.total(); h != nFast+nSlow {
		t.Fatalf("handler ran %d times for %d requests", h, nFast+nSlow)
	}
	if err := s.Close(); err != nil || s.Err() != nil {
		t.Fatalf("Close %v, Err %v", err, s.Err())
	}
	rc.Close()
	req.Close()
	px.Close()
	tb.Stop()
	if err := goleak.Find(leakOpts...); err != nil {
		t.Errorf("goroutines left after closing everything: %v", err)
	}
}
