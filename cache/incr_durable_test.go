package cache

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/felixmq/felix/commitlog"
)

// A durable cache logs each increment as the put of its new value: the
// counts, their versions and the TTL of the key that was created with one
// survive a restart, and versions go on above them.
func TestDurableIncrSurvivesRestart(t *testing.T) {
	e := newDurableEnv(t, Config{})
	c := e.open()
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for range 50 {
				if _, _, err := c.Incr(fmt.Sprintf("n%d", g%2), 2, nil); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	mustIncr(t, c, "ttl", 5, new(time.Hour))
	mustIncr(t, c, "ttl", -1, new(time.Minute)) // keeps the hour
	mustPut(t, c, "p", "10", PutOptions{})
	mustIncr(t, c, "p", 5, nil)
	mustIncr(t, c, "gone", 1, new(time.Duration(0)))
	want := contents(c)
	last := c.version.Load()
	e.clk.Advance(10 * time.Minute)

	c = e.open()
	sameContents(t, "after a restart", contents(c), want)
	wantGet(t, c, "n0", "200")
	wantGet(t, c, "n1", "200")
	wantGet(t, c, "p", "15")
	wantGet(t, c, "ttl", "4")
	wantMiss(t, c, "gone")
	if rem, has, ok := c.TTL("ttl"); !ok || !has || rem > 50*time.Minute || rem < 50*time.Minute-time.Millisecond {
		t.Fatalf("ttl's TTL after restart = %v,%v,%v; want the first increment's hour less 10m", rem, has, ok)
	}
	if v, ver := mustIncr(t, c, "n0", 1, nil); v != 201 || ver <= last {
		t.Fatalf("Incr after restart = %d@%d, want 201 above version %d", v, ver, last)
	}
	e.clk.Advance(time.Hour)
	c = e.open()
	wantMiss(t, c, "ttl") // expired while the broker was down
	wantGet(t, c, "n0", "201")
}

// An increment the log cannot store fails with a StorageError naming the
// increment, and the count stays as it was.
func TestDurableIncrClosedLogRefuses(t *testing.T) {
	e := newDurableEnv(t, Config{})
	c := e.open()
	mustIncr(t, c, "k", 41, nil)
	e.st.Close()
	_, _, err := c.Incr("k", 1, nil)
	var se *StorageError
	if !errors.Is(err, ErrStorage) || !errors.Is(err, commitlog.ErrClosed) || !errors.As(err, &se) || se.Op != "incr" {
		t.Fatalf("Incr after close: %v, want a StorageError of op incr", err)
	}
	if _, _, err := c.Incr("new", 1, new(time.Duration(0))); !errors.Is(err, ErrStorage) {
		t.Fatalf("Incr with TTL 0 after close: %v", err)
	}
	wantGet(t, c, "k", "41")
	checkInvariants(t, c)
}
