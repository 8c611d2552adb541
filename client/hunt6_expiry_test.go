package client

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/felixmq/felix/auth"
	"github.com/felixmq/felix/commitlog"
	"github.com/felixmq/felix/internal/testbroker"
	"github.com/felixmq/felix/server"
	"github.com/felixmq/felix/wire"
)

// A client without a TokenSource whose token expires while many acked
// publishes are in flight on its publish stream: the broker resets the
// stream at the expiry, after the acks of every publish it stored
// (RESET_STREAM_AT), and the client reads them all although its writes
// already fail (the broker stopped reading first). So a publish that
// returns nil was stored, and one that fails with ErrTokenExpired was not:
// sending it again makes no duplicate. A few clients at once, to catch the
// race at the expiry.
func TestTokenExpiryFailsOnlyUnservedPublishes(t *testing.T) {
	const clients, publishers = 4, 64
	const unacked = 1 << 63 // marks the ids of fire-and-forget publishes
	sg, err := auth.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	v := &auth.Verifier{Keys: sg.KeySet(), Leeway: -1}
	var keys, perms []string
	for i := range clients {
		keys = append(keys, fmt.Sprintf("a/ns/s%d", i))
		perms = append(perms, fmt.Sprintf("stream.publish:stream:a/ns/s%d", i))
	}
	// A try whose set-up the token did not outlast is tried again with a
	// longer one (testbroker.Retry).
	testbroker.Retry(t, time.Second, 4, func(a *testbroker.Attempt) {
		b := testbroker.Start(a,
			testbroker.WithDurableStreams(a.TempDir(), commitlog.Options{Sync: commitlog.SyncNever}, keys...),
			testbroker.WithServerOptions(server.Options{Auth: server.TokenAuth{Verifier: v}}))
		// At least a.Limit, at most a second more: exp has whole seconds.
		// The set-up (the clients' Dial) must beat it.
		exp := time.Now().Add(a.Limit + time.Second).Truncate(time.Second)
		tok, err := sg.Issue(auth.Claims{Tenant: "a", Subject: "short", Perms: perms, ExpiresAt: exp})
		if err != nil {
			a.Fatal(err)
		}
		a.SetupBy(exp)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()

		type outcome struct {
			mu     sync.Mutex
			ok     map[uint64]bool
			failed map[uint64]error
		}
		outs := make([]*outcome, clients)
		var wg sync.WaitGroup
		cs := make([]*Client, clients)
		for i := range clients {
			cs[i] = dial(a, b, Options{TenantID: "a", Token: tok, PublishConns: 1, PublishStreamsPerConn: 1, RequestTimeout: 10 * time.Second})
		}
		a.SetupDone()
		for i := range clients {
			c := cs[i]
			o := &outcome{ok: map[uint64]bool{}, failed: map[uint64]error{}}
			outs[i] = o
			stream := fmt.Sprintf("s%d", i)
			var next, acked atomic.Uint64
			started, ended := make(chan struct{}), make(chan struct{})
			var endOnce sync.Once
			// Publishers pipeline acked publishes (the payload is a unique
			// id) until each gets its first error.
			for range publishers {
				wg.Go(func() {
					for {
						id := next.Add(1)
						err := c.Publish(ctx, "ns", stream, binary.BigEndian.AppendUint64(nil, id))
						o.mu.Lock()
						if err == nil {
							o.ok[id] = true
						} else {
							o.failed[id] = err
						}
						o.mu.Unlock()
						if err != nil {
							endOnce.Do(func() { close(ended) })
							return
						}
						if acked.Add(1) == 500 {
							close(started)
						}
					}
				})
			}
			// Once those run, fire-and-forget publishes keep the stream's
			// writer busy, so that it meets the broker's end of reading
			// (STOP_SENDING) while acks are still on their way.
			wg.Go(func() {
				select {
				case <-started:
				case <-ended:
					return
				}
				for {
					id := next.Add(1) | unacked
					if c.Publish(ctx, "ns", stream, binary.BigEndian.AppendUint64(nil, id), WithAck(wire.AckNone)) != nil {
						return
					}
				}
			})
		}
		wg.Wait()

		for i, o := range outs {
			stream := fmt.Sprintf("s%d", i)
			st, err := b.Broker.Stream("a", "ns", stream)
			if err != nil {
				a.Fatal(err)
			}
			lg := st.Log()
			stored := map[uint64]bool{}
			for from := lg.Oldest(); from < lg.Next(); {
				recs, err := lg.Read(from, 0, 0)
				if err != nil {
					a.Fatal(err)
				}
				for _, r := range recs {
					if id := binary.BigEndian.Uint64(r.Payload); id&unacked == 0 {
						stored[id] = true
					}
					from = r.Offset + 1
				}
			}
			if len(stored) == 0 && len(o.ok) == 0 {
				// The token expired before this client's first publish was
				// served: the set-up overran it, and nothing was tested.
				a.Inconclusive("%s: nothing stored before the expiry", stream)
			}
			for id := range o.ok {
				if !stored[id] {
					a.Errorf("%s: publish %d returned nil but is not stored", stream, id)
				}
			}
			served := 0
			for id, err := range o.failed {
				if !errors.Is(err, ErrTokenExpired) {
					a.Errorf("%s: publish %d: %v, want ErrTokenExpired", stream, id, err)
				}
				if stored[id] {
					if served++; served <= 2 {
						a.Errorf("%s: publish %d failed (%v) but is stored", stream, id, err)
					}
				}
			}
			if served > 0 {
				a.Errorf("%s: %d of %d failed publishes were stored (%d stored, %d ok)", stream, served, len(o.failed), len(stored), len(o.ok))
			}
		}
	})
}
