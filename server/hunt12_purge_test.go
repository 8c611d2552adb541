package server_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/felixmq/felix/broker"
	"github.com/felixmq/felix/cache"
	"github.com/felixmq/felix/commitlog"
	"github.com/felixmq/felix/internal/testbroker"
	"github.com/felixmq/felix/server"
	"github.com/felixmq/felix/wire"
)

// Purges and flushes pipelined with cache requests on one control stream
// (all sent before any reply is read) are answered in order, each reply
// carrying its request's id; refusals (an unknown stream or cache, names
// no stream or cache can have, an empty or huge name) are answers, never
// a reset, and create nothing even under auto-create.
func TestHunt12PurgePipelinedWithCacheRequests(t *testing.T) {
	tb := testbroker.Start(t,
		testbroker.WithBrokerOptions(broker.Options{AutoCreateStreams: true}),
		testbroker.WithCaches(cache.Config{}, "t1/default/c"),
		testbroker.WithServerOptions(server.Options{AutoCreateCaches: true}),
		testbroker.WithDurableStreams(t.TempDir(), commitlog.Options{Sync: commitlog.SyncNever, SegmentBytes: 256}, "t1/default/disk"))
	st, err := tb.Broker.Stream("t1", "default", "disk")
	if err != nil {
		t.Fatal(err)
	}
	publishN(t, st, 7)
	s := dialRaw(t, tb).open()
	s.authPurge("t1")
	huge := strings.Repeat("x", 64<<10)
	reqs := []wire.Message{
		&wire.CachePut{TenantID: "t1", Namespace: "default", Cache: "c", Key: "k", Value: []byte("v"), RequestID: wire.U64(1)},
		&wire.StreamPurge{TenantID: "t1", Namespace: "default", Stream: "disk", RequestID: 2},
		&wire.CacheGet{TenantID: "t1", Namespace: "default", Cache: "c", Key: "k", RequestID: wire.U64(3)},
		&wire.CacheFlush{TenantID: "t1", Namespace: "default", Cache: "c", RequestID: 4},
		&wire.CacheGet{TenantID: "t1", Namespace: "default", Cache: "c", Key: "k", RequestID: wire.U64(5)},
		&wire.StreamPurge{TenantID: "t1", Namespace: "default", Stream: "../disk", RequestID: 6},
		&wire.CacheFlush{TenantID: "t1", Namespace: "default", Cache: "", RequestID: 7},
		&wire.StreamPurge{TenantID: "t1", Namespace: "default", Stream: huge, RequestID: 8},
		&wire.CacheFlush{TenantID: "t1", Namespace: "nope", Cache: huge, RequestID: 9},
		&wire.StreamPurge{TenantID: "t1", Namespace: "default", Stream: "disk", RequestID: 10},
	}
	for _, m := range reqs {
		s.sendMsg(m)
	}
	for i, want := range []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10} {
		m := s.readMsg()
		var id uint64
		ok := true
		switch m := m.(type) {
		case *wire.CacheOK:
			id = m.RequestID
		case *wire.StreamPurged:
			id = m.RequestID
		case *wire.CacheValue:
			id = *m.RequestID
			ok = (want == 3) == (m.Value != nil)
		case *wire.CacheFlushed:
			id = m.RequestID
			ok = m.Removed == 1
		case *wire.StreamError:
			id = m.RequestID
			ok = m.Code == wire.StreamCodeNotFound || m.Code == wire.StreamCodeInvalid
		case *wire.CacheError:
			id = m.RequestID
			ok = m.Code == wire.StreamCodeNotFound || m.Code == wire.StreamCodeInvalid
		default:
			t.Fatalf("reply %d: %#v", i, m)
		}
		if id != want || !ok {
			t.Fatalf("reply %d: %#v, want an answer to request %d", i, m, want)
		}
		if p, isPurge := m.(*wire.StreamPurged); isPurge && want == 2 && !reflect.DeepEqual(p, &wire.StreamPurged{RequestID: 2, Purged: 7, Offset: 7}) {
			t.Fatalf("purge: %#v", p)
		}
	}
	if n := len(tb.Caches.Caches()); n != 1 {
		t.Fatalf("%d caches: a refused flush created one", n)
	}
	for _, name := range []string{"../disk", huge} {
		if _, err := tb.Broker.LookupStream("t1", "default", name); err == nil {
			t.Fatalf("a refused purge created stream %.20q", name)
		}
	}
}
