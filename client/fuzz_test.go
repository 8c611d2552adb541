package client

import (
	"context"
	"crypto/tls"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/felixmq/felix/transport"
	"github.com/felixmq/felix/wire"
)

// Hostile-broker roles: which reply of the exchange carries the fuzz bytes.
const (
	hostileAuth        = iota // the reply to auth, on every stream
	hostilePublishAck         // the reply to an acked publish
	hostileCacheReply         // the reply to a cache get
	hostileSubscribed         // the reply to subscribe
	hostileEventStream        // the event stream after a valid hello
	hostileHello              // the whole event stream, hello included
	hostileQueue              // the queue stream after a valid queue_joined
	hostileRoles
)

// hostileSubID is the subscription id the hostile broker assigns.
const hostileSubID = 7

// hostileBroker serves the streams of a startFakeBroker. It follows the
// protocol except in one place, where it sends the bytes of the current
// fuzz input instead.
type hostileBroker struct {
	mu   sync.Mutex
	role int
	json bool // grant no capabilities: JSON cache replies, no queues
	data []byte
}

func (h *hostileBroker) current() (int, bool, []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.role, h.json, h.data
}

func (h *hostileBroker) set(role int, json bool, data []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.role, h.json, h.data = role, json, data
}

func (h *hostileBroker) stream(ctx context.Context, qc *quic.Conn, str *quic.Stream) {
	defer str.CancelRead(0)
	defer str.Close()
	role, json, data := h.current()
	r := wire.NewReader(str, 1<<20)
	r.AllowFlags(wire.FlagBinaryCache)
	if _, err := r.ReadFrame(); err != nil { // auth
		return
	}
	if role == hostileAuth {
		_, _ = str.Write(data)
		return
	}
	flags := wire.KnownFlags | wire.ExtensionCaps
	if json {
		flags = 0
	}
	authOK, _ := wire.AppendMessageFrame(nil, &wire.AuthOK{ServerFlags: flags})
	if _, err := str.Write(authOK); err != nil {
		return
	}
	f, err := r.ReadFrame()
	if err != nil {
		return
	}
	var m wire.Message
	if f.Flags == 0 {
		m, _ = wire.DecodeMessage(f.Payload)
	}
	switch m.(type) {
	case *wire.Subscribe:
		h.subscribe(ctx, qc, str, role, data)
	case *wire.QueueJoin:
		if role != hostileQueue {
			return
		}
		joined, _ := wire.AppendMessageFrame(nil, &wire.QueueJoined{Group: "g", Consumer: "c", Prefetch: 4})
		_, _ = str.Write(append(joined, data...))
	default: // a publish or a cache request
		if role == hostilePublishAck || role == hostileCacheReply {
			_, _ = str.Write(data)
		}
	}
}

func (h *hostileBroker) subscribe(ctx context.Context, qc *quic.Conn, str *quic.Stream, role int, data []byte) {
	if role == hostileSubscribed {
		_, _ = str.Write(data)
		return
	}
	us, err := qc.OpenUniStreamSync(ctx)
	if err != nil {
		return
	}
	defer us.Close()
	hello, _ := wire.AppendMessageFrame(nil, &wire.EventStreamHello{SubscriptionID: hostileSubID})
	switch role {
	case hostileHello:
		_, _ = us.Write(data)
	case hostileEventStream:
		_, _ = us.Write(append(hello, data...))
	default:
		_, _ = us.Write(hello)
	}
	subscribed, _ := wire.AppendMessageFrame(nil, &wire.Subscribed{SubscriptionID: hostileSubID})
	_, _ = str.Write(subscribed)
}

// FuzzHostileBroker points the SDK at a broker that answers one part of an
// exchange (mode picks which, and whether capabilities are granted) with
// arbitrary bytes. Whatever it sends, the SDK must not panic, every call
// must return by its deadline, and Close must return.
func FuzzHostileBroker(f *testing.F) {
	h := &hostileBroker{}
	addr := startFakeBroker(f, transport.Options{}, h.stream)
	clientTLS, err := transport.ClientTLSConfig(transport.ClientTLSOptions{Insecure: true})
	if err != nil {
		f.Fatal(err)
	}

	frame := func(m wire.Message) []byte {
		b, err := wire.AppendMessageFrame(nil, m)
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	events := wire.AppendEventBatchFrame(nil, false, 0, [][]byte{[]byte("a"), []byte("bc")})
	seeds := [][]byte{
		nil,
		[]byte("not a frame"),
		frame(&wire.AuthOK{ServerFlags: 0xffff}),
		frame(&wire.ErrorMessage{Message: "auth failed"}),
		frame(&wire.PublishOK{RequestID: 1}),
		frame(&wire.Subscribed{SubscriptionID: 99}),
		frame(&wire.EventStreamHello{SubscriptionID: hostileSubID}),
		events,
		events[:len(events)-1],
		wire.AppendFrame(nil, 0x8000, []byte("unknown flag")),
		{'F', 'L', 'X', '1', 0, 1, 0, 0, 0xff, 0xff, 0xff, 0xff}, // a huge length
	}
	for _, s := range seeds {
		for role := range byte(hostileRoles) {
			f.Add(role, s)
			f.Add(role|0x80, s) // no capabilities
		}
	}

	f.Fuzz(func(t *testing.T, mode byte, data []byte) {
		role := int(mode&0x7f) % hostileRoles
		h.set(role, mode&0x80 != 0, data)
		done := make(chan struct{})
		go func() {
			defer close(done)
			exercise(addr, clientTLS, role)
		}()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Fatalf("role %d: the SDK did not return within 20 s", role)
		}
	})
}

// exercise dials the hostile broker and runs the operation whose reply is
// hostile, each call bounded by a deadline; errors are expected and
// ignored. It returns once the client is closed.
func exercise(addr string, tlsConf *tls.Config, role int) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	opts := Options{PublishConns: 1, PublishStreamsPerConn: 1, CacheConns: 1, CacheStreamsPerConn: 1, EventConns: 1,
		RequestTimeout: 250 * time.Millisecond, Reconnect: ReconnectPolicy{Disabled: true}, TLS: tlsConf}
	c, err := Dial(ctx, addr, opts)
	if err != nil {
		return
	}
	defer c.Close()
	switch role {
	case hostilePublishAck, hostileAuth:
		_ = c.Publish(ctx, "default", "s", []byte("x"))
	case hostileCacheReply:
		_, _, _ = c.Cache("default", "c").Get(ctx, "k")
	case hostileSubscribed, hostileEventStream, hostileHello:
		sub, err := c.Subscribe(ctx, "default", "s")
		if err != nil {
			return
		}
		defer sub.Close()
		for {
			if _, err := sub.Next(ctx); err != nil {
				return
			}
		}
	case hostileQueue:
		co, err := c.Consumer(ctx, "default", "s", "g")
		if err != nil {
			return
		}
		for {
			if _, err := co.Next(ctx); err != nil {
				return
			}
		}
	}
}
