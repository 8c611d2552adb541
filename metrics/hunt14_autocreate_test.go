package metrics

import (
	"testing"

	"github.com/felixmq/felix/broker"
	"github.com/felixmq/felix/client"
	"github.com/felixmq/felix/internal/testbroker"
	"github.com/felixmq/felix/wire"
)

// The bound on auto-created streams (broker.Options.MaxAutoCreatedStreams)
// is counted when it refuses a stream: felix_streams_auto_create_refused_total
// says exactly how many uses of a new name it turned away (an acked
// publish and a subscription, told; a fire-and-forget publish, dropped
// and also counted in felix_publish_unknown_stream_dropped_total).
func TestHunt14AutoCreateRefusalsCounted(t *testing.T) {
	tb := testbroker.Start(t, testbroker.WithBrokerOptions(broker.Options{AutoCreateStreams: true, MaxAutoCreatedStreams: 2}))
	ms := startServer(t, Options{Sources: Sources{Broker: tb.Broker, Server: tb.Server}})
	// One publish stream: the fire-and-forget publish to s3 is read before
	// the acked one to s4 is answered, so it is counted before the scrape
	// (with two, s3 and s4 may hash to streams served in parallel).
	c, err := client.Dial(t.Context(), tb.Addr, client.Options{TLS: tb.ClientTLS, PublishConns: 1, PublishStreamsPerConn: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, s := range []string{"s1", "s2"} {
		if err := c.Publish(t.Context(), "default", s, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Publish(t.Context(), "default", "s3", []byte("x"), client.WithAck(wire.AckNone)); err != nil {
		t.Fatal(err)
	}
	if err := c.Publish(t.Context(), "default", "s4", []byte("x")); err == nil {
		t.Fatal("a third auto-created stream was accepted")
	}
	if sub, err := c.Subscribe(t.Context(), "default", "s5"); err == nil {
		sub.Close()
		t.Fatal("a subscription auto-created a third stream")
	}
	scrape(t, ms).expect(t,
		seriesWant{"felix_streams", []string{"durable", "false"}, 2},
		seriesWant{"felix_streams_auto_create_refused_total", nil, 3},
		seriesWant{"felix_publish_unknown_stream_dropped_total", nil, 1},
	)
}
