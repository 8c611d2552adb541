package server_test

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/felixmq/felix/broker"
	"github.com/felixmq/felix/commitlog"
	"github.com/felixmq/felix/internal/testbroker"
	"github.com/felixmq/felix/internal/testclock"
	"github.com/felixmq/felix/wire"
)

// startTimeClock is the clock both stream kinds are stamped with.
type startTimeClock struct{ testclock.Clock }

var stBase = time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)

func (c *startTimeClock) set(ms int64) { c.Set(stBase.Add(time.Duration(ms) * time.Millisecond)) }

func stMs(ms int64) uint64 { return uint64(stBase.UnixMilli() + ms) }

// startTimeBroker serves t1/default/demo in memory and t1/default/log on
// a disk log of small segments, both stamped by clock, and has batches
// of 3 events at ms 0, 10, 20 and 30 on each ("e0".."e11").
func startTimeBroker(t *testing.T) (*testbroker.Broker, *startTimeClock) {
	t.Helper()
	clock := &startTimeClock{}
	clock.set(0)
	tb := testbroker.Start(t, testbroker.WithStreams("t1/default/demo"),
		testbroker.WithBrokerOptions(broker.Options{Clock: clock.Now, QueuePolicy: broker.Block}),
		testbroker.WithDurableStreams(t.TempDir(), commitlog.Options{SegmentBytes: 140, Clock: clock.Now, RetentionInterval: -1, Logger: slog.New(slog.DiscardHandler)}, "t1/default/log"))
	for _, name := range []string{"demo", "log"} {
		s, err := tb.Broker.Stream("t1", "default", name)
		if err != nil {
			t.Fatal(err)
		}
		for b := range int64(4) {
			clock.set(b * 10)
			ps := make([][]byte, 3)
			for i := range ps {
				ps[i] = []byte("e" + strconv.Itoa(int(b)*3+i))
			}
			if _, err := s.Publish(context.Background(), ps); err != nil {
				t.Fatal(err)
			}
		}
	}
	return tb, clock
}

// subscribeRaw authenticates a stream with flags and sends a subscribe
// frame with the given start JSON.
func subscribeRaw(t *testing.T, c *rawConn, flags *uint16, stream, start string) *rawStream {
	t.Helper()
	s := c.open()
	s.sendMsg(&wire.Auth{TenantID: "t1", Token: "dev", ClientFlags: flags})
	if flags != nil {
		s.expectJSON(`{"type":"auth_ok","server_flags":` + strconv.Itoa(int(wire.ServerFlagsFor(*flags))) + `}`)
	} else {
		s.expectJSON(`{"type":"ok"}`)
	}
	s.send(wire.AppendFrame(nil, 0, []byte(`{"type":"subscribe","tenant_id":"t1","namespace":"default","stream":"`+stream+`","start":`+start+`}`)))
	return s
}

// events reads n events (offset and payload) from an event stream whose
// hello the caller has read.
func events(t *testing.T, ev *rawStream, n int) (offsets []uint64, payloads []string) {
	t.Helper()
	var b wire.BinaryEventBatch
	for len(payloads) < n {
		f, err := ev.r.ReadFrame()
		if err != nil {
			t.Fatalf("after %d events: %v", len(payloads), err)
		}
		if err := wire.DecodeEventBatch(f.Flags, f.Payload, &b); err != nil {
			t.Fatal(err)
		}
		if !b.HasOffsets {
			t.Fatalf("frame %#04x without offsets", f.Flags)
		}
		for i, p := range b.Payloads {
			offsets = append(offsets, b.BaseOffset+uint64(i))
			payloads = append(payloads, string(p))
		}
	}
	return offsets, payloads
}

func TestStartTimeNegotiated(t *testing.T) {
	tb, clock := startTimeBroker(t)
	c := dialRaw(t, tb)
	if got := wire.ServerFlagsFor(wire.KnownFlags | wire.CapStartTime); got != 0x043F {
		t.Fatalf("server_flags for 0x043F = %#04x", got)
	}
	// With in-memory offsets too, so that every frame has offsets.
	flags := wire.KnownFlags | wire.CapStartTime | wire.CapMemOffsets
	for _, stream := range []string{"demo", "log"} {
		for _, c2 := range []struct {
			ms   int64
			from uint64
		}{{-3_600_000, 0}, {0, 0}, {5, 3}, {20, 6}, {21, 9}, {3_600_000, 12}} {
			s := subscribeRaw(t, c, &flags, stream, `{"time_ms":`+strconv.FormatUint(stMs(c2.ms), 10)+`}`)
			m, ok := s.readMsg().(*wire.Subscribed)
			if !ok {
				t.Fatalf("%s ms %d: reply %T", stream, c2.ms, m)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			us, err := c.cc.Conn.AcceptUniStream(ctx)
			cancel()
			if err != nil {
				t.Fatal(err)
			}
			ev := &rawStream{t: t, r: wire.NewReader(us, 0)}
			ev.expectMsg(&wire.EventStreamHello{SubscriptionID: m.SubscriptionID})
			if c2.from == 12 {
				// From the tail: the next event published is the first.
				clock.set(40)
				st, _ := tb.Broker.Stream("t1", "default", stream)
				if _, err := st.Publish(context.Background(), [][]byte{[]byte("live")}); err != nil {
					t.Fatal(err)
				}
				offs, ps := events(t, ev, 1)
				if offs[0] != 12 || ps[0] != "live" {
					t.Fatalf("%s: first event after a future time: %d %q", stream, offs[0], ps[0])
				}
				us.CancelRead(0)
				continue
			}
			offs, ps := events(t, ev, int(12-c2.from))
			for i := range offs {
				want := c2.from + uint64(i)
				if offs[i] != want || ps[i] != "e"+strconv.Itoa(int(want)) {
					t.Fatalf("%s ms %d: event %d is %d %q, want %d", stream, c2.ms, i, offs[i], ps[i], want)
				}
			}
			us.CancelRead(0)
		}
	}
}

// Without the capability (offered or not) the time form is an unknown
// start: the stream is reset as malformed, with no reply.
func TestStartTimeNotNegotiated(t *testing.T) {
	tb, _ := startTimeBroker(t)
	c := dialRaw(t, tb)
	known := wire.KnownFlags
	others := wire.KnownFlags | wire.ExtensionCaps&^wire.CapStartTime
	for _, flags := range []*uint16{nil, &known, &others} {
		for _, stream := range []string{"demo", "log", "nope"} {
			s := subscribeRaw(t, c, flags, stream, `{"time_ms":`+strconv.FormatUint(stMs(0), 10)+`}`)
			_, err := s.r.ReadFrame()
			var se *quic.StreamError
			if !errors.As(err, &se) || se.ErrorCode != quic.StreamErrorCode(wire.ResetMalformed) {
				t.Fatalf("flags %v stream %s: %v, want a reset with code %d", flags, stream, err, wire.ResetMalformed)
			}
		}
	}
	// A malformed time form is malformed with the capability too.
	flags := wire.KnownFlags | wire.CapStartTime
	for _, bad := range []string{`{"time_ms":-1}`, `{"time_ms":"1"}`, `{"time_ms":1.5}`, `{"time_ms":null}`} {
		s := subscribeRaw(t, c, &flags, "demo", bad)
		_, err := s.r.ReadFrame()
		var se *quic.StreamError
		if !errors.As(err, &se) || se.ErrorCode != quic.StreamErrorCode(wire.ResetMalformed) {
			t.Fatalf("start %s: %v, want a reset", bad, err)
		}
	}
	// The connection still serves.
	s := c.open()
	s.auth("t1", wire.U16(wire.KnownFlags))
	s.sendMsg(&wire.Publish{TenantID: "t1", Namespace: "default", Stream: "demo", Payload: []byte("x"), RequestID: wire.U64(1)})
	s.expectMsg(&wire.PublishOK{RequestID: 1})
}

// A start by time is a subscribe like any other: the tenant, the
// permission and the stream are checked first.
func TestStartTimeRefusalsAsAnySubscribe(t *testing.T) {
	tb, _ := startTimeBroker(t)
	c := dialRaw(t, tb)
	flags := wire.KnownFlags | wire.CapStartTime
	s := subscribeRaw(t, c, &flags, "nope", `{"time_ms":0}`)
	s.expectJSON(`{"type":"error","message":"stream not found: tenant=t1 namespace=default stream=nope"}`)
	s.expectEnd()
	s = c.open()
	s.sendMsg(&wire.Auth{TenantID: "t1", Token: "dev", ClientFlags: wire.U16(flags)})
	s.readMsg()
	s.sendMsg(&wire.Subscribe{TenantID: "t2", Namespace: "default", Stream: "demo", Start: &wire.StartPosition{Kind: wire.StartTime}})
	s.expectJSON(`{"type":"error","message":"tenant mismatch"}`)
	s.expectEnd()
}
