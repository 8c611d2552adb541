package queue

import (
	"errors"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/felixmq/felix/commitlog"
)

// When Close's own state record cannot be written (here: too large for
// the state log), Close still returns only once the records appended
// before it are durable: an Ack whose caller stopped waiting, a
// dead-lettering's record, attempt counts of a Tick. Here an Ack's
// record is appended and its fsync held; Close, whose record of 59
// attempt counts is refused, waits for that fsync and then reports its
// own failure. Before, Close returned its error at once, with the Ack's
// record not yet durable.
func TestCloseWaitsForEarlierStateWhenItsOwnFails(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var hold atomic.Bool
		syncing, release := make(chan struct{}), make(chan struct{})
		onSync := func(time.Duration) { // after the fsync, before the log counts it done
			if hold.CompareAndSwap(true, false) {
				close(syncing)
				<-release
			}
		}
		logs := openDiskLogsWith(t, t.TempDir(), commitlog.Options{Sync: commitlog.SyncAlways, MaxRecordBytes: 64, OnSync: onSync})
		const n = 60
		fill(t, logs.stream, n)
		g := newGroupT(t, logs.stream, Options{Clock: newFakeClock(), StateLog: logs.state, AckTimeout: time.Hour})
		m := joinT(t, g, "a", n)
		if ds := nextT(t, m, 1); len(ds) != 1 {
			t.Fatalf("got %d deliveries, want 1", len(ds))
		}
		hold.Store(true)
		acked := make(chan error, 1)
		go func() { acked <- m.Ack(t.Context(), 0) }()
		<-syncing // the Ack's record is written, its fsync held
		if ds := nextT(t, m, 0); len(ds) != n-1 {
			t.Fatalf("got %d deliveries, want %d", len(ds), n-1)
		}
		closed := make(chan error, 1)
		go func() { closed <- g.Close() }()
		synctest.Wait()
		select {
		case err := <-closed:
			close(release)
			t.Fatalf("Close returned (%v) before the Ack's state record was durable", err)
		default:
		}
		close(release)
		synctest.Wait()
		if err := <-acked; err != nil {
			t.Fatalf("Ack: %v", err)
		}
		err := <-closed
		if !errors.Is(err, commitlog.ErrTooLarge) {
			t.Fatalf("Close: %v, want its own record's failure (too large)", err)
		}
		var swe *StateWriteError
		if !errors.As(err, &swe) || swe.Group != "g" {
			t.Fatalf("Close: %v, want a *StateWriteError of group g", err)
		}
	})
}
