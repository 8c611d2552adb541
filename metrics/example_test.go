package metrics_test

import (
	"context"
	"log/slog"
	"time"

	"github.com/felixmq/felix/broker"
	"github.com/felixmq/felix/cache"
	"github.com/felixmq/felix/commitlog"
	"github.com/felixmq/felix/metrics"
	"github.com/felixmq/felix/server"
)

// How a broker process wires the metrics server: the fsync histogram goes
// into the logs' options before they open, the sources once they exist;
// readiness follows recovery and shutdown.
func Example() {
	logger := slog.Default()
	syncs := metrics.NewSyncHistogram()
	logOpts := commitlog.Options{Sync: commitlog.SyncAlways, OnSync: syncs.Observe} // for every commitlog.Open
	_ = logOpts

	b := broker.New(broker.Options{})
	store := cache.NewStore(cache.StoreOptions{})
	var srv *server.Server // from server.New(...)

	m := metrics.New(metrics.Options{
		Addr:    "127.0.0.1:8080",
		Sources: metrics.Sources{Broker: b, Server: srv, Caches: store, Sync: syncs},
		Logger:  logger,
	})
	if err := m.Start(); err != nil {
		logger.Error("metrics", "err", err)
		return
	}
	m.SetReady(true) // after recovery, when QUIC accepts

	// On SIGTERM: flip readiness first, drain the broker, stop metrics last.
	m.SetDraining()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = m.Shutdown(ctx)
}
