package e2e

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/felixmq/felix/cache"
	"github.com/felixmq/felix/client"
	"github.com/felixmq/felix/internal/testbroker"
)

// Cache requests over the lossy link (5% loss, 0-5 ms jitter, 1%
// duplicates), with binary and with JSON frames: no wrong value is ever
// returned. Each worker reads its own writes (a read sees the latest
// completed write, docs/semantics.md) byte for byte, with the version its
// Put returned, values up to 20 KB spanning many packets, and MGet agrees;
// compare-and-set increments of one shared counter from every worker are
// never lost or applied twice.
func TestFaultCacheLossyLink(t *testing.T) { bothEncodings(t, testFaultCacheLossyLink) }

func testFaultCacheLossyLink(t *testing.T, jsonCache bool) {
	tb := testbroker.Start(t, testbroker.WithCaches(cache.Config{}, "default/default/fc"))
	px := faultProxy(t, tb, badLink)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := dialVia(t, tb, px, client.Options{JSONCache: jsonCache})
	kv := c.Cache("default", "fc")
	if _, err := kv.Put(ctx, "counter", []byte("0")); err != nil {
		t.Fatal(err)
	}

	value := func(w, k, round int) []byte {
		size := 1 + (w*7919+k*104729+round*1299709)%20000
		b := make([]byte, size)
		copy(b, fmt.Sprintf("w%d k%d r%d ", w, k, round))
		for i := 16; i < size; i++ {
			b[i] = byte(i*w + k + round)
		}
		return b
	}
	const workers, keys, rounds, casEach = 4, 3, 12, 10
	var wg sync.WaitGroup
	var mu sync.Mutex
	casVersions := map[uint64]bool{}
	for w := range workers {
		wg.Go(func() {
			key := func(k int) string { return fmt.Sprintf("w%d-k%d", w, k) }
			for round := range rounds {
				names := make([]string, keys)
				versions := make([]uint64, keys)
				for k := range keys {
					names[k] = key(k)
					v, err := kv.Put(ctx, key(k), value(w, k, round))
					if err != nil {
						t.Errorf("worker %d: put %s round %d: %v", w, key(k), round, err)
						return
					}
					versions[k] = v
					it, err := kv.GetItem(ctx, key(k))
					if err != nil {
						t.Errorf("worker %d: get %s: %v", w, key(k), err)
						return
					}
					if !it.Found || string(it.Value) != string(value(w, k, round)) || it.Version != v {
						t.Errorf("worker %d: %s round %d: read %d bytes %.20q version %d (found %v), wrote %d bytes version %d",
							w, key(k), round, len(it.Value), it.Value, it.Version, it.Found, len(value(w, k, round)), v)
						return
					}
				}
				items, err := kv.MGet(ctx, names)
				if err != nil {
					t.Errorf("worker %d: mget: %v", w, err)
					return
				}
				for k, it := range items {
					if !it.Found || string(it.Value) != string(value(w, k, round)) {
						t.Errorf("worker %d: mget %s round %d: read %d bytes %.20q", w, names[k], round, len(it.Value), it.Value)
						return
					}
				}
			}
			for range casEach {
				v, err := casIncrement(ctx, kv, "counter")
				if err != nil {
					t.Errorf("worker %d: %v", w, err)
					return
				}
				mu.Lock()
				if casVersions[v] {
					t.Errorf("version %d returned by two successful CAS", v)
				}
				casVersions[v] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	v, _, err := kv.Get(ctx, "counter")
	if err != nil || string(v) != strconv.Itoa(workers*casEach) || len(casVersions) != workers*casEach {
		t.Fatalf("counter %q (%v) after %d successful CAS, want %d", v, err, len(casVersions), workers*casEach)
	}
	if s := px.Stats(); s.Dropped == 0 {
		t.Fatalf("the link was not bad: %+v", s)
	}
	t.Logf("%v", px)
}

// casIncrement adds one to the decimal counter under key with
// compare-and-set, retrying while other writers win, and returns the
// version of its write.
func casIncrement(ctx context.Context, kv *client.Cache, key string) (uint64, error) {
	for {
		it, err := kv.GetItem(ctx, key)
		if err != nil {
			return 0, fmt.Errorf("get %s: %w", key, err)
		}
		n, err := strconv.Atoi(string(it.Value))
		if err != nil {
			return 0, fmt.Errorf("%s holds %q", key, it.Value)
		}
		v, err := kv.Put(ctx, key, []byte(strconv.Itoa(n+1)), client.IfVersion(it.Version))
		if !errors.Is(err, client.ErrConditionFailed) {
			return v, err
		}
	}
}
