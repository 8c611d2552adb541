package client

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"testing"
	"time"
)

// A broker restart right as a publish lane moves to a fresh token (the
// old stream retiring, the new one waiting for it): one goroutine's acked
// publishes keep their order, each is stored once, none hangs, and the
// lane, on its new connection, goes on rotating.
func TestHunt13RotationAcrossRestart(t *testing.T) {
	b := startKeptQueueBroker(t)
	token := func(context.Context) (string, error) {
		now := time.Now()
		return unsignedJWT(fmt.Sprintf(`{"iat":%d,"exp":%d}`, now.Unix(), now.Add(2*time.Second).Unix())), nil
	}
	c := dial(t, b, Options{PublishConns: 1, PublishStreamsPerConn: 1, CacheConns: 1, CacheStreamsPerConn: 1,
		TokenSource: token, Reconnect: fastReconnect})
	ctx := testCtx(t)
	var mu sync.Mutex
	var got []uint64
	_, awaitEnd := subscribeJobs(t, ctx, c, func(ev Event) {
		mu.Lock()
		got = append(got, binary.BigEndian.Uint64(ev.Payload))
		mu.Unlock()
	})

	l := c.lanes[0]
	stop := make(chan struct{})
	done := make(chan struct{})
	var acked []uint64
	var pubErr error
	go func() {
		defer close(done)
		for i := uint64(0); i < 1_000_000; i++ {
			select {
			case <-stop:
				return
			default:
			}
			pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			err := c.Publish(pctx, "default", "jobs", binary.BigEndian.AppendUint64(nil, i))
			cancel()
			switch {
			case err == nil:
				acked = append(acked, i)
			case hang(err) || ctx.Err() != nil:
				pubErr = fmt.Errorf("publish %d: %w", i, err)
				return
			}
		}
	}()
	rotated := func(from *pubSession) func() bool {
		return func() bool {
			l.mu.Lock()
			defer l.mu.Unlock()
			return l.retiring != nil || (l.sess != from && l.sess != nil && l.sess.alive())
		}
	}
	first := l.live()
	pollUntil(t, "a rotation of the publish lane", rotated(first))
	b.Restart()
	after := l.live()
	pollUntil(t, "a session on the new broker", func() bool {
		select {
		case <-done:
			t.Fatalf("the publisher stopped: %v", pubErr)
		default:
		}
		after = l.live()
		return after != nil && after != first
	})
	pollUntil(t, "a rotation on the new broker", rotated(after))
	close(stop)
	<-done
	if pubErr != nil {
		t.Fatal(pubErr)
	}
	awaitEnd()
	mu.Lock()
	defer mu.Unlock()
	count := map[uint64]int{}
	for i, v := range got {
		if i > 0 && v <= got[i-1] {
			t.Fatalf("stored out of call order: %d after %d", v, got[i-1])
		}
		count[v]++
	}
	for _, v := range acked {
		if count[v] != 1 {
			t.Fatalf("acked publish %d stored %d times", v, count[v])
		}
	}
	t.Logf("%d stored, %d acked", len(got), len(acked))
}
