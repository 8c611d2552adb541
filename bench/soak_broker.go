package bench

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"

	"github.com/felixmq/felix/broker"
	"github.com/felixmq/felix/cache"
	"github.com/felixmq/felix/commitlog"
	"github.com/felixmq/felix/metrics"
	"github.com/felixmq/felix/server"
)

// The objects a soak broker declares ("tenant/namespace/name"): an
// in-memory stream, a durable stream with a subscriber, the durable stream
// of the queue group, and a cache with a capacity.
const (
	SoakMemStream     = "default/default/soak-mem"
	SoakDurableStream = "default/default/soak-durable"
	SoakQueueStream   = "default/default/soak-queue"
	// DefaultSoakCacheBytes is the capacity of SoakCache on a broker a
	// soak starts: small enough that the default load evicts.
	DefaultSoakCacheBytes = 512 << 10
)

// SoakCache is the cache a soak broker declares.
var SoakCache = cache.Scope{Tenant: "default", Namespace: "default", Cache: "soak"}

// soakKey splits "tenant/namespace/name".
func soakKey(key string) (tenant, ns, name string) {
	p := strings.SplitN(key, "/", 3)
	return p[0], p[1], p[2]
}

// soakNames is the namespace and name of a soak stream.
func soakNames(key string) (ns, name string) {
	_, ns, name = soakKey(key)
	return ns, name
}

// StartSoakFelixProcess runs `binary serve` (StartFelixProcess) with the
// soak's streams and cache (capacity cacheBytes) declared, the default
// drop_new queue policy, and its /metrics on a free 127.0.0.1 port, which
// the returned target reads. extra serve flags come last, so they win.
func StartSoakFelixProcess(ctx context.Context, binary string, cacheBytes int64, extra, env []string) (*SoakTarget, error) {
	port, err := freeLoopbackPort()
	if err != nil {
		return nil, err
	}
	metricsAddr := "127.0.0.1:" + strconv.Itoa(port)
	args := []string{"--queue-policy", "drop_new", "--metrics-addr", metricsAddr,
		"--durable-stream", SoakDurableStream, "--durable-stream", SoakQueueStream,
		"--cache", SoakCache.String() + ":" + strconv.FormatInt(cacheBytes, 10)}
	fb, err := StartFelixProcess(ctx, binary, append(args, extra...), env, SoakMemStream)
	if err != nil {
		return nil, err
	}
	return &SoakTarget{FelixBroker: fb, Metrics: ScrapeMetrics("http://" + metricsAddr + "/metrics"),
		Where: "felix serve child process; memory from its /metrics at " + metricsAddr}, nil
}

// ExternalSoakTarget is a broker this command did not start, whose
// /metrics is at metricsURL. It must declare the soak's streams (the
// durable ones durable) and SoakCache.
func ExternalSoakTarget(fb *FelixBroker, metricsURL string) *SoakTarget {
	return &SoakTarget{FelixBroker: fb, Metrics: ScrapeMetrics(metricsURL),
		Where: "external broker at " + fb.Addr + "; memory from " + metricsURL}
}

// StartEmbeddedSoakFelix runs a broker in this process on 127.0.0.1, as
// felix serve would with the soak's declarations: the default drop_new
// policy, durable streams on commit logs (fsync interval) with durable
// group state, and SoakCache with capacity cacheBytes, all in a temporary
// directory that Stop removes. subQueue bounds each subscription's queue,
// in frames (0: the broker's default, 512). Its memory figures are this
// process's runtime metrics, read through a metrics registry of the
// broker, so they include the load generators.
func StartEmbeddedSoakFelix(cacheBytes int64, subQueue int) (*SoakTarget, error) {
	return StartEmbeddedSoakFelixWith(cacheBytes, subQueue, BenchBrokerOptions{})
}

// StartEmbeddedSoakFelixWith is StartEmbeddedSoakFelix with the durable
// streams' logs opened with bo's options (BenchBrokerOptions.StreamLog;
// its cache options are not used).
func StartEmbeddedSoakFelixWith(cacheBytes int64, subQueue int, bo BenchBrokerOptions) (t *SoakTarget, err error) {
	var undo []func() // run in reverse by cleanup
	cleanup := func() {
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
	}
	defer func() {
		if err != nil {
			cleanup()
		}
	}()
	dir, err := os.MkdirTemp("", "felix-bench-soak-")
	if err != nil {
		return nil, err
	}
	undo = append(undo, func() { os.RemoveAll(dir) })
	quiet := slog.New(slog.DiscardHandler)
	b := broker.New(broker.Options{Logger: quiet, QueueCapacity: subQueue})
	if _, err := b.DeclareStream(soakKey(SoakMemStream)); err != nil {
		return nil, err
	}
	for _, k := range []string{SoakDurableStream, SoakQueueStream} {
		lg, err := bo.openDurableStream(b, dir, k, commitlog.SyncInterval)
		if err != nil {
			return nil, err
		}
		undo = append(undo, func() { lg.Close() })
	}
	store := cache.NewStore(cache.StoreOptions{})
	undo = append(undo, store.Close)
	if _, err := store.Create(SoakCache, cache.Config{MaxBytes: cacheBytes}); err != nil {
		return nil, err
	}
	stls, ctls, err := devTLS(dir)
	if err != nil {
		return nil, err
	}
	addr, stop, err := serveLoopback(server.Options{Broker: b, TLS: stls, Caches: store, Logger: quiet,
		Queues: server.QueueOptions{StateDir: commitlog.DirFor(dir, "groups")}})
	if err != nil {
		return nil, err
	}
	ms := metrics.New(metrics.Options{Logger: quiet, Sources: metrics.Sources{Broker: b, Caches: store}})
	fb := &FelixBroker{Addr: addr, TLS: ctls, Stop: func() error {
		err := stop()
		cleanup()
		return err
	}}
	return &SoakTarget{FelixBroker: fb, Metrics: GatherMetrics(ms.Registry()),
		Where: fmt.Sprintf("embedded in this process (pid %d); memory from this process's runtime metrics, load generators included", os.Getpid())}, nil
}
