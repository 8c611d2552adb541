package broker

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/felixmq/felix/commitlog"
)

// A publish to a log-backed stream whose context has already ended (its
// connection just closed) is not appended by the log. It must not be
// fanned out as if it had been, and it must not leave the stream waiting
// for offsets that will never be fanned out: later publishes still
// complete, and subscribers see exactly what the log holds.
func TestLoggedPublishWithEndedContext(t *testing.T) {
	for _, name := range []string{"empty", "non-empty"} {
		t.Run(name, func(t *testing.T) {
			lg, err := commitlog.Open(t.TempDir(), commitlog.Options{Sync: commitlog.SyncNever})
			if err != nil {
				t.Fatal(err)
			}
			_, s := newLoggedStream(t, Options{}, lg)
			sub, err := s.Subscribe(SubscribeOptions{WantOffsets: true})
			if err != nil {
				t.Fatal(err)
			}
			var want []uint64
			if name == "non-empty" {
				if _, err := s.Publish(context.Background(), [][]byte{seqPayload(0)}); err != nil {
					t.Fatal(err)
				}
				want = append(want, 0)
			}
			gone, cancel := context.WithCancel(context.Background())
			cancel()
			done := make(chan error, 1)
			go func() {
				_, err := s.Publish(gone, [][]byte{seqPayload(100)})
				done <- err
			}()
			select {
			case err := <-done:
				if err == nil {
					t.Fatal("publish with an ended context reported success")
				}
			case <-time.After(5 * time.Second):
				t.Fatal("publish with an ended context hangs")
			}
			ctx, cancelPub := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancelPub()
			next := uint64(len(want))
			go func() {
				_, err := s.Publish(ctx, [][]byte{seqPayload(next)})
				done <- err
			}()
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("publish after it: %v", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("publish after a publish with an ended context hangs")
			}
			want = append(want, next)
			got := drainN(t, sub, len(want))
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("subscriber got %v, want %v (the log holds %d records)", got, want, lg.Next())
				}
			}
			if lg.Next() != uint64(len(want)) {
				t.Fatalf("log holds %d records, want %d", lg.Next(), len(want))
			}
		})
	}
}

// A record the log refuses as too large is an error for that publish only:
// the durable stream stays up for its subscribers and later publishes.
// (With --max-frame-bytes above the log's 16 MiB record limit, one client
// could otherwise end a durable stream for everyone.)
func TestLoggedPublishTooLargeKeepsStream(t *testing.T) {
	lg, err := commitlog.Open(t.TempDir(), commitlog.Options{Sync: commitlog.SyncNever, MaxRecordBytes: 1024})
	if err != nil {
		t.Fatal(err)
	}
	_, s := newLoggedStream(t, Options{}, lg)
	sub, err := s.Subscribe(SubscribeOptions{WantOffsets: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := s.Publish(ctx, [][]byte{seqPayload(1), make([]byte, 2048)}); !errors.Is(err, commitlog.ErrTooLarge) {
		t.Fatalf("oversized record: err = %v, want commitlog.ErrTooLarge", err)
	}
	if err := s.Err(); err != nil {
		t.Fatalf("the stream ended after one oversized publish: %v", err)
	}
	if _, err := s.Publish(ctx, [][]byte{seqPayload(2)}); err != nil {
		t.Fatalf("publish after the oversized one: %v", err)
	}
	if got := drainN(t, sub, 1); len(got) != 1 || got[0] != 2 {
		t.Fatalf("subscriber got %v, want [2]", got)
	}
}
