package server_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/felixmq/felix/cache"
	"github.com/felixmq/felix/internal/testbroker"
	"github.com/felixmq/felix/transport"
	"github.com/felixmq/felix/wire"
)

// FuzzStreamBytes writes arbitrary bytes on a client-opened stream of a live
// broker (real QUIC on 127.0.0.1) and then checks the broker still serves:
// a fresh stream must authenticate and get an acked publish through, on the
// same connection or, if the broker closed that one, on a new connection.
// A panic anywhere in the broker fails the run (it is in this process).
//
// mode selects the stream: bit 0 puts a valid auth frame (tenant t1) before
// the bytes, so they reach the post-auth handlers; bit 1 uses a
// unidirectional (publish-only) stream instead of a bidirectional one.
func FuzzStreamBytes(f *testing.F) {
	tb := testbroker.Start(f, testbroker.WithStreams("t1/default/demo"),
		testbroker.WithCaches(cache.Config{}, "t1/default/c"))
	auth := mustFrame(f, &wire.Auth{TenantID: "t1", Token: "dev", ClientFlags: wire.U16(0xffff)})
	seeds := [][]byte{
		nil,
		[]byte("garbage that is not a frame"),
		auth,
		mustFrame(f, &wire.Publish{TenantID: "t1", Namespace: "default", Stream: "demo", Payload: []byte("x"), RequestID: wire.U64(1)}),
		mustFrame(f, &wire.Publish{TenantID: "t2", Namespace: "default", Stream: "demo", Payload: []byte("x")}),
		mustFrame(f, &wire.Subscribe{TenantID: "t1", Namespace: "default", Stream: "demo"}),
		mustFrame(f, &wire.Subscribe{TenantID: "t1", Namespace: "default", Stream: "nope"}),
		mustFrame(f, &wire.CachePut{TenantID: "t1", Namespace: "default", Cache: "c", Key: "k", Value: []byte("v"), RequestID: wire.U64(2)}),
		mustFrame(f, &wire.CacheGet{TenantID: "t1", Namespace: "default", Cache: "c", Key: "k", RequestID: wire.U64(3)}),
		wire.AppendFrame(nil, 0, []byte(`{"type":"publish","tenant_id":"t1"`)), // truncated JSON
		wire.AppendFrame(nil, 0x8000, []byte("unknown flag")),
		{'F', 'L', 'X', '1', 0, 1, 0, 0, 0xff, 0xff, 0xff, 0xff}, // a huge length
	}
	if b, err := wire.AppendAckedPublishBatchFrame(nil, 7, wire.AckPerBatch, "t1", "default", "demo", [][]byte{[]byte("a"), []byte("b")}); err == nil {
		seeds = append(seeds, b)
	}
	for _, s := range seeds {
		for mode := range byte(4) {
			f.Add(mode, s)
		}
	}

	var mu sync.Mutex
	var cc *transport.ClientConn
	inputs := 0
	dial := func(t *testing.T) *transport.ClientConn {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, err := transport.Dial(ctx, tb.Addr, tb.ClientTLS, transport.Options{}, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatalf("the broker refuses new connections: %v", err)
		}
		return c
	}
	f.Cleanup(func() {
		if cc != nil {
			cc.Close()
		}
	})

	f.Fuzz(func(t *testing.T, mode byte, data []byte) {
		mu.Lock()
		defer mu.Unlock()
		// A fresh connection now and then: subscriptions an input opened
		// live as long as their connection.
		if inputs++; cc == nil || inputs%100 == 0 || cc.Conn.Context().Err() != nil {
			if cc != nil {
				cc.Close()
			}
			cc = dial(t)
		}
		b := data
		if mode&1 != 0 {
			b = append(append([]byte(nil), auth...), data...)
		}
		if err := sendAndDrain(cc, mode&2 != 0, b); err != nil {
			t.Fatal(err)
		}
		if err := publishOK(cc, auth); err != nil {
			if cc.Conn.Context().Err() == nil {
				t.Fatalf("the connection is open but no longer serves: %v", err)
			}
			cc.Close() // the broker may close a connection that broke the protocol
			cc = dial(t)
			if err := publishOK(cc, auth); err != nil {
				t.Fatalf("the broker no longer serves a new connection: %v", err)
			}
		}
	})
}

// sendAndDrain writes b on a new stream, ends it, and reads (a
// bidirectional stream's) replies until the broker ends the stream. Write
// and read errors are the point of the exercise and are ignored; a stream
// the broker never ends is reported.
func sendAndDrain(cc *transport.ClientConn, uni bool, b []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if uni {
		s, err := cc.Conn.OpenUniStreamSync(ctx)
		if err != nil {
			return nil
		}
		_, _ = s.Write(b)
		_ = s.Close()
		return nil
	}
	s, err := cc.Conn.OpenStreamSync(ctx)
	if err != nil {
		return nil
	}
	_, _ = s.Write(b)
	_ = s.Close()
	_ = s.SetReadDeadline(time.Now().Add(drainTimeout))
	_, err = io.Copy(io.Discard, s)
	s.CancelRead(0)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return fmt.Errorf("the broker kept the stream open %s after the client ended it", drainTimeout)
	}
	return nil
}

// drainTimeout bounds how long the broker may keep a bidirectional stream
// after the client finished it: far above any reply time, it only catches
// a handler that waits forever.
const drainTimeout = 10 * time.Second

// publishOK authenticates a new stream and publishes with an ack.
func publishOK(cc *transport.ClientConn, auth []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := cc.Conn.OpenStreamSync(ctx)
	if err != nil {
		return err
	}
	defer s.CancelRead(0)
	defer s.Close()
	_ = s.SetReadDeadline(time.Now().Add(5 * time.Second))
	pub, _ := wire.AppendMessageFrame(nil, &wire.Publish{TenantID: "t1", Namespace: "default", Stream: "demo", Payload: []byte("health"), RequestID: wire.U64(42)})
	if _, err := s.Write(append(append([]byte(nil), auth...), pub...)); err != nil {
		return err
	}
	r := wire.NewReader(s, 0)
	for _, want := range []wire.MsgType{"auth_ok", "publish_ok"} {
		fr, err := r.ReadFrame()
		if err != nil {
			return err
		}
		m, err := wire.DecodeMessage(fr.Payload)
		if err != nil {
			return err
		}
		if got := m.Type(); got != want {
			return &unexpectedReply{got: string(got), want: string(want)}
		}
	}
	return nil
}

type unexpectedReply struct{ got, want string }

func (e *unexpectedReply) Error() string { return "reply " + e.got + ", want " + e.want }

func mustFrame(tb testing.TB, m wire.Message) []byte {
	b, err := wire.AppendMessageFrame(nil, m)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}
