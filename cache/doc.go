// Package cache is Felix's cache engine, free of any transport: the registry
// of caches (Store) and the key → value engine behind the felix-wire
// cache_put and cache_get messages (Cache). A cache is scoped by tenant,
// namespace and cache name; keys are free-form strings.
//
// # Sharding
//
// A Cache is split into a power-of-two number of shards (Config.Shards,
// default max(16, GOMAXPROCS*4) rounded up). A key's shard is chosen by
// hash/maphash with a per-cache seed. Each shard has its own RWMutex; there
// is no cache-wide lock. Reads take the shard's read lock, writes its write
// lock. Cache-wide state is a handful of atomics: the version counter, the
// byte counter and the eviction cursor.
//
// A shard keeps its entries in a slot table (a slice) indexed by a map from
// key to slot. The table gives eviction true random samples and gives the
// sweeper a position to resume from; freed slots are reused. Values and
// keys of removed entries are released at once. Once fewer than a quarter
// of a table's slots are live (tables over 1024 slots), the shard compacts
// it and rebuilds its map (a Go map never shrinks), so a burst of small
// entries does not pin its high-water tables after they gave way to large
// ones, nor leave eviction sampling mostly free slots.
//
// # Values and versions
//
// Put stores its own copy of the value and never mutates a stored value:
// a write replaces the slice. Get therefore returns the stored slice itself,
// without copying; callers must treat it as read-only. Every successful
// write takes the next value of a per-cache version counter, so versions
// are unique and increase monotonically within a cache and within a key.
// The counter of a new cache starts above the clock in microseconds since
// the Unix epoch and above every version a deleted cache of the Store
// handed out, so versions do not repeat when a scope is deleted and
// created again, nor across a restart (unless a cache averaged over a
// million writes per second): a version read earlier never matches an
// unrelated later entry. PutOptions.IfVersion is a compare-and-set on that version
// (0 meaning "the key must not exist"); PutOptions.IfAbsent writes only a
// missing key. Keys are retained as given (Go strings are immutable).
//
// # Expiry
//
// PutOptions.TTL follows the wire's ttl_ms: nil never expires; zero or
// negative is expired immediately (the write succeeds, takes a version and
// replaces any previous value, but a Get right after misses; nothing is
// kept). Expiry is lazy on access — an expired entry is removed by the
// operation that finds it and counted in Stats.Expirations — plus a bounded
// background sweep: every StoreOptions.SweepInterval the Store visits
// StoreOptions.SweepMaxPerTick slots across its caches, round-robin across
// caches and shards, resuming where the previous tick stopped, and more
// while a quarter or more of the slots it visits held expired entries (as
// Redis's active expiry; at most a tenth of the interval), so expired
// entries do not hold memory even when short-lived keys are written faster
// than one budget a tick. Cache.Sweep and Store.Sweep run the same work
// synchronously. All expiry decisions use StoreOptions.Clock, so tests use
// a fake clock instead of sleeping. Deadlines are kept relative to the
// cache's creation time, so with the real clock they follow the monotonic
// clock and are immune to wall-clock steps.
//
// # Capacity and eviction
//
// Config.MaxBytes bounds a cache's accounted size; 0 means unbounded. An
// entry accounts len(key) + len(value) + EntryOverhead bytes. Under its
// shard's write lock, a Put reserves the difference between the new entry's
// size and the size of the entry it replaces (if any) in the cache-wide byte
// counter, with a compare-and-swap that never lets the counter exceed
// MaxBytes, and stores the entry in the same lock hold. When the
// reservation does not fit, the Put releases the lock, evicts one entry —
// never the key it is writing, whose bytes it will reuse — and tries again,
// evaluating its condition again too. So the counter is always within
// MaxBytes, an overwrite evicts only what the size difference needs, and a
// compare-and-set is never defeated by its own eviction of its key.
//
// Eviction is approximate LRU in the manner of Redis: it samples
// Config.EvictionSamples (default 5) entries, each from a random shard under
// that shard's read lock, and removes the least recently used one if it is
// still in place; an expired sample is removed first and counted as an
// expiration, not an eviction. Sampling across shards, rather than within
// one, keeps the choice cache-wide whatever the shards' sizes. Recency is a
// tick stored atomically in each entry: the cache's version counter at the
// entry's last read or write, so the recency clock advances with writes,
// which are what cause evictions. Reads store it under the shard's read
// lock, only when it changed, so a read-mostly key does not dirty its cache
// line on every read. A value that can never fit (size > MaxBytes) is
// refused with a *TooLargeError (ErrTooLarge).
//
// # Hot path
//
// Get, GetWithMeta, TTL and Delete do not allocate. Put allocates only the
// stored copy of the value (plus amortized growth of a shard's table).
// Counters (Stats) are per-shard atomics summed on demand.
package cache
