package e2e

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/felixmq/felix/client"
	"github.com/felixmq/felix/internal/testbroker"
)

// On a link with 5% loss, 0-5 ms jitter and 1% duplicates, both ways, two
// publishers (each its own client, so its own connections) publish to an
// in-memory stream and one subscriber receives every event exactly once,
// intact, in offset order with no gap, and each publisher's events in the
// order it published them (docs/semantics.md: per-stream order, no gap or
// duplicate; QUIC retransmits and discards duplicate packets). Every
// publish is acked. The run publishes fewer frames than the subscriber's
// broker queue holds (512), so the default drop_new policy cannot drop.
func TestFaultPubSubLossyLink(t *testing.T) {
	tb := testbroker.Start(t, testbroker.WithStreams("default/default/lossy"))
	px := faultProxy(t, tb, badLink)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()

	subc := dialVia(t, tb, px, client.Options{})
	sub, err := subc.Subscribe(ctx, "default", "lossy")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()

	const pubs, batches, perBatch = 2, 60, 10
	const n = pubs * batches * perBatch
	var wg sync.WaitGroup
	for p := range pubs {
		pc := dialVia(t, tb, px, client.Options{})
		wg.Go(func() {
			for b := range uint64(batches) {
				var evs [][]byte
				for i := range uint64(perBatch) {
					evs = append(evs, faultPayload(byte(p), b*perBatch+i))
				}
				if b%3 == 0 { // some single publishes too
					for _, ev := range evs {
						if err := pc.Publish(ctx, "default", "lossy", ev); err != nil {
							t.Errorf("publisher %d: publish: %v", p, err)
							return
						}
					}
					continue
				}
				if err := pc.PublishBatch(ctx, "default", "lossy", evs); err != nil {
					t.Errorf("publisher %d: batch %d: %v", p, b, err)
					return
				}
			}
		})
	}

	next := [pubs]uint64{}
	for i := range uint64(n) {
		ev, err := sub.Next(ctx)
		if err != nil {
			t.Fatalf("after %d of %d events: %v (publishers' next seq %v)", i, n, err, next)
		}
		if !ev.HasOffset || ev.Offset != i {
			t.Fatalf("event %d has offset %d (has %v): gap or duplicate", i, ev.Offset, ev.HasOffset)
		}
		p, seq, err := checkPayload(ev.Payload)
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if int(p) >= pubs || seq != next[p] {
			t.Fatalf("event %d is publisher %d seq %d, want seq %d: lost, repeated or reordered", i, p, seq, next[p])
		}
		next[p]++
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	// Nothing more than the n events: a marker published now is the very
	// next event, at offset n.
	pc := dialVia(t, tb, px, client.Options{})
	if err := pc.Publish(ctx, "default", "lossy", faultPayload(9, 0)); err != nil {
		t.Fatal(err)
	}
	ev, err := sub.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if p, seq, err := checkPayload(ev.Payload); err != nil || p != 9 || seq != 0 || ev.Offset != n {
		t.Fatalf("after %d events got publisher %d seq %d at offset %d (%v), want the marker at %d", n, p, seq, ev.Offset, err, n)
	}
	if m := sub.Missed(); m != 0 {
		t.Fatalf("Missed = %d", m)
	}
	if s := px.Stats(); s.Dropped == 0 || s.Duplicated == 0 {
		t.Fatalf("the link was not bad: %+v", s)
	}
	t.Logf("%v", px)
}
