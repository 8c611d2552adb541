package server_test

import (
	"bytes"
	"context"
	"io"
	"runtime"
	"testing"
	"time"

	"github.com/felixmq/felix/internal/testbroker"
	"github.com/felixmq/felix/internal/testwait"
	"github.com/felixmq/felix/server"
	"github.com/felixmq/felix/wire"
)

// maxPreAuthStreamHeap bounds the heap one stream that has not
// authenticated holds, the broker's and this test client's QUIC state
// included: a peer may open thousands on each connection and hold them for
// AuthTimeout by sending a byte on each. (Measured 2-7 KiB; 19-87 KiB
// before streams read unbuffered until their auth.)
const maxPreAuthStreamHeap = 12 << 10

// Streams opened by a peer that never authenticates cost the broker
// little heap, whether each sent one byte or a frame header announcing the
// largest payload allowed before auth and one byte of it: no read buffer
// is allocated for a stream before it has authenticated (a stream reads
// with the 16 KiB buffer only after its auth), and a payload's buffer
// grows with the bytes received, not with the length announced; on
// control and publish-only streams alike.
func TestPreAuthStreamsHoldLittleHeap(t *testing.T) {
	const streams = 1000
	announce := append(wire.AppendHeader(nil, 0, server.MaxPreAuthFrameBytes), '{')
	for _, tc := range []struct {
		kind, name string
		send       []byte
	}{
		{"control", "one byte", []byte{'F'}}, // the first byte of a frame header
		{"publish-only", "one byte", []byte{'F'}},
		{"control", "a large frame announced", announce},
		{"publish-only", "a large frame announced", announce},
	} {
		kind := tc.kind
		t.Run(kind+", "+tc.name, func(t *testing.T) {
			// The streams wait for their auth while the test measures: give
			// them (and the connection) all the time they need.
			tb := testbroker.Start(t, testbroker.WithStreams("t1/default/demo"),
				testbroker.WithServerOptions(server.Options{AuthTimeout: time.Hour}))
			c := dialRaw(t, tb)
			c.open().auth("t1", nil) // the connection is served: its own state is in before
			open := func() io.Writer {
				ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
				defer cancel()
				if kind == "control" {
					s, err := c.cc.Conn.OpenStreamSync(ctx)
					if err != nil {
						t.Fatal(err)
					}
					return s
				}
				s, err := c.cc.Conn.OpenUniStreamSync(ctx)
				if err != nil {
					t.Fatal(err)
				}
				return s
			}
			base := waitingForAuth()
			before := heapInuse()
			held := make([]io.Writer, streams)
			for i := range held {
				held[i] = open()
				if _, err := held[i].Write(tc.send); err != nil {
					t.Fatal(err)
				}
			}
			testwait.Eventually(t, "every stream's handler waiting for its auth frame", func() bool {
				return waitingForAuth()-base >= streams
			})
			after := heapInuse()
			per := (int64(after) - int64(before)) / streams
			t.Logf("%s streams before auth, %s: %d bytes of heap each (%d in all)", kind, tc.name, per, int64(after)-int64(before))
			if per > maxPreAuthStreamHeap {
				t.Fatalf("%d %s streams that sent %s hold %d bytes of heap each, want at most %d",
					streams, kind, tc.name, per, maxPreAuthStreamHeap)
			}
			runtime.KeepAlive(held)
		})
	}
}

// heapInuse returns the heap in use once garbage (and what sync.Pools
// hold, which two collections free) is collected.
func heapInuse() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// waitingForAuth counts the goroutines of this process that wait inside
// the broker's auth of a stream (for the stream's auth frame).
func waitingForAuth() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	waiting := 0
	for _, g := range bytes.Split(buf, []byte("\n\n")) {
		head, _, _ := bytes.Cut(g, []byte("\n"))
		if bytes.Contains(g, []byte("server.(*conn).authenticate(")) &&
			!bytes.Contains(head, []byte("[running")) && !bytes.Contains(head, []byte("[runnable")) {
			waiting++
		}
	}
	return waiting
}

// A client that writes a frame with unknown flags, its auth and then
// requests of every size in one write gets every answer, byte for byte
// and in order: the broker reads exactly the frames up to the auth
// before it buffers the stream (see TestPreAuthStreamsHoldLittleHeap), so
// nothing pipelined after the auth is lost or read twice, whether it is
// then read through the read buffer, straight into a payload of its own
// (a binary publish over the buffer's size) or in several reads (a JSON
// frame larger than the buffer).
func TestPipelinedAfterAuthInOneWrite(t *testing.T) {
	tb := startTB(t)
	s := dialRaw(t, tb).open()
	frame := func(m wire.Message) []byte {
		b, err := wire.AppendMessageFrame(nil, m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	acked := func(id uint64, payload []byte) []byte {
		b, err := wire.AppendAckedPublishBatchFrame(nil, id, wire.AckPerBatch, "t1", "default", "demo", [][]byte{payload})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	publish := func(id uint64, payload []byte) []byte {
		return frame(&wire.Publish{TenantID: "t1", Namespace: "default", Stream: "demo", Payload: payload, RequestID: wire.U64(id)})
	}
	publishOK := func(id uint64) []byte { return frame(&wire.PublishOK{RequestID: id}) }
	steps := []struct{ frame, want []byte }{
		{append(wire.AppendHeader(nil, 0x0100, 3), "abc"...), frame(&wire.ErrorMessage{Message: "unsupported frame flags"})},
		{frame(&wire.Auth{TenantID: "t1", Token: "dev"}), frame(&wire.OK{})},
		{publish(1, []byte("a")), publishOK(1)},
		{acked(2, bytes.Repeat([]byte{'b'}, 40<<10)), wire.AppendPublishAckFrame(nil, 2, true, "")},
		{publish(3, bytes.Repeat([]byte{'c'}, 200<<10)), publishOK(3)},
		{acked(4, []byte("d")), wire.AppendPublishAckFrame(nil, 4, true, "")},
		{publish(5, []byte("e")), publishOK(5)},
	}
	var all []byte
	for _, st := range steps {
		all = append(all, st.frame...)
	}
	s.send(all)
	for _, st := range steps {
		s.expect(st.want)
	}
	if n := published(tb, "t1"); n != 5 {
		t.Fatalf("%d events published, want 5", n)
	}
	if n := tb.Server.Stats().ProtocolErrors.Load(); n != 0 {
		t.Fatalf("%d protocol errors", n)
	}
}
