//go:build !linux

package bench

import "time"

// newPacer returns a pacer that sleeps with the runtime's timers, which may
// wake late by up to a millisecond; use PubSubConfig.Spin for precision.
func newPacer(clk clock, spinNs int64) *pacer {
	return &pacer{clk: clk, spin: spinNs}
}

func sleepNs(ns int64) { time.Sleep(time.Duration(ns)) }
