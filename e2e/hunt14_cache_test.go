package e2e

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/felixmq/felix/client"
)

// A durable cache (--fsync always) written through the lossy link by four
// writers on two clients (compare-and-set increments of one shared
// counter, Incr of another) while the broker is SIGKILLed and restarted
// twice; then single-key checks across one more SIGKILL and a SIGTERM.
// docs/semantics.md, "Durable caches": under always nothing acknowledged is
// lost, versions continue above every logged version, a version read
// before a restart still works for compare-and-set, a stale one never
// does, TTLs use the wall clock, deletes stay deleted. Checked:
//   - each counter ends between its acknowledged increments and those plus
//     the failed (unknown) ones; every CAS winner's version is new
//     (no version won twice), and each writer's versions grow across the
//     restarts;
//   - an entry written (acked) before a crash reads back with its value
//     and version; Put IfVersion(that version) applies after the restart,
//     IfVersion(an older one) does not; a deleted key stays deleted; an
//     entry whose TTL ran out while the broker was down is gone, a long
//     one keeps a TTL no longer than it was; changes of expiry (Persist,
//     Expire shorter and longer), an Incr creating a key and a Flush of
//     a second durable cache are all as acknowledged;
//   - every call ends within its context; the logs verify; no panic.
func TestHunt14DurableCacheCASKill(t *testing.T) {
	b := hunt14Start(t, "--durable-cache", "default/default/h14c", "--durable-cache", "default/default/h14f", "--fsync", "always")
	b.ready()
	px := b.proxy(badLink)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	clients := []*client.Client{b.dialVia(px, shortIdle(2*time.Second)), b.dialVia(px, shortIdle(2*time.Second))}
	kv0 := clients[0].Cache("default", "h14c")
	if _, err := kv0.Put(ctx, "ctr", []byte("0")); err != nil {
		t.Fatal(err)
	}

	type writer struct {
		casOK, casFail, incOK, incFail int
		versions                       []uint64
	}
	var (
		writers [4]writer
		stop    = make(chan struct{})
		wg      sync.WaitGroup
		fails   svcFailures
		wonMu   sync.Mutex
		won     = map[uint64]int{} // CAS versions won -> writer
	)
	for w := range writers {
		kv := clients[w%2].Cache("default", "h14c")
		me := &writers[w]
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				cctx, ccancel := context.WithTimeout(ctx, 3*time.Second)
				start := time.Now()
				var err error
				if i%2 == 0 {
					var v uint64
					if v, err = casIncrement(cctx, kv, "ctr"); err == nil {
						me.casOK++
						if n := len(me.versions); n > 0 && v <= me.versions[n-1] {
							fails.add("writer %d: CAS version %d after %d", w, v, me.versions[n-1])
						}
						me.versions = append(me.versions, v)
						wonMu.Lock()
						if o, dup := won[v]; dup {
							fails.add("version %d won by writers %d and %d", v, o, w)
						}
						won[v] = w
						wonMu.Unlock()
					} else if errors.Is(err, client.ErrNotInteger) || errors.Is(err, client.ErrConditionFailed) {
						fails.add("writer %d: %v", w, err)
					} else if err != nil && !isGetErr(err) {
						me.casFail++ // the put may or may not have applied
					}
				} else {
					if _, err = kv.Incr(cctx, "inc", 1); err == nil {
						me.incOK++
					} else {
						me.incFail++
					}
				}
				ccancel()
				if took := time.Since(start); took > 4*time.Second {
					fails.add("writer %d: call took %v with a 3 s context (err %v)", w, took, err)
				}
				if err != nil {
					time.Sleep(20 * time.Millisecond)
				}
			}
		})
	}
	for range 2 {
		time.Sleep(1500 * time.Millisecond)
		b.stop(syscall.SIGKILL)
		time.Sleep(200 * time.Millisecond)
		b.start()
	}
	time.Sleep(1500 * time.Millisecond)
	close(stop)
	waitWorkers(t, ctx, &wg, &fails, "cache writers")
	fails.report(t)

	var casOK, casFail, incOK, incFail int
	for _, w := range writers {
		casOK, casFail, incOK, incFail = casOK+w.casOK, casFail+w.casFail, incOK+w.incOK, incFail+w.incFail
	}
	// Read the counters back on a direct connection.
	c := dialProc(t, b.addr, b.dataDir)
	kv := c.Cache("default", "h14c")
	counter := func(key string) (int, uint64) {
		t.Helper()
		it, err := kv.GetItem(ctx, key)
		if err != nil {
			t.Fatalf("get %s: %v", key, err)
		}
		n, err := strconv.Atoi(string(it.Value))
		if err != nil {
			t.Fatalf("%s holds %q", key, it.Value)
		}
		return n, it.Version
	}
	ctr, ctrVer := counter("ctr")
	inc, _ := counter("inc")
	if ctr < casOK || ctr > casOK+casFail {
		t.Errorf("ctr = %d after %d acknowledged CAS increments and %d failed ones", ctr, casOK, casFail)
	}
	if inc < incOK || inc > incOK+incFail {
		t.Errorf("inc = %d after %d acknowledged increments and %d failed ones", inc, incOK, incFail)
	}
	t.Logf("ctr %d (%d ok, %d failed), inc %d (%d ok, %d failed)", ctr, casOK, casFail, inc, incOK, incFail)
	if casOK == 0 || incOK == 0 {
		t.Errorf("no acknowledged write (cas %d, incr %d)", casOK, incOK)
	}

	// Single keys across one more crash.
	vA, err := kv.Put(ctx, "a", []byte("A1"))
	if err != nil {
		t.Fatal(err)
	}
	vA2, err := kv.Put(ctx, "a", []byte("A2"), client.IfVersion(vA))
	if err != nil {
		t.Fatal(err)
	}
	vB, err := kv.Put(ctx, "b", []byte("B"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, "gone", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if ok, err := kv.Delete(ctx, "gone"); err != nil || !ok {
		t.Fatalf("delete: %v %v", ok, err)
	}
	if _, err := kv.Put(ctx, "short", []byte("s"), client.WithTTL(300*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, "long", []byte("l"), client.WithTTL(time.Hour)); err != nil {
		t.Fatal(err)
	}
	// Changes of expiry, an increment creating a key, a flush.
	if _, err := kv.Put(ctx, "persisted", []byte("p"), client.WithTTL(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if found, err := kv.Persist(ctx, "persisted"); err != nil || !found {
		t.Fatalf("persist: %v %v", found, err)
	}
	if _, err := kv.Put(ctx, "expired", []byte("e")); err != nil {
		t.Fatal(err)
	}
	if found, err := kv.Expire(ctx, "expired", 300*time.Millisecond); err != nil || !found {
		t.Fatalf("expire: %v %v", found, err)
	}
	if _, err := kv.Put(ctx, "extended", []byte("x"), client.WithTTL(300*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if found, err := kv.Expire(ctx, "extended", time.Hour); err != nil || !found {
		t.Fatalf("expire: %v %v", found, err)
	}
	if n, err := kv.Incr(ctx, "counted", 5, client.WithTTL(time.Hour)); err != nil || n != 5 {
		t.Fatalf("incr: %d %v", n, err)
	}
	fl := c.Cache("default", "h14f")
	for _, k := range []string{"f1", "f2"} {
		if _, err := fl.Put(ctx, k, []byte(k)); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := fl.Flush(ctx); err != nil || n != 2 {
		t.Fatalf("flush: %d %v", n, err)
	}
	vF3, err := fl.Put(ctx, "f3", []byte("f3"))
	if err != nil {
		t.Fatal(err)
	}
	b.stop(syscall.SIGKILL)
	c.Close()
	time.Sleep(400 * time.Millisecond)
	b.start()
	c = dialProc(t, b.addr, b.dataDir)
	defer c.Close()
	kv = c.Cache("default", "h14c")

	if it, err := kv.GetItem(ctx, "a"); err != nil || string(it.Value) != "A2" || it.Version != vA2 {
		t.Errorf("a after the crash: %q v%d (%v), want A2 v%d", it.Value, it.Version, err, vA2)
	}
	if n, v := counter("ctr"); n != ctr || v != ctrVer {
		t.Errorf("ctr after the crash: %d v%d, want %d v%d", n, v, ctr, ctrVer)
	}
	if _, err := kv.Put(ctx, "a", []byte("stale"), client.IfVersion(vA)); !errors.Is(err, client.ErrConditionFailed) {
		t.Errorf("put IfVersion(an older version) after the crash: %v, want the condition to fail", err)
	}
	if v, err := kv.Put(ctx, "b", []byte("B2"), client.IfVersion(vB)); err != nil {
		t.Errorf("put IfVersion(the version read before the crash): %v", err)
	} else if v <= vB || v <= ctrVer || v <= vA2 {
		t.Errorf("version after the crash %d not above those before (b %d, a %d, ctr %d)", v, vB, vA2, ctrVer)
	}
	if _, ok, err := kv.Get(ctx, "gone"); err != nil || ok {
		t.Errorf("deleted key after the crash: found %v (%v)", ok, err)
	}
	if _, ok, err := kv.Get(ctx, "short"); err != nil || ok {
		t.Errorf("key whose TTL ran out while the broker was down: found %v (%v)", ok, err)
	}
	if ttl, has, found, err := kv.TTL(ctx, "long"); err != nil || !found || !has || ttl > time.Hour || ttl < 50*time.Minute {
		t.Errorf("long TTL after the crash: %v has %v found %v (%v)", ttl, has, found, err)
	}
	if ttl, has, found, err := kv.TTL(ctx, "persisted"); err != nil || !found || has {
		t.Errorf("persisted key after the crash: ttl %v has %v found %v (%v), want no expiry", ttl, has, found, err)
	}
	if _, ok, err := kv.Get(ctx, "expired"); err != nil || ok {
		t.Errorf("key given a 300 ms expiry before the crash: found %v (%v)", ok, err)
	}
	if ttl, has, found, err := kv.TTL(ctx, "extended"); err != nil || !found || !has || ttl > time.Hour || ttl < 50*time.Minute {
		t.Errorf("key extended to 1 h before the crash: ttl %v has %v found %v (%v)", ttl, has, found, err)
	}
	if v, ok, err := kv.Get(ctx, "counted"); err != nil || !ok || string(v) != "5" {
		t.Errorf("counter created by Incr before the crash: %q %v (%v)", v, ok, err)
	}
	fl = c.Cache("default", "h14f")
	for _, k := range []string{"f1", "f2"} {
		if _, ok, err := fl.Get(ctx, k); err != nil || ok {
			t.Errorf("key %s flushed before the crash: found %v (%v)", k, ok, err)
		}
	}
	if it, err := fl.GetItem(ctx, "f3"); err != nil || string(it.Value) != "f3" || it.Version != vF3 {
		t.Errorf("f3 written after the flush, after the crash: %q v%d (%v), want v%d", it.Value, it.Version, err, vF3)
	}
	if v, err := fl.Put(ctx, "f1", []byte("again")); err != nil || v <= vF3 {
		t.Errorf("put after the crash: version %d (%v), want above %d", v, err, vF3)
	}
	// And across a clean stop: the CAS write just made stays.
	it, err := kv.GetItem(ctx, "b")
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if err := b.stop(syscall.SIGTERM); err != nil {
		t.Errorf("SIGTERM: %v", err)
	}
	b.start()
	c2 := dialProc(t, b.addr, b.dataDir)
	defer c2.Close()
	if it2, err := c2.Cache("default", "h14c").GetItem(ctx, "b"); err != nil || string(it2.Value) != "B2" || it2.Version != it.Version {
		t.Errorf("b after a clean restart: %q v%d (%v), want B2 v%d", it2.Value, it2.Version, err, it.Version)
	}
}

// isGetErr reports whether casIncrement failed reading, before any put
// (nothing was written).
func isGetErr(err error) bool { return strings.HasPrefix(err.Error(), "get ") }
