package bench

import (
	"context"
	"testing"
	"time"
)

func TestRedisPubSubTarget(t *testing.T) {
	addr := startRedisOrSkip(t)
	tgt := &RedisPubSubTarget{Addr: addr}
	for _, cfg := range []PubSubConfig{
		{Fanout: 3, Total: 1000, Warmup: 100, Batch: 8, Timeout: 30 * time.Second},
		{Fanout: 1, Total: 300, Rate: 5000, Timeout: 30 * time.Second},
	} {
		res, err := RunPubSub(context.Background(), tgt, cfg)
		if err != nil {
			t.Fatal(err)
		}
		want := int64(cfg.Fanout * (cfg.Total + cfg.Warmup))
		if res.Target != "redis" || res.Lost != 0 || res.Duplicates != 0 || res.OutOfOrder != 0 || res.Delivered != want ||
			res.Latency.Count != int64(cfg.Fanout*cfg.Total) {
			t.Fatalf("%+v", res)
		}
	}
}
