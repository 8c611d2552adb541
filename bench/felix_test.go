package bench

import (
	"context"
	"testing"
	"time"

	"github.com/felixmq/felix/broker"
)

func TestFelixTargetEmbedded(t *testing.T) {
	fb, err := StartEmbeddedFelix(broker.Options{QueuePolicy: broker.Block}, "default/default/bench")
	if err != nil {
		t.Fatal(err)
	}
	defer fb.Stop()
	for _, acked := range []bool{false, true} {
		tg := &FelixTarget{Addr: fb.Addr, TLS: fb.TLS, Acked: acked}
		res, err := RunPubSub(context.Background(), tg, PubSubConfig{Fanout: 3, Total: 2000, Warmup: 100, Batch: 4, Timeout: 30 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if res.Lost != 0 || res.Duplicates != 0 || res.OutOfOrder != 0 || res.Delivered != 3*2100 {
			t.Fatalf("%s: %+v", tg.Name(), res)
		}
	}
}

// BenchmarkPubSubFelix: publish→deliver latency at a fixed rate, fanout 1
// and 10, 256 B, against an embedded broker. Run the same-run comparison
// with `felix bench pubsub --compare nats,quic` (it starts the peers).
func BenchmarkPubSubFelix(b *testing.B) {
	for _, fanout := range []int{1, 10} {
		b.Run(map[int]string{1: "fanout1", 10: "fanout10"}[fanout], func(b *testing.B) {
			fb, err := StartEmbeddedFelix(broker.Options{QueuePolicy: broker.Block}, "default/default/bench")
			if err != nil {
				b.Fatal(err)
			}
			defer fb.Stop()
			b.ResetTimer()
			res, err := RunPubSub(context.Background(), &FelixTarget{Addr: fb.Addr, TLS: fb.TLS},
				PubSubConfig{Fanout: fanout, Total: max(b.N, 100), Warmup: 200, Rate: 5000, PayloadSize: 256})
			if err != nil {
				b.Fatal(err)
			}
			reportLatency(b, res)
		})
	}
}

func reportLatency(b *testing.B, res PubSubResult) {
	b.ReportMetric(float64(res.Latency.P50.Microseconds()), "p50-µs")
	b.ReportMetric(float64(res.Latency.P99.Microseconds()), "p99-µs")
	b.ReportMetric(float64(res.Latency.P999.Microseconds()), "p999-µs")
	b.ReportMetric(float64(res.Lost), "lost")
}
