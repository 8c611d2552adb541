package broker

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/felixmq/felix/commitlog"
)

var errLowSpace = errors.New("free disk space 1.0 MiB is below the broker's limit of 50.0 MiB (--disk-free-limit)")

// While the storage guard refuses (the disk's free space below the
// floor), a publish to a durable stream fails with ErrStorage wrapping the
// guard's reason and nothing is appended; an in-memory stream is not
// affected; once the guard passes, the next publish takes the next offset.
func TestStorageGuardRefusesDurablePublishes(t *testing.T) {
	var low atomic.Bool
	guard := func() error {
		if low.Load() {
			return errLowSpace
		}
		return nil
	}
	lg := commitlog.NewMemory(1<<20, 1<<30)
	b, s := newLoggedStream(t, Options{StorageGuard: guard}, lg)
	mem, err := b.DeclareStream("t", "ns", "mem")
	if err != nil {
		t.Fatal(err)
	}
	sub, _ := s.Subscribe(SubscribeOptions{WantOffsets: true})
	ctx := context.Background()
	if _, err := s.Publish(ctx, [][]byte{seqPayload(0)}); err != nil {
		t.Fatal(err)
	}

	low.Store(true)
	if err := b.CheckStorage(); !errors.Is(err, errLowSpace) {
		t.Fatalf("CheckStorage = %v, want the guard's error", err)
	}
	_, err = s.Publish(ctx, [][]byte{seqPayload(99), seqPayload(100)})
	if !errors.Is(err, ErrStorage) || !errors.Is(err, errLowSpace) || errors.Is(err, ErrStoredNotDelivered) {
		t.Fatalf("publish below the floor: %v, want ErrStorage wrapping the guard's error", err)
	}
	if want := "storage write failed, publish not stored: stream t/ns/s: free disk space 1.0 MiB is below"; !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("error %q, want it to start %q", err, want)
	}
	if next := lg.Next(); next != 1 {
		t.Fatalf("log next %d after a refused publish, want 1", next)
	}
	if _, err := mem.Publish(ctx, [][]byte{seqPayload(0)}); err != nil {
		t.Fatalf("in-memory stream below the floor: %v", err)
	}
	if err := s.Err(); err != nil {
		t.Fatalf("stream ended by the guard: %v", err)
	}

	low.Store(false)
	if first, err := s.Publish(ctx, [][]byte{seqPayload(1)}); err != nil || first != 1 {
		t.Fatalf("publish once the guard passes: offset %d, %v; want 1", first, err)
	}
	checkSeq(t, drainN(t, sub, 2), 0, 2)
}
