package server_test

import (
	"context"
	"encoding/binary"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/felixmq/felix/auth"
	"github.com/felixmq/felix/commitlog"
	"github.com/felixmq/felix/internal/testbroker"
	"github.com/felixmq/felix/server"
	"github.com/felixmq/felix/wire"
)

// consumeRaw joins group g of a/ns/jobs on a new stream of c with tok and
// acks every delivery (one acked request per delivery frame) until the
// broker ends the stream, or until done (when not nil) reports true of
// the offsets delivered so far. It returns the offsets delivered, those whose ack
// got queue_ok, and what ended the stream. When t is a try
// (*testbroker.Attempt), joining the group ends its set-up.
func consumeRaw(t testing.TB, c *rawConn, tok, consumer string, done func(delivered map[uint64]bool) bool) (delivered, okd map[uint64]bool, end error) {
	t.Helper()
	delivered, okd = map[uint64]bool{}, map[uint64]bool{}
	s := c.open()
	s.s.SetReadDeadline(time.Now().Add(20 * time.Second))
	if !s.authWith("a", tok) {
		t.Fatal("token refused")
	}
	s.r.AllowFlags(wire.FlagQueueDelivery)
	pf := uint64(32)
	s.sendMsg(&wire.QueueJoin{TenantID: "a", Namespace: "ns", Stream: "jobs", Group: "g", Consumer: &consumer, Prefetch: &pf})
	if _, ok := s.readMsg().(*wire.QueueJoined); !ok {
		t.Fatal("join refused")
	}
	if a, ok := t.(*testbroker.Attempt); ok {
		a.SetupDone()
	}
	var mu sync.Mutex
	reqs := map[uint64][]uint64{} // request id -> offsets
	acks := make(chan []byte, 1024)
	var wg sync.WaitGroup
	wg.Go(func() {
		for b := range acks {
			if _, err := s.s.Write(b); err != nil {
				for range acks { // drain
				}
				return
			}
		}
	})
	defer func() {
		close(acks)
		s.s.CancelWrite(0)
		wg.Wait()
	}()
	var ds []wire.QueueDelivery
	next := uint64(0)
	for {
		f, err := s.r.ReadFrame()
		if err != nil {
			return delivered, okd, err
		}
		if f.Flags == wire.FlagQueueDelivery {
			ds, err = wire.DecodeQueueDeliveries(f.Payload, ds[:0])
			if err != nil {
				t.Fatal(err)
			}
			offs := make([]uint64, 0, len(ds))
			for _, d := range ds {
				delivered[d.Offset] = true
				offs = append(offs, d.Offset)
			}
			if done != nil && done(delivered) {
				return delivered, okd, nil
			}
			next++
			mu.Lock()
			reqs[next] = offs
			mu.Unlock()
			b, _ := wire.AppendMessageFrame(nil, &wire.QueueAck{Offsets: offs, RequestID: wire.U64(next)})
			acks <- b
			continue
		}
		m, err := wire.DecodeMessage(f.Payload)
		if err != nil {
			t.Fatal(err)
		}
		switch m := m.(type) {
		case *wire.QueueOK:
			mu.Lock()
			for _, o := range reqs[m.RequestID] {
				okd[o] = true
			}
			mu.Unlock()
		default:
			t.Fatalf("unexpected %#v", m)
		}
	}
}

// A queue consumer whose token expires while it acks deliveries as fast as
// they come: its stream is reset with code 3, every ack the broker recorded
// got its queue_ok before the reset, and an ack without a queue_ok was not
// recorded (its records are delivered again to the next consumer), as
// docs/security.md says. Two rounds, to catch the race at the expiry.
func TestHunt7QueueConsumerExpiryAcks(t *testing.T) {
	tb, sg := startTokenBroker(t, auth.Verifier{Leeway: -1},
		server.Options{Queues: server.QueueOptions{TickInterval: 10 * time.Millisecond}},
		testbroker.WithDurableStreams(t.TempDir(), commitlog.Options{Sync: commitlog.SyncNever}, "a/ns/jobs"))
	st, err := tb.Broker.Stream("a", "ns", "jobs")
	if err != nil {
		t.Fatal(err)
	}
	perms := []string{"queue.consume:stream:a/ns/jobs"}
	long := issue(t, sg, auth.Claims{Tenant: "a", Subject: "long", Perms: perms, ExpiresAt: time.Now().Add(time.Hour)})
	for round := range 2 {
		const n = 200000
		batch := make([][]byte, 0, 1000)
		for i := range n {
			batch = append(batch, binary.BigEndian.AppendUint64(nil, uint64(i)))
			if len(batch) == cap(batch) {
				if _, err := st.Publish(context.Background(), batch); err != nil {
					t.Fatal(err)
				}
				batch = batch[:0]
			}
		}
		testbroker.Retry(t, expiryFirstLifetime, expiryTries, func(a *testbroker.Attempt) {
			c := dialRaw(a, tb)
			// The set-up, joining the group, must beat the token's expiry; a
			// try whose set-up did not is tried again with a longer token.
			short, exp := shortLived(a, sg, auth.Claims{Tenant: "a", Subject: "short", Perms: perms})
			a.SetupBy(exp)
			delivered, okd, end := consumeRaw(a, c, short, "short", nil)
			var se *quic.StreamError
			if !errors.As(end, &se) || se.ErrorCode != 3 || !se.Remote {
				a.Fatalf("round %d: consumer stream ended with %v, want the broker's reset with code 3", round, end)
			}
			waitNoGoroutine(a, "server.(*conn).handleControl")
			if len(okd) == len(delivered) {
				a.Logf("round %d: every delivery acked ok before the expiry (%d): the race was not met", round, len(okd))
			}
			// Whatever was delivered and not acked ok comes again, and nothing
			// acked ok does.
			var missing []uint64
			for o := range delivered {
				if !okd[o] {
					missing = append(missing, o)
				}
			}
			if gs, _ := tb.Server.GroupStats("a", "ns", "jobs", "g"); len(missing) == 0 && gs.Lag == 0 && gs.Pending == 0 {
				// The consumer took and acked the whole stream before the
				// expiry: a second one would wait for a delivery that
				// never comes. Nothing is left to check this round.
				return
			}
			again, _, err := consumeRaw(a, dialRaw(a, tb), long, "long", func(got map[uint64]bool) bool {
				for _, o := range missing {
					if !got[o] {
						return false
					}
				}
				return true
			})
			if err != nil {
				a.Fatalf("round %d: second consumer: %v", round, err)
			}
			for o := range again {
				if okd[o] {
					a.Errorf("round %d: offset %d acked ok, but delivered again", round, o)
				}
			}
			for o := range delivered {
				if !okd[o] && !again[o] {
					a.Errorf("round %d: offset %d acked without queue_ok, but not delivered again (recorded)", round, o)
				}
			}
			a.Logf("round %d: %d delivered, %d acked ok, %d redelivered", round, len(delivered), len(okd), len(again))
		})
		if t.Failed() {
			return
		}
	}
}
