package server_test

import (
	"runtime"
	"strings"
	"testing"

	"github.com/felixmq/felix/cache"
	"github.com/felixmq/felix/internal/testbroker"
	"github.com/felixmq/felix/server"
	"github.com/felixmq/felix/wire"
)

// A cache_mget naming one large value many times asks for a reply far
// beyond the frame limit from a request of a few kilobytes. The broker
// refuses it (too_large) without building that reply: what it allocates
// for the request stays within a few frames, not the reply's size. The
// stream then serves the next request.
func TestHunt14MGetOfRepeatedLargeValueBuildsNoHugeReply(t *testing.T) {
	const maxFrame = 256 << 10
	const keys = 1000
	tb := testbroker.Start(t, testbroker.WithCaches(cache.Config{}, "t1/default/primary"),
		testbroker.WithServerOptions(server.Options{MaxFrameBytes: maxFrame}))
	s := dialRaw(t, tb).open()
	s.authExt()
	s.sendMsg(&wire.CachePut{TenantID: "t1", Namespace: "default", Cache: "primary", Key: "k",
		Value: []byte(strings.Repeat("v", maxFrame/2)), RequestID: wire.U64(1)})
	if m, ok := s.readMsg().(*wire.CacheOK); !ok {
		t.Fatalf("put reply %#v", m)
	}
	ks := make([]string, keys) // the reply would be keys × 4/3 × maxFrame/2 bytes
	for i := range ks {
		ks[i] = "k"
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	s.sendMsg(&wire.CacheMGet{TenantID: "t1", Namespace: "default", Cache: "primary", Keys: ks, RequestID: 2})
	m := s.readMsg()
	runtime.ReadMemStats(&after)
	if e, ok := m.(*wire.CacheError); !ok || e.RequestID != 2 || e.Code != "too_large" {
		t.Fatalf("mget reply %#v, want cache_error too_large", m)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 16*maxFrame {
		t.Fatalf("the refused mget allocated %d MiB (frame limit %d KiB)", alloc>>20, maxFrame>>10)
	}
	s.sendMsg(&wire.CacheMGet{TenantID: "t1", Namespace: "default", Cache: "primary", Keys: []string{"k", "none"}, RequestID: 3})
	if v, ok := s.readMsg().(*wire.CacheValues); !ok || len(v.Values) != 2 || len(v.Values[0]) != maxFrame/2 || v.Values[1] != nil {
		t.Fatalf("mget after the refusal: %#v", v)
	}
}
