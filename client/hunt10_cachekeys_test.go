package client

import (
	"context"
	"errors"
	"testing"

	"github.com/felixmq/felix/wire"
)

// dialScanBroker dials a fake broker granting the cache extension that
// answers every cache_scan with page(request).
func dialScanBroker(t *testing.T, page func(*wire.CacheScan) *wire.CacheScanPage) *Cache {
	t.Helper()
	return dialFakeCacheBroker(t, wire.KnownFlags|wire.CapCacheExt, func(m wire.Message) (wire.Message, bool) {
		sc, ok := m.(*wire.CacheScan)
		if !ok {
			return nil, false
		}
		p := page(sc)
		p.RequestID = sc.RequestID
		return p, true
	})
}

// A broker whose pages go back (the same page again, keys before the
// cursor, out of order, or without the prefix asked for) is an error of
// Scan, so Keys ends instead of looping forever (before the fix it
// yielded the same keys without end).
func TestHunt10ScanRefusesPagesGoingBack(t *testing.T) {
	for name, page := range map[string]func(*wire.CacheScan) *wire.CacheScanPage{
		"same page again": func(*wire.CacheScan) *wire.CacheScanPage {
			return &wire.CacheScanPage{Keys: []string{"a", "b"}, Cursor: "b"}
		},
		"before the cursor": func(m *wire.CacheScan) *wire.CacheScanPage {
			if m.Cursor == "" {
				return &wire.CacheScanPage{Keys: []string{"m"}, Cursor: "m"}
			}
			return &wire.CacheScanPage{Keys: []string{"c", "d"}, Cursor: "d"}
		},
		"out of order": func(*wire.CacheScan) *wire.CacheScanPage {
			return &wire.CacheScanPage{Keys: []string{"b", "a", "c"}, Cursor: "c"}
		},
		"repeated key": func(*wire.CacheScan) *wire.CacheScanPage {
			return &wire.CacheScanPage{Keys: []string{"a", "a"}, Cursor: ""}
		},
		"outside the prefix": func(*wire.CacheScan) *wire.CacheScanPage {
			return &wire.CacheScanPage{Keys: []string{"user:1", "zz"}, Cursor: ""}
		},
	} {
		t.Run(name, func(t *testing.T) {
			kv := dialScanBroker(t, page)
			prefix := ""
			if name == "outside the prefix" {
				prefix = "user:"
			}
			n := 0
			var err error
			for k, e := range kv.Keys(testCtx(t), prefix) {
				if e != nil {
					err = e
					break
				}
				if n++; n > 100 {
					t.Fatalf("Keys yielded %d keys from 2-key pages, the last %q: it does not end", n, k)
				}
			}
			if err == nil || errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Keys ended with %v; want the page refused", err)
			}
		})
	}
	// A well-formed scan, the empty key first, is taken as it is.
	kv := dialScanBroker(t, func(m *wire.CacheScan) *wire.CacheScanPage {
		if m.Cursor == "" {
			return &wire.CacheScanPage{Keys: []string{"", "a"}, Cursor: "a"}
		}
		return &wire.CacheScanPage{Keys: []string{"b"}, Cursor: ""}
	})
	var got []string
	for k, err := range kv.Keys(testCtx(t), "") {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, k)
	}
	if len(got) != 3 || got[0] != "" || got[1] != "a" || got[2] != "b" {
		t.Fatalf("keys %q", got)
	}
}
