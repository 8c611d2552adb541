package client

import (
	"testing"

	"github.com/felixmq/felix/wire"
)

// A subscription that resumes after a lost event stream, at an offset the
// broker no longer retains, retries at the oldest offset the broker named;
// if that one too is gone by the time it asks (an in-memory stream's
// replay ring moves on with every publish), it goes on from the tail, and
// the events skipped are still counted in Missed: they are a known gap
// (docs: "counts the events skipped in Missed"), not a silent one.
func TestHunt14ResumeTooOldTwiceCountsGap(t *testing.T) {
	c := startScriptBroker(t, Options{}, func(sc subCall) {
		switch sc.n {
		case 1: // offsets 0..2, then the event stream ends
			us := sc.events(t, 1)
			sc.reply(t, &wire.Subscribed{SubscriptionID: 1})
			if us != nil {
				_, _ = us.Write(offsetEvents(0, "a", "b", "c"))
				_ = us.Close()
			}
		case 2: // resume at 3: gone, the oldest is 10
			sc.reply(t, &wire.SubscribeCursorError{Reason: wire.CursorTooOld, Requested: sc.start().Offset, Available: 10})
		case 3: // at 10: gone too meanwhile, the oldest is now 20
			sc.reply(t, &wire.SubscribeCursorError{Reason: wire.CursorTooOld, Requested: sc.start().Offset, Available: 20})
		default: // from the tail: the next event is 25
			if k := sc.start().Kind; k != wire.StartLatest {
				t.Errorf("subscribe %d starts at %v, want latest", sc.n, k)
			}
			sc.events(t, uint64(sc.n), offsetEvents(25, "z"))
			sc.reply(t, &wire.Subscribed{SubscriptionID: uint64(sc.n)})
		}
	})
	ctx := testCtx(t)
	sub := subscribe(t, ctx, c, "default", "demo")
	expectEvents(t, ctx, sub, []string{"a", "b", "c", "z"})
	// Offsets 3..24 were never delivered: 22 events known missed.
	if m := sub.Missed(); m != 22 {
		t.Fatalf("Missed = %d after resuming at offset 25 from 3, want 22", m)
	}
}
