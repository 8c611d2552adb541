package embed

import (
	"os"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// Close is idempotent: a second call (and concurrent ones) return the
// first call's result instead of blocking on the serve loop's result,
// which the first call already took; the temporary data dir is gone and
// no goroutine of the broker is left running.
func TestCloseTwice(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	b, err := Start(Options{Streams: []string{"acme/web/s"}, Caches: []string{"acme/web/c"}})
	if err != nil {
		t.Fatal(err)
	}
	tmp := b.tmp
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for range 3 {
		wg.Go(func() { errs <- b.Close() })
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Minute): // a liveness bound, not a timing assertion
		t.Fatal("a second Close did not return")
	}
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("second Close: %v", err)
		}
	}
	if _, err := os.Stat(tmp); !os.IsNotExist(err) {
		t.Errorf("temporary data dir %s after Close: %v", tmp, err)
	}
}
