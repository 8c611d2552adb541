package cache

import (
	"errors"
	"testing"
	"time"
)

func mustExpire(t testing.TB, c *Cache, key string, ttl time.Duration) uint64 {
	t.Helper()
	ver, found, err := c.Expire(key, ttl)
	if err != nil || !found {
		t.Fatalf("Expire %q %v = %v,%v; want found", key, ttl, found, err)
	}
	return ver
}

func wantTTL(t testing.TB, c *Cache, key string, want time.Duration, has bool) {
	t.Helper()
	rem, hasExpiry, ok := c.TTL(key)
	if !ok || hasExpiry != has || rem != want {
		t.Fatalf("TTL %q = %v,%v,%v; want %v,%v,true", key, rem, hasExpiry, ok, want, has)
	}
}

// Expire sets an existing key's expiry from now, whatever it was (longer
// or shorter, with or without one before); Persist removes it.
func TestExpireSetsAndPersistClears(t *testing.T) {
	c, clk := newTestCache(t, Config{})
	mustPut(t, c, "k", "v", PutOptions{})
	mustExpire(t, c, "k", 10*time.Second)
	wantTTL(t, c, "k", 10*time.Second, true)
	clk.Advance(9 * time.Second)
	wantGet(t, c, "k", "v")
	mustExpire(t, c, "k", time.Minute) // pushed back: from now, not from the put
	clk.Advance(30 * time.Second)
	wantTTL(t, c, "k", 30*time.Second, true)
	if _, found, err := c.Persist("k"); !found || err != nil {
		t.Fatalf("Persist: %v %v", found, err)
	}
	wantTTL(t, c, "k", 0, false)
	clk.Advance(24 * time.Hour)
	wantGet(t, c, "k", "v")
	// Persist of a key without expiry: found, nothing changes.
	if _, found, err := c.Persist("k"); !found || err != nil {
		t.Fatalf("Persist without expiry: %v %v", found, err)
	}
	mustExpire(t, c, "k", time.Second) // shortened
	clk.Advance(time.Second)
	wantMiss(t, c, "k")
	checkInvariants(t, c)
}

// A missing or expired key is not found and not created; an expired
// entry is removed as any write finds it, never brought back by Persist.
func TestExpireMissingOrExpiredNotCreated(t *testing.T) {
	c, clk := newTestCache(t, Config{})
	for _, op := range []func(string) (uint64, bool, error){
		func(k string) (uint64, bool, error) { return c.Expire(k, time.Hour) },
		c.Persist,
	} {
		if ver, found, err := op("missing"); ver != 0 || found || err != nil {
			t.Fatalf("on a missing key: %d %v %v", ver, found, err)
		}
		mustPut(t, c, "short", "v", PutOptions{TTL: new(time.Second)})
		clk.Advance(time.Second)
		if ver, found, err := op("short"); ver != 0 || found || err != nil {
			t.Fatalf("on an expired key: %d %v %v", ver, found, err)
		}
		wantMiss(t, c, "missing")
		wantMiss(t, c, "short")
	}
	if st := c.Stats(); st.Entries != 0 || st.Expirations != 2 || st.Puts != 2 {
		t.Fatalf("stats %+v: want no entry, the 2 expired ones counted, only the 2 puts", st)
	}
	checkInvariants(t, c)
}

// The version names the value: Expire and Persist leave it, answer it,
// and a compare-and-set on it still applies after them.
func TestExpireKeepsVersion(t *testing.T) {
	c, _ := newTestCache(t, Config{})
	v1 := mustPut(t, c, "k", "v", PutOptions{TTL: new(time.Hour)})
	if got := mustExpire(t, c, "k", time.Minute); got != v1 {
		t.Fatalf("Expire answered version %d, want the put's %d", got, v1)
	}
	if got, _, _ := c.Persist("k"); got != v1 {
		t.Fatalf("Persist answered version %d, want %d", got, v1)
	}
	if it, _ := c.GetWithMeta("k"); it.Version != v1 || !it.ExpiresAt.IsZero() {
		t.Fatalf("entry after Expire+Persist: %+v, want version %d, no expiry", it, v1)
	}
	v2, err := c.Put("k", []byte("w"), PutOptions{IfVersion: &v1})
	if err != nil || v2 <= v1 {
		t.Fatalf("compare-and-set on the version read before Expire: %d %v", v2, err)
	}
	if st := c.Stats(); st.Puts != 2 {
		t.Fatalf("Puts = %d, want the 2 puts only", st.Puts)
	}
}

// A TTL that is not positive is refused (Redis would delete the key): the
// key keeps its value and expiry.
func TestExpireRefusesNonPositiveTTL(t *testing.T) {
	c, _ := newTestCache(t, Config{})
	mustPut(t, c, "k", "v", PutOptions{TTL: new(time.Hour)})
	for _, ttl := range []time.Duration{0, -time.Millisecond, -time.Hour} {
		_, found, err := c.Expire("k", ttl)
		var te *TTLError
		if !errors.Is(err, ErrInvalidTTL) || !errors.As(err, &te) || te.TTL != ttl || te.Key != "k" || found {
			t.Fatalf("Expire %v: %v %v, want a TTLError", ttl, found, err)
		}
	}
	wantTTL(t, c, "k", time.Hour, true)
	wantGet(t, c, "k", "v")
}

func TestExpireOnDeletedCache(t *testing.T) {
	st := NewStore(StoreOptions{Clock: newFakeClock(), SweepInterval: -1})
	defer st.Close()
	c, err := st.Create(testScope, Config{})
	if err != nil {
		t.Fatal(err)
	}
	mustPut(t, c, "k", "v", PutOptions{})
	if err := st.Delete(testScope); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Expire("k", time.Hour); !errors.Is(err, ErrDeleted) {
		t.Fatalf("Expire on a deleted cache: %v", err)
	}
	if _, _, err := c.Persist("k"); !errors.Is(err, ErrDeleted) {
		t.Fatalf("Persist on a deleted cache: %v", err)
	}
}

// A durable cache logs each change of expiry: after a restart the new
// expiries hold (counting the time the broker was down), versions are
// those of the puts, and a Persist that changed nothing wrote nothing.
func TestDurableExpireSurvivesRestart(t *testing.T) {
	e := newDurableEnv(t, Config{})
	c := e.open()
	va := mustPut(t, c, "a", "1", PutOptions{})
	mustPut(t, c, "b", "2", PutOptions{TTL: new(time.Minute)})
	mustPut(t, c, "c", "3", PutOptions{TTL: new(time.Minute)})
	mustPut(t, c, "d", "4", PutOptions{})
	mustExpire(t, c, "a", 30*time.Minute)
	if _, found, err := c.Persist("b"); !found || err != nil {
		t.Fatalf("Persist b: %v %v", found, err)
	}
	mustExpire(t, c, "c", 2*time.Hour)
	logged := c.Stats().LogBytes
	if _, found, err := c.Persist("d"); !found || err != nil { // no expiry: nothing to log
		t.Fatalf("Persist d: %v %v", found, err)
	}
	if _, found, _ := c.Expire("missing", time.Hour); found {
		t.Fatal("Expire of a missing key found it")
	}
	if got := c.Stats().LogBytes; got != logged {
		t.Fatalf("log grew from %d to %d bytes for changes that changed nothing", logged, got)
	}
	want := contents(c)
	e.clk.Advance(10 * time.Minute)

	c = e.open()
	sameContents(t, "after a restart", contents(c), want)
	wantTTL(t, c, "a", 20*time.Minute, true)
	wantTTL(t, c, "b", 0, false)
	wantTTL(t, c, "c", time.Hour+50*time.Minute, true)
	if it, _ := c.GetWithMeta("a"); it.Version != va {
		t.Fatalf("a's version after restart %d, want the put's %d", it.Version, va)
	}
	e.clk.Advance(21 * time.Minute) // a expires while the broker is down
	c = e.open()
	wantMiss(t, c, "a")
	wantGet(t, c, "b", "2")
	wantGet(t, c, "c", "3")
}

// A change of expiry the log cannot store fails with a StorageError
// naming it, and the entry keeps its expiry.
func TestDurableExpireClosedLogRefuses(t *testing.T) {
	e := newDurableEnv(t, Config{})
	c := e.open()
	mustPut(t, c, "k", "v", PutOptions{TTL: new(time.Hour)})
	e.st.Close()
	for name, op := range map[string]func() (uint64, bool, error){
		"Expire":  func() (uint64, bool, error) { return c.Expire("k", time.Minute) },
		"Persist": func() (uint64, bool, error) { return c.Persist("k") },
	} {
		_, found, err := op()
		var se *StorageError
		if !errors.Is(err, ErrStorage) || !errors.As(err, &se) || se.Op != "expire" || found {
			t.Fatalf("%s after close: %v %v, want a StorageError of op expire", name, found, err)
		}
	}
	wantTTL(t, c, "k", time.Hour, true)
	checkInvariants(t, c)
}
