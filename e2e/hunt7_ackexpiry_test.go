package e2e

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/felixmq/felix/auth"
	"github.com/felixmq/felix/client"
	"github.com/felixmq/felix/commitlog"
	"github.com/felixmq/felix/internal/testbroker"
	"github.com/felixmq/felix/server"
)

// Queue acks (Message.Ack) pipelined on one consumer across its static
// token's expiry, on a durable stream under SyncAlways (each ack's reply
// waits for the fsync of the group's state). docs/semantics.md "At token
// expiry": the broker serves nothing it reads from the expiry on and
// delivers the reply of every request it served before it resets the
// stream, "the same for ... queue acks", and on a durable stream "the ack
// still comes only after the sync policy is met; the reset waits for it".
// So each Ack returns nil (recorded: never delivered again) or fails with
// ErrTokenExpired (not recorded: delivered again to a fresh consumer).
//
// Found by TestHunt7StaticTokenExpiryMixed/always: an ack read just before
// the expiry whose state fsync was still pending at the expiry failed with
// the broker's queue_error "queue: group "g": write state: context
// deadline exceeded", although the ack took effect (the record was never
// delivered again): the broker settled acks under the stream's context,
// which ends at the expiry, instead of the connection's (server/queue.go,
// consumeLoop).
func TestHunt7QueueAckAcrossTokenExpirySyncAlways(t *testing.T) {
	sg, err := auth.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	v := &auth.Verifier{Keys: sg.KeySet(), Leeway: -1}
	tb := testbroker.Start(t,
		testbroker.WithDurableStreams(t.TempDir(), commitlog.Options{Sync: commitlog.SyncAlways}, "t1/ns/jobs"),
		testbroker.WithServerOptions(server.Options{Auth: server.TokenAuth{Verifier: v},
			Queues: server.QueueOptions{StateDir: t.TempDir(), TickInterval: 10 * time.Millisecond, MaxAttempts: -1}}))
	// Generous: a loaded machine redelivers a round's records slowly. The
	// rounds stop early, below, once they have run for 30 s.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	token := func(exp time.Time) string { return hunt7Token(t, sg, exp) }
	fresh := func(t testing.TB) *client.Client {
		return dial(t, tb, client.Options{TenantID: "t1", Token: token(time.Now().Add(time.Minute)), RequestTimeout: 5 * time.Second})
	}
	pub := fresh(t)
	n := 0
	publish := func(more int) {
		for ; more > 0; more -= 500 {
			batch := make([][]byte, 0, 500)
			for j := n; j < n+500; j++ {
				batch = append(batch, hunt7Payload(uint64(j)))
			}
			if err := pub.PublishBatch(ctx, "ns", "jobs", batch); err != nil {
				t.Fatal(err)
			}
			n += 500
		}
	}
	publish(5000)

	// Rounds, each a new group and a new token, until one shows the bug:
	// an ack's fsync wait spans the expiry in about half the rounds. A
	// round whose consumer acked every record before the expiry (a fast
	// disk) shows nothing: the next round gets twice the records.
	// Rounds after 30 s are only run while none has spanned the expiry
	// yet (a quiet machine runs all five in about 20 s).
	// A round's set-up (Dial, Consumer) must finish before its token
	// expires, and a first ack before it too, or the round tests nothing:
	// such a round is tried again with a longer-lived token
	// (testbroker.Retry), on a new group.
	spanned, start := 0, time.Now()
	for round := range 5 {
		if spanned > 0 && time.Since(start) > 30*time.Second {
			t.Logf("%d rounds spanned the expiry; no more rounds after %v", spanned, time.Since(start).Round(time.Second))
			break
		}
		var bad, all bool
		testbroker.Retry(t, time.Second, 4, func(a *testbroker.Attempt) {
			bad, all = hunt7AckExpiryRound(a, ctx, tb, token, fresh, fmt.Sprintf("g%d.%d", round, a.N), n)
		})
		if bad {
			break
		}
		if all {
			publish(n)
			continue
		}
		spanned++
	}
	if spanned == 0 {
		t.Errorf("no round had acks in flight at the token expiry (%d records in the last)", n)
	}
}

// hunt7AckExpiryRound runs one try of a round of
// TestHunt7QueueAckAcrossTokenExpirySyncAlways on group and reports
// whether an ack failed otherwise than documented, and whether every one
// of the n records was acked before the expiry. token issues a token
// expiring at its argument, fresh dials a client with a long-lived one.
func hunt7AckExpiryRound(a *testbroker.Attempt, ctx context.Context, tb *testbroker.Broker, token func(time.Time) string, fresh func(testing.TB) *client.Client, group string, n int) (bad, all bool) {
	// At least a.Limit away, at most a second more: exp has whole seconds
	// (1 to 2 s on the first try).
	exp := time.Now().Add(a.Limit + time.Second).Truncate(time.Second)
	tok := token(exp)
	a.SetupBy(exp)
	c := dial(a, tb, client.Options{TenantID: "t1", Token: tok, RequestTimeout: 5 * time.Second})
	co, err := c.Consumer(ctx, "ns", "jobs", group, client.WithPrefetch(256))
	if err != nil {
		a.Fatal(err)
	}
	a.SetupDone()
	var mu sync.Mutex
	outcome := map[uint64]error{}
	var wg sync.WaitGroup
	for range 16 { // acks in flight at once, so some wait for an fsync at the expiry
		wg.Go(func() {
			for {
				m, err := co.Next(ctx)
				if err != nil {
					return // the consumer ended at the expiry
				}
				actx, acancel := context.WithTimeout(ctx, 6*time.Second)
				err = m.Ack(actx)
				acancel()
				mu.Lock()
				outcome[m.Offset] = err
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	co.Close()
	if !errors.Is(co.Err(), client.ErrTokenExpired) {
		a.Errorf("consumer ended with %v, want ErrTokenExpired", co.Err())
	}

	// A fresh consumer receives what was not acked.
	rc := fresh(a)
	rco, err := rc.Consumer(ctx, "ns", "jobs", group, client.WithPrefetch(256))
	if err != nil {
		a.Fatal(err)
	}
	again := map[uint64]bool{}
	for {
		nctx, ncancel := context.WithTimeout(ctx, 300*time.Millisecond)
		m, err := rco.Next(nctx)
		ncancel()
		if errors.Is(err, context.DeadlineExceeded) {
			st, err := rc.QueueStats(ctx, "ns", "jobs", group)
			if err != nil {
				a.Fatal(err)
			}
			if st.Lag == 0 {
				break
			}
			continue
		}
		if err != nil {
			a.Fatal(err)
		}
		again[m.Offset] = true
		if err := m.AckAsync(); err != nil {
			a.Fatal(err)
		}
	}
	rco.Close()

	var ok, expired int
	var other []string
	for off, err := range outcome {
		switch {
		case err == nil:
			ok++
			if again[off] {
				a.Errorf("offset %d: Ack returned nil, delivered again", off)
			}
		case errors.Is(err, client.ErrTokenExpired):
			expired++
			if !again[off] {
				a.Errorf("offset %d: Ack failed with %v, yet it was recorded (not delivered again)", off, err)
			}
		default:
			other = append(other, fmt.Sprintf("offset %d: %v (delivered again: %v)", off, err, again[off]))
		}
	}
	sort.Strings(other)
	for i, s := range other {
		if i == 10 {
			a.Errorf("... and %d more", len(other)-10)
			break
		}
		a.Errorf("Ack failed with neither ErrTokenExpired nor nil: %s", s)
	}
	a.Logf("%s: %d acks: %d ok, %d ErrTokenExpired, %d other; %d delivered again", group, len(outcome), ok, expired, len(other), len(again))
	if ok == 0 {
		if !a.Failed() {
			// The consumer started too close to the expiry to ack anything:
			// the set-up overran the token, and nothing was tested.
			a.Inconclusive("%s: no ack succeeded before the expiry, of %d records", group, n)
		}
		a.Errorf("%s: no ack succeeded before the expiry, of %d records (test setup)", group, n)
	}
	return len(other) > 0, len(outcome) == n && ok == n
}

// A queue_error answering an Ack carries a code, which client.ServerError
// documents ("Code is the reply's code where it has one (queue_error:
// "not_in_flight", ...)"): a second Ack of one delivery fails with
// not_in_flight, which an application tells apart from a broker failure
// ("internal") by Code.
func TestHunt7QueueAckErrorCarriesCode(t *testing.T) {
	tb := startQueueBroker(t, server.QueueOptions{}, "default/default/jobs")
	c := dial(t, tb, client.Options{})
	publishSeq(t, c, "jobs", 0, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	co, err := c.Consumer(ctx, "default", "jobs", "g")
	if err != nil {
		t.Fatal(err)
	}
	defer co.Close()
	m, err := co.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Ack(ctx); err != nil {
		t.Fatal(err)
	}
	err = m.Ack(ctx)
	var se *client.ServerError
	if !errors.As(err, &se) {
		t.Fatalf("second Ack: %v, want a *ServerError", err)
	}
	if se.Code != "not_in_flight" {
		t.Errorf("second Ack: ServerError{Code: %q, Message: %q}, want Code \"not_in_flight\"", se.Code, se.Message)
	}
}
