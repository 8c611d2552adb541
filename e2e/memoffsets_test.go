package e2e

import (
	"context"
	"encoding/binary"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/felixmq/felix/auth"
	"github.com/felixmq/felix/broker"
	"github.com/felixmq/felix/client"
	"github.com/felixmq/felix/internal/testbroker"
	"github.com/felixmq/felix/server"
)

// A subscription to an in-memory stream that resumes after its replay ring
// has moved on goes on from the oldest event the ring still holds (not from
// the tail), and counts the events it skipped in Missed.
func TestInMemorySubscriptionResumesPastAGap(t *testing.T) {
	sg, err := auth.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	const ring = 8
	v := &auth.Verifier{Keys: sg.KeySet(), Leeway: -1}
	tb := testbroker.Start(t, testbroker.WithStreams("t1/ns/jobs"),
		testbroker.WithBrokerOptions(broker.Options{RingCapacity: ring}),
		testbroker.WithServerOptions(server.Options{Auth: server.TokenAuth{Verifier: v}}))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	// The subscriber's first token expires soon; the next one is handed out
	// only when the test opens the gate, so the subscription stays away
	// while the ring moves past where it stopped. Until then the streams
	// (the publish streams Dial opens, the subscription) share a token
	// while it has half a second left, and the test waits for the last
	// token handed out to expire: tokens fetched a moment apart can
	// straddle a whole second (a JWT's exp) and expire a second apart, and
	// the test used to take the publish streams' expiry for the
	// subscription's while the subscription was still up, receiving.
	var (
		mu   sync.Mutex
		hold bool         // under mu: TokenSource waits at the gate
		tok  string       // under mu: the token before the gate
		exp  time.Time    // under mu: tok's exp
		held atomic.Int32 // token requests waiting at the gate
	)
	gate := make(chan struct{})
	sc := dial(t, tb, client.Options{TenantID: "t1", TokenSource: func(ctx context.Context) (string, error) {
		mu.Lock()
		if !hold {
			defer mu.Unlock()
			if tok == "" || time.Until(exp) < 500*time.Millisecond {
				exp = time.Now().Add(1500 * time.Millisecond).Truncate(time.Second) // as the JWT will say
				var err error
				if tok, err = sg.Issue(auth.Claims{Tenant: "t1", Subject: "svc", Perms: []string{"stream.*:stream:t1/ns/jobs"},
					ExpiresAt: exp}); err != nil {
					return "", err
				}
			}
			return tok, nil
		}
		mu.Unlock()
		held.Add(1)
		select {
		case <-gate:
			return shortToken(t, sg, time.Minute), nil
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}})
	pc := dial(t, tb, client.Options{TenantID: "t1", Token: shortToken(t, sg, time.Minute)})
	sub, err := sc.Subscribe(ctx, "ns", "jobs")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	next := func(want uint64) {
		t.Helper()
		ev, err := sub.Next(ctx)
		if err != nil {
			t.Fatalf("waiting for event %d: %v", want, err)
		}
		if got := binary.BigEndian.Uint64(ev.Payload); got != want || !ev.HasOffset || ev.Offset != want {
			t.Fatalf("got event %d (offset %d, has %v), want %d", got, ev.Offset, ev.HasOffset, want)
		}
	}
	publish := func(from, to uint64) {
		t.Helper()
		for i := from; i < to; i++ {
			if err := pc.Publish(ctx, "ns", "jobs", seq(i, 8)); err != nil {
				t.Fatal(err)
			}
		}
	}
	publish(0, 5)
	for i := range uint64(5) {
		next(i)
	}
	mu.Lock()
	hold = true
	last := exp // the latest exp handed out: no token is valid past it
	mu.Unlock()
	// The subscription is down once every token handed out has expired
	// and the broker has dropped it: it cannot come back before the gate.
	stream, err := tb.Broker.Stream("t1", "ns", "jobs")
	if err != nil {
		t.Fatal(err)
	}
	for time.Now().Before(last) || len(stream.Subscriptions()) != 0 || held.Load() == 0 {
		if ctx.Err() != nil {
			t.Fatalf("the subscription's token never expired (%d subscriptions, %d token requests held)",
				len(stream.Subscriptions()), held.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The subscription is down, waiting for a token: 20 more events push
	// 5..16 out of the 8-event ring.
	publish(5, 25)
	close(gate)
	for i := uint64(25 - ring); i < 25; i++ {
		next(i)
	}
	publish(25, 26)
	next(25)
	if m := sub.Missed(); m != 25-ring-5 {
		t.Errorf("Missed = %d, want %d", m, 25-ring-5)
	}
}
