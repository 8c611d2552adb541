package queue

import (
	"math"
	"testing"
	"time"
)

// The timeout backoff never overflows: with a BackoffMax near the largest
// duration, the doubling stops at it instead of wrapping to a negative
// delay (which redelivered at once, with no backoff at all).
func TestBackoffDoesNotOverflow(t *testing.T) {
	o, err := Options{BackoffMin: 1 << 62, BackoffMax: math.MaxInt64}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	for attempt := 1; attempt <= 70; attempt++ {
		if d := o.backoff(attempt); d < o.BackoffMin || d > o.BackoffMax {
			t.Fatalf("backoff(%d) = %v, want within [%v, %v]", attempt, d, o.BackoffMin, o.BackoffMax)
		}
	}
	o, _ = Options{BackoffMin: 3 * time.Second, BackoffMax: 10 * time.Second}.withDefaults()
	for attempt, want := range map[int]time.Duration{1: 3 * time.Second, 2: 6 * time.Second, 3: 10 * time.Second, 100: 10 * time.Second} {
		if d := o.backoff(attempt); d != want {
			t.Fatalf("backoff(%d) = %v, want %v", attempt, d, want)
		}
	}
}
