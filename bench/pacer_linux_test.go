//go:build linux

package bench

import (
	"testing"
	"time"
)

func TestTimerfdSleeperSleepsAtLeastTheInterval(t *testing.T) {
	s, err := newTimerfdSleeper()
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	for _, d := range []time.Duration{0, time.Nanosecond, 50 * time.Microsecond, 2 * time.Millisecond, 2 * time.Millisecond} {
		start := time.Now()
		s.sleep(int64(d))
		if got := time.Since(start); got < d {
			t.Fatalf("sleep(%v) returned after %v", d, got)
		}
	}
}

func TestPacerWaitsUntilTheDeadline(t *testing.T) {
	clk := newClock()
	p := newPacer(clk, PaceSleep, &paceEstimate{})
	defer p.close()
	deadline := clk.now() + int64(3*time.Millisecond)
	p.waitUntil(deadline)
	if now := clk.now(); now < deadline {
		t.Fatalf("waitUntil returned %v early", time.Duration(deadline-now))
	}
}
