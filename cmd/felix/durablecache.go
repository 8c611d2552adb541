package main

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/felixmq/felix/cache"
	"github.com/felixmq/felix/commitlog"
)

// cacheDir is where a durable cache's log lives: one escaped directory
// level per name part under <data-dir>/caches.
func cacheDir(dataDir string, s cache.Scope) string {
	return commitlog.DirFor(dataDir, "caches", s.Tenant, s.Namespace, s.Cache)
}

// validateDurableCaches refuses a malformed --durable-cache, one declared
// twice (in it or in --cache), and durable caches without a data directory.
func (f serveFlags) validateDurableCaches(bad func(key, msg string, args ...any)) {
	if len(f.durableCaches) > 0 && f.dataDir == "" {
		bad("data-dir", "durable caches need a data directory")
	}
	seen := map[string]string{}
	for _, v := range f.caches {
		seen[declName(v)] = f.sources.describe("cache")
	}
	for _, v := range f.durableCaches {
		if err := checkDeclaration("cache", v); err != nil {
			bad("durable-cache", "%q: %v", v, err)
			continue
		}
		name := declName(v)
		if first, dup := seen[name]; dup {
			bad("durable-cache", "cache %s declared more than once (also in %s)", name, first)
			continue
		}
		seen[name] = f.sources.describe("durable-cache")
	}
}

// openDurableCaches opens (or creates) the log of every durable cache,
// loads the cache it holds and registers it. Logs already opened are
// closed by the Store's Close.
func openDurableCaches(store *cache.Store, f serveFlags, policy commitlog.SyncPolicy, onSync func(time.Duration), log *slog.Logger) error {
	for _, v := range f.durableCaches {
		scope, cfg, err := parseCacheFlag(v, f.cacheMaxBytes)
		if err != nil {
			return fmt.Errorf("--durable-cache %q: %w", v, err)
		}
		dir := cacheDir(f.dataDir, scope)
		start := time.Now()
		c, err := store.CreateDurable(scope, cfg, cache.DurableOptions{
			Dir: dir, Sync: policy, SyncInterval: f.fsyncInterval, SegmentBytes: f.segmentBytes,
			Logger: log, OnSync: onSync,
		})
		if err != nil {
			return fmt.Errorf("--durable-cache %q: %w", v, err)
		}
		st := c.Stats()
		log.Info("durable cache opened", "cache", scope.String(), "dir", dir, "max_bytes", cfg.MaxBytes,
			"entries", st.Entries, "log_bytes", st.LogBytes, "fsync", policy.String(),
			"loss_window", lossWindow(policy, f), "load", time.Since(start).Round(time.Millisecond))
	}
	return nil
}
