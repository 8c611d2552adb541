package commitlog

import (
	"errors"
	"os"
	"testing"
	"testing/synctest"
	"time"
)

// openIntervalLog opens a log under SyncInterval with a 100ms interval.
func openIntervalLog(t *testing.T) (*DiskLog, Options) {
	opts := testOptions()
	opts.Sync = SyncInterval
	opts.SyncInterval = 100 * time.Millisecond
	return openT(t, t.TempDir(), opts), opts
}

// TestSyncIntervalBackground: under SyncInterval appends return unsynced and
// the background fsync catches up within one interval (fake time).
func TestSyncIntervalBackground(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l, opts := openIntervalLog(t)
		appendN(t, l, 5, 1)
		if st := l.Stats(); st.Synced != 0 {
			t.Fatalf("synced %d right after the appends; want the fsync left to the interval", st.Synced)
		}
		time.Sleep(opts.SyncInterval + time.Millisecond)
		synctest.Wait()
		if st := l.Stats(); st.Synced != 5 {
			t.Fatalf("synced %d one interval later, want 5", st.Synced)
		}
		l.Close()
	})
}

// TestSyncIntervalIdleLogSleeps: under SyncInterval an idle log's syncer
// sleeps until something is appended, instead of waking every interval to
// find nothing to fsync: a broker with thousands of idle durable streams
// (or consumer groups' state logs) must idle at ~0% CPU. Appends are
// still fsynced within one interval.
func TestSyncIntervalIdleLogSleeps(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l, opts := openIntervalLog(t)
		time.Sleep(time.Hour)
		synctest.Wait()
		if w := l.syncerWakeups.Load(); w != 0 {
			t.Fatalf("the syncer of a log with nothing appended woke %d times in an hour", w)
		}
		for round := range 3 {
			appendN(t, l, 2, 1)
			time.Sleep(opts.SyncInterval + time.Millisecond)
			synctest.Wait()
			if st := l.Stats(); st.Synced != st.Next {
				t.Fatalf("round %d: synced %d one interval after the appends, want %d", round, st.Synced, st.Next)
			}
			w := l.syncerWakeups.Load()
			time.Sleep(time.Hour)
			synctest.Wait()
			if got := l.syncerWakeups.Load() - w; got > 1 {
				t.Fatalf("round %d: the syncer woke %d times in an idle hour after an fsync", round, got)
			}
		}
	})
}

// TestRetentionBackground: the retention ticker runs EnforceRetention.
func TestRetentionBackground(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		opts := testOptions()
		opts.RetentionBytes = 2000
		opts.RetentionInterval = time.Minute
		l := openT(t, dir, opts)
		appendN(t, l, 60, 2)
		n := len(segments(t, dir))
		time.Sleep(time.Minute + time.Second)
		synctest.Wait()
		if got := len(segments(t, dir)); got >= n || l.Oldest() == 0 {
			t.Fatalf("after a retention interval: %d segments (was %d), Oldest %d", got, n, l.Oldest())
		}
		l.Close()
	})
}

func TestSyncNeverAndExplicitSync(t *testing.T) {
	opts := testOptions()
	opts.Sync = SyncNever
	l := openT(t, t.TempDir(), opts)
	appendN(t, l, 3, 1)
	if l.Stats().Synced != 0 {
		t.Fatal("SyncNever fsynced on its own")
	}
	if err := l.Sync(); err != nil || l.Stats().Synced != 3 {
		t.Fatalf("Sync: %v, synced %d", err, l.Stats().Synced)
	}
	l.Close()
	if err := l.Sync(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Sync after Close: %v", err)
	}
}

// TestWriteFailureIsSticky: when a write fails and its partial bytes
// cannot be cut off, the log refuses every later write (and says why)
// rather than append after garbage.
func TestWriteFailureIsSticky(t *testing.T) {
	dir := t.TempDir()
	l := openT(t, dir, testOptions())
	appendN(t, l, 2, 1)
	l.segs[len(l.segs)-1].f.Close() // the disk "goes away"
	if _, err := l.Append(t.Context(), [][]byte{{1}}); err == nil {
		t.Fatal("append to a closed file succeeded")
	}
	_, err := l.Append(t.Context(), [][]byte{{2}})
	if err == nil || !errors.Is(err, os.ErrClosed) || l.Next() != 2 {
		t.Fatalf("append after a failure: %v, Next %d", err, l.Next())
	}
}
