package metrics

import (
	"testing"
	"time"

	"github.com/felixmq/felix/server"
)

// A record nacked with a delay holds no payload while it waits
// (felix_queue_pending_bytes 0), and its redelivery reads it again from
// the stream (felix_queue_reloaded_total).
func TestQueuePendingBytesAndReloadsExported(t *testing.T) {
	_, ms, c := hunt14Broker(t, server.QueueOptions{TickInterval: 10 * time.Millisecond})
	hunt14Publish(t, c, "jobs", 1)
	co, m := joinWorkers(t, c)
	defer co.Close()
	// A delay the scrape below comes well within.
	if err := m.Nack(t.Context(), 3*time.Second); err != nil {
		t.Fatal(err)
	}
	group := append(append([]string{}, hunt14Jobs...), "group", "workers")
	scrape(t, ms).expect(t,
		seriesWant{"felix_queue_pending", group, 1},
		seriesWant{"felix_queue_pending_bytes", group, 0},
		seriesWant{"felix_queue_reloaded_total", group, 0},
	)
	again, err := co.Next(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if string(again.Payload) != string(m.Payload) || again.Attempt != 2 {
		t.Fatalf("redelivery %q attempt %d, want %q attempt 2", again.Payload, again.Attempt, m.Payload)
	}
	scrape(t, ms).expect(t,
		seriesWant{"felix_queue_pending", group, 0},
		seriesWant{"felix_queue_reloaded_total", group, 1},
	)
}
