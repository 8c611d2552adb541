package server_test

import (
	"context"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/felixmq/felix/internal/testbroker"
	"github.com/felixmq/felix/transport"
	"github.com/felixmq/felix/wire"
)

// rawConn is a test client that speaks raw felix-wire frames (no SDK).
type rawConn struct {
	t  testing.TB
	cc *transport.ClientConn
}

func dialRaw(t testing.TB, tb *testbroker.Broker) *rawConn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cc, err := transport.Dial(ctx, tb.Addr, tb.ClientTLS, transport.Options{}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { cc.Close() })
	return &rawConn{t: t, cc: cc}
}

type rawStream struct {
	t  testing.TB
	s  *quic.Stream
	r  *wire.Reader
	rc *rawConn
	// lenient ignores write errors: the broker may already have stopped
	// reading a stream it refused.
	lenient bool
}

func (c *rawConn) open() *rawStream {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := c.cc.Conn.OpenStreamSync(ctx)
	if err != nil {
		c.t.Fatalf("open stream: %v", err)
	}
	s.SetReadDeadline(time.Now().Add(10 * time.Second))
	return &rawStream{t: c.t, s: s, r: wire.NewReader(s, 0), rc: c}
}

func (s *rawStream) send(b []byte) {
	s.t.Helper()
	if _, err := s.s.Write(b); err != nil && !s.lenient {
		s.t.Fatalf("write: %v", err)
	}
}

func (s *rawStream) sendMsg(m wire.Message) {
	s.t.Helper()
	b, err := wire.AppendMessageFrame(nil, m)
	if err != nil {
		s.t.Fatal(err)
	}
	s.send(b)
}

// expect reads one frame and compares its bytes exactly.
func (s *rawStream) expect(want []byte) {
	s.t.Helper()
	f, err := s.r.ReadFrame()
	if err != nil {
		s.t.Fatalf("read: %v (wanted %x)", err, want)
	}
	got := wire.AppendFrame(nil, f.Flags, f.Payload)
	if string(got) != string(want) {
		s.t.Fatalf("reply mismatch:\n got %x %q\nwant %x %q", got, f.Payload, want, want[min(len(want), wire.HeaderSize):])
	}
}

func (s *rawStream) expectMsg(m wire.Message) {
	s.t.Helper()
	b, _ := wire.AppendMessageFrame(nil, m)
	s.expect(b)
}

// readMsg reads the next frame and decodes it as a JSON message.
func (s *rawStream) readMsg() wire.Message {
	s.t.Helper()
	f, err := s.r.ReadFrame()
	if err != nil {
		s.t.Fatalf("read reply: %v", err)
	}
	m, err := wire.DecodeMessage(f.Payload)
	if err != nil {
		s.t.Fatalf("decode reply: %v", err)
	}
	return m
}

func (s *rawStream) expectJSON(payload string) {
	s.t.Helper()
	s.expect(wire.AppendFrame(nil, 0, []byte(payload)))
}

// expectEnd asserts the broker ended the stream (FIN or reset).
func (s *rawStream) expectEnd() {
	s.t.Helper()
	_, err := s.r.ReadFrame()
	var se *quic.StreamError
	if err != io.EOF && !errors.As(err, &se) {
		s.t.Fatalf("stream not ended: %v", err)
	}
}

func (s *rawStream) auth(tenant string, flags *uint16) {
	s.t.Helper()
	s.sendMsg(&wire.Auth{TenantID: tenant, Token: "dev", ClientFlags: flags})
	if flags != nil {
		s.expectJSON(`{"type":"auth_ok","server_flags":63}`)
	} else {
		s.expectJSON(`{"type":"ok"}`)
	}
}

func mustHexT(t *testing.T, s string) []byte {
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func startTB(t *testing.T) *testbroker.Broker {
	return testbroker.Start(t, testbroker.WithStreams("t1/default/demo", "t2/default/demo"))
}

func TestConformanceAuthAndAckedBinaryPublish(t *testing.T) {
	tb := startTB(t)
	c := dialRaw(t, tb)
	s := c.open()
	// The reference vector's auth (client_flags 25) gets auth_ok with our 63.
	s.send(mustHexT(t, "464c583100010000000000477b2274797065223a2261757468222c2274656e616e745f6964223a227431222c22746f6b656e223a2264656d6f2d746f6b656e222c22636c69656e745f666c616773223a32357d"))
	s.expectJSON(`{"type":"auth_ok","server_flags":63}`)
	// The reference vector's acked publish (request 7) gets the reference's ok ack.
	s.send(mustHexT(t, "464c5831000100090000002900000000000000070200027431000764656661756c74000464656d6f000000010000000568656c6c6f"))
	s.expect(mustHexT(t, "464c5831000100100000000b0000000000000000070000"))
	// Unknown stream: the reference's error ack, and the stream goes on.
	f, _ := wire.AppendAckedPublishBatchFrame(nil, 9, wire.AckPerBatch, "t1", "default", "nope", [][]byte{[]byte("x")})
	s.send(f)
	s.expect(wire.AppendPublishAckFrame(nil, 9, false, "stream not found: tenant=t1 namespace=default stream=nope"))
	// Malformed acked body: binary error ack, stream continues.
	bad := wire.AppendHeader(nil, wire.FlagBinaryPublishBatch|wire.FlagBinaryPublishAcked, 10)
	bad = append(bad, 0, 0, 0, 0, 0, 0, 0, 11, 1, 0xff)
	s.send(bad)
	s.expect(wire.AppendPublishAckFrame(nil, 11, false, "malformed publish batch"))
	// Tenant mismatch on acked binary: error ack, continues.
	f, _ = wire.AppendAckedPublishBatchFrame(nil, 12, wire.AckPerMessage, "t2", "default", "demo", [][]byte{[]byte("x")})
	s.send(f)
	s.expect(wire.AppendPublishAckFrame(nil, 12, false, "tenant mismatch"))
	if got := tb.Broker.Stats(); got.Streams[0].Published+got.Streams[1].Published != 1 {
		t.Fatalf("published %+v, want exactly the one good event", got)
	}
}

func TestConformanceJSONPublishAndSubscribe(t *testing.T) {
	tb := startTB(t)
	c := dialRaw(t, tb)
	sub := c.open()
	sub.auth("t1", nil) // legacy client: ok, no capabilities
	sub.sendMsg(&wire.Subscribe{TenantID: "t1", Namespace: "default", Stream: "demo"})
	sub.expectJSON(`{"type":"subscribed","subscription_id":1}`)
	sub.s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	us, err := c.cc.Conn.AcceptUniStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ev := &rawStream{t: t, r: wire.NewReader(us, 0)}
	// The hello, exactly as the reference's worked example (49 bytes).
	ev.expect(append(mustHexT(t, "464c5831 0001 0000 00000031"), `{"type":"event_stream_hello","subscription_id":1}`...))

	pub := c.open()
	pub.auth("t1", wire.U16(wire.KnownFlags))
	pub.sendMsg(&wire.Publish{TenantID: "t1", Namespace: "default", Stream: "demo", Payload: []byte("hello"), RequestID: wire.U64(1)})
	pub.expectJSON(`{"type":"publish_ok","request_id":1}`)
	// The reference's publish vector has no request_id: acked by default, so refused.
	pub.send(mustHexT(t, "464c5831000100000000005e7b2274797065223a227075626c697368222c2274656e616e745f6964223a227431222c226e616d657370616365223a2264656661756c74222c2273747265616d223a2264656d6f222c227061796c6f6164223a22614756736247383d227d"))
	pub.expectJSON(`{"type":"error","message":"missing request_id for acked publish"}`)
	pub.sendMsg(&wire.PublishBatch{TenantID: "t1", Namespace: "default", Stream: "demo", Payloads: [][]byte{[]byte("a"), []byte("bc")}, Ack: wire.Ack(wire.AckNone)})
	pub.sendMsg(&wire.PublishBatch{TenantID: "t1", Namespace: "default", Stream: "nope", Payloads: [][]byte{[]byte("z")}, RequestID: wire.U64(2)})
	pub.expectJSON(`{"type":"publish_error","request_id":2,"message":"stream not found: tenant=t1 namespace=default stream=nope"}`)
	// Events arrive as shared 0x0004 frames, byte-exact.
	ev.expect(mustHexT(t, "464c5831 0001 0004 0000000d 00000001 00000005 68656c6c6f"))
	ev.expect(wire.AppendEventBatchFrame(nil, false, 0, [][]byte{[]byte("a"), []byte("bc")}))
}

func TestConformanceCursorAndStreamErrors(t *testing.T) {
	tb := startTB(t)
	c := dialRaw(t, tb)
	s := c.open()
	s.auth("t1", wire.U16(wire.KnownFlags))
	s.sendMsg(&wire.Subscribe{TenantID: "t1", Namespace: "default", Stream: "demo", Start: &wire.StartPosition{Kind: wire.StartOffset, Offset: 9999}})
	s.expectJSON(`{"type":"subscribe_cursor_error","reason":"in_future","requested":9999,"available":0}`)
	s.expectEnd()

	s = c.open()
	s.auth("t1", nil)
	s.sendMsg(&wire.Subscribe{TenantID: "t1", Namespace: "default", Stream: "missing"})
	s.expectJSON(`{"type":"error","message":"stream not found: tenant=t1 namespace=default stream=missing"}`)
	s.expectEnd()
}

func TestProtocolViolations(t *testing.T) {
	tb := startTB(t)
	c := dialRaw(t, tb)
	cases := []struct {
		name string
		run  func(s *rawStream)
	}{
		{"data before auth", func(s *rawStream) {
			s.sendMsg(&wire.Publish{TenantID: "t1", Namespace: "default", Stream: "demo", Payload: []byte("x"), RequestID: wire.U64(1)})
			s.expectJSON(`{"type":"error","message":"auth required"}`)
			s.expectEnd()
		}},
		{"binary before auth", func(s *rawStream) {
			f, _ := wire.AppendPublishBatchFrame(nil, "t1", "default", "demo", nil)
			s.send(f)
			s.expectJSON(`{"type":"error","message":"auth required"}`)
			s.expectEnd()
		}},
		{"wrong tenant", func(s *rawStream) {
			s.auth("t1", nil)
			s.sendMsg(&wire.Publish{TenantID: "t2", Namespace: "default", Stream: "demo", Payload: []byte("x"), RequestID: wire.U64(1)})
			s.expectJSON(`{"type":"error","message":"tenant mismatch"}`)
			s.expectEnd()
		}},
		{"wrong tenant subscribe", func(s *rawStream) {
			s.auth("t1", nil)
			s.sendMsg(&wire.Subscribe{TenantID: "t2", Namespace: "default", Stream: "demo"})
			s.expectJSON(`{"type":"error","message":"tenant mismatch"}`)
			s.expectEnd()
		}},
		{"second auth", func(s *rawStream) {
			s.auth("t1", nil)
			s.sendMsg(&wire.Auth{TenantID: "t1", Token: "x"})
			s.expectJSON(`{"type":"error","message":"auth already established"}`)
			s.expectEnd()
		}},
		{"server-only type", func(s *rawStream) {
			s.auth("t1", nil)
			s.sendMsg(&wire.PublishOK{RequestID: 1})
			s.expectJSON(`{"type":"error","message":"unexpected message type"}`)
			s.expectEnd()
		}},
		{"cursor error from client", func(s *rawStream) {
			s.auth("t1", nil)
			s.sendMsg(&wire.SubscribeCursorError{Reason: wire.CursorTooOld})
			s.expectJSON(`{"type":"error","message":"subscribe_cursor_error is a server-to-client message"}`)
			s.expectEnd()
		}},
		{"unknown flags continue", func(s *rawStream) {
			s.auth("t1", nil)
			s.send(append(wire.AppendHeader(nil, 0x0100, 3), "abc"...))
			s.expectJSON(`{"type":"error","message":"unsupported frame flags"}`)
			s.sendMsg(&wire.Publish{TenantID: "t1", Namespace: "default", Stream: "demo", Payload: []byte("x"), RequestID: wire.U64(5)})
			s.expectJSON(`{"type":"publish_ok","request_id":5}`)
		}},
		{"bad magic resets", func(s *rawStream) {
			s.auth("t1", nil)
			s.send([]byte("GET / HTTP/1.1\r\n\r\n"))
			s.expectEnd()
		}},
		{"oversized frame resets", func(s *rawStream) {
			s.auth("t1", nil)
			s.send(wire.AppendHeader(nil, 0, 0xFFFFFFFF))
			s.expectEnd()
		}},
		{"malformed json resets", func(s *rawStream) {
			s.auth("t1", nil)
			s.send(wire.AppendFrame(nil, 0, []byte(`{"type":"publish",`)))
			s.expectEnd()
		}},
		{"malformed binary publish resets", func(s *rawStream) {
			s.auth("t1", nil)
			s.send(wire.AppendFrame(nil, wire.FlagBinaryPublishBatch, []byte{0, 9, 1}))
			s.expectEnd()
		}},
		{"unknown cache scope", func(s *rawStream) {
			s.auth("t1", nil)
			s.sendMsg(&wire.CacheGet{TenantID: "t1", Namespace: "default", Cache: "c", Key: "k", RequestID: wire.U64(3)})
			s.expectJSON(`{"type":"error","message":"cache scope not found: t1/default/c"}`)
		}},
	}
	for _, c2 := range cases {
		t.Run(c2.name, func(t *testing.T) {
			s := c.open()
			s.t = t
			c2.run(s)
		})
	}
	// After all of that, the same connection still publishes fine.
	s := c.open()
	s.auth("t1", nil)
	s.sendMsg(&wire.Publish{TenantID: "t1", Namespace: "default", Stream: "demo", Payload: []byte("ok"), RequestID: wire.U64(1)})
	s.expectJSON(`{"type":"publish_ok","request_id":1}`)
	if tb.Server.Stats().ProtocolErrors.Load() == 0 {
		t.Fatal("protocol errors not counted")
	}
}
