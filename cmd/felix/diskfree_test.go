package main

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/felixmq/felix/client"
	"github.com/felixmq/felix/internal/syncbuf"
)

// setDiskFree makes serve's free-space watch read free (bytes) instead of
// the file system, for this test.
func setDiskFree(t *testing.T, free *atomic.Int64) {
	t.Helper()
	diskFreeHook = func(string) (uint64, error) { return uint64(free.Load()), nil }
	t.Cleanup(func() { diskFreeHook = nil })
}

// Below --disk-free-limit the broker refuses, with the storage error the
// SDK knows (client.ErrStorage), publishes to durable streams and puts to
// durable caches, and takes everything else (an in-memory stream, a
// delete); once there is room again durable writes are taken, with no
// restart and nothing lost from before.
func TestDiskFreeLimitRefusesDurableWrites(t *testing.T) {
	var free atomic.Int64
	free.Store(1 << 30)
	setDiskFree(t, &free)
	logs := &syncbuf.Buffer{}
	addr, _, ca, stop := startServeLogs(t, t.TempDir(), logs, "--durable-stream", "default/default/orders", "--stream", "default/default/ticks",
		"--durable-cache", "default/default/sessions", "--disk-free-limit", "100000000", "--log-level", "info")
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, addr, client.Options{CAFile: ca})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	kv := c.Cache("default", "sessions")
	if err := c.Publish(ctx, "default", "orders", []byte("order-1")); err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, "gone", []byte("x")); err != nil {
		t.Fatal(err)
	}

	free.Store(40 << 20)
	// The watch looks every second: wait for the alarm by its effect.
	var perr error
	for perr == nil && ctx.Err() == nil {
		perr = c.Publish(ctx, "default", "orders", []byte("order-2"))
		if perr == nil {
			t.Log("published before the watch looked again")
			time.Sleep(20 * time.Millisecond)
		}
	}
	if !errors.Is(perr, client.ErrStorage) || !strings.Contains(perr.Error(), "free disk space 40.0 MiB is below the broker's limit of 95.4 MiB (--disk-free-limit)") {
		t.Fatalf("durable publish below the floor: %v, want client.ErrStorage naming the free space and the limit", perr)
	}
	if _, err := kv.Put(ctx, "k", []byte("v")); !errors.Is(err, client.ErrStorage) {
		t.Fatalf("durable cache put below the floor: %v, want client.ErrStorage", err)
	}
	if _, ok, err := kv.Get(ctx, "k"); ok || err != nil {
		t.Fatalf("the refused put is there: %v, %v", ok, err)
	}
	if ok, err := kv.Delete(ctx, "gone"); !ok || err != nil {
		t.Fatalf("delete below the floor: %v, %v; deletes free space and are taken", ok, err)
	}
	if err := c.Publish(ctx, "default", "ticks", []byte("tick")); err != nil {
		t.Fatalf("in-memory stream below the floor: %v", err)
	}
	if !strings.Contains(logs.String(), "disk alarm: free space below --disk-free-limit") {
		t.Errorf("no alarm in the log:\n%s", logs)
	}

	free.Store(1 << 30)
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := c.Publish(ctx, "default", "orders", []byte("order-3"))
		if err == nil {
			break
		}
		if !errors.Is(err, client.ErrStorage) || time.Now().After(deadline) {
			t.Fatalf("publish once there is room: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := kv.Put(ctx, "k", []byte("v")); err != nil {
		t.Fatalf("durable cache put once there is room: %v", err)
	}
	if !strings.Contains(logs.String(), "disk alarm cleared") {
		t.Errorf("no clearing in the log:\n%s", logs)
	}
	sub, err := c.Subscribe(ctx, "default", "orders", client.FromEarliest())
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	var got []string
	for len(got) < 2 {
		ev, err := sub.Next(ctx)
		if err != nil {
			t.Fatalf("after %q: %v", got, err)
		}
		if s := string(ev.Payload); s != "order-2" {
			got = append(got, s)
		}
	}
	if got[0] != "order-1" || got[1] != "order-3" {
		t.Fatalf("the stream holds %q, want order-1 then order-3 (order-2 only if taken before the alarm)", got)
	}
}

// --disk-free-limit 0 turns the floor off.
func TestDiskFreeLimitOff(t *testing.T) {
	var free atomic.Int64
	setDiskFree(t, &free) // 0 bytes free
	addr, _, ca, stop := startServeDir(t, t.TempDir(), "--durable-stream", "default/default/orders", "--disk-free-limit", "0")
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, addr, client.Options{CAFile: ca})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Publish(ctx, "default", "orders", []byte("x")); err != nil {
		t.Fatalf("publish with the floor off and no free space read: %v", err)
	}
}
