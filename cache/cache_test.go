package cache

import (
	"errors"
	"fmt"
	"math"
	"testing"
	"time"
	"unsafe"
)

func TestPutGetOverwriteDelete(t *testing.T) {
	c, _ := newTestCache(t, Config{})
	wantMiss(t, c, "k")
	v1 := mustPut(t, c, "k", "one", PutOptions{})
	wantGet(t, c, "k", "one")
	v2 := mustPut(t, c, "k", "two", PutOptions{})
	if v2 <= v1 {
		t.Fatalf("versions %d then %d: not increasing", v1, v2)
	}
	it, ok := c.GetWithMeta("k")
	if !ok || string(it.Value) != "two" || it.Version != v2 || !it.ExpiresAt.IsZero() || !it.OK {
		t.Fatalf("GetWithMeta = %+v,%v", it, ok)
	}
	mustPut(t, c, "", "empty key", PutOptions{})
	mustPut(t, c, "nil", "", PutOptions{})
	wantGet(t, c, "", "empty key")
	wantGet(t, c, "nil", "")
	if !c.Delete("k") || c.Delete("k") || c.Delete("absent") {
		t.Fatal("Delete reports wrong results")
	}
	wantMiss(t, c, "k")
	checkInvariants(t, c)
	st := c.Stats()
	if st.Puts != 4 || st.Deletes != 1 || st.Hits != 4 || st.Misses != 2 || st.Entries != 2 {
		t.Fatalf("stats %+v", st)
	}
	if want := entrySize("", 9) + entrySize("nil", 0); st.Bytes != want {
		t.Fatalf("bytes %d, want %d", st.Bytes, want)
	}
}

func TestPutCopiesValueAndGetIsStable(t *testing.T) {
	c, _ := newTestCache(t, Config{})
	buf := []byte("original")
	mustPut(t, c, "k", string(buf), PutOptions{})
	if _, err := c.Put("k2", buf, PutOptions{}); err != nil {
		t.Fatal(err)
	}
	copy(buf, "CLOBBER!")
	wantGet(t, c, "k2", "original")
	old, _ := c.Get("k")
	mustPut(t, c, "k", "replaced", PutOptions{})
	if string(old) != "original" {
		t.Fatalf("a returned value changed under a later write: %q", old)
	}
}

func TestTTLExpiresOnFakeClock(t *testing.T) {
	c, clk := newTestCache(t, Config{})
	t0 := clk.Now()
	mustPut(t, c, "k", "v", PutOptions{TTL: new(10 * time.Second)})
	it, ok := c.GetWithMeta("k")
	if !ok || !it.ExpiresAt.Equal(t0.Add(10*time.Second)) {
		t.Fatalf("GetWithMeta = %+v,%v; want expiry at %v", it, ok, t0.Add(10*time.Second))
	}
	clk.Advance(9 * time.Second)
	if rem, has, ok := c.TTL("k"); !ok || !has || rem != time.Second {
		t.Fatalf("TTL = %v,%v,%v; want 1s,true,true", rem, has, ok)
	}
	wantGet(t, c, "k", "v")
	clk.Advance(time.Second)
	wantMiss(t, c, "k")
	if _, _, ok := c.TTL("k"); ok {
		t.Fatal("TTL reports an expired key")
	}
	st := c.Stats()
	if st.Expirations != 1 || st.Entries != 0 || st.Bytes != 0 || st.Hits != 2 || st.Misses != 1 {
		t.Fatalf("stats %+v", st)
	}
	checkInvariants(t, c)
}

func TestTTLZeroIsImmediatelyExpired(t *testing.T) {
	c, _ := newTestCache(t, Config{})
	v1 := mustPut(t, c, "k", "live", PutOptions{})
	v2 := mustPut(t, c, "k", "gone", PutOptions{TTL: new(time.Duration(0))})
	if v2 <= v1 {
		t.Fatalf("a TTL 0 write takes a version: got %d after %d", v2, v1)
	}
	wantMiss(t, c, "k")
	mustPut(t, c, "neg", "gone", PutOptions{TTL: new(-time.Second)})
	wantMiss(t, c, "neg")
	// Nothing is kept: an absent-only write still finds the key absent.
	mustPut(t, c, "k", "gone", PutOptions{TTL: new(time.Duration(0))})
	mustPut(t, c, "k", "back", PutOptions{IfAbsent: true})
	wantGet(t, c, "k", "back")
	st := c.Stats()
	if st.Expirations != 3 || st.Entries != 1 {
		t.Fatalf("stats %+v", st)
	}
	checkInvariants(t, c)
}

func TestNilTTLNeverExpires(t *testing.T) {
	c, clk := newTestCache(t, Config{})
	mustPut(t, c, "k", "v", PutOptions{})
	clk.Advance(100 * 365 * 24 * time.Hour)
	wantGet(t, c, "k", "v")
	if rem, has, ok := c.TTL("k"); !ok || has || rem != 0 {
		t.Fatalf("TTL = %v,%v,%v; want 0,false,true", rem, has, ok)
	}
	if c.Sweep(1000) != 0 {
		t.Fatal("sweep removed an entry without TTL")
	}
	// An overwrite without TTL clears a previous TTL, and a huge TTL saturates.
	mustPut(t, c, "t", "v", PutOptions{TTL: new(time.Second)})
	mustPut(t, c, "t", "v", PutOptions{})
	mustPut(t, c, "huge", "v", PutOptions{TTL: new(time.Duration(math.MaxInt64))})
	clk.Advance(time.Hour)
	wantGet(t, c, "t", "v")
	wantGet(t, c, "huge", "v")
}

func TestExpiredKeyIsAbsentForWritesAndDeletes(t *testing.T) {
	c, clk := newTestCache(t, Config{})
	mustPut(t, c, "a", "v", PutOptions{TTL: new(time.Second)})
	mustPut(t, c, "b", "v", PutOptions{TTL: new(time.Second)})
	clk.Advance(time.Second)
	mustPut(t, c, "a", "new", PutOptions{IfVersion: new(uint64(0))})
	wantGet(t, c, "a", "new")
	if c.Delete("b") {
		t.Fatal("Delete of an expired key reports true")
	}
	if st := c.Stats(); st.Expirations != 2 || st.Deletes != 0 || st.Entries != 1 {
		t.Fatalf("stats %+v", st)
	}
	checkInvariants(t, c)
}

func TestConditions(t *testing.T) {
	c, _ := newTestCache(t, Config{})
	v1 := mustPut(t, c, "k", "1", PutOptions{IfAbsent: true})
	_, err := c.Put("k", []byte("x"), PutOptions{IfAbsent: true})
	var ce *ConditionError
	if !errors.As(err, &ce) || !errors.Is(err, ErrConditionFailed) || ce.Current != v1 || ce.Key != "k" {
		t.Fatalf("IfAbsent on a present key: %v", err)
	}
	if _, err := c.Put("k", []byte("x"), PutOptions{IfVersion: new(v1 + 1)}); !errors.As(err, &ce) || ce.Current != v1 {
		t.Fatalf("IfVersion mismatch: %v", err)
	}
	if _, err := c.Put("k", []byte("x"), PutOptions{IfVersion: new(uint64(0))}); !errors.As(err, &ce) || ce.Current != v1 {
		t.Fatalf("IfVersion 0 on a present key: %v", err)
	}
	_, err = c.Put("absent", []byte("x"), PutOptions{IfVersion: new(uint64(7))})
	if !errors.As(err, &ce) || ce.Current != 0 {
		t.Fatalf("IfVersion on an absent key: %v", err)
	}
	if err.Error() != `cache condition failed: key "absent" does not exist` {
		t.Fatalf("message %q", err)
	}
	v2 := mustPut(t, c, "k", "2", PutOptions{IfVersion: &v1})
	wantGet(t, c, "k", "2")
	if _, err := c.Put("k", []byte("3"), PutOptions{IfVersion: &v1}); !errors.Is(err, ErrConditionFailed) {
		t.Fatalf("stale IfVersion: %v", err)
	}
	if st := c.Stats(); st.ConditionFailed != 5 || st.Puts != 2 {
		t.Fatalf("stats %+v", st)
	}
	if it, _ := c.GetWithMeta("k"); it.Version != v2 {
		t.Fatalf("version %d, want %d", it.Version, v2)
	}
	checkInvariants(t, c)
}

func TestMultiGet(t *testing.T) {
	c, clk := newTestCache(t, Config{})
	va := mustPut(t, c, "a", "A", PutOptions{})
	mustPut(t, c, "exp", "E", PutOptions{TTL: new(time.Second)})
	vc := mustPut(t, c, "c", "C", PutOptions{TTL: new(time.Hour)})
	clk.Advance(time.Second)
	got := c.MultiGet([]string{"a", "missing", "exp", "c", "a"})
	want := []Item{
		{Value: []byte("A"), Version: va, OK: true},
		{},
		{},
		{Value: []byte("C"), Version: vc, ExpiresAt: clk.Now().Add(time.Hour - time.Second), OK: true},
		{Value: []byte("A"), Version: va, OK: true},
	}
	if len(got) != len(want) {
		t.Fatalf("%d items, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if string(g.Value) != string(w.Value) || g.Version != w.Version || !g.ExpiresAt.Equal(w.ExpiresAt) || g.OK != w.OK {
			t.Errorf("item %d = %+v, want %+v", i, g, w)
		}
	}
	if len(c.MultiGet(nil)) != 0 {
		t.Fatal("MultiGet(nil) is not empty")
	}
	if st := c.Stats(); st.Hits != 3 || st.Misses != 2 || st.Expirations != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestTooLargeIsRefused(t *testing.T) {
	const max = 1000
	c, _ := newTestCache(t, Config{MaxBytes: max})
	mustPut(t, c, "small", "v", PutOptions{})
	_, err := c.Put("k", make([]byte, max), PutOptions{})
	var te *TooLargeError
	if !errors.As(err, &te) || !errors.Is(err, ErrTooLarge) || te.Size != entrySize("k", max) || te.MaxBytes != max {
		t.Fatalf("Put over capacity: %v", err)
	}
	wantGet(t, c, "small", "v") // a refused write evicts nothing
	// An entry of exactly MaxBytes fits, evicting the rest.
	if _, err := c.Put("k", make([]byte, max-EntryOverhead-1), PutOptions{}); err != nil {
		t.Fatalf("Put of exactly MaxBytes: %v", err)
	}
	if st := c.Stats(); st.Bytes != max || st.Entries != 1 || st.Evictions != 1 {
		t.Fatalf("stats %+v", st)
	}
	checkInvariants(t, c)
}

func TestSlotSizeMatchesEntryOverhead(t *testing.T) {
	// EntryOverhead's documentation counts a 64-byte slot (on 64-bit).
	if size := unsafe.Sizeof(slot{}); unsafe.Sizeof(uintptr(0)) == 8 && size != 64 {
		t.Fatalf("slot is %d bytes; update EntryOverhead and its comment", size)
	}
}

func TestConfigDefaults(t *testing.T) {
	for _, tc := range []struct{ in, want int }{{1, 1}, {5, 8}, {16, 16}, {17, 32}, {1 << 20, MaxShards}} {
		cfg, err := Config{Shards: tc.in}.withDefaults()
		if err != nil || cfg.Shards != tc.want {
			t.Errorf("Shards %d → %d,%v; want %d", tc.in, cfg.Shards, err, tc.want)
		}
	}
	cfg, _ := Config{}.withDefaults()
	if cfg.Shards < MinDefaultShards || cfg.Shards&(cfg.Shards-1) != 0 || cfg.EvictionSamples != DefaultEvictionSamples || cfg.MaxBytes != 0 {
		t.Fatalf("defaults %+v", cfg)
	}
	for _, bad := range []Config{{MaxBytes: -1}, {Shards: -1}, {EvictionSamples: -1}} {
		if _, err := bad.withDefaults(); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%+v: %v", bad, err)
		}
	}
}

func TestSingleShardManyKeys(t *testing.T) {
	// One shard exercises slot reuse, the free list and compaction.
	c, clk := newTestCache(t, Config{Shards: 1})
	for round := range 3 {
		for i := range 3000 {
			mustPut(t, c, fmt.Sprint(i), "v", PutOptions{TTL: new(time.Second)})
		}
		for i := 0; i < 3000; i += 2 {
			c.Delete(fmt.Sprint(i))
		}
		checkInvariants(t, c)
		clk.Advance(time.Second)
		if n := c.Sweep(10_000); n != 1500 {
			t.Fatalf("round %d: swept %d, want 1500", round, n)
		}
		// The table was compacted on the way down (under a quarter live).
		if s := &c.shards[0]; len(s.slots) > shrinkSlots {
			t.Fatalf("round %d: an emptied shard keeps %d slots", round, len(s.slots))
		}
		checkInvariants(t, c)
	}
}
