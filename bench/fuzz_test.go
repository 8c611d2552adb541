package bench

import "testing"

// FuzzTrackerDeliver feeds arbitrary deliveries to the tracker: whatever a
// target hands over, it counts and never panics.
func FuzzTrackerDeliver(f *testing.F) {
	good := make([]byte, 32)
	stampPayload(good, 5, 3)
	f.Add(0, good)
	f.Add(1, []byte("short"))
	f.Add(-1, good)
	f.Fuzz(func(t *testing.T, sub int, payload []byte) {
		tr := newTracker(newClock(), 2, 2, 8)
		tr.deliver(sub, payload)
		tr.deliver(sub, payload)
		tot := tr.stop()
		if tot.distinct+tot.dups+tot.invalid != 2 {
			t.Fatalf("2 deliveries counted as distinct %d dups %d invalid %d", tot.distinct, tot.dups, tot.invalid)
		}
		if tot.distinct > 1 {
			t.Fatalf("the same payload counted %d times as distinct", tot.distinct)
		}
	})
}
