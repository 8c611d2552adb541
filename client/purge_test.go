package client

import (
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/felixmq/felix/cache"
	"github.com/felixmq/felix/internal/testbroker"
)

// PurgeStream on a durable stream: the result counts what was held, a live
// subscription goes on with what follows, a consumer group that had not
// read the purged records skips them (counted as lost) and gets the next
// ones, a start below the purge point is too old, and an unknown stream
// is not_found.
func TestPurgeStreamDurable(t *testing.T) {
	b := startQueueTestBroker(t)
	c := dial(t, b, Options{})
	ctx := testCtx(t)
	if c.ServerFlags()&0x0100 == 0 {
		t.Fatalf("broker did not grant the purge capability: %#04x", c.ServerFlags())
	}
	// The group exists before anything is published, so it has read
	// nothing ahead when the purge comes.
	co, err := c.Consumer(ctx, "default", "jobs", "g", WithPrefetch(1))
	if err != nil {
		t.Fatal(err)
	}
	if err := co.Close(); err != nil {
		t.Fatal(err)
	}
	sub, err := c.Subscribe(ctx, "default", "jobs", FromEarliest())
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	publishJobs(t, ctx, c, 10)
	for i := range 10 {
		ev, err := sub.Next(ctx)
		if err != nil || ev.Offset != uint64(i) {
			t.Fatalf("event %d before the purge: %+v, %v", i, ev, err)
		}
	}
	res, err := c.PurgeStream(ctx, "default", "jobs")
	if err != nil {
		t.Fatal(err)
	}
	if res != (PurgeResult{Purged: 10, Offset: 10}) {
		t.Fatalf("purge result %+v, want 10 purged, next offset 10", res)
	}
	if err := c.PublishBatch(ctx, "default", "jobs", [][]byte{[]byte("x"), []byte("y")}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []uint64{10, 11} {
		ev, err := sub.Next(ctx)
		if err != nil || ev.Offset != want {
			t.Fatalf("live event after the purge: %+v, %v; want offset %d", ev, err, want)
		}
	}
	if sub.Missed() != 0 {
		t.Fatalf("a live subscription missed %d events over a purge", sub.Missed())
	}
	co, err = c.Consumer(ctx, "default", "jobs", "g", WithPrefetch(1))
	if err != nil {
		t.Fatal(err)
	}
	defer co.Close()
	m, err := co.Next(ctx)
	if err != nil || m.Offset != 10 || string(m.Payload) != "x" {
		t.Fatalf("group's first delivery after the purge: %+v, %v; want offset 10", m, err)
	}
	if err := m.Ack(ctx); err != nil {
		t.Fatal(err)
	}
	st, err := c.QueueStats(ctx, "default", "jobs", "g")
	if err != nil || st.Lost != 10 {
		t.Fatalf("group stats %+v, %v; want 10 lost", st, err)
	}
	_, err = c.Subscribe(ctx, "default", "jobs", FromOffset(3))
	if ce, ok := errors.AsType[*CursorError](err); !ok || ce.Available != 10 {
		t.Fatalf("subscribe below the purge point: %v, want a too-old cursor error at 10", err)
	}
	_, err = c.PurgeStream(ctx, "default", "nope")
	if se, ok := errors.AsType[*ServerError](err); !ok || se.Code != "not_found" {
		t.Fatalf("purge of an unknown stream: %v, want not_found", err)
	}
}

// PurgeStream on an in-memory stream empties its replay ring: an earliest
// subscription then starts at the purge point.
func TestPurgeStreamInMemory(t *testing.T) {
	b := startBroker(t)
	c := dial(t, b, Options{})
	ctx := testCtx(t)
	for i := range 5 {
		if err := c.Publish(ctx, "default", "demo", binary.BigEndian.AppendUint64(nil, uint64(i))); err != nil {
			t.Fatal(err)
		}
	}
	res, err := c.PurgeStream(ctx, "default", "demo")
	if err != nil || res != (PurgeResult{Purged: 5, Offset: 5}) {
		t.Fatalf("purge: %+v, %v; want 5 purged, next offset 5", res, err)
	}
	if err := c.Publish(ctx, "default", "demo", []byte("after")); err != nil {
		t.Fatal(err)
	}
	sub, err := c.Subscribe(ctx, "default", "demo", FromEarliest())
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	expectEvents(t, ctx, sub, []string{"after"})
}

// Cache.Flush removes every entry; a compare-and-set with a version read
// before the flush fails afterwards; an unknown cache is not_found.
func TestCacheFlush(t *testing.T) {
	b := startBroker(t, testbroker.WithCaches(cache.Config{}, "default/default/c"))
	c := dial(t, b, Options{})
	ctx := testCtx(t)
	kv := c.Cache("default", "c")
	var v0 uint64
	for i, k := range []string{"a", "b", "c"} {
		v, err := kv.Put(ctx, k, []byte("1"))
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			v0 = v
		}
	}
	n, err := kv.Flush(ctx)
	if err != nil || n != 3 {
		t.Fatalf("flush: %d, %v; want 3", n, err)
	}
	if _, ok, err := kv.Get(ctx, "a"); err != nil || ok {
		t.Fatalf("get after the flush: found %v, %v", ok, err)
	}
	if _, err := kv.Put(ctx, "a", []byte("2")); err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, "a", []byte("3"), IfVersion(v0)); !errors.Is(err, ErrConditionFailed) {
		t.Fatalf("CAS with a version from before the flush: %v, want ErrConditionFailed", err)
	}
	_, err = c.Cache("default", "nope").Flush(ctx)
	if ce, ok := errors.AsType[*CacheError](err); !ok || ce.Code != "not_found" {
		t.Fatalf("flush of an unknown cache: %v, want not_found", err)
	}
}

// A consumer group created with NewGroupFromLatest gets only what is
// published after it; NewGroupFromTime starts at the first record at or
// after the time; an existing group ignores the option.
func TestNewGroupStart(t *testing.T) {
	b := startQueueTestBroker(t)
	c := dial(t, b, Options{})
	ctx := testCtx(t)
	publishJobs(t, ctx, c, 4)
	// Starts by time are to the millisecond: mid is 5 ms clear of both
	// batches' stamps.
	time.Sleep(5 * time.Millisecond)
	mid := time.Now()
	time.Sleep(5 * time.Millisecond)
	publishJobs(t, ctx, c, 2) // offsets 4, 5 (payloads 0, 1)
	first := func(group string, opts ...ConsumerOption) uint64 {
		t.Helper()
		co, err := c.Consumer(ctx, "default", "jobs", group, append(opts, WithPrefetch(1))...)
		if err != nil {
			t.Fatal(err)
		}
		defer co.Close()
		m, err := co.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return m.Offset
	}
	co, err := c.Consumer(ctx, "default", "jobs", "new", NewGroupFromLatest(), WithPrefetch(1))
	if err != nil {
		t.Fatal(err)
	}
	defer co.Close()
	publishJobs(t, ctx, c, 1) // offset 6
	if m, err := co.Next(ctx); err != nil || m.Offset != 6 {
		t.Fatalf("group from latest: first delivery %+v, %v; want offset 6", m, err)
	}
	if got := first("since", NewGroupFromTime(mid)); got != 4 {
		t.Fatalf("group from a time: first offset %d, want 4", got)
	}
	if got := first("default"); got != 0 {
		t.Fatalf("group without a start: first offset %d, want 0", got)
	}
	// "since" exists and holds nothing in flight now: a start is ignored.
	if got := first("since", NewGroupFromOffset(0)); got != 4 {
		t.Fatalf("existing group with a start: first offset %d, want 4 (redelivered)", got)
	}
	if _, err := c.Consumer(ctx, "default", "jobs", "far", NewGroupFromOffset(1000)); err == nil {
		t.Fatal("a start beyond the stream's end was accepted")
	}
}
