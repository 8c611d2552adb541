package e2e

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/felixmq/felix/client"
)

// A subscriber only receives, so it sends nothing a broker restarted after
// a crash could answer with a stateless reset. Its event connection's idle
// timeout (Options.EventIdleTimeout, 6 s by default) bounds how long it
// takes to notice the broker died: it then resubscribes by itself and gets
// the events published after the restart. (At QUIC's 30 s default it took
// 30-40 s, and an in-memory stream's events of that time were lost to it.)
func TestSubscriberNoticesKilledBroker(t *testing.T) {
	bin, dataDir, addr := processTest(t)
	args := []string{"--stream", "default/default/demo"}
	p := startFelix(t, bin, addr, dataDir, args...)
	pub := dialProc(t, addr, dataDir) // proves the broker is up
	pub.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sc := dialResuming(t, ctx, addr, dataDir)
	got := make(chan string, 1024)
	sub, err := sc.SubscribeFunc(ctx, "default", "demo", func(ev client.Event) error {
		got <- string(ev.Payload)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()

	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.done
	killed := time.Now()
	p = startFelix(t, bin, addr, dataDir, args...)
	defer func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		<-p.done
	}()
	pub = dialProc(t, addr, dataDir)
	defer pub.Close()
	// Publish until the subscription, resubscribed, sees an event. The
	// bound leaves room for the 6 s idle timeout and a slow machine.
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for deadline := killed.Add(20 * time.Second); ; {
		select {
		case <-got:
			t.Logf("the subscriber received again %v after the kill", time.Since(killed).Round(100*time.Millisecond))
			return
		case <-tick.C:
			if time.Now().After(deadline) {
				t.Fatalf("the subscriber did not resubscribe within %v of the broker's kill (sub err %v)",
					time.Since(killed).Round(time.Second), sub.Err())
			}
			_ = pub.Publish(ctx, "default", "demo", []byte("after the restart"))
		}
	}
}
