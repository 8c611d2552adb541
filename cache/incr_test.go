package cache

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync"
	"testing"
	"time"
)

func mustIncr(t testing.TB, c *Cache, key string, delta int64, ttl *time.Duration) (int64, uint64) {
	t.Helper()
	v, ver, err := c.Incr(key, delta, ttl)
	if err != nil {
		t.Fatalf("Incr %q %+d: %v", key, delta, err)
	}
	return v, ver
}

// A missing key starts at 0; the value is stored as decimal text that Get
// reads and Put may set; every increment is a write with a new version.
func TestIncrCountsAsDecimalText(t *testing.T) {
	c, _ := newTestCache(t, Config{})
	v, ver1 := mustIncr(t, c, "n", 1, nil)
	if v != 1 {
		t.Fatalf("first Incr = %d, want 1", v)
	}
	wantGet(t, c, "n", "1")
	v, ver2 := mustIncr(t, c, "n", -8, nil)
	if v != -7 || ver2 <= ver1 {
		t.Fatalf("Incr -8 = %d@%d, want -7 above version %d", v, ver2, ver1)
	}
	wantGet(t, c, "n", "-7")
	if it, _ := c.GetWithMeta("n"); it.Version != ver2 {
		t.Fatalf("entry version %d, want the increment's %d", it.Version, ver2)
	}
	mustPut(t, c, "n", "10", PutOptions{})
	if v, _ := mustIncr(t, c, "n", 5, nil); v != 15 {
		t.Fatalf("Put 10 then Incr 5 = %d, want 15", v)
	}
	// Delta 0 reads the value, and is still a write (as Redis INCRBY 0).
	if v, ver := mustIncr(t, c, "zero", 0, nil); v != 0 || ver == 0 {
		t.Fatalf("Incr 0 on a missing key = %d@%d", v, ver)
	}
	wantGet(t, c, "zero", "0")
	// Compare-and-set sees the increments' versions.
	_, ver := mustIncr(t, c, "n", 1, nil)
	if _, err := c.Put("n", []byte("0"), PutOptions{IfVersion: &ver}); err != nil {
		t.Fatalf("CAS on the increment's version: %v", err)
	}
	if st := c.Stats(); st.Puts != 7 {
		t.Fatalf("Stats.Puts = %d, want 7 (5 increments, 2 puts)", st.Puts)
	}
	checkInvariants(t, c)
}

// A value that is not the canonical decimal text of an int64 is refused,
// and stays as it was.
func TestIncrNotInteger(t *testing.T) {
	c, _ := newTestCache(t, Config{})
	for _, bad := range []string{"", "abc", "1.5", "+1", "01", "-0", "-", " 1", "1 ", "1e3", "0x10",
		"9223372036854775808", "-9223372036854775809", "99999999999999999999", "12345678901234567890123"} {
		ver := mustPut(t, c, "k", bad, PutOptions{})
		_, _, err := c.Incr("k", 1, nil)
		var ne *NotIntegerError
		if !errors.Is(err, ErrNotInteger) || !errors.As(err, &ne) || ne.Key != "k" {
			t.Fatalf("Incr on %q: %v, want a NotIntegerError", bad, err)
		}
		if it, ok := c.GetWithMeta("k"); !ok || string(it.Value) != bad || it.Version != ver {
			t.Fatalf("after the refused Incr on %q: %q@%d,%v", bad, it.Value, it.Version, ok)
		}
	}
	for _, good := range []string{"0", "-1", "9223372036854775807", "-9223372036854775808"} {
		mustPut(t, c, "k", good, PutOptions{})
		want, _ := strconv.ParseInt(good, 10, 64)
		if v, _ := mustIncr(t, c, "k", 0, nil); v != want {
			t.Fatalf("Incr 0 on %q = %d", good, v)
		}
	}
	checkInvariants(t, c)
}

// An increment past either end of the int64 range is refused; the value
// stays.
func TestIncrOverflow(t *testing.T) {
	c, _ := newTestCache(t, Config{})
	if v, _ := mustIncr(t, c, "max", math.MaxInt64, nil); v != math.MaxInt64 {
		t.Fatalf("Incr MaxInt64 = %d", v)
	}
	_, _, err := c.Incr("max", 1, nil)
	var oe *OverflowError
	if !errors.Is(err, ErrOverflow) || !errors.As(err, &oe) || oe.Value != math.MaxInt64 || oe.Delta != 1 {
		t.Fatalf("MaxInt64 + 1: %v, want an OverflowError", err)
	}
	wantGet(t, c, "max", "9223372036854775807")
	mustIncr(t, c, "min", math.MinInt64, nil)
	if _, _, err := c.Incr("min", -1, nil); !errors.Is(err, ErrOverflow) {
		t.Fatalf("MinInt64 - 1: %v", err)
	}
	wantGet(t, c, "min", "-9223372036854775808")
	if v, _ := mustIncr(t, c, "min", math.MaxInt64, nil); v != -1 {
		t.Fatalf("MinInt64 + MaxInt64 = %d, want -1", v)
	}
	checkInvariants(t, c)
}

// The TTL applies to a key the increment creates only; an existing key
// keeps its expiry (or its lack of one); an expired key starts again at 0
// with the new increment's TTL.
func TestIncrTTLOnlyOnCreate(t *testing.T) {
	c, clk := newTestCache(t, Config{})
	mustIncr(t, c, "k", 1, new(10*time.Second))
	clk.Advance(4 * time.Second)
	if v, _ := mustIncr(t, c, "k", 1, new(time.Hour)); v != 2 {
		t.Fatalf("second Incr = %d", v)
	}
	if rem, has, ok := c.TTL("k"); !ok || !has || rem != 6*time.Second {
		t.Fatalf("TTL after the second Incr = %v,%v,%v; want the first's 6s left", rem, has, ok)
	}
	clk.Advance(6 * time.Second) // expired
	wantMiss(t, c, "k")
	mustIncr(t, c, "k", 5, nil) // the miss removed it; it starts at 0
	clk.Advance(time.Second)
	if v, _ := mustIncr(t, c, "k", 1, new(time.Minute)); v != 6 {
		t.Fatalf("Incr after the restart at 0 = %d, want 6", v)
	}
	if _, has, ok := c.TTL("k"); !ok || has {
		t.Fatalf("a key created without TTL gained one: %v,%v", has, ok)
	}

	// Expired but not yet removed: the increment itself finds it expired.
	mustPut(t, c, "e", "100", PutOptions{TTL: new(time.Second)})
	clk.Advance(time.Second)
	if v, _ := mustIncr(t, c, "e", 3, new(2*time.Second)); v != 3 {
		t.Fatalf("Incr on an expired key = %d, want 3", v)
	}
	if rem, has, ok := c.TTL("e"); !ok || !has || rem != 2*time.Second {
		t.Fatalf("TTL of the recreated key = %v,%v,%v; want 2s", rem, has, ok)
	}

	// A TTL ≤ 0 on a new key: the value is answered, nothing is kept.
	if v, ver := mustIncr(t, c, "gone", 7, new(time.Duration(0))); v != 7 || ver == 0 {
		t.Fatalf("Incr with TTL 0 = %d@%d", v, ver)
	}
	wantMiss(t, c, "gone")
	// ... but an existing key keeps its expiry even then.
	mustIncr(t, c, "k", 1, new(time.Duration(0)))
	wantGet(t, c, "k", "7")
	if st := c.Stats(); st.Expirations != 3 {
		t.Fatalf("Stats.Expirations = %d, want 3 (k, e and the TTL 0 increment)", st.Expirations)
	}
	checkInvariants(t, c)
}

// Increments from many goroutines on a few keys lose none: the sums are
// exact.
func TestIncrConcurrentSumsExactly(t *testing.T) {
	c, _ := newTestCache(t, Config{Shards: 2})
	const (
		goroutines = 16
		each       = 500
		keys       = 3
	)
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				key := fmt.Sprintf("k%d", i%keys)
				delta := int64(g + 1)
				if i%2 == 1 {
					delta = -1
				}
				if _, _, err := c.Incr(key, delta, nil); err != nil {
					errs <- err
					return
				}
				if i%50 == 0 {
					c.Get(key)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	want := make([]int64, keys)
	for g := range goroutines {
		for i := range each {
			if i%2 == 1 {
				want[i%keys]--
			} else {
				want[i%keys] += int64(g + 1)
			}
		}
	}
	for k := range keys {
		wantGet(t, c, fmt.Sprintf("k%d", k), strconv.FormatInt(want[k], 10))
	}
	if st := c.Stats(); st.Puts != goroutines*each {
		t.Fatalf("Stats.Puts = %d, want %d", st.Puts, goroutines*each)
	}
	checkInvariants(t, c)
}

// Under MaxBytes an increment reserves its bytes and evicts as a put
// does, and growing digits are accounted.
func TestIncrEvictsAndAccounts(t *testing.T) {
	max := int64(8 * (EntryOverhead + 8))
	c, _ := newTestCache(t, Config{MaxBytes: max, Shards: 4})
	for i := range 8 {
		mustPut(t, c, fmt.Sprintf("p%d", i), "12345", PutOptions{})
	}
	for i := range 8 {
		mustIncr(t, c, fmt.Sprintf("c%d", i), 1_000_000, nil)
		checkInvariants(t, c)
	}
	st := c.Stats()
	if st.Evictions == 0 || st.Bytes > max {
		t.Fatalf("stats %+v: want evictions and bytes ≤ %d", st, max)
	}
	// The value grows from 1 to 7 digits in place.
	before := c.bytes.Load()
	mustPut(t, c, "c0", "1", PutOptions{})
	mustIncr(t, c, "c0", 999_999, nil)
	if got := c.bytes.Load(); got > max || got < before-6 {
		t.Fatalf("bytes %d after growing c0, was %d", got, before)
	}
	checkInvariants(t, c)

	tiny, _ := newTestCache(t, Config{MaxBytes: EntryOverhead + 4})
	if _, _, err := tiny.Incr("a-long-key", 1, nil); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Incr of an entry over the capacity: %v", err)
	}
	wantMiss(t, tiny, "a-long-key")
}

func TestIncrOnDeletedCache(t *testing.T) {
	clk := newFakeClock()
	st := NewStore(StoreOptions{Clock: clk, SweepInterval: -1})
	defer st.Close()
	c, err := st.Create(testScope, Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Delete(testScope); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Incr("k", 1, nil); !errors.Is(err, ErrDeleted) {
		t.Fatalf("Incr on a deleted cache: %v", err)
	}
}

func FuzzParseInteger(f *testing.F) {
	for _, s := range []string{"0", "-1", "42", "01", "-0", "+1", "9223372036854775807", "-9223372036854775808", "9223372036854775808"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v, ok := parseInteger(b)
		// Canonical text only: exactly what FormatInt writes.
		want := false
		if p, err := strconv.ParseInt(string(b), 10, 64); err == nil && strconv.FormatInt(p, 10) == string(b) {
			want = true
			if v != p {
				t.Fatalf("parseInteger(%q) = %d, want %d", b, v, p)
			}
		}
		if ok != want {
			t.Fatalf("parseInteger(%q) ok = %v, want %v", b, ok, want)
		}
	})
}
