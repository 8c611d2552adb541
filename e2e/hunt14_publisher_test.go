package e2e

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/felixmq/felix/client"
	"github.com/felixmq/felix/commitlog"
	"github.com/felixmq/felix/wire"
)

// A batching client.Publisher (MaxBatch 16, Linger 2 ms) flushing every 24
// events and a subscription resuming by offset (FromOffset 0), each on its
// own client through the lossy link, while the broker of the durable
// stream (--fsync interval: a process crash loses nothing written) is
// SIGKILLed and restarted, then stopped with SIGTERM (publishes during
// the drain get an error, never a false ok) and restarted. Afterwards:
//   - the events of every round whose Flush returned nil are in the log
//     exactly once; no event is stored twice; the log holds the events in
//     publish order;
//   - the subscription delivered every offset of the log exactly once, in
//     order, with the stored payload (a durable stream resumes with no gap:
//     Missed 0);
//   - every Flush and Publish returned within its context (one Flush that
//     does not return would hang the test: it is bounded by its context);
//   - the publisher makes progress again after each restart;
//   - the log verifies and the broker never panicked.
func TestHunt14PublisherResumeKill(t *testing.T) {
	b := hunt14Start(t, "--durable-stream", "default/default/h14p", "--fsync", "interval")
	b.ready()
	px := b.proxy(badLink)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()

	pc := b.dialVia(px, shortIdle(2*time.Second))
	sc := b.dialVia(px, shortIdle(2*time.Second))
	sub, err := sc.Subscribe(ctx, "default", "h14p", client.FromOffset(0))
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()

	// The reader: everything the subscription delivers, until the marker.
	const marker = hunt7Marker
	var events []client.Event
	readDone := make(chan error, 1)
	go func() {
		for {
			ev, err := sub.Next(ctx)
			if err != nil {
				readDone <- err
				return
			}
			events = append(events, ev)
			if id, ok := hunt7ID(ev.Payload); ok && id == marker {
				readDone <- nil
				return
			}
		}
	}()

	// The publisher: rounds of 24 events, each ended by a Flush.
	const round = 24
	var (
		confirmed   = map[uint64]bool{}
		uncertain   = map[uint64]bool{}
		okAfter     [3]int // rounds confirmed in each broker life (0: before the first kill)
		life        int
		lifeMu      sync.Mutex
		publishDone = make(chan struct{})
		fails       svcFailures // of the publisher's goroutine
		roundErrs   []hunt14RoundErr
	)
	pub := pc.Publisher("default", "h14p", client.PublisherOptions{MaxBatch: 16, Linger: 2 * time.Millisecond})
	go func() {
		defer close(publishDone)
		next := uint64(0)
		for r := 0; r < 500 && ctx.Err() == nil; r++ {
			lifeMu.Lock()
			enough := life == 2 && okAfter[2] >= 5
			lifeMu.Unlock()
			if enough {
				break
			}
			ids := make([]uint64, 0, round)
			var perr error
			for range round {
				pctx, pcancel := context.WithTimeout(ctx, 3*time.Second)
				perr = pub.Publish(pctx, hunt7Payload(next))
				pcancel()
				if perr != nil {
					break
				}
				ids = append(ids, next)
				next++
			}
			fctx, fcancel := context.WithTimeout(ctx, 5*time.Second)
			start := time.Now()
			ferr := pub.Flush(fctx)
			fcancel()
			if took := time.Since(start); took > 6*time.Second {
				fails.add("Flush took %v (context 5 s)", took)
			}
			if perr == nil && ferr == nil {
				for _, id := range ids {
					confirmed[id] = true
				}
				lifeMu.Lock()
				okAfter[life]++
				lifeMu.Unlock()
			} else {
				for _, id := range ids {
					uncertain[id] = true
				}
				roundErrs = append(roundErrs, hunt14RoundErr{ids: ids, perr: perr, ferr: ferr})
				if errors.Is(perr, client.ErrClosed) || errors.Is(ferr, client.ErrClosed) {
					fails.add("publisher closed by a lost connection: publish %v, flush %v", perr, ferr)
					return
				}
				time.Sleep(50 * time.Millisecond)
			}
			time.Sleep(40 * time.Millisecond)
		}
	}()

	for i, sig := range []syscall.Signal{syscall.SIGKILL, syscall.SIGTERM} {
		time.Sleep(time.Duration(1500+500*i) * time.Millisecond)
		if err := b.stop(sig); err != nil && sig == syscall.SIGTERM {
			t.Errorf("broker after SIGTERM: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
		b.start()
		lifeMu.Lock()
		life++
		lifeMu.Unlock()
	}
	select {
	case <-publishDone:
	case <-ctx.Done():
		t.Fatal("the publisher did not finish: a Publish or Flush outlived its context")
	}
	fails.report(t)
	cctx, ccancel := context.WithTimeout(ctx, 5*time.Second)
	if err := pub.Close(cctx); err != nil {
		t.Logf("publisher close: %v", err)
	}
	ccancel()
	for l, n := range okAfter {
		if n == 0 {
			t.Errorf("no round confirmed in broker life %d (confirmed per life: %v)", l, okAfter)
		}
	}
	mctx, mcancel := context.WithTimeout(ctx, 10*time.Second)
	for mctx.Err() == nil {
		if err := pc.Publish(mctx, "default", "h14p", hunt7Payload(marker), client.WithAck(wire.AckPerMessage)); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	mcancel()
	select {
	case err := <-readDone:
		if err != nil {
			t.Fatalf("subscription ended: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("the subscription did not reach the marker (%d events read, missed %d)", len(events), sub.Missed())
	}
	b.stop(syscall.SIGTERM)

	var stored []commitlog.Record
	forEachRecord(t, filepath.Join(b.dataDir, "streams", "default", "default", "h14p"), func(r commitlog.Record) {
		r.Payload = bytes.Clone(r.Payload)
		stored = append(stored, r)
	})
	count := map[uint64]int{}
	prev := int64(-1)
	for _, r := range stored {
		id, ok := hunt7ID(r.Payload)
		if !ok {
			t.Fatalf("offset %d holds a foreign payload", r.Offset)
		}
		count[id]++
		if id != marker {
			if int64(id) <= prev {
				t.Errorf("offset %d: id %d after id %d", r.Offset, id, prev)
			}
			prev = int64(id)
		}
	}
	for id := range confirmed {
		if count[id] != 1 {
			t.Errorf("confirmed event %d stored %d times", id, count[id])
		}
	}
	for id, n := range count {
		if n > 1 && id != marker {
			t.Errorf("event %d stored %d times", id, n)
		}
	}
	for _, re := range roundErrs {
		n := 0
		for _, id := range re.ids {
			n += count[id]
		}
		t.Logf("failed round %d..%d: %d of %d stored; publish %v; flush %v", re.ids[0], re.ids[len(re.ids)-1], n, len(re.ids), re.perr, re.ferr)
		// A round may go out in several batches: the Flush error counts
		// the events of those the broker refused (an error ack means not
		// appended), and the others of the round may be stored.
		var se *client.ServerError
		if errors.As(re.ferr, &se) {
			var np *client.NotPublishedError
			if !errors.As(re.ferr, &np) {
				t.Fatalf("round %d..%d: Flush error %q does not count the events not published", re.ids[0], re.ids[len(re.ids)-1], re.ferr)
			}
			if refused := np.Count; n > len(re.ids)-refused {
				t.Errorf("round %d..%d: %d of its %d events stored, yet its Flush reports %d refused by the broker (%q; an error ack means not appended)",
					re.ids[0], re.ids[len(re.ids)-1], n, len(re.ids), refused, se.Message)
			}
		}
	}
	// The subscription: every stored offset once, in order, same bytes.
	if sub.Missed() != 0 {
		t.Errorf("subscription missed %d events of a durable stream", sub.Missed())
	}
	if len(events) != len(stored) {
		t.Errorf("subscription delivered %d events, the log holds %d", len(events), len(stored))
	}
	for i, ev := range events {
		if !ev.HasOffset {
			t.Fatalf("event %d has no offset", i)
		}
		if i < len(stored) && (ev.Offset != stored[i].Offset || !bytes.Equal(ev.Payload, stored[i].Payload)) {
			id, _ := hunt7ID(ev.Payload)
			t.Fatalf("event %d: offset %d id %d, the log's %d-th record is offset %d", i, ev.Offset, id, i, stored[i].Offset)
		}
	}
	t.Logf("%d confirmed, %d uncertain, %d stored, %d delivered; rounds confirmed per life %v", len(confirmed), len(uncertain), len(stored), len(events), okAfter)
}

// hunt14RoundErr is a round of TestHunt14PublisherResumeKill that failed.
type hunt14RoundErr struct {
	ids        []uint64
	perr, ferr error
}
