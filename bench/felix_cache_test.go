package bench

import (
	"context"
	"testing"

	"github.com/felixmq/felix/broker"
)

func TestFelixCacheTarget(t *testing.T) {
	fb, err := StartEmbeddedFelix(broker.Options{}, "default/default/unused")
	if err != nil {
		t.Fatal(err)
	}
	defer fb.Stop()
	for _, op := range []string{CachePut, CacheGet} {
		res, err := RunCache(context.Background(), &FelixCacheTarget{Addr: fb.Addr, TLS: fb.TLS},
			CacheConfig{Op: op, Concurrency: 8, Keys: 500, Ops: 2000, WarmupOps: 100})
		if err != nil {
			t.Fatalf("%s: %v", op, err)
		}
		if res.Errors != 0 || res.Misses != 0 || res.BadValues != 0 || res.Ops != 2000 {
			t.Fatalf("%s: %+v", op, res)
		}
	}
}
