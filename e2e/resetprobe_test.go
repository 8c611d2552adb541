package e2e

import (
	"context"
	"errors"
	"syscall"
	"testing"
	"time"

	"github.com/felixmq/felix/client"
)

// A broker killed with SIGKILL and restarted on the same data dir (so
// with the same stateless reset key) resets the client's old connections
// as soon as they send something long enough to answer. A client that
// publishes notices at its next publish; its subscriptions and queue
// consumers, on event connections that only receive, used to notice only
// at their idle timeout. Now the first reset makes the client probe its
// other connections, so the subscription and the consumer come back with
// the publisher. The event idle timeout here is 60 s: without the probe
// neither would see the event published after the restart within the
// 20 s the test waits.
func TestEventConnsFollowAStatelessReset(t *testing.T) {
	bin, dataDir, addr := processTest(t)
	args := []string{"--durable-stream", "default/default/jobs"}
	p := startFelix(t, bin, addr, dataDir, args...)
	defer func() {
		p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.done
	}()
	c := dialUntilUp(t, addr, dataDir, client.Options{EventIdleTimeout: 60 * time.Second, RequestTimeout: 3 * time.Second,
		Reconnect: client.ReconnectPolicy{MaxBackoff: 200 * time.Millisecond}})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	sub, err := c.Subscribe(ctx, "default", "jobs", client.FromOffset(0))
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	co, err := c.Consumer(ctx, "default", "jobs", "g")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { co.Close() }()
	if err := c.Publish(ctx, "default", "jobs", []byte("before")); err != nil {
		t.Fatal(err)
	}
	if ev, err := sub.Next(ctx); err != nil || string(ev.Payload) != "before" {
		t.Fatalf("subscription before the restart: %q, %v", ev.Payload, err)
	}
	m, err := co.Next(ctx)
	if err != nil || string(m.Payload) != "before" {
		t.Fatalf("consumer before the restart: %v", err)
	}
	if err := m.Ack(ctx); err != nil {
		t.Fatal(err)
	}

	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
	p = startFelix(t, bin, addr, dataDir, args...)
	for deadline := time.Now().Add(20 * time.Second); ; { // the publish connection gets the reset
		err := c.Publish(ctx, "default", "jobs", []byte("after"))
		if err == nil {
			break
		}
		if !errors.Is(err, client.ErrDisconnected) || time.Now().After(deadline) {
			t.Fatalf("publish after the restart: %v\n%s", err, p.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}

	// Both readers must see "after" within 20 s: far less than the event
	// connections' idle timeout.
	waitCtx, waitCancel := context.WithTimeout(ctx, 20*time.Second)
	defer waitCancel()
	for {
		ev, err := sub.Next(waitCtx)
		if err != nil {
			t.Fatalf("the subscription did not come back after the restart: %v (missed %d)", err, sub.Missed())
		}
		if string(ev.Payload) == "after" {
			break
		}
	}
	for {
		m, err := co.Next(waitCtx)
		if errors.Is(err, client.ErrDisconnected) { // the consumer rejoins, as Consume does
			co.Close()
			if co, err = c.Consumer(waitCtx, "default", "jobs", "g"); err != nil {
				t.Fatalf("rejoining the group after the restart: %v", err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("the consumer did not come back after the restart: %v", err)
		}
		if string(m.Payload) == "after" {
			break
		}
	}
}
