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
// unrelated later entry. Cache.Flush does not reset the counter either. PutOptions.IfVersion is a compare-and-set on that version
// (0 meaning "the key must not exist"); PutOptions.IfAbsent writes only a
// missing key. Keys are retained as given (Go strings are immutable).
//
// # Expiry
//
// PutOptions.TTL follows the wire's ttl_ms: nil never expires; zero or
// negative is expired immediately (the write succeeds, takes a version and
// replaces any previous value, but a Get right after misses; nothing is
// kept). Cache.Expire sets an existing key's expiry from now and
// Cache.Persist removes it (Redis PEXPIRE and PERSIST); neither creates a
// key nor changes its version, which names the value. Expiry is lazy on access — an expired entry is removed by the
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
// # Scans
//
// Cache.Scan pages through the keys in byte order (Redis SCAN with MATCH
// prefix*): a page is the smallest live keys after a cursor, the last key
// of the previous page, gathered shard by shard under each shard's read
// lock in a bounded heap. There is no ordered index to keep up on writes,
// so a page costs a pass over the keys; in exchange the guarantee is
// simple: a key live for a whole scan is returned exactly once.
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
// The Store's budget (StoreOptions.MaxTotalBytes, 1 GiB by default) bounds
// all its caches together, as Redis's maxmemory. A reservation takes from
// the cache's counter, then from the budget's with the same kind of
// compare-and-swap (giving the first back if the second does not fit),
// and every removal gives back to both, so the budget's counter is the sum
// of the caches'. A Put the budget refuses evicts, as above, from the
// cache holding the most bytes among its own and the Store's (five sampled
// at random when there are more): busy caches take room from idle ones.
// When that cache has nothing to give but the key being written, or is a
// durable cache whose log refuses the eviction record, the Put evicts
// from the other caches in turn, its own included; it fails with a
// *BudgetFullError (ErrBudgetFull) only when no cache could give an
// entry, never with another cache's *StorageError. A durable cache whose
// log refused its last write is passed over as long as another cache can
// give room, and tried last otherwise (a log that takes the eviction
// record is healthy again), so that a full disk does not cost every
// write a failing log write. A deleted or replaced cache's bytes leave
// the budget when it is unregistered, before its entries are dropped (a
// DeleteDurable first waits for a running compaction), so a write that
// needs room never waits for them; if no cache has an entry to give, the
// bytes are reservations of writes in progress, and the write waits for
// those (their shards' locks) before it tries again.
//
// # Durability
//
// A cache created with Store.CreateDurable is backed by a commitlog.DiskLog
// (DurableOptions.Dir); one created with Create lives in memory only. Every
// write that changes a durable cache appends one record to its log: a put,
// a delete, the removal of an entry by capacity eviction (else it would
// come back after a restart), a TTL ≤ 0 put (logged as a delete
// carrying its version), an increment (a put of the new value) and a
// change of expiry (Expire, Persist: a put of the entry with its value
// and version and the new expiry). Entries that expire need no record: a put record
// carries the absolute expiry. A record's payload (integers big-endian):
//
//	put:    0x01 | u64 version | i64 expiry, unix ms by the wall clock (0: never) | u32 key length | key | value
//	delete: 0x02 | u64 version (the removed entry's, or the TTL ≤ 0 put's) | u32 key length | key
//	floor:  0x03 | u64 version (the version counter when a compaction started or ended, or a flush ran)
//
// The record is appended under the shard's write lock, before the entry
// changes in memory, so the log's order of a key's records is the order
// its writes took effect. The writes of other shards that reach the log
// while it is writing share its next write call
// (commitlog.DiskLog.AppendNoWait's group write), each applying its entry
// only once its own record is written. If the append fails (a full disk: a
// commitlog.WriteError) the write fails with a *StorageError (ErrStorage,
// counted in Stats.LogWriteErrors) and the entry stays as it was; an
// eviction that cannot be logged is not done, and the put needing the room
// fails. Under commitlog.SyncAlways a write returns once its record is
// fsynced, waiting after it released the shard's lock
// (commitlog.DiskLog.AppendNoWait, then WaitDurable); concurrent writers
// share fsyncs through the log's group commit.
// Under SyncInterval and SyncNever a write returns once its record is
// written to the OS (a process crash loses nothing; a machine crash loses
// the last interval, or what the OS had not written back). A write whose
// group write fails fails as any write that cannot be logged: every
// write of the group gets its *StorageError and leaves its entry as it
// was.
//
// CreateDurable replays the log in order: a key's last record decides its
// state; a put whose expiry has passed by the wall clock is not loaded. A
// deadline is kept as before, relative to the new epoch, computed from the
// wall-clock expiry, so a TTL counts the time the broker was down, and a
// wall clock stepped while it was down moves expiries with it. The
// version counter continues above every version in the log (and above
// the clock in microseconds, as for any new cache), so versions read
// before a restart stay valid for compare-and-set and never match a later
// write. If the cache holds more than Config.MaxBytes (a capacity lowered
// since), it evicts down to it, logging the evictions. The load holds no
// Store-wide lock: the other caches serve meanwhile, and only the
// requests to the cache being loaded wait for it.
//
// # Compaction
//
// Once the record bytes appended since the last compaction exceed
// max(DurableOptions.CompactMinBytes, 2 × the cache's accounted bytes), a
// background goroutine compacts the log (Cache.Compact runs it by hand):
//
//  1. it appends a floor record (the version counter); its offset S is
//     where the snapshot starts;
//  2. shard by shard, holding that shard's read lock (its writers wait; the
//     other shards and all readers go on), it appends a put record of
//     every live entry of the shard, as it is at that moment;
//  3. it appends a second floor record (the version counter again: every
//     record below S took its version before S was appended, so before
//     this, while the first floor's counter may have been read before
//     some of them);
//  4. it calls TruncateBefore(S), which fsyncs the log and then deletes the
//     sealed segments whose records all lie below S.
//
// Why a crash at any point leaves a log that loads the right state: replay
// is "a key's last record wins". Take a key k of shard s, whose snapshot
// records were written at T while s was locked. (a) A snapshot record
// repeats k's state at T, and no record of k can fall between that state
// and the record (s's writers append under s's lock), so appending it
// changes no key's replayed state: a crash during steps 1–3 leaves the old
// log plus harmless records, and loads what the old log would. (b) After
// step 4 the log has lost only records below S ≤ T. If k was live at T,
// its snapshot record sets its state at T, and later records follow as
// before. If k was absent at T (deleted, evicted or expired), either some
// record of k remains between the cut and T — the last of them is k's
// last record before T, which said absent (a delete, or a put whose
// absolute expiry has passed) — or none does and replay starts from
// absent. Either way every key replays to its state at T and then through
// its later records, as without the cut. Deletes are only dropped with
// the state they deleted. The second floor record keeps the versions of
// dropped deletes: versions continue above it. Segments are deleted only after
// the fsync, so a machine crash cannot leave the old records deleted and
// the snapshot lost; a deletion cut short leaves the oldest segments, and
// the log is just longer. A compaction that fails (disk full) stops where
// it is, by (a) harmlessly, and the next one starts over. Store.DeleteDurable
// and Store.Close stop a running compaction, background or Cache.Compact's,
// the same way at the end of a shard, and wait for it before they close
// the log: nothing appends to it once they return.
//
// The log after a compaction is the live entries plus at most a segment
// of older records (the one S falls in; segments are deleted whole) plus
// what was written since, so it stays within about
// max(CompactMinBytes, 2 × live) + live + a segment.
//
// # Flush
//
// Cache.Flush (Redis FLUSHDB) removes every entry: it takes every shard's
// write lock, in index order, so that no write is half before and half
// after it, drops the shards' tables and maps, and counts the live
// entries in Stats.Flushed. The version counter goes on: a version read
// before a flush fails a compare-and-set after it. On a durable cache,
// with the locks held, it appends a floor record (the version counter,
// which no writer can move meanwhile), purges the log
// (commitlog.DiskLog.Purge: every record below the log's end goes;
// offsets are not reused) and appends a second floor record, the first
// record of the purged log, before it empties the shards; under
// SyncAlways it returns once that record is fsynced. A write is either
// appended before the purge point, by a writer that held its shard's
// lock before Flush took it (purged, and its entry removed), or after
// the second floor, by a writer that took the lock after Flush (kept,
// with a version above the floor). So once Flush returns, a restart loads
// what was written after it, with versions above every version handed
// out before it.
//
// A crash during Flush: before the purge it leaves the old log (plus a
// floor record, harmless), which loads the old state; after the purge,
// an empty log, or one holding the second floor. During the purge, the
// log's crash safety leaves a suffix of its old segments (it deletes them
// oldest first, after the purge point is a segment boundary on disk).
// Replay is "a key's last record wins", and a key's last record is in
// the suffix unless none of its records is: so every key the suffix
// loads has its latest value, never an older one, and the other keys are
// absent. The first floor, in the last segment deleted, keeps the
// versions; only a crash after that deletion and before the second floor
// is written leaves versions to restart above the clock alone, as for a
// new cache (and, under SyncInterval or SyncNever, a machine crash soon
// after Flush returns, which may lose the second floor as any write). A
// compaction running meanwhile writes each shard's snapshot under that
// shard's read lock, which Flush's write lock excludes: its
// records are wholly below the purge point (and purged) or written after
// the flush, as the state since then; its TruncateBefore point is below
// the purge point (nothing left to drop) or after it. A compaction that
// started before the flush therefore never writes an entry the flush
// removed after the purge point. If the log refuses the first floor or
// the purge, Flush fails with a *StorageError and memory is untouched (a
// purge that failed after deleting part of the log is repaired by writing
// the entries again); once the purge has succeeded the entries are
// removed even if the second floor then fails.
//
// Store.Replace and Store.Delete refuse a durable cache (ErrDurable), so
// that nothing drops its log by accident: Store.Resize changes its
// capacity in place (as any cache's), Store.DeleteDurable deletes it
// (closing its log; the caller removes the directory), and
// Store.ReplaceDurable puts a durable cache in place of an in-memory one.
// Store.Close closes the logs.
//
// # Hot path
//
// Get, GetWithMeta, TTL and Delete do not allocate. Put allocates only the
// stored copy of the value (plus amortized growth of a shard's table). An
// in-memory cache pays one nil check for durability; a durable one encodes
// its record into a buffer its shard keeps.
// Counters (Stats) are per-shard atomics summed on demand.
package cache
