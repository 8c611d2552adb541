package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/felixmq/felix/auth"
	"github.com/felixmq/felix/cache"
	"github.com/felixmq/felix/client"
	"github.com/felixmq/felix/commitlog"
	"github.com/felixmq/felix/internal/testbroker"
	"github.com/felixmq/felix/server"
	"github.com/felixmq/felix/wire"
)

// hunt7Token is a token for t1/ns/jobs (streams and queues) and the cache
// t1/ns/kv, expiring at exp (whole seconds).
func hunt7Token(t *testing.T, sg *auth.Signer, exp time.Time) string {
	return tenantToken(t, sg, "hunt7", exp,
		"stream.*:stream:t1/ns/jobs", "queue.consume:stream:t1/ns/jobs", "cache.*:cache:t1/ns/kv")
}

// One client WITHOUT a TokenSource uses everything at once across its
// static token's expiry (the broker verifies with no leeway): pipelined
// acked publishes and batches, cache puts, a consumer acking with Ack (and
// one with AckAsync), and a durable subscription. docs/semantics.md "At
// token expiry": an ok reply means served, and a request failing with
// client.ErrTokenExpired was not. So, read back with a fresh token:
//   - every acked publish is stored exactly once, no publish that failed
//     with ErrTokenExpired is stored, and no publish failed otherwise;
//   - each cache key holds the value of its last put that returned nil
//     (the puts after it failed with ErrTokenExpired and were not applied);
//   - no record whose Ack returned nil is delivered again to a fresh
//     consumer of the group, every record whose Ack failed with
//     ErrTokenExpired is, and no record is lost;
//   - the subscription ends with ErrTokenExpired, having seen a gapless,
//     duplicate-free prefix of the stream;
//   - no call hangs.
//
// Under each sync policy: with SyncAlways the acks wait for an fsync, and
// the reset at expiry waits for them.
func TestHunt7StaticTokenExpiryMixed(t *testing.T) {
	t.Run("interval", func(t *testing.T) { hunt7TokenExpiry(t, commitlog.SyncInterval) })
	t.Run("always", func(t *testing.T) { hunt7TokenExpiry(t, commitlog.SyncAlways) })
}

func hunt7TokenExpiry(t *testing.T, policy commitlog.SyncPolicy) {
	sg, err := auth.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	v := &auth.Verifier{Keys: sg.KeySet(), Leeway: -1}
	tb := testbroker.Start(t,
		testbroker.WithDurableStreams(t.TempDir(), commitlog.Options{Sync: policy}, "t1/ns/jobs"),
		testbroker.WithCaches(cache.Config{}, "t1/ns/kv"),
		testbroker.WithServerOptions(server.Options{Auth: server.TokenAuth{Verifier: v},
			Queues: server.QueueOptions{StateDir: t.TempDir(), TickInterval: 10 * time.Millisecond, MaxAttempts: -1}}))
	exp := time.Now().Add(3 * time.Second).Truncate(time.Second) // 2 to 3 s away
	const requestTimeout = 5 * time.Second
	c := dial(t, tb, client.Options{TenantID: "t1", Token: hunt7Token(t, sg, exp), RequestTimeout: requestTimeout,
		Reconnect: client.ReconnectPolicy{MaxBackoff: 50 * time.Millisecond}})
	var calls hunt7Calls
	limit := requestTimeout + 4*time.Second // far from RequestTimeout and from a hung call's context (hunt7Calls.do)
	end := exp.Add(1500 * time.Millisecond)

	var mu sync.Mutex
	var failures []string
	fail := func(format string, a ...any) {
		mu.Lock()
		failures = append(failures, fmt.Sprintf(format, a...))
		mu.Unlock()
	}
	var wg sync.WaitGroup

	// Publishes: 6 goroutines of single acked publishes, 2 of batches of 3.
	type pubCall struct {
		ids []uint64
		err error
	}
	var pubs []pubCall
	var nextID uint64
	newIDs := func(n int) []uint64 {
		mu.Lock()
		defer mu.Unlock()
		ids := make([]uint64, n)
		for i := range ids {
			ids[i] = nextID
			nextID++
		}
		return ids
	}
	for g := range 8 {
		wg.Go(func() {
			for time.Now().Before(end) {
				pc := pubCall{ids: newIDs(1 + 2*(g/6))}
				if len(pc.ids) == 1 {
					pc.err = calls.do("publish", limit, func(ctx context.Context) error {
						return c.Publish(ctx, "ns", "jobs", hunt7Payload(pc.ids[0]), client.WithAck(wire.AckPerMessage))
					})
				} else {
					batch := [][]byte{hunt7Payload(pc.ids[0]), hunt7Payload(pc.ids[1]), hunt7Payload(pc.ids[2])}
					pc.err = calls.do("publish batch", limit, func(ctx context.Context) error {
						return c.PublishBatch(ctx, "ns", "jobs", batch)
					})
				}
				mu.Lock()
				pubs = append(pubs, pc)
				mu.Unlock()
				if pc.err != nil {
					time.Sleep(10 * time.Millisecond)
				}
			}
		})
	}

	// Cache: 3 keys, each one goroutine of sequential puts with unique
	// values (and gets).
	type putCall struct {
		value []byte
		err   error
	}
	puts := map[string][]putCall{}
	kv := c.Cache("ns", "kv")
	for k := range 3 {
		key := fmt.Sprintf("key%d", k)
		wg.Go(func() {
			var mine []putCall
			defer func() {
				mu.Lock()
				puts[key] = mine
				mu.Unlock()
			}()
			for n := 0; time.Now().Before(end); n++ {
				pc := putCall{value: []byte(fmt.Sprintf("%s=%d", key, n))}
				pc.err = calls.do("cache put", limit, func(ctx context.Context) error {
					_, err := kv.Put(ctx, key, pc.value)
					return err
				})
				mine = append(mine, pc)
				var got []byte
				var found bool
				gerr := calls.do("cache get", limit, func(ctx context.Context) error {
					var err error
					got, found, err = kv.Get(ctx, key)
					return err
				})
				if pc.err == nil && gerr == nil && (!found || !bytes.Equal(got, pc.value)) {
					fail("cache %s: get after a successful put of %q returned %q (found %v)", key, pc.value, got, found)
				}
				if pc.err != nil || gerr != nil {
					time.Sleep(10 * time.Millisecond)
				} else {
					time.Sleep(time.Millisecond)
				}
			}
		})
	}

	// Queue: consumer A acks with Ack (recorded), B with AckAsync.
	ackOutcome := map[uint64]error{} // A's Ack result per offset (last)
	asyncAcked := map[uint64]bool{}
	asyncErr := map[uint64]error{} // B's AckAsync failures
	delivered := map[uint64]int{}
	deliveredTo := map[uint64][]string{} // "A@15:04:05.000 attempt n"
	for _, name := range []string{"A", "B"} {
		wg.Go(func() {
			for time.Now().Before(end) {
				var co *client.Consumer
				err := calls.do("queue join", limit, func(ctx context.Context) error {
					var err error
					co, err = c.Consumer(ctx, "ns", "jobs", "g", client.WithPrefetch(16))
					return err
				})
				if err != nil {
					if !errors.Is(err, client.ErrTokenExpired) && !errors.Is(err, client.ErrDisconnected) {
						fail("consumer %s join: %v", name, err)
					}
					time.Sleep(50 * time.Millisecond)
					continue
				}
				for time.Now().Before(end) {
					ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
					m, err := co.Next(ctx)
					cancel()
					if errors.Is(err, context.DeadlineExceeded) {
						continue
					}
					if err != nil {
						if !errors.Is(err, client.ErrTokenExpired) {
							fail("consumer %s ended with %v, want ErrTokenExpired", name, err)
						}
						break
					}
					mu.Lock()
					delivered[m.Offset]++
					deliveredTo[m.Offset] = append(deliveredTo[m.Offset], fmt.Sprintf("%s@%s attempt %d", name, time.Now().Format("05.000"), m.Attempt))
					mu.Unlock()
					if name == "A" {
						err := calls.do("ack", limit, m.Ack)
						mu.Lock()
						ackOutcome[m.Offset] = err
						mu.Unlock()
					} else if err := m.AckAsync(); err == nil {
						mu.Lock()
						asyncAcked[m.Offset] = true
						mu.Unlock()
					} else {
						mu.Lock()
						asyncErr[m.Offset] = err
						mu.Unlock()
					}
				}
				co.Close()
			}
		})
	}

	// The durable subscription from offset 0.
	sub, err := c.Subscribe(context.Background(), "ns", "jobs", client.FromOffset(0))
	if err != nil {
		t.Fatal(err)
	}
	var subPayloads [][]byte
	var subErr error
	wg.Go(func() {
		for {
			ctx, cancel := context.WithTimeout(context.Background(), time.Until(end)+2*time.Second)
			ev, err := sub.Next(ctx)
			cancel()
			if err != nil {
				subErr = err
				return
			}
			if ev.Offset != uint64(len(subPayloads)) {
				fail("subscription: offset %d at position %d (Missed %d)", ev.Offset, len(subPayloads), sub.Missed())
				subErr = errors.New("out of order")
				return
			}
			subPayloads = append(subPayloads, ev.Payload)
		}
	})
	wg.Wait()
	if !errors.Is(subErr, client.ErrTokenExpired) {
		t.Errorf("subscription ended with %v, want ErrTokenExpired", subErr)
	}
	closeStart := time.Now()
	c.Close()
	// Close waits at most 5 s for the fire-and-forget flush (less here:
	// the streams are reset at the expiry); 10 s leaves a loaded machine
	// room and still catches a Close that waited for something unbounded.
	if took := time.Since(closeStart); took > 10*time.Second {
		t.Errorf("Client.Close took %v", took)
	}
	for _, f := range failures {
		t.Error(f)
	}
	for _, s := range calls.slow {
		t.Errorf("hung call: %s", s)
	}

	// Read back with a fresh token.
	rc := dial(t, tb, client.Options{TenantID: "t1", Token: hunt7Token(t, sg, time.Now().Add(time.Minute)), RequestTimeout: requestTimeout})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := rc.Publish(ctx, "ns", "jobs", hunt7Payload(hunt7Marker)); err != nil {
		t.Fatal(err)
	}
	rs, err := rc.Subscribe(ctx, "ns", "jobs", client.FromOffset(0))
	if err != nil {
		t.Fatal(err)
	}
	var stored [][]byte
	for {
		ev, err := rs.Next(ctx)
		if err != nil {
			t.Fatalf("readback after %d: %v", len(stored), err)
		}
		stored = append(stored, ev.Payload)
		if id, _ := hunt7ID(ev.Payload); id == hunt7Marker {
			break
		}
	}
	rs.Close()
	offsetOf := map[uint64]int{}
	for off, pl := range stored[:len(stored)-1] {
		id, ok := hunt7ID(pl)
		if !ok {
			t.Fatalf("offset %d: payload no publish made", off)
		}
		if prev, dup := offsetOf[id]; dup {
			t.Errorf("id %d stored at offsets %d and %d", id, prev, off)
		}
		offsetOf[id] = off
	}
	var okN, expiredN, otherN, expiredStored int
	for _, pc := range pubs {
		present := 0
		for _, id := range pc.ids {
			if _, ok := offsetOf[id]; ok {
				present++
			}
		}
		switch {
		case pc.err == nil:
			okN++
			if present != len(pc.ids) {
				t.Errorf("publish %v acked, %d of %d events stored", pc.ids, present, len(pc.ids))
			}
		case errors.Is(pc.err, client.ErrTokenExpired):
			expiredN++
			if present != 0 {
				expiredStored++
				t.Errorf("publish %v failed with %v, yet %d of its %d events are stored", pc.ids, pc.err, present, len(pc.ids))
			}
		default:
			otherN++
			t.Errorf("publish %v failed with %v (stored %d of %d): neither acked nor ErrTokenExpired", pc.ids, pc.err, present, len(pc.ids))
		}
	}
	t.Logf("publishes: %d ok, %d ErrTokenExpired (%d stored), %d other; %d records", okN, expiredN, expiredStored, otherN, len(stored)-1)
	if okN == 0 || expiredN == 0 {
		t.Errorf("the load did not straddle the expiry (%d ok, %d expired)", okN, expiredN)
	}

	// The subscription saw a prefix of the stream.
	for i, pl := range subPayloads {
		if i >= len(stored) || !bytes.Equal(pl, stored[i]) {
			t.Errorf("subscription: offset %d payload differs from the stream's", i)
			break
		}
	}

	// Cache: the last successful put of each key is what it holds.
	rkv := rc.Cache("ns", "kv")
	for key, pcs := range puts {
		var want []byte
		var expired, other int
		for _, pc := range pcs {
			switch {
			case pc.err == nil:
				want = pc.value
			case errors.Is(pc.err, client.ErrTokenExpired):
				expired++
			default:
				other++
				t.Errorf("cache put %s %q failed with %v: neither ok nor ErrTokenExpired", key, pc.value, pc.err)
			}
		}
		got, found, err := rkv.Get(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) || found != (want != nil) {
			t.Errorf("cache %s holds %q (found %v); its last successful put wrote %q (%d puts, %d expired after it or before)",
				key, got, found, want, len(pcs), expired)
		}
	}

	// Queue: a fresh consumer gets every record not confirmed acked.
	co, err := rc.Consumer(ctx, "ns", "jobs", "g", client.WithPrefetch(64))
	if err != nil {
		t.Fatal(err)
	}
	redelivered := map[uint64]bool{}
	for {
		st, err := rc.QueueStats(ctx, "ns", "jobs", "g")
		if err != nil {
			t.Fatal(err)
		}
		if st.Lag == 0 {
			t.Logf("fresh consumer done: group %+v", st)
			break
		}
		nctx, ncancel := context.WithTimeout(ctx, 200*time.Millisecond)
		m, err := co.Next(nctx)
		ncancel()
		if errors.Is(err, context.DeadlineExceeded) {
			continue
		}
		if err != nil {
			t.Fatalf("fresh consumer: %v", err)
		}
		if err := m.Ack(ctx); err != nil {
			t.Fatal(err)
		}
		redelivered[m.Offset] = true
	}
	co.Close()
	var ackOK, ackExpired, ackOther int
	for off, err := range ackOutcome {
		switch {
		case err == nil:
			ackOK++
			if redelivered[off] {
				t.Errorf("offset %d: Ack returned nil before the expiry, delivered again after it", off)
			}
		case errors.Is(err, client.ErrTokenExpired):
			ackExpired++
			if !redelivered[off] {
				t.Errorf("offset %d: Ack failed with %v, yet the record is not delivered again (the ack was recorded)", off, err)
			}
		default:
			ackOther++
			t.Errorf("offset %d: Ack failed with %v: neither nil nor ErrTokenExpired", off, err)
		}
	}
	for off := range uint64(len(stored)) {
		err, acked := ackOutcome[off]
		if !redelivered[off] && !asyncAcked[off] && !(acked && err == nil) {
			t.Errorf("offset %d: neither acked before the expiry nor delivered after it (lost); deliveries before the expiry %v, A's ack %v (recorded %v), B's AckAsync error %v; expiry at %s",
				off, deliveredTo[off], err, acked, asyncErr[off], exp.Format("05.000"))
		}
	}
	t.Logf("queue: %d offsets delivered before the expiry; A's acks %d ok, %d expired, %d other; B's async acks %d; %d delivered to the fresh consumer",
		len(delivered), ackOK, ackExpired, ackOther, len(asyncAcked), len(redelivered))
}
