package metrics

import (
	"testing"

	"github.com/felixmq/felix/client"
	"github.com/felixmq/felix/server"
)

// joinWorkers joins group workers of default/jobs and takes one delivery.
func joinWorkers(t *testing.T, c *client.Client) (*client.Consumer, *client.Message) {
	t.Helper()
	co, err := c.Consumer(t.Context(), "default", "jobs", "workers")
	if err != nil {
		t.Fatal(err)
	}
	m, err := co.Next(t.Context())
	if err != nil {
		co.Close()
		t.Fatal(err)
	}
	return co, m
}

// A consumer's unacked delivery counts its payload in
// felix_queue_in_flight_bytes until it is acked, and the byte bound's
// counters are exported (zero here: 7 bytes are far below 64 MiB).
func TestQueueInFlightBytesExported(t *testing.T) {
	_, ms, c := hunt14Broker(t, server.QueueOptions{})
	hunt14Publish(t, c, "jobs", 1) // "jobs-00": 7 bytes
	co, m := joinWorkers(t, c)
	defer co.Close()
	group := append(append([]string{}, hunt14Jobs...), "group", "workers")
	scrape(t, ms).expect(t,
		seriesWant{"felix_queue_in_flight", group, 1},
		seriesWant{"felix_queue_in_flight_bytes", group, float64(len(m.Payload))},
		seriesWant{"felix_queue_in_flight_bytes_limited_total", group, 0},
		seriesWant{"felix_queue_dead_letters_abandoned_total", group, 0},
		seriesWant{"felix_connections_refused_draining_total", nil, 0}, // exported before any drain
	)
	if len(m.Payload) != 7 {
		t.Fatalf("payload %q, want jobs-00", m.Payload)
	}
	if err := m.Ack(t.Context()); err != nil {
		t.Fatal(err)
	}
	scrape(t, ms).expect(t,
		seriesWant{"felix_queue_in_flight", group, 0},
		seriesWant{"felix_queue_in_flight_bytes", group, 0},
	)
}
