package server_test

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/felixmq/felix/internal/testbroker"
	"github.com/felixmq/felix/server"
	"github.com/felixmq/felix/wire"
)

// expectNoReplyEnd asserts the broker ended the stream without a frame.
func (s *rawStream) expectNoReplyEnd() {
	s.t.Helper()
	f, err := s.r.ReadFrame()
	var se *quic.StreamError
	if err != io.EOF && !errors.As(err, &se) {
		s.t.Fatalf("want the stream ended without a reply, got frame %#x %q (err %v)", f.Flags, f.Payload, err)
	}
}

// Before auth the broker answers as the reference's control loop does: it
// authenticates inside its frame loop, so frame-level checks and
// message-type checks come before the auth check.
func TestConformanceBeforeAuth(t *testing.T) {
	tb := startTB(t)
	c := dialRaw(t, tb)
	cases := []struct {
		name string
		run  func(s *rawStream)
	}{
		{"unknown flags answered, stream goes on", func(s *rawStream) {
			s.send(append(wire.AppendHeader(nil, 0x0100, 3), "abc"...))
			s.expectJSON(`{"type":"error","message":"unsupported frame flags"}`)
			s.auth("t1", nil)
			s.sendMsg(&wire.Publish{TenantID: "t1", Namespace: "default", Stream: "demo", Payload: []byte("x"), RequestID: wire.U64(1)})
			s.expectJSON(`{"type":"publish_ok","request_id":1}`)
		}},
		{"broker-only type", func(s *rawStream) {
			s.sendMsg(&wire.OK{})
			s.expectJSON(`{"type":"error","message":"unexpected message type"}`)
			s.expectEnd()
		}},
		{"client error closes silently", func(s *rawStream) {
			s.sendMsg(&wire.ErrorMessage{Message: "bye"})
			s.expectNoReplyEnd()
		}},
		{"cursor error from client", func(s *rawStream) {
			s.sendMsg(&wire.SubscribeCursorError{Reason: wire.CursorInFuture})
			s.expectJSON(`{"type":"error","message":"subscribe_cursor_error is a server-to-client message"}`)
			s.expectEnd()
		}},
		{"binary publish bit", func(s *rawStream) {
			f, _ := wire.AppendPublishBatchFrame(nil, "t1", "default", "demo", [][]byte{[]byte("x")})
			f[7] |= byte(wire.FlagEventBatchOffsets) // 0x0021: still the publish bit
			s.send(f)
			s.expectJSON(`{"type":"error","message":"auth required"}`)
			s.expectEnd()
		}},
		{"event batch from client is not JSON", func(s *rawStream) {
			s.send(wire.AppendEventBatchFrame(nil, false, 0, [][]byte{[]byte("x")}))
			s.expectNoReplyEnd()
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := c.open()
			s.t = t
			s.lenient = true
			tc.run(s)
		})
	}
}

// As in the reference, flag bit 0x0001 selects a binary publish batch
// (acked with 0x0008) whatever the other known bits, and a frame without it
// is read as JSON.
func TestConformanceFlagBitsSelectLayout(t *testing.T) {
	tb := startTB(t)
	c := dialRaw(t, tb)
	s := c.open()
	s.auth("t1", wire.U16(wire.KnownFlags))
	f, _ := wire.AppendAckedPublishBatchFrame(nil, 7, wire.AckPerBatch, "t1", "default", "demo", [][]byte{[]byte("a")})
	f[7] |= byte(wire.FlagEventBatchOffsets) // 0x0029
	s.send(f)
	s.expect(wire.AppendPublishAckFrame(nil, 7, true, ""))
	j, _ := wire.EncodeMessage(&wire.Publish{TenantID: "t1", Namespace: "default", Stream: "demo", Payload: []byte("b"), RequestID: wire.U64(8)})
	s.send(wire.AppendFrame(nil, wire.FlagBinaryEventBatchShared, j))
	s.expectJSON(`{"type":"publish_ok","request_id":8}`)
	if n := published(tb, "t1"); n != 2 {
		t.Fatalf("published %d, want 2", n)
	}
}

// The reference reads a publish batch body up to its last payload and
// ignores what follows.
func TestConformanceBinaryPublishTrailingBytes(t *testing.T) {
	tb := startTB(t)
	c := dialRaw(t, tb)
	s := c.open()
	s.auth("t1", wire.U16(wire.KnownFlags))
	f, _ := wire.AppendAckedPublishBatchFrame(nil, 3, wire.AckPerMessage, "t1", "default", "demo", [][]byte{[]byte("a")})
	f = append(f, 0xde, 0xad)
	f[11] += 2 // the length covers the two extra bytes
	s.send(f)
	s.expect(wire.AppendPublishAckFrame(nil, 3, true, ""))
	u, _ := wire.AppendPublishBatchFrame(nil, "t1", "default", "demo", [][]byte{[]byte("b")})
	u = append(u, 0)
	u[11]++
	s.send(u)
	s.sendMsg(&wire.Publish{TenantID: "t1", Namespace: "default", Stream: "demo", Payload: []byte("c"), RequestID: wire.U64(4)})
	s.expectJSON(`{"type":"publish_ok","request_id":4}`)
	if n := published(tb, "t1"); n != 3 {
		t.Fatalf("published %d, want 3", n)
	}
}

// The reference checks the permission before the request id: a denied
// publish that asks for an ack but carries no request_id cannot be
// correlated, so it gets error "forbidden" and the stream closes.
func TestConformanceForbiddenBeforeMissingRequestID(t *testing.T) {
	tb := testbroker.Start(t, testbroker.WithStreams("t1/default/demo", "t1/default/secret"),
		testbroker.WithServerOptions(server.Options{Auth: denySecret{}}))
	c := dialRaw(t, tb)
	s := c.open()
	s.auth("t1", nil)
	s.sendMsg(&wire.Publish{TenantID: "t1", Namespace: "default", Stream: "demo", Payload: []byte("x")})
	s.expectJSON(`{"type":"error","message":"missing request_id for acked publish"}`)
	s.sendMsg(&wire.PublishBatch{TenantID: "t1", Namespace: "default", Stream: "secret", Payloads: [][]byte{[]byte("x")}})
	s.expectJSON(`{"type":"error","message":"forbidden"}`)
	s.expectEnd()
}

// A publish-only stream, as the reference's: a publish to an unknown
// stream is dropped and the stream goes on, and frames are not checked for
// unknown flag bits (a frame without bit 0x0001 is read as JSON).
func TestConformanceUniStream(t *testing.T) {
	tb := startTB(t)
	c := dialRaw(t, tb)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	us, err := c.cc.Conn.OpenUniStreamSync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	frame := func(flags uint16, m wire.Message) []byte {
		b, err := wire.EncodeMessage(m)
		if err != nil {
			t.Fatal(err)
		}
		return wire.AppendFrame(nil, flags, b)
	}
	var b []byte
	b = append(b, frame(0, &wire.Auth{TenantID: "t1", Token: "dev"})...)
	b = append(b, frame(0, &wire.Publish{TenantID: "t1", Namespace: "default", Stream: "nope", Payload: []byte("lost"), Ack: wire.Ack(wire.AckNone)})...)
	b, _ = wire.AppendPublishBatchFrame(b, "t1", "default", "nope", [][]byte{[]byte("lost")})
	b = append(b, frame(0x0100, &wire.Publish{TenantID: "t1", Namespace: "default", Stream: "demo", Payload: []byte("1")})...)
	b, _ = wire.AppendPublishBatchFrame(b, "t1", "default", "demo", [][]byte{[]byte("2")})
	if _, err := us.Write(b); err != nil {
		t.Fatal(err)
	}
	us.Close()
	deadline := time.Now().Add(10 * time.Second)
	for published(tb, "t1") != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("published %d of the 2 events after the unknown stream", published(tb, "t1"))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// published counts the events published to tenant's default/demo stream.
func published(tb *testbroker.Broker, tenant string) uint64 {
	for _, st := range tb.Broker.Stats().Streams {
		if st.Key.Tenant == tenant && st.Key.Namespace == "default" && st.Key.Stream == "demo" {
			return st.Published
		}
	}
	return 0
}
