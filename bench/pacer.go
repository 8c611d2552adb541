package bench

import (
	"fmt"
	"strings"
)

// Pacing chooses how the publisher waits for each scheduled send time in
// latency mode (PubSubConfig.Rate > 0). Every mode measures latency from the
// scheduled time, so a late wake-up is never hidden: it shows in Latency and
// in PubSubResult.SendLag.
//
// Background: the Go runtime's timers wake a sleeping program about 1 ms
// late on Linux (the netpoller waits in whole milliseconds), far too coarse
// for a 10 000/s schedule. On Linux the pacer therefore sleeps on a
// timerfd(2) read through the netpoller: nanosecond resolution, no timer
// slack, and the publisher's goroutine parks like one waiting on a socket,
// so the goroutines its last publish woke (a client's flusher or connection
// loop) run on its P at once. What is left is the kernel's wake-up
// lateness, tens of µs on a small VM.
type Pacing int

const (
	// PaceSleep (the default) only sleeps: no busy CPU, so the harness
	// takes nothing from the system under test, and the OS's wake-up
	// lateness (SendLag) becomes part of every latency.
	PaceSleep Pacing = iota
	// PaceAdaptive sleeps but wakes early by the wake-up lateness it has
	// observed so far (mean + 2 deviations, at most 100 µs), then
	// busy-waits what is left: near-exact send times, but on a loaded
	// 2-core machine the busy-waiting takes CPU the target needs (a NATS
	// fanout of 10 got several times slower in our runs).
	PaceAdaptive
	// PaceSpin busy-waits the whole interval: exact send times, at the cost
	// of a whole CPU.
	PaceSpin
)

var pacingNames = [...]string{PaceSleep: "sleep", PaceAdaptive: "adaptive", PaceSpin: "spin"}

// String returns "sleep", "adaptive" or "spin".
func (p Pacing) String() string {
	if p >= 0 && int(p) < len(pacingNames) {
		return pacingNames[p]
	}
	return fmt.Sprintf("Pacing(%d)", int(p))
}

// MarshalText implements encoding.TextMarshaler.
func (p Pacing) MarshalText() ([]byte, error) {
	if p < 0 || int(p) >= len(pacingNames) {
		return nil, fmt.Errorf("bench: unknown pacing %d", int(p))
	}
	return []byte(p.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler; it also serves flags.
func (p *Pacing) UnmarshalText(b []byte) error {
	for i, n := range pacingNames {
		if strings.EqualFold(string(b), n) {
			*p = Pacing(i)
			return nil
		}
	}
	return fmt.Errorf("bench: unknown pacing %q (want sleep, adaptive or spin)", b)
}

// Adaptive pacing's estimator: exponentially weighted mean and mean
// absolute deviation of the oversleep, weight 1/32 per sample.
const (
	paceEWMAShift = 5
	paceMaxEarly  = 100_000 // ns: never wake more than this early
)

// pacer waits until scheduled instants of a run's clock. One goroutine, the
// publisher, uses it for one phase of a run.
type pacer struct {
	clk     clock
	mode    Pacing
	est     *paceEstimate
	sleep   func(ns int64) // waits about ns nanoseconds (may return early)
	release func()
}

// paceEstimate is the adaptive pacer's knowledge of the OS's wake-up
// lateness, kept across the phases of a run.
type paceEstimate struct {
	mean int64 // EWMA of oversleep, ns
	dev  int64 // EWMA of |oversleep − mean|, ns
}

// early is how long before a deadline the pacer stops sleeping.
func (p *pacer) early() int64 {
	switch p.mode {
	case PaceSleep:
		return 0
	case PaceSpin:
		return 1 << 62
	}
	return min(max(p.est.mean+2*p.est.dev, 0), paceMaxEarly)
}

// waitUntil returns at or after t (ns on p.clk).
func (p *pacer) waitUntil(t int64) {
	for {
		now := p.clk.now()
		rem := t - now - p.early()
		if rem <= 0 {
			break
		}
		p.sleep(rem)
		if p.mode == PaceAdaptive {
			p.est.observe(p.clk.now() - now - rem)
		}
	}
	for p.clk.now() < t {
		// Busy-wait the last stretch (or the whole interval with PaceSpin).
	}
}

// observe feeds one oversleep sample to the adaptive estimator.
func (e *paceEstimate) observe(over int64) {
	e.mean += (over - e.mean) >> paceEWMAShift
	d := over - e.mean
	if d < 0 {
		d = -d
	}
	e.dev += (d - e.dev) >> paceEWMAShift
}

// close undoes what newPacer did to the calling thread.
func (p *pacer) close() {
	if p.release != nil {
		p.release()
	}
}
