package e2e

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/felixmq/felix/auth"
	"github.com/felixmq/felix/cache"
	"github.com/felixmq/felix/client"
	"github.com/felixmq/felix/commitlog"
	"github.com/felixmq/felix/internal/testbroker"
	"github.com/felixmq/felix/server"
)

// rotationToken is a token for every stream and the cache of t1/ns,
// expiring at exp (whole seconds: earlier by the fraction).
func rotationToken(t *testing.T, sg *auth.Signer, exp time.Time) string {
	return tenantToken(t, sg, "svc", exp, "stream.*:stream:t1/ns/*", "cache.*:cache:t1/ns/kv")
}

// tenantToken is a token of tenant t1 for subject with perms, expiring at
// exp (whole seconds: earlier by the fraction).
func tenantToken(t *testing.T, sg *auth.Signer, subject string, exp time.Time, perms ...string) string {
	t.Helper()
	tok, err := sg.Issue(auth.Claims{Tenant: "t1", Subject: subject, Perms: perms, ExpiresAt: exp})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// A client whose TokenSource gives short-lived tokens moves its publish
// and cache streams to a fresh token before each one expires: over several
// token lifetimes, with acked publishes, batching publishers (acked and
// fire-and-forget) and cache puts and gets running all the time, not one
// request fails, the broker resets none of its streams for expiry, and
// every batching publisher's events are stored once each, in order.
func TestTokenRotationLosesNoRequest(t *testing.T) {
	t.Run("fresh token every call", func(t *testing.T) {
		// 2 s tokens: iat and exp are whole seconds, so the first one
		// may live 1 s only.
		rotationLoad(t, 6500*time.Millisecond, func(sg *auth.Signer) func(context.Context) (string, error) {
			return func(context.Context) (string, error) { return rotationToken(t, sg, time.Now().Add(2*time.Second)), nil }
		})
	})
	t.Run("cached token refreshed late", func(t *testing.T) {
		// The source keeps a 4 s token until less than 600 ms of it is
		// left, later than the streams' first try (a quarter of its life
		// before exp): they get the same token, and try again halfway to
		// exp, when the source has a new one.
		var stale atomic.Int64 // answers with a token less than 1.1 s from exp
		rotationLoad(t, 9*time.Second, func(sg *auth.Signer) func(context.Context) (string, error) {
			var mu sync.Mutex
			var tok string
			var exp time.Time
			return func(context.Context) (string, error) {
				mu.Lock()
				defer mu.Unlock()
				switch left := time.Until(exp); {
				case left < 600*time.Millisecond:
					exp = time.Now().Add(4 * time.Second).Truncate(time.Second)
					tok = rotationToken(t, sg, exp)
				case left < 1100*time.Millisecond:
					stale.Add(1)
				}
				return tok, nil
			}
		})
		if stale.Load() == 0 {
			t.Error("no stream asked for a fresh token while the source still had the old one (test setup)")
		}
	})
}

// rotationLoad runs the load of TestTokenRotationLosesNoRequest for d with
// a client whose TokenSource is newSource's.
func rotationLoad(t *testing.T, d time.Duration, newSource func(*auth.Signer) func(context.Context) (string, error)) {
	sg, err := auth.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	// Streams are reset 1 s after exp: the rotations (0.5–1 s before exp
	// here, 30 s with 15-minute tokens) have that much more time on a
	// loaded machine, and a stream that missed its rotation is still reset
	// and counted.
	v := &auth.Verifier{Keys: sg.KeySet(), Leeway: time.Second}
	tb := testbroker.Start(t,
		testbroker.WithDurableStreams(t.TempDir(), commitlog.Options{}, "t1/ns/acked", "t1/ns/fire"),
		testbroker.WithStreams("t1/ns/s0", "t1/ns/s1", "t1/ns/s2"),
		testbroker.WithCaches(cache.Config{}, "t1/ns/kv"),
		testbroker.WithServerOptions(server.Options{Auth: server.TokenAuth{Verifier: v}}))
	var issued atomic.Int64
	source := newSource(sg)
	c := dial(t, tb, client.Options{TenantID: "t1", RequestTimeout: 5 * time.Second,
		TokenSource: func(ctx context.Context) (string, error) {
			issued.Add(1)
			return source(ctx)
		}})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	var (
		mu       sync.Mutex
		failures []error
		requests atomic.Int64
	)
	failed := func(format string, args ...any) {
		mu.Lock()
		failures = append(failures, fmt.Errorf(format, args...))
		mu.Unlock()
	}
	end := time.Now().Add(d)
	var wg sync.WaitGroup
	for i := range 3 { // acked publishes, one at a time, on several lanes
		wg.Go(func() {
			for n := uint64(0); time.Now().Before(end); n++ {
				if err := c.Publish(ctx, "ns", fmt.Sprintf("s%d", i), seq(n, 16)); err != nil {
					failed("publish s%d #%d: %w", i, n, err)
				}
				requests.Add(1)
				time.Sleep(2 * time.Millisecond)
			}
		})
	}
	sent := map[string]*uint64{"acked": new(uint64), "fire": new(uint64)}
	for stream, noAck := range map[string]bool{"acked": false, "fire": true} {
		wg.Go(func() { // pipelined batches: their order must survive the switch
			p := c.Publisher("ns", stream, client.PublisherOptions{NoAck: noAck, MaxBatch: 8})
			var n uint64
			for ; time.Now().Before(end); n++ {
				if err := p.Publish(ctx, seq(n, 16)); err != nil {
					failed("%s publisher #%d: %w", stream, n, err)
				}
				if n%64 == 63 {
					if err := p.Flush(ctx); err != nil {
						failed("%s publisher flush: %w", stream, err)
					}
					time.Sleep(time.Millisecond)
				}
			}
			if err := p.Close(ctx); err != nil {
				failed("%s publisher close: %w", stream, err)
			}
			*sent[stream] = n
		})
	}
	kv := c.Cache("ns", "kv")
	for i := range 2 { // puts and gets, spread over every cache lane
		wg.Go(func() {
			key := fmt.Sprintf("k%d", i)
			for n := 0; time.Now().Before(end); n++ {
				val := seq(uint64(n), 16)
				if _, err := kv.Put(ctx, key, val); err != nil {
					failed("put %s #%d: %w", key, n, err)
					continue
				}
				got, ok, err := kv.Get(ctx, key)
				if err != nil || !ok || !bytes.Equal(got, val) {
					failed("get %s #%d: %x %v %v", key, n, got, ok, err)
				}
				requests.Add(2)
				time.Sleep(2 * time.Millisecond)
			}
		})
	}
	wg.Wait()

	resets := tb.Server.Stats().TokenExpiries.Load()
	t.Logf("%d requests, %d batching-publisher events (acked %d, fire-and-forget %d), TokenSource called %d times, %d streams reset for expiry",
		requests.Load(), *sent["acked"]+*sent["fire"], *sent["acked"], *sent["fire"], issued.Load(), resets)
	for i, err := range failures {
		if i == 10 {
			t.Errorf("... and %d more", len(failures)-10)
			break
		}
		t.Error(err)
	}
	if resets != 0 {
		t.Errorf("the broker reset %d streams for expiry; every stream should have moved to a fresh token first", resets)
	}
	// 4 publish and 8 cache streams, each on a fresh token at least once.
	if n := issued.Load(); n < 2*12 {
		t.Errorf("TokenSource called %d times: the streams did not rotate", n)
	}

	// Each batching publisher's events are stored once, in order (read
	// back with a client whose token outlives the test).
	rc := dial(t, tb, client.Options{TenantID: "t1", Token: rotationToken(t, sg, time.Now().Add(time.Minute))})
	for stream, n := range sent {
		sub, err := rc.Subscribe(ctx, "ns", stream, client.FromEarliest())
		if err != nil {
			t.Fatal(err)
		}
		for want := range *n {
			ev, err := sub.Next(ctx)
			if err != nil {
				t.Fatalf("%s: after %d of %d events: %v", stream, want, *n, err)
			}
			if got := binary.BigEndian.Uint64(ev.Payload); got != want {
				t.Fatalf("%s: event %d is #%d (lost, repeated or reordered)", stream, want, got)
			}
		}
		sub.Close()
		st, _ := tb.Broker.Stream("t1", "ns", stream)
		if got := st.Stats().Published; got != *n {
			t.Errorf("%s: %d events stored, %d published", stream, got, *n)
		}
	}
}
