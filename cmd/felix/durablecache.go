package main

import (
	"cmp"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/felixmq/felix/cache"
	"github.com/felixmq/felix/commitlog"
)

// cacheDir is where a durable cache's log lives: one escaped directory
// level per name part under <data-dir>/caches, the directory the control
// plane's durable caches use too.
func cacheDir(dataDir string, s cache.Scope) string { return cache.Dir(dataDir, s) }

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

// reportUnservedCacheLogs warns about every log directory under
// <data-dir>/caches that no durable cache of the store serves: a cache
// taken out of the flags (or declared in memory now, or under another
// name) keeps its log, unserved. Called once the caches are declared (the
// control plane's after its first sync), as reportUnservedLogs is.
func reportUnservedCacheLogs(store *cache.Store, dataDir string, log *slog.Logger) {
	if dataDir == "" {
		return
	}
	declared := map[string]string{} // log dir → how its cache is declared
	for _, c := range store.Caches() {
		how := "in-memory"
		if c.Durable() {
			how = "durable"
		}
		declared[cacheDir(dataDir, c.Scope())] = how
	}
	eachStreamDir(filepath.Join(dataDir, "caches"), func(dir string, parts ...string) error {
		if how := cmp.Or(declared[dir], "no"); how != "durable" {
			log.Warn("durable cache log not served: no durable cache of its name is declared; its entries stay on disk",
				"cache", streamName(parts...), "dir", dir, "declared", how,
				"fix", "declare the cache durable (--durable-cache or the control plane) to serve them, or remove the directory")
		}
		return nil
	})
}
