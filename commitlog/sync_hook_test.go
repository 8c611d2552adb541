package commitlog

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

// OnSync sees every fsync of records under SyncAlways, one per Append here.
func TestOnSyncObservesFsyncs(t *testing.T) {
	var calls atomic.Int64
	o := testOptions()
	o.Sync = SyncAlways
	o.OnSync = func(d time.Duration) {
		if d < 0 {
			t.Errorf("negative sync duration %v", d)
		}
		calls.Add(1)
	}
	l, err := Open(t.TempDir(), o)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for range 3 {
		if _, err := l.Append(context.Background(), [][]byte{[]byte("x")}); err != nil {
			t.Fatal(err)
		}
	}
	if got := calls.Load(); got < 3 {
		t.Fatalf("OnSync called %d times for 3 synced appends", got)
	}
}
