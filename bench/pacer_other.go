//go:build !linux

package bench

import "time"

// newPacer returns a pacer that sleeps with the runtime's timers, which may
// wake late by up to a millisecond (PaceAdaptive learns that and wakes
// early, within its 100 µs cap).
func newPacer(clk clock, mode Pacing, est *paceEstimate) *pacer {
	return &pacer{clk: clk, mode: mode, est: est, sleep: sleepNs}
}

func sleepNs(ns int64) { time.Sleep(time.Duration(ns)) }
