package server_test

import (
	"context"
	"runtime"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/felixmq/felix/cache"
	"github.com/felixmq/felix/internal/testbroker"
	"github.com/felixmq/felix/internal/testwait"
	"github.com/felixmq/felix/server"
	"github.com/felixmq/felix/wire"
)

// Cache reads pipelined on many streams of one connection whose replies
// the client does not read make the broker hold no more than the
// connection's reply budget (plus what the client's flow control lets
// through), not a reply per stream: a get is a few dozen bytes, its reply
// up to the frame limit. The reads past the budget wait (counted) and are
// answered, every one, once the client reads.
func TestHunt17UnreadCacheRepliesBounded(t *testing.T) {
	const (
		streams = 32
		gets    = 2
		value   = 512 << 10
		budget  = 4 << 20
	)
	tb := testbroker.Start(t, testbroker.WithCaches(cache.Config{}, "t1/default/c"),
		testbroker.WithServerOptions(server.Options{MaxFrameBytes: 1 << 20, MaxReplyBytesPerConn: budget}))
	c := dialRaw(t, tb)
	p := c.open()
	p.auth("t1", nil)
	p.sendMsg(&wire.CachePut{TenantID: "t1", Namespace: "default", Cache: "c", Key: "k", Value: make([]byte, value), RequestID: wire.U64(1)})
	if _, ok := p.readMsg().(*wire.CacheOK); !ok {
		t.Fatal("put refused")
	}
	heap := func() uint64 {
		var ms runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms)
		return ms.HeapInuse
	}
	ss := make([]*rawStream, streams)
	for i := range ss {
		ss[i] = c.open()
		ss[i].auth("t1", nil)
	}
	before := heap()
	for _, s := range ss {
		for j := range gets {
			s.sendMsg(&wire.CacheGet{TenantID: "t1", Namespace: "default", Cache: "c", Key: "k", RequestID: wire.U64(uint64(j))})
		}
	}
	// The reads past the budget wait (half the streams at least), or,
	// without a budget, every stream holds a JSON reply (683 KiB), 21 MiB.
	const limit = 2 * budget
	var grew int64
	testwait.Eventually(t, "cache reads wait for the reply budget", func() bool {
		grew = int64(heap()) - int64(before)
		return tb.Server.Stats().ReplyBudgetWaits.Load() >= streams/2 || grew > limit
	})
	if grew > limit {
		t.Fatalf("heap grew %d MiB for %d streams of unread replies, budget %d MiB", grew>>20, streams, budget>>20)
	}
	var wg sync.WaitGroup
	for _, s := range ss {
		wg.Go(func() {
			s.s.SetReadDeadline(time.Now().Add(testwait.Liveness))
			for j := range gets {
				m, ok := s.readMsg().(*wire.CacheValue)
				if !ok || m.RequestID == nil || *m.RequestID != uint64(j) || len(m.Value) != value {
					t.Errorf("reply %d: %#v", j, m)
					return
				}
			}
		})
	}
	wg.Wait()
}

// Cache reads waiting for the reply budget of a client that reads
// nothing do not hold up a shutdown (they are not requests in progress),
// and end with their connection: Shutdown returns, and nothing of the
// broker is left running.
func TestHunt17ShutdownWithReadsWaitingForBudget(t *testing.T) {
	opt := goleak.IgnoreCurrent()
	tb := testbroker.Start(t, testbroker.WithCaches(cache.Config{}, "t1/default/c"),
		testbroker.WithServerOptions(server.Options{MaxFrameBytes: 1 << 20, MaxReplyBytesPerConn: 2 << 20}))
	c := dialRaw(t, tb)
	p := c.open()
	p.auth("t1", nil)
	p.sendMsg(&wire.CachePut{TenantID: "t1", Namespace: "default", Cache: "c", Key: "k", Value: make([]byte, 512<<10), RequestID: wire.U64(1)})
	if _, ok := p.readMsg().(*wire.CacheOK); !ok {
		t.Fatal("put refused")
	}
	// Every stream authenticates before any get: once unread replies
	// fill the connection's flow-control window, no reply (an auth's ok
	// included) reaches this client, which reads none.
	ss := make([]*rawStream, 16)
	for i := range ss {
		ss[i] = c.open()
		ss[i].auth("t1", nil)
	}
	for _, s := range ss {
		for j := range 4 {
			s.sendMsg(&wire.CacheGet{TenantID: "t1", Namespace: "default", Cache: "c", Key: "k", RequestID: wire.U64(uint64(j))})
		}
	}
	testwait.Eventually(t, "cache reads wait for the reply budget", func() bool {
		return tb.Server.Stats().ReplyBudgetWaits.Load() > 0
	})
	ctx, cancel := context.WithTimeout(context.Background(), testwait.Liveness)
	defer cancel()
	if err := tb.Server.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v (held up by reads waiting for the budget)", err)
	}
	tb.Stop()
	c.cc.Close()
	goleak.VerifyNone(t, opt)
}
