package e2e

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/felixmq/felix/cache"
	"github.com/felixmq/felix/client"
	"github.com/felixmq/felix/internal/testbroker"
	"github.com/felixmq/felix/wire"
)

// hunt19MaxCacheValue is the largest value a binary cache put of key to
// default/default/cacheName carries within the frame limit frame.
func hunt19MaxCacheValue(t testing.TB, frame int, cacheName, key string) int {
	t.Helper()
	f, err := wire.AppendCacheBinPutFrame(nil, 1, &wire.CachePut{TenantID: "default", Namespace: "default", Cache: cacheName, Key: key, Value: []byte{}})
	if err != nil {
		t.Fatal(err)
	}
	return frame - (len(f) - wire.HeaderSize)
}

// hunt19CacheSizes are the values k00-k06 of TestHunt19CacheLargeValues;
// k06, the largest a put carries, is added by the test.
var hunt19CacheSizes = []int{0, 1, 64 * kib, 256 * kib, 512 * kib, mib}

// Values of every size, up to the largest a binary put carries, are
// stored and read back byte-exact with binary frames; the largest plus one
// byte is refused by the SDK (ErrValueTooLarge) and the next requests on
// the same client work. Through JSON frames (base64) a 1 MiB value goes
// both ways, the largest binary value cannot be put (ErrValueTooLarge)
// and reading it is refused by the broker as too large for a reply (the
// stream goes on); an mget whose reply would pass the frame limit is
// refused the same way, and a smaller one of several large values works.
// The frame limit is hunt19Frame on both sides.
func TestHunt19CacheLargeValues(t *testing.T) {
	tb := testbroker.Start(t, testbroker.WithCaches(cache.Config{}, "default/default/c"), hunt19Server(hunt19Frame))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	bin := hunt19Dial(t, tb, hunt19Frame, client.Options{CacheConns: 1, CacheStreamsPerConn: 1}).Cache("default", "c")
	js := hunt19Dial(t, tb, hunt19Frame, client.Options{CacheConns: 1, CacheStreamsPerConn: 1, JSONCache: true}).Cache("default", "c")

	max := hunt19MaxCacheValue(t, hunt19Frame, "c", "k06")
	for i, size := range append(hunt19CacheSizes, max) {
		key := fmt.Sprintf("k%02d", i)
		v := hunt19Payload(uint64(100+i), size)
		if _, err := bin.Put(ctx, key, v); err != nil {
			t.Fatalf("put %s (%d bytes): %v", key, size, err)
		}
		got, found, err := bin.Get(ctx, key)
		if err != nil || !found || len(got) != size || hunt19Sum(got) != hunt19Sum(v) {
			t.Fatalf("get %s: %d bytes, found %v, %v; want %d bytes byte-exact", key, len(got), found, err, size)
		}
	}
	_, err := bin.Put(ctx, "k06", hunt19Payload(1, max+1))
	if !errors.Is(err, client.ErrValueTooLarge) {
		t.Fatalf("put of max+1 = %d bytes: %v, want ErrValueTooLarge", max+1, err)
	}
	if got, _, err := bin.Get(ctx, "k06"); err != nil || hunt19Sum(got) != hunt19Sum(hunt19Payload(106, max)) {
		t.Fatalf("k06 after the refused put: %d bytes, %v", len(got), err)
	}

	// JSON: 1 MiB both ways; the largest binary value neither way.
	v1 := hunt19Payload(7, mib)
	if _, err := js.Put(ctx, "j1", v1); err != nil {
		t.Fatal(err)
	}
	if got, _, err := js.Get(ctx, "j1"); err != nil || hunt19Sum(got) != hunt19Sum(v1) {
		t.Fatalf("json get j1: %d bytes, %v", len(got), err)
	}
	if _, err := js.Put(ctx, "jmax", hunt19Payload(8, max)); !errors.Is(err, client.ErrValueTooLarge) {
		t.Fatalf("json put of %d bytes: %v, want ErrValueTooLarge", max, err)
	}
	if _, _, err := js.Get(ctx, "k06"); !errors.Is(err, client.ErrValueTooLarge) {
		t.Fatalf("json get of a %d-byte value: %v, want ErrValueTooLarge (the reply would pass the frame limit)", max, err)
	}
	if got, _, err := js.Get(ctx, "k05"); err != nil || len(got) != mib {
		t.Fatalf("json get after a refused reply: %d bytes, %v", len(got), err)
	}

	// mget: 512 KiB + 256 KiB + a miss + 64 KiB + 0 go (about 1.1 MiB of
	// base64); two values of 1 MiB (2.7 MiB of base64) do not.
	items, err := bin.MGet(ctx, []string{"k04", "k03", "nope", "k02", "k00"})
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []int{4, 3, -1, 2, 0} {
		it := items[i]
		if want < 0 {
			if it.Found {
				t.Errorf("mget: missing key found")
			}
			continue
		}
		size := hunt19CacheSizes[want]
		if !it.Found || len(it.Value) != size || hunt19Sum(it.Value) != hunt19Sum(hunt19Payload(uint64(100+want), size)) {
			t.Errorf("mget item %d: found %v, %d bytes, want k%02d byte-exact", i, it.Found, len(it.Value), want)
		}
	}
	if _, err := bin.MGet(ctx, []string{"k05", "j1"}); !errors.Is(err, client.ErrValueTooLarge) {
		t.Fatalf("mget of two 1 MiB values: %v, want ErrValueTooLarge", err)
	}
	if _, err := bin.MGet(ctx, []string{"k06"}); !errors.Is(err, client.ErrValueTooLarge) {
		t.Fatalf("mget of the largest value: %v, want ErrValueTooLarge", err)
	}
	if got, _, err := bin.Get(ctx, "k06"); err != nil || len(got) != max {
		t.Fatalf("get after refused mgets: %d bytes, %v", len(got), err)
	}
}

// A durable cache holding values of every size up to the largest a put
// carries (frame limit hunt19LogFrame: its record is larger than every
// buffer a commit log read shares) reloads them byte-exact after a
// restart (SIGTERM) and after a crash (SIGKILL, --fsync always).
func TestHunt19DurableCacheLargeValuesRestart(t *testing.T) {
	b := hunt14Start(t, "--durable-cache", "default/default/h19c", "--fsync", "always",
		"--max-frame-bytes", strconv.Itoa(hunt19LogFrame))
	b.ready()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	max := hunt19MaxCacheValue(t, hunt19LogFrame, "h19c", "k6")
	hunt19CrossesLogReads(t, max)
	sizes := []int{0, 1, 64 * kib, 256 * kib, mib, 2*mib + 1, max}
	c := hunt19DialProc(t, b, hunt19LogFrame)
	kv := c.Cache("default", "h19c")
	for i, size := range sizes {
		if _, err := kv.Put(ctx, fmt.Sprintf("k%d", i), hunt19Payload(uint64(200+i), size)); err != nil {
			t.Fatalf("put k%d (%d bytes): %v", i, size, err)
		}
	}
	// Overwrite the largest: the log holds two of them, the reload keeps the last.
	if _, err := kv.Put(ctx, "k6", hunt19Payload(299, max)); err != nil {
		t.Fatal(err)
	}
	c.Close()
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		b.stop(sig)
		b.start()
		c := hunt19DialProc(t, b, hunt19LogFrame)
		kv := c.Cache("default", "h19c")
		for i, size := range sizes {
			id := uint64(200 + i)
			if i == 6 {
				id = 299
			}
			got, found, err := kv.Get(ctx, fmt.Sprintf("k%d", i))
			if err != nil || !found || len(got) != size || hunt19Sum(got) != hunt19Sum(hunt19Payload(id, size)) {
				t.Fatalf("after %v: k%d: %d bytes, found %v, %v; want %d bytes byte-exact", sig, i, len(got), found, err, size)
			}
		}
		c.Close()
	}
}
