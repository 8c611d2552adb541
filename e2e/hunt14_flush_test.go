package e2e

import (
	"context"
	"fmt"
	"sync"
	"syscall"
	"testing"
	"time"
)

// hunt14Put is one acknowledged put of TestHunt14CacheFlushRacingKill.
type hunt14Put struct {
	key        string
	start, end time.Time
}

// docs/semantics.md, cache Flush: a write that overlaps it lands wholly
// before (removed) or wholly after (kept); on a durable cache the flush
// is on disk when it is answered, and with --fsync always nothing
// acknowledged is lost. Four writers put fresh keys into a durable cache
// while it is flushed twice, then the broker is SIGKILLed mid-writes and
// restarted. After the restart: every key whose put was acknowledged
// before the last flush began is gone, every key whose put began after
// the last flush was answered is there, and nothing else is found but
// keys put during a flush.
func TestHunt14CacheFlushRacingKill(t *testing.T) {
	b := hunt14Start(t, "--durable-cache", "default/default/h14x", "--fsync", "always")
	b.ready()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := dialProc(t, b.addr, b.dataDir)
	kv := c.Cache("default", "h14x")

	var (
		mu   sync.Mutex
		puts []hunt14Put
		wg   sync.WaitGroup
		stop = make(chan struct{})
	)
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				key := fmt.Sprintf("w%d-%d", w, i)
				pctx, pcancel := context.WithTimeout(ctx, time.Second)
				p := hunt14Put{key: key, start: time.Now()}
				_, err := kv.Put(pctx, key, []byte(key))
				p.end = time.Now()
				pcancel()
				if err != nil {
					return // the broker is gone
				}
				mu.Lock()
				puts = append(puts, p)
				mu.Unlock()
			}
		})
	}
	var flushStart, flushEnd time.Time
	for range 2 {
		time.Sleep(300 * time.Millisecond)
		flushStart = time.Now()
		if _, err := kv.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		flushEnd = time.Now()
	}
	time.Sleep(300 * time.Millisecond)
	b.stop(syscall.SIGKILL)
	close(stop)
	wg.Wait() // each put in flight ends with its context
	c.Close()
	b.start()
	c = dialProc(t, b.addr, b.dataDir)
	defer c.Close()
	kv = c.Cache("default", "h14x")

	mu.Lock()
	defer mu.Unlock()
	kept, gone := 0, 0
	for _, p := range puts {
		_, found, err := kv.Get(ctx, p.key)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case p.end.Before(flushStart) && found:
			t.Errorf("%s, put before the last flush began, is back after the crash", p.key)
		case p.start.After(flushEnd) && !found:
			t.Errorf("%s, put (acknowledged) after the last flush, lost in the crash", p.key)
		}
		if found {
			kept++
		} else {
			gone++
		}
	}
	if kept == 0 || gone == 0 {
		t.Errorf("%d keys kept, %d gone: the test did not exercise the flush", kept, gone)
	}
	t.Logf("%d acknowledged puts: %d kept, %d flushed", len(puts), kept, gone)
}
