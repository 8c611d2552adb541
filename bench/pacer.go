package bench

// pacer waits until scheduled instants of a run's clock. It is used by one
// goroutine, the publisher, for the whole run.
//
// The Go runtime's timers wake a sleeping program about 1 ms late on Linux
// (the netpoller waits in whole milliseconds), far too coarse for a 10 000/s
// schedule. The Linux pacer therefore locks the publisher to its OS thread,
// sets that thread's timer slack to 1 ns and sleeps with nanosleep(2); what
// is left is the kernel's wake-up latency (tens of µs on a small VM).
// Optionally it busy-waits the last stretch (PubSubConfig.Spin), which is
// precise but keeps a CPU busy.
type pacer struct {
	clk     clock
	spin    int64 // ns of busy-wait before a deadline
	release func()
}

// waitUntil returns at or after t (ns on p.clk).
func (p *pacer) waitUntil(t int64) {
	for {
		rem := t - p.clk.now()
		if rem <= p.spin {
			break
		}
		sleepNs(rem - p.spin)
	}
	for p.clk.now() < t {
		// Busy-wait: only reached when spin > 0 or the sleep returned early.
	}
}

// close undoes what newPacer did to the calling thread.
func (p *pacer) close() {
	if p.release != nil {
		p.release()
	}
}
