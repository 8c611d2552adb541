package metrics

import (
	"bytes"
	"testing"

	"github.com/felixmq/felix/broker"
	"github.com/felixmq/felix/client"
	"github.com/felixmq/felix/commitlog"
	"github.com/felixmq/felix/internal/testbroker"
	"github.com/felixmq/felix/wire"
)

// A publish with an event larger than a durable stream's record limit
// (commitlog.Options.MaxRecordBytes, below the frame limit) is refused
// whole: an acked one gets the error, a fire-and-forget one is dropped
// with nobody told. Both are counted, exactly, in
// felix_storage_record_too_large_total; before, the dropped one left no
// trace at all (no counter, no log line).
func TestHunt14TooLargePublishesCounted(t *testing.T) {
	tb := testbroker.Start(t,
		testbroker.WithDurableStreams(t.TempDir(), commitlog.Options{Sync: commitlog.SyncNever, MaxRecordBytes: 64, Logger: quiet},
			"default/default/jobs"))
	ms := startServer(t, Options{Sources: Sources{Broker: tb.Broker, Server: tb.Server}})
	c, err := client.Dial(t.Context(), tb.Addr, client.Options{TLS: tb.ClientTLS, PublishConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	big := bytes.Repeat([]byte{'x'}, 100)
	// Fire-and-forget, then acked on the same lane (in order): once the
	// acked one is answered the broker has handled the first.
	if err := c.Publish(t.Context(), "default", "jobs", big, client.WithAck(wire.AckNone)); err != nil {
		t.Fatal(err)
	}
	if err := c.Publish(t.Context(), "default", "jobs", big); err == nil {
		t.Fatal("an acked publish above the record limit was accepted")
	}
	if err := c.Publish(t.Context(), "default", "jobs", []byte("small")); err != nil {
		t.Fatal(err)
	}
	scrape(t, ms).expect(t,
		seriesWant{"felix_storage_record_too_large_total", hunt14Jobs, 2},
		seriesWant{"felix_stream_published_events_total", hunt14Jobs, 1},
		seriesWant{"felix_stream_publish_requests_total", hunt14Jobs, 1},
		seriesWant{"felix_storage_write_errors_total", hunt14Jobs, 0},
		seriesWant{"felix_publish_unknown_stream_dropped_total", nil, 0},
	)
}

// A durable stream whose log fails refuses every later publish; each
// refusal is counted in felix_storage_publishes_refused_total (the stream
// is still exported: it stays declared until the broker restarts).
func TestHunt14FailedStreamRefusalsExported(t *testing.T) {
	b := broker.New(broker.Options{Logger: quiet})
	defer b.Close()
	lg, err := commitlog.Open(t.TempDir(), commitlog.Options{Sync: commitlog.SyncNever, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	s, err := b.DeclareLoggedStream("default", "default", "jobs", broker.StreamOptions{Log: lg, Durable: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Publish(t.Context(), [][]byte{[]byte("kept")}); err != nil {
		t.Fatal(err)
	}
	lg.Close() // the log fails under the stream: appends get commitlog.ErrClosed
	for range 3 {
		if _, err := s.Publish(t.Context(), [][]byte{[]byte("refused")}); err == nil {
			t.Fatal("a publish to a failed stream was accepted")
		}
	}
	ms := startServer(t, Options{Sources: Sources{Broker: b}})
	scrape(t, ms).expect(t,
		seriesWant{"felix_storage_publishes_refused_total", hunt14Jobs, 3},
		seriesWant{"felix_stream_published_events_total", hunt14Jobs, 1},
		seriesWant{"felix_storage_record_too_large_total", hunt14Jobs, 0},
	)
}
