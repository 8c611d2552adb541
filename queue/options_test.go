package queue

import (
	"testing"
	"time"
)

func TestOptions(t *testing.T) {
	o, err := Options{}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if o.AckTimeout != 30*time.Second || o.MaxAttempts != 5 || o.BackoffMin != time.Second || o.BackoffMax != time.Minute ||
		o.DefaultPrefetch != 64 || o.ReadBatch != 256 || o.SnapshotEvery != 1024 || o.Clock == nil ||
		o.CloseDeadLetterWait != 5*time.Second || o.MaxInFlightBytes != 64<<20 {
		t.Fatalf("defaults: %+v", o)
	}
	if o, _ := (Options{BackoffMin: 2 * time.Minute}).withDefaults(); o.BackoffMax != 2*time.Minute {
		t.Fatalf("BackoffMax below a large BackoffMin: %v", o.BackoffMax)
	}
	for _, bad := range []Options{
		{AckTimeout: -1}, {BackoffMin: -1}, {BackoffMax: -1}, {DefaultPrefetch: -1}, {ReadBatch: -1},
		{SnapshotEvery: -1}, {BackoffMin: time.Minute, BackoffMax: time.Second},
		{CloseDeadLetterWait: -1}, {MaxInFlightBytes: -1},
	} {
		if _, err := NewGroup("g", memStream(t, 0), bad); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
	o, _ = Options{BackoffMin: time.Second, BackoffMax: 10 * time.Second, MaxAttempts: -1}.withDefaults()
	for attempt, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 4: 8 * time.Second, 5: 10 * time.Second, 1000: 10 * time.Second} {
		if got := o.backoff(attempt); got != want {
			t.Errorf("backoff(%d) = %v, want %v", attempt, got, want)
		}
	}
	if o.exhausted(1 << 30) {
		t.Error("MaxAttempts -1 exhausted")
	}
}
