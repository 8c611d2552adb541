package e2e

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/felixmq/felix/client"
	"github.com/felixmq/felix/server"
)

// Consume ends when its group is deleted: it does not take the broker's
// "queue group closed: group deleted" for a lost connection and rejoin,
// which would create the group again at the oldest record and hand every
// record, already handled, to the handler once more.
func TestConsumeEndsWhenGroupDeleted(t *testing.T) {
	const n = 20
	tb := startQueueBroker(t, server.QueueOptions{}, "default/default/jobs")
	c := dial(t, tb, client.Options{})
	publishSeq(t, c, "jobs", 0, n)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	var mu sync.Mutex
	seen := map[uint64]int{}
	all := make(chan struct{})
	ended := make(chan error, 1)
	go func() {
		ended <- c.Consume(ctx, "default", "jobs", "g", func(_ context.Context, m *client.Message) error {
			mu.Lock()
			defer mu.Unlock()
			seen[m.Offset]++
			if len(seen) == n && seen[m.Offset] == 1 {
				close(all)
			}
			return nil
		})
	}()
	select {
	case <-all:
	case <-ctx.Done():
		t.Fatal("not every record was handled")
	}
	// Every ack is recorded before the delete (Consume acks synchronously
	// after the handler: wait for the group to say so).
	for st, _ := c.QueueStats(ctx, "default", "jobs", "g"); st.Acked != n; st, _ = c.QueueStats(ctx, "default", "jobs", "g") {
		if ctx.Err() != nil {
			t.Fatalf("stats %+v", st)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := c.DeleteQueueGroup(ctx, "default", "jobs", "g"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-ended:
		if err == nil || !strings.Contains(err.Error(), "group deleted") || errors.Is(err, client.ErrDisconnected) {
			t.Fatalf("Consume returned %v, want the group's deletion (not a disconnection)", err)
		}
	case <-ctx.Done():
		mu.Lock()
		again := 0
		for _, k := range seen {
			again += k - 1
		}
		mu.Unlock()
		t.Fatalf("Consume went on after its group was deleted (%d records handled again)", again)
	}
	mu.Lock()
	defer mu.Unlock()
	for off, k := range seen {
		if k != 1 {
			t.Fatalf("offset %d handled %d times", off, k)
		}
	}
}

// A consumer joining a group while the group is being deleted joins either
// the old group (and then ends with "group deleted") or the group that
// takes the name afresh; the join itself never fails because the group it
// looked up closed under it.
func TestQueueJoinRacingDelete(t *testing.T) {
	tb := startQueueBroker(t, server.QueueOptions{}, "default/default/jobs")
	admin := dial(t, tb, client.Options{})
	publishSeq(t, admin, "jobs", 0, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	stop := make(chan struct{})
	var deleters sync.WaitGroup
	for range 2 {
		deleters.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				err := admin.DeleteQueueGroup(ctx, "default", "jobs", "g")
				if err != nil && !errors.Is(err, client.ErrQueueGroupNotFound) {
					t.Errorf("delete: %v", err)
					return
				}
			}
		})
	}
	defer deleters.Wait()
	defer close(stop)
	var joiners sync.WaitGroup
	for range 4 {
		c := dial(t, tb, client.Options{})
		joiners.Go(func() {
			for range 150 {
				co, err := c.Consumer(ctx, "default", "jobs", "g")
				if err != nil {
					t.Errorf("join racing deletes: %v", err)
					return
				}
				co.Close()
			}
		})
	}
	joiners.Wait()
}
