package client

import (
	"testing"

	"github.com/felixmq/felix/wire"
)

// A subscription that resumes after a lost event stream, at an offset the
// broker no longer retains, retries at the oldest offset the broker named;
// if that one too is gone by the time it asks (an in-memory stream's
// replay ring moves on with every publish), it follows the new oldest a
// few times and then goes on from the tail, and
// the events skipped are still counted in Missed: they are a known gap
// (docs: "counts the events skipped in Missed"), not a silent one.
func TestHunt14ResumeTooOldTwiceCountsGap(t *testing.T) {
	c := startTooOldBroker(t, func(sc subCall) {
		switch sc.n {
		case 3, 4, 5: // at 10, 20, 30: gone too meanwhile each time
			sc.reply(t, &wire.SubscribeCursorError{Reason: wire.CursorTooOld, Requested: sc.start().Offset, Available: sc.start().Offset + 10})
		default: // from the tail: the next event is 45
			if k := sc.start().Kind; k != wire.StartLatest {
				t.Errorf("subscribe %d starts at %v, want latest", sc.n, k)
			}
			sc.events(t, uint64(sc.n), offsetEvents(45, "z"))
			sc.reply(t, &wire.Subscribed{SubscriptionID: uint64(sc.n)})
		}
	})
	ctx := testCtx(t)
	sub := subscribe(t, ctx, c, "default", "demo")
	expectEvents(t, ctx, sub, []string{"a", "b", "c", "z"})
	// Offsets 3..44 were never delivered: 42 events known missed.
	if m := sub.Missed(); m != 42 {
		t.Fatalf("Missed = %d after resuming at offset 45 from 3, want 42", m)
	}
}

// startTooOldBroker runs a script broker whose first subscription gets
// offsets 0..2 and then the end of its event stream, and whose second
// (the resume at 3) is answered too_old with the oldest at 10; later
// subscribes go to later.
func startTooOldBroker(t *testing.T, later func(sc subCall)) *Client {
	return startScriptBroker(t, Options{}, func(sc subCall) {
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
		default:
			later(sc)
		}
	})
}

// A resubscribe whose resume at the broker's oldest offset met too_old
// again (the oldest moved on meanwhile) went on from the tail, skipping
// every retained record between the new oldest and the tail. It now asks
// again at the new oldest.
func TestHunt17ResumeFollowsMovingOldest(t *testing.T) {
	c := startTooOldBroker(t, func(sc subCall) {
		switch sc.n {
		case 3: // at 10: gone too meanwhile, the oldest is now 20
			sc.reply(t, &wire.SubscribeCursorError{Reason: wire.CursorTooOld, Requested: sc.start().Offset, Available: 20})
		default: // at 20: retained
			if st := sc.start(); st.Kind != wire.StartOffset || st.Offset != 20 {
				t.Errorf("subscribe %d starts at %+v, want offset 20", sc.n, st)
			}
			sc.events(t, uint64(sc.n), offsetEvents(20, "u", "v"))
			sc.reply(t, &wire.Subscribed{SubscriptionID: uint64(sc.n)})
		}
	})
	ctx := testCtx(t)
	sub := subscribe(t, ctx, c, "default", "demo")
	expectEvents(t, ctx, sub, []string{"a", "b", "c", "u", "v"})
	// Offsets 3..19 were never delivered: 17 events known missed.
	if m := sub.Missed(); m != 17 {
		t.Fatalf("Missed = %d after resuming at offset 20 from 3, want 17", m)
	}
}
