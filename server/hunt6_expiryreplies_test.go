package server_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/felixmq/felix/auth"
	"github.com/felixmq/felix/commitlog"
	"github.com/felixmq/felix/internal/testbroker"
	"github.com/felixmq/felix/server"
	"github.com/felixmq/felix/transport"
	"github.com/felixmq/felix/wire"
)

// expiryBroker starts a token-verifying broker with durable streams
// a/ns/<name> and returns it with its signer.
func expiryBroker(t testing.TB, names ...string) (*testbroker.Broker, *auth.Signer) {
	t.Helper()
	keys := make([]string, len(names))
	for i, n := range names {
		keys[i] = "a/ns/" + n
	}
	return startTokenBroker(t, auth.Verifier{Leeway: -1}, server.Options{},
		testbroker.WithDurableStreams(t.TempDir(), commitlog.Options{Sync: commitlog.SyncNever}, keys...))
}

// shortToken issues a token for tenant a, allowed to publish to
// a/ns/<names>, that expires at least a.Limit from now (see shortLived),
// and returns it with its expiry.
func shortToken(a *testbroker.Attempt, sg *auth.Signer, names ...string) (string, time.Time) {
	a.Helper()
	perms := make([]string, len(names))
	for i, n := range names {
		perms[i] = "stream.publish:stream:a/ns/" + n
	}
	return shortLived(a, sg, auth.Claims{Tenant: "a", Subject: "short", Perms: perms})
}

// expiryRun is the outcome of pipelineUntilExpiry.
type expiryRun struct {
	sent  uint64              // requests written in full
	acked map[uint64]struct{} // request ids acked ok
	end   error               // what ended the stream for the reader
	// late: the auth came after the token's expiry (the set-up overran
	// it): the run tested nothing.
	late bool
}

// overran makes try a inconclusive when a run was late, or stored
// nothing before the token expired: its set-up overran the token.
func overran(a *testbroker.Attempt, tb *testbroker.Broker, names []string, runs []expiryRun) {
	for i, r := range runs {
		if r.late || len(r.acked) == 0 && len(stored(a, tb, names[i])) == 0 {
			a.Inconclusive("%s: the token expired before the stream served anything (%v)", names[i], r.end)
		}
	}
}

// pipelineUntilExpiry opens a control stream on conn, authenticates it
// with tok and pipelines acked publishes of one record each to a/ns/name
// (binary 0x0009, or JSON publish with request_id when json is set) as
// fast as the stream takes them, until the broker ends the stream. The
// record's payload is its request id. Replies are read as they come. It
// may run on a goroutine of its own: it reports failures with t.Errorf.
// A run whose auth is refused after the token's expiry (the set-up
// overran the token: nothing to check) is marked late.
func pipelineUntilExpiry(t testing.TB, conn *quic.Conn, tok, name string, json bool) expiryRun {
	t.Helper()
	run := expiryRun{acked: map[uint64]struct{}{}}
	exp, ok := auth.PeekClaims(tok)
	if !ok {
		t.Errorf("token without claims: %q", tok)
		return run
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := conn.OpenStreamSync(ctx)
	if err != nil {
		t.Errorf("open stream: %v", err)
		return run
	}
	s.SetReadDeadline(time.Now().Add(20 * time.Second))
	r := wire.NewReader(s, 0)
	authFrame, _ := wire.AppendMessageFrame(nil, &wire.Auth{TenantID: "a", Token: tok, ClientFlags: wire.U16(allCaps)})
	if _, err := s.Write(authFrame); err != nil {
		t.Errorf("write auth: %v", err)
		return run
	}
	if f, err := r.ReadFrame(); err != nil || !strings.Contains(string(f.Payload), `"auth_ok"`) {
		if !time.Now().Before(exp.ExpiresAt) {
			run.late, run.end = true, fmt.Errorf("auth: %q %v", f.Payload, err)
			return run
		}
		t.Errorf("auth: %q %v", f.Payload, err)
		return run
	}
	var wg sync.WaitGroup
	var sent uint64
	wg.Go(func() {
		var buf []byte
		id := uint64(0)
		for {
			buf = buf[:0]
			for range 16 {
				id++
				payload := binary.BigEndian.AppendUint64(nil, id)
				if json {
					buf, _ = wire.AppendMessageFrame(buf, &wire.Publish{TenantID: "a", Namespace: "ns", Stream: name,
						Payload: payload, RequestID: wire.U64(id), Ack: wire.Ack(wire.AckPerMessage)})
				} else {
					buf, _ = wire.AppendAckedPublishBatchFrame(buf, id, wire.AckPerBatch, "a", "ns", name, [][]byte{payload})
				}
			}
			if _, err := s.Write(buf); err != nil {
				return // the broker stopped reading
			}
			sent = id
		}
	})
	for {
		f, err := r.ReadFrame()
		if err != nil {
			run.end = err
			break
		}
		ack, err := decodeAck(f, json)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			run.end = err
			break
		}
		if !ack.OK {
			t.Errorf("request %d: %s", ack.RequestID, ack.Message)
			continue
		}
		run.acked[ack.RequestID] = struct{}{}
	}
	s.CancelWrite(0) // ends the writer if the broker ended the stream otherwise
	wg.Wait()
	run.sent = sent

	return run
}

// decodeAck reads a reply to a binary (or, with json, a JSON) acked
// publish as a binary ack.
func decodeAck(f wire.Frame, json bool) (wire.PublishAck, error) {
	if !json {
		return wire.DecodePublishAck(f.Payload)
	}
	m, err := wire.DecodeMessage(f.Payload)
	if err != nil {
		return wire.PublishAck{}, err
	}
	switch m := m.(type) {
	case *wire.PublishOK:
		return wire.PublishAck{RequestID: m.RequestID, OK: true}, nil
	case *wire.PublishError:
		return wire.PublishAck{RequestID: m.RequestID, Message: m.Message}, nil
	}
	return wire.PublishAck{}, fmt.Errorf("unexpected reply %s", f.Payload)
}

// stored returns the request ids of the records of a/ns/name.
func stored(t testing.TB, tb *testbroker.Broker, name string) []uint64 {
	t.Helper()
	st, err := tb.Broker.Stream("a", "ns", name)
	if err != nil {
		t.Fatal(err)
	}
	lg := st.Log()
	var ids []uint64
	for from := lg.Oldest(); from < lg.Next(); {
		recs, err := lg.Read(from, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, rec := range recs {
			ids = append(ids, binary.BigEndian.Uint64(rec.Payload))
			from = rec.Offset + 1
		}
	}
	return ids
}

// checkExpiryRun checks that run's stream was reset with code 3 and, when
// every ack must arrive, that exactly the stored records were acked;
// otherwise only that no ack names a record that is not stored. It returns
// how many stored records got no ack.
func checkExpiryRun(t testing.TB, tb *testbroker.Broker, name string, run expiryRun, everyAck bool) int {
	t.Helper()
	var se *quic.StreamError
	if !errors.As(run.end, &se) || se.ErrorCode != 3 || !se.Remote {
		t.Errorf("%s: stream ended with %v, want the broker's reset with code 3", name, run.end)
	}
	ids := stored(t, tb, name)
	isStored := make(map[uint64]struct{}, len(ids))
	var unacked []uint64
	for _, id := range ids {
		isStored[id] = struct{}{}
		if _, ok := run.acked[id]; !ok {
			unacked = append(unacked, id)
		}
	}
	for id := range run.acked {
		if _, ok := isStored[id]; !ok {
			t.Errorf("%s: request %d acked ok but not stored", name, id)
		}
	}
	if everyAck && len(unacked) > 0 {
		t.Errorf("%s: %d of %d stored records got no ack (first %d; %d requests sent)",
			name, len(unacked), len(ids), unacked[0], run.sent)
	}
	if len(ids) == 0 {
		t.Errorf("%s: nothing stored before the expiry", name)
	}
	return len(unacked)
}

// A control stream whose token expires under a client that pipelines acked
// publishes as fast as it can: the broker serves nothing it reads after
// the expiry, and every publish it served (stored) gets its ack before the
// stream's reset (RESET_STREAM_AT, offered by both sides). So a client
// can take a request that ends with the token-expired reset as not served
// and send it again, without duplicates. Binary and JSON publishes, a few
// streams at once, twice, to catch the race at the expiry.
func TestExpiryDeliversEveryServedReply(t *testing.T) {
	const rounds = 2
	kinds := []string{"bin0", "json0", "bin1", "json1"}
	var all []string
	for round := range rounds {
		for _, k := range kinds {
			all = append(all, fmt.Sprintf("%s-%d", k, round))
		}
	}
	// A try in which a stream served nothing before the token expired
	// (its set-up overran the token) is tried again with a longer token.
	testbroker.Retry(t, expiryFirstLifetime, expiryTries, func(a *testbroker.Attempt) {
		tb, sg := expiryBroker(a, all...)
		for round := range rounds {
			names := all[round*len(kinds) : (round+1)*len(kinds)]
			conns := make([]*rawConn, len(names))
			for i := range names {
				conns[i] = dialRaw(a, tb)
				if !conns[i].cc.Conn.ConnectionState().SupportsStreamResetPartialDelivery.Remote {
					a.Fatal("the broker does not offer RESET_STREAM_AT")
				}
			}
			tok, _ := shortToken(a, sg, names...) // after the dials: only the auth and the first publishes must beat it
			runs := make([]expiryRun, len(names))
			var wg sync.WaitGroup
			for i, name := range names {
				wg.Go(func() { runs[i] = pipelineUntilExpiry(a, conns[i].cc.Conn, tok, name, strings.HasPrefix(name, "json")) })
			}
			wg.Wait()
			waitNoGoroutine(a, "server.(*conn).handleControl") // every publish it started is done
			overran(a, tb, names, runs)
			for i, name := range names {
				checkExpiryRun(a, tb, name, runs[i], true)
			}
			if a.Failed() {
				a.Fatalf("round %d failed", round)
			}
		}
		if n := tb.Server.Stats().TokenExpiries.Load(); n != uint64(len(all)) {
			a.Errorf("token expiries counted %d, want %d", n, len(all))
		}
	})
}

// A client without RESET_STREAM_AT (as the reference's) gets what it got
// before: the reset with code 3 at the expiry, no ack for a record not
// stored, and the broker's handler ends.
func TestExpiryResetWithoutResetStreamAt(t *testing.T) {
	testbroker.Retry(t, expiryFirstLifetime, expiryTries, func(a *testbroker.Attempt) {
		tb, sg := expiryBroker(a, "s")
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := quic.DialAddr(ctx, tb.Addr, tb.ClientTLS, &quic.Config{}) // no EnableStreamResetPartialDelivery
		if err != nil {
			a.Fatal(err)
		}
		defer conn.CloseWithError(0, "")
		if st := conn.ConnectionState().SupportsStreamResetPartialDelivery; !st.Remote || st.Local {
			a.Fatalf("RESET_STREAM_AT support %+v, want offered by the broker only", st)
		}
		tok, _ := shortToken(a, sg, "s")
		run := pipelineUntilExpiry(a, conn, tok, "s", false)
		waitNoGoroutine(a, "server.(*conn).handleControl")
		overran(a, tb, []string{"s"}, []expiryRun{run})
		lost := checkExpiryRun(a, tb, "s", run, false)
		a.Logf("%d records stored, %d acks lost in the plain reset", len(stored(a, tb, "s")), lost)
		if n := tb.Server.Stats().TokenExpiries.Load(); n != 1 {
			a.Errorf("token expiries counted %d, want 1", n)
		}
	})
}

// A client that stops reading replies (its stream window full) when its
// token expires: the broker's handler, blocked writing replies, still
// ends the stream (reset with code 3) within a bounded grace after the
// expiry, and goes away.
func TestExpiryClientNotReading(t *testing.T) {
	testbroker.Retry(t, expiryFirstLifetime, expiryTries, func(a *testbroker.Attempt) {
		tb, sg := expiryBroker(a, "s")
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		cc, err := transport.Dial(ctx, tb.Addr, tb.ClientTLS, transport.Options{
			InitialStreamReceiveWindow: 4 << 10, MaxStreamReceiveWindow: 4 << 10}, nil)
		if err != nil {
			a.Fatal(err)
		}
		defer cc.Close()
		c := &rawConn{t: a, cc: cc}
		tok, exp := shortToken(a, sg, "s")
		// The set-up: authenticated, and the publishes written, before the
		// token expires.
		a.SetupBy(exp)
		s := c.open()
		if !s.authWith("a", tok) {
			a.Fatal("token refused")
		}
		// Far more acks than the 4 KiB window holds; none is read.
		var b []byte
		for id := range uint64(2000) {
			b, _ = wire.AppendAckedPublishBatchFrame(b, id+1, wire.AckPerBatch, "a", "ns", "s", [][]byte{[]byte(fmt.Sprint(id))})
		}
		s.send(b)
		if time.Now().After(exp) {
			a.Inconclusive("the token expired before the publishes were written")
		}
		a.SetupDone()
		waitNoGoroutine(a, "server.(*conn).handleControl") // bounded: 10 s
		if n := tb.Server.Stats().TokenExpiries.Load(); n != 1 {
			a.Errorf("token expiries counted %d, want 1", n)
		}
		// The reader now sees at most the replies the window held, then the
		// reset.
		acks := 0
		for {
			f, err := s.r.ReadFrame()
			if err == nil {
				if _, err := wire.DecodePublishAck(f.Payload); err != nil {
					a.Fatal(err)
				}
				acks++
				continue
			}
			var se *quic.StreamError
			if !errors.As(err, &se) || se.ErrorCode != 3 {
				a.Fatalf("stream ended with %v, want a reset with code 3", err)
			}
			break
		}
		if acks == 2000 {
			a.Fatal("every ack arrived: the window did not hold the broker's writes up")
		}
	})
}
