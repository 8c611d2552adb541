package e2e

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/felixmq/felix/client"
)

// hunt14Req is the outcome of one request of TestHunt14ServiceSIGTERMDrain.
type hunt14Req struct {
	req        []byte
	answer     []byte
	err        error
	start, end time.Time
}

// Requests from 8 goroutines (4 s contexts) to a responder whose handler
// takes 0-900 ms, requester and responder each through the lossy link,
// while the broker is stopped with SIGTERM (--shutdown-timeout 5s) and
// started again. docs/semantics.md: requests in flight get their reply
// (or their timeout) before the connections close, requests arriving
// while draining get no_responders, and Serve serves again by itself
// after the restart. Checked:
//   - every request ends within its context, with its own answer or a
//     documented error;
//   - a handler runs at most once per request, exactly once for an
//     answered one, never for one answered no_responders;
//   - a request whose handler began before the SIGTERM gets its answer
//     (the drain promise), not responder_gone or a lost connection;
//   - the broker exits cleanly, and requests are answered again after the
//     restart, by the same Serve; the same after a SIGKILL and restart;
//   - the broker never panicked.
func TestHunt14ServiceSIGTERMDrain(t *testing.T) {
	b := hunt14Start(t, "--shutdown-timeout", "5s")
	b.ready()
	px := b.proxy(badLink)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()

	var (
		hmu     sync.Mutex
		handled = map[string][]time.Time{} // request -> when its handler began, each run
	)
	handler := func(hctx context.Context, p []byte) ([]byte, error) {
		hmu.Lock()
		handled[string(p)] = append(handled[string(p)], time.Now())
		hmu.Unlock()
		if _, _, err := checkPayload(p); err != nil {
			return nil, err
		}
		select {
		case <-time.After(time.Duration(p[8]%7) * 150 * time.Millisecond):
		case <-hctx.Done():
		}
		return append([]byte("r1:"), p...), nil
	}
	rc := b.dialVia(px, shortIdle(0))
	svc, err := rc.Serve(ctx, "default", faultSvc, handler)
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	qc := b.dialVia(px, shortIdle(0))

	var (
		mu      sync.Mutex
		results []hunt14Req
		stop    = make(chan struct{})
		wg      sync.WaitGroup
	)
	for g := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				req := svcRequest(g, i)
				rctx, rcancel := context.WithTimeout(ctx, 4*time.Second)
				r := hunt14Req{req: req, start: time.Now()}
				r.answer, r.err = qc.Request(rctx, "default", faultSvc, req)
				r.end = time.Now()
				rcancel()
				mu.Lock()
				results = append(results, r)
				mu.Unlock()
				if r.err != nil {
					time.Sleep(20 * time.Millisecond)
				}
			}
		})
	}

	time.Sleep(1500 * time.Millisecond)
	termAt := time.Now()
	if err := b.stop(syscall.SIGTERM); err != nil {
		t.Errorf("broker after SIGTERM: %v", err)
	}
	downFor := time.Since(termAt)
	time.Sleep(300 * time.Millisecond)
	b.start()
	restartAt := time.Now()
	// Serve serves again by itself: wait for answers after the restart.
	okAfter := func() int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, r := range results {
			if r.err == nil && r.start.After(restartAt) {
				n++
			}
		}
		return n
	}
	for okAfter() < 20 && time.Since(restartAt) < 10*time.Second {
		time.Sleep(50 * time.Millisecond)
	}
	okTerm := okAfter()
	// Then a crash: requests in flight fail (responder_gone, a lost
	// connection, a timeout), none is handled twice, Serve serves again.
	b.stop(syscall.SIGKILL)
	time.Sleep(200 * time.Millisecond)
	b.start()
	restartAt = time.Now()
	for okAfter() < 20 && time.Since(restartAt) < 10*time.Second {
		time.Sleep(50 * time.Millisecond)
	}
	okKill := okAfter()
	close(stop)
	var f svcFailures
	waitWorkers(t, ctx, &wg, &f, "requesters")
	select {
	case <-svc.Done():
		t.Errorf("Serve ended: %v", svc.Err())
	default:
	}
	svc.Close()

	hmu.Lock()
	defer hmu.Unlock()
	classes := map[string]int{}
	inFlightOK := 0
	for _, r := range results {
		runs := handled[string(r.req)]
		if took := r.end.Sub(r.start); took > 5*time.Second {
			f.add("request %x... took %v with a 4 s context (err %v)", r.req[:9], took, r.err)
		}
		if len(runs) > 1 {
			f.add("request %x... handled %d times", r.req[:9], len(runs))
		}
		began := len(runs) > 0 && runs[0].Before(termAt)
		switch {
		case r.err == nil:
			classes["ok"]++
			if err := checkAnswer(r.answer, r.req, "r1"); err != nil {
				f.add("request %x...: %v", r.req[:9], err)
			}
			if len(runs) != 1 {
				f.add("request %x... answered, handled %d times", r.req[:9], len(runs))
			}
			if began && r.end.After(termAt) {
				inFlightOK++
			}
		case errors.Is(r.err, client.ErrNoResponders):
			classes["no_responders"]++
			if len(runs) != 0 {
				f.add("request %x... answered no_responders (%v) but its handler ran", r.req[:9], r.err)
			}
		case documentedRequestErr(r.err) || errors.Is(r.err, context.DeadlineExceeded):
			classes[fmt.Sprintf("%T", r.err)+": "+hunt7ErrClass(r.err)]++
			if began && r.end.After(termAt) {
				f.add("request %x... in flight at SIGTERM (handler began %v before) failed: %v",
					r.req[:9], termAt.Sub(runs[0]).Round(time.Millisecond), r.err)
			}
		default:
			f.add("request %x...: undocumented error %v", r.req[:9], r.err)
		}
	}
	f.report(t)
	if okTerm == 0 || okKill == 0 {
		t.Errorf("requests answered after the restart that followed the SIGTERM: %d, the SIGKILL: %d", okTerm, okKill)
	}
	t.Logf("%d requests: %v; %d in flight at SIGTERM answered; broker down for %v", len(results), classes, inFlightOK, downFor.Round(time.Millisecond))
}
