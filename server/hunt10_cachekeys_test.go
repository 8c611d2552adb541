package server_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/felixmq/felix/cache"
	"github.com/felixmq/felix/internal/testbroker"
	"github.com/felixmq/felix/server"
	"github.com/felixmq/felix/wire"
)

// hunt10Key returns a random UTF-8 key of up to n runes drawn from the
// characters JSON escapes (quotes, backslashes, every control
// character, short and \u00xx), those it does not (DEL, U+2028, U+2029,
// '<', '&', multi-byte letters and emoji) and plain ASCII.
func hunt10Key(r *rand.Rand, n int) string {
	alphabet := []rune{'"', '\\', '/', 0, 1, '\b', '\t', '\n', '\f', '\r', 0x1b, 0x1f, 0x7f, 0x2028, 0x2029, '<', '>', '&',
		'é', 'ß', '日', '😀', 0xfffd, 'a', 'z', '0', ':', ' '}
	var b strings.Builder
	for range r.IntN(n + 1) {
		b.WriteRune(alphabet[r.IntN(len(alphabet))])
	}
	return b.String()
}

// cache_scan with keys whose JSON is longer than their bytes (escapes)
// and keys JSON writes as they are, the empty key, and keys at the
// largest size a page holds, under a low frame limit: every page's frame
// is within the limit, every key comes exactly once in byte order, with
// and without a prefix, and every request continuing the scan fits the
// limit too. A key over half the page is refused with too_large and the
// stream goes on.
func TestHunt10CacheScanEscapedKeysFrameLimit(t *testing.T) {
	const limit = 1024
	tb := testbroker.Start(t, testbroker.WithCaches(cache.Config{}, "t1/default/primary"), smallVersions(),
		testbroker.WithServerOptions(server.Options{MaxFrameBytes: limit}))
	s := dialRaw(t, tb).open()
	s.authExt()

	// The largest key a page holds: the page's envelope, the key (and
	// its comma) twice, as a key and as the cursor.
	envelope, err := wire.EncodeMessage(&wire.CacheScanPage{RequestID: 99999, Keys: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	room := (limit-len(envelope))/2 - 1 // QuotedLen of the largest key
	maxPlain := strings.Repeat("m", room-2)
	maxEscaped := strings.Repeat("\x01", (room-2)/6) + strings.Repeat("m", (room-2)%6)
	if wire.QuotedLen(maxPlain) != room || wire.QuotedLen(maxEscaped) != room {
		t.Fatalf("largest keys of %d and %d quoted bytes, want %d", wire.QuotedLen(maxPlain), wire.QuotedLen(maxEscaped), room)
	}
	r := rand.New(rand.NewPCG(10, 10))
	set := map[string]bool{"": true, "\x00": true, maxPlain: true, maxEscaped: true, `"`: true, `\`: true, "\u2028": true}
	for len(set) < 400 {
		k := hunt10Key(r, 40)
		if wire.QuotedLen(k) <= room {
			set[k] = true
		}
	}
	id := uint64(0)
	for k := range set {
		id++
		s.sendMsg(put(id, k, nil))
		if m, ok := s.readMsg().(*wire.CacheOK); !ok {
			t.Fatalf("put %q: %#v", k, m)
		}
	}
	all := slices.Sorted(func(yield func(string) bool) {
		for k := range set {
			if !yield(k) {
				return
			}
		}
	})

	scanPages := func(prefix string, pageLimit *uint64) (keys []string, pages int) {
		t.Helper()
		cursor := ""
		for {
			id++
			req := scan(id, prefix, cursor, pageLimit)
			b, err := wire.AppendMessageFrame(nil, req)
			if err != nil {
				t.Fatal(err)
			}
			if n := len(b) - wire.HeaderSize; n > limit {
				t.Fatalf("request continuing after %q is %d bytes, over the frame limit %d", cursor, n, limit)
			}
			s.sendMsg(req)
			f, err := s.r.ReadFrame()
			if err != nil {
				t.Fatal(err)
			}
			if len(f.Payload) > limit {
				t.Fatalf("page of %d bytes over the frame limit %d", len(f.Payload), limit)
			}
			m, err := wire.DecodeMessage(f.Payload)
			p, ok := m.(*wire.CacheScanPage)
			if err != nil || !ok || p.RequestID != id {
				t.Fatalf("prefix %q after %q: %v %#v", prefix, cursor, err, m)
			}
			if p.Cursor != "" && (len(p.Keys) == 0 || p.Keys[len(p.Keys)-1] != p.Cursor) {
				t.Fatalf("cursor %q is not the page's last key", p.Cursor)
			}
			keys = append(keys, p.Keys...)
			pages++
			if cursor = p.Cursor; cursor == "" {
				return keys, pages
			}
			if pages > 10*len(all) {
				t.Fatal("the scan does not end")
			}
		}
	}
	got, pages := scanPages("", wire.U64(1000))
	if !slices.Equal(got, all) {
		t.Fatalf("scan returned %d keys over %d pages; want the %d keys in order", len(got), pages, len(all))
	}
	if pages < 10 {
		t.Fatalf("%d pages: the frame limit did not cut them", pages)
	}
	for _, prefix := range []string{"\x00", `"`, `\`, "\u2028", "é", "😀", "m", "mm", maxPlain, maxEscaped[:len(maxEscaped)/2], "a\x7f"} {
		var want []string
		for _, k := range all {
			if strings.HasPrefix(k, prefix) {
				want = append(want, k)
			}
		}
		for _, l := range []*uint64{wire.U64(1), wire.U64(3), nil} {
			if got, _ := scanPages(prefix, l); !slices.Equal(got, want) {
				t.Fatalf("prefix %q limit %v: %d keys, want %d", prefix, l, len(got), len(want))
			}
		}
	}

	// A few bytes more than a page holds, plain or escaped.
	for _, k := range []string{maxPlain + "mmmm", maxEscaped[:len(maxEscaped)-1] + "\x02\x02"} {
		id++
		s.sendMsg(put(id, k, nil))
		s.readMsg()
		id++
		s.sendMsg(scan(id, k, "", nil))
		if m, ok := s.readMsg().(*wire.CacheError); !ok || m.Code != "too_large" || m.RequestID != id {
			t.Fatalf("a key of %d quoted bytes: %#v; want too_large", wire.QuotedLen(k), m)
		}
	}
	// A whole scan reaches the key too large and is refused there; one
	// after it goes on.
	id++
	s.sendMsg(scan(id, "", maxPlain, wire.U64(2)))
	if m, ok := s.readMsg().(*wire.CacheError); !ok || m.Code != "too_large" {
		t.Fatalf("scan reaching a key too large: %#v; want too_large", m)
	}
	id++
	s.sendMsg(scan(id, "", maxPlain+"mmmm", wire.U64(2)))
	i, _ := slices.BinarySearch(all, maxPlain+"mmmm")
	if m, ok := s.readMsg().(*wire.CacheScanPage); !ok || !slices.Equal(m.Keys, all[i:min(i+2, len(all))]) {
		t.Fatalf("scan after the key too large: %#v; want the keys after it", m)
	}
}

// cache_expire and cache_scan on a cache deleted and declared again
// while they run (as a control-plane capacity change of an in-memory
// cache does): an expire never creates the key in the new cache, and a
// scan answers pages, never an error that ends the stream.
func TestHunt10CacheExpireScanAcrossRecreation(t *testing.T) {
	tb := testbroker.Start(t, testbroker.WithCaches(cache.Config{}, "t1/default/primary"), smallVersions())
	s := dialRaw(t, tb).open()
	s.authExt()
	scope := cache.Scope{Tenant: "t1", Namespace: "default", Cache: "primary"}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 200 {
			if _, err := tb.Caches.Replace(scope, cache.Config{}); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	id := uint64(0)
	for i := 0; ; i++ {
		select {
		case <-done:
			c, err := tb.Caches.Get(scope)
			if err != nil {
				t.Fatal(err)
			}
			if n := c.Stats().Entries; n != 0 {
				t.Fatalf("%d entries in the last cache: an expire created a key", n)
			}
			return
		default:
		}
		if i > 100000 {
			t.Fatal("the recreations did not end")
		}
		id++
		s.sendMsg(expire(id, fmt.Sprintf("k%d", i%5), 60000))
		if m, ok := s.readMsg().(*wire.CacheExpireResult); !ok || m.Found {
			t.Fatalf("expire of a key never written: %#v", m)
		}
		id++
		s.sendMsg(scan(id, "", "", nil))
		if m, ok := s.readMsg().(*wire.CacheScanPage); !ok || len(m.Keys) != 0 {
			t.Fatalf("scan of an empty cache: %#v", m)
		}
	}
}
