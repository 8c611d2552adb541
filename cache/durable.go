package cache

import (
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/felixmq/felix/commitlog"
)

// DefaultCompactMinBytes is DurableOptions.CompactMinBytes's default floor.
const DefaultCompactMinBytes = 64 << 20

// DurableOptions configure the log of a durable cache (Store.CreateDurable).
// The zero value of every field but Dir is valid.
type DurableOptions struct {
	// Dir is the log's directory (created if missing). Required.
	Dir string
	// Sync is the fsync policy: under SyncAlways a write returns once its
	// record is fsynced (concurrent writes share fsyncs); under
	// SyncInterval (default) and SyncNever once it is written to the OS.
	Sync commitlog.SyncPolicy
	// SyncInterval is the fsync period under SyncInterval. Default 100ms.
	SyncInterval time.Duration
	// SegmentBytes is the log's segment size. Default 64 MiB.
	SegmentBytes int64
	// CompactMinBytes: the log is compacted once the bytes appended since
	// the last compaction exceed max(CompactMinBytes, 2 × the cache's
	// accounted bytes). Default max(64 MiB, SegmentBytes).
	CompactMinBytes int64
	// Logger receives recovery, compaction and failure messages. Default
	// slog.Default().
	Logger *slog.Logger
	// OnSync, when set, observes every fsync of the log (see
	// commitlog.Options.OnSync).
	OnSync func(time.Duration)
	// OnWrite, when set, observes every write call of the log: the records
	// and bytes it wrote, which concurrent writes share (see
	// commitlog.Options.OnWrite).
	OnWrite func(records, bytes int)
}

// Record kinds of a durable cache's log (see the package documentation).
const (
	recPut   byte = 1
	recDel   byte = 2
	recFloor byte = 3

	putHeader   = 1 + 8 + 8 + 4 // kind, version, expiry, key length
	delHeader   = 1 + 8 + 4     // kind, version, key length
	floorRecord = 1 + 8         // kind, version
	// keepScratch bounds the encode buffer a shard keeps between writes.
	keepScratch = 64 << 10
)

// durable is the log behind a durable cache.
type durable struct {
	log        *commitlog.DiskLog
	compactMin int64 // the floor of the compaction threshold
	logger     *slog.Logger

	appended    atomic.Int64 // record bytes appended since the last compaction started
	baseBytes   atomic.Int64 // the log's size at open or after the last compaction
	writeErrors atomic.Uint64
	// failing: the log refused the cache's last write (a full disk, a
	// closed log). Eviction for the Store's budget then takes from other
	// caches first (victim), without a failing write each; the next write
	// the log takes clears it.
	failing     atomic.Bool
	compactions atomic.Uint64
	compacting  atomic.Bool

	// acctMu orders a compaction's accounting (it reads appended when it
	// starts and subtracts that when it ends) with a Flush, which resets
	// appended: a compaction running across a flush must not subtract
	// what was counted before the flush from what was appended since.
	acctMu  sync.Mutex
	flushes uint64 // under acctMu: flushes that purged the log

	bgMu   sync.Mutex
	closed bool           // under bgMu: no compaction starts
	bg     sync.WaitGroup // the running compaction, background or Compact's
	// closing: close is waiting for the running compaction, which stops
	// at the end of the shard it is on.
	closing atomic.Bool

	// compactHook, set by tests, runs after each shard's snapshot records
	// are written, without a lock held; an error stops the compaction
	// there, as a crash would.
	compactHook func(shard int) error
	// closeHook, set by tests, runs when close waits for a running
	// compaction, which no longer appends past the shard it is on.
	closeHook func()
	// purgeHook, set by tests, runs in place of the log's Purge when a
	// Flush purges it (under every shard's write lock).
	purgeHook func() (uint64, error)
}

// recordSize is the bytes a payload of n bytes takes in the log.
func recordSize(n int) int64 { return int64(24 + n) }

func appendPutRecord(b []byte, key string, value []byte, version uint64, expiresMs int64) []byte {
	b = append(b, recPut)
	b = binary.BigEndian.AppendUint64(b, version)
	b = binary.BigEndian.AppendUint64(b, uint64(expiresMs))
	b = binary.BigEndian.AppendUint32(b, uint32(len(key)))
	b = append(b, key...)
	return append(b, value...)
}

func appendDelRecord(b []byte, key string, version uint64) []byte {
	b = append(b, recDel)
	b = binary.BigEndian.AppendUint64(b, version)
	b = binary.BigEndian.AppendUint32(b, uint32(len(key)))
	return append(b, key...)
}

func appendFloorRecord(b []byte, version uint64) []byte {
	b = append(b, recFloor)
	return binary.BigEndian.AppendUint64(b, version)
}

// logRecord is a decoded record; key and value alias the payload.
type logRecord struct {
	kind      byte
	version   uint64
	expiresMs int64
	key       []byte
	value     []byte
}

func decodeRecord(p []byte) (logRecord, error) {
	if len(p) == 0 {
		return logRecord{}, fmt.Errorf("empty record")
	}
	r := logRecord{kind: p[0]}
	switch r.kind {
	case recFloor:
		if len(p) != floorRecord {
			return r, fmt.Errorf("version floor record of %d bytes, want %d", len(p), floorRecord)
		}
		r.version = binary.BigEndian.Uint64(p[1:])
		return r, nil
	case recPut, recDel:
		h := putHeader
		if r.kind == recDel {
			h = delHeader
		}
		if len(p) < h {
			return r, fmt.Errorf("record of kind %d too short: %d bytes", r.kind, len(p))
		}
		r.version = binary.BigEndian.Uint64(p[1:])
		if r.kind == recPut {
			r.expiresMs = int64(binary.BigEndian.Uint64(p[9:]))
		}
		n := uint64(binary.BigEndian.Uint32(p[h-4:]))
		if uint64(len(p)-h) < n || (r.kind == recDel && uint64(len(p)-h) != n) {
			return r, fmt.Errorf("key length %d does not fit a record of %d bytes", n, len(p))
		}
		r.key = p[h : h+int(n)]
		r.value = p[h+int(n):]
		return r, nil
	}
	return r, fmt.Errorf("unknown record kind %d", r.kind)
}

// expiresMs is an entry's expiry as wall-clock unix milliseconds (0: never).
func (c *Cache) expiresMs(expires int64) int64 {
	if expires == never {
		return 0
	}
	return max(c.epoch.Add(time.Duration(expires)).UnixMilli(), 1)
}

// fromExpiresMs is expiresMs's inverse: the deadline relative to the
// cache's epoch, by the wall clock.
func (c *Cache) fromExpiresMs(ms int64) int64 {
	if ms == 0 {
		return never
	}
	return min(int64(time.UnixMilli(ms).Sub(c.epoch)), never-1)
}

// appendLocked appends the record in s.scratch[0] to the log. Called with
// s.mu held for writing, so the log's order of a key's records is the
// order its writes took effect. It returns the offset after the record,
// once the record is written: the writes of other shards that arrive
// meanwhile share its write call (the log's group write), so the caller
// applies its entry only if its own record was stored.
func (c *Cache) appendLocked(s *shard, op string, key string) (uint64, error) {
	d := c.dur
	rec := s.scratch[0]
	// Not waiting for the fsync (SyncAlways) under the lock: durableWait
	// does, after the caller released it.
	_, end, err := d.log.AppendNoWait(s.scratch[:])
	if cap(rec) > keepScratch {
		s.scratch[0] = nil
	}
	if err != nil {
		d.writeErrors.Add(1)
		d.failing.Store(true)
		return 0, &StorageError{Scope: c.scope, Op: op, Key: key, Err: err}
	}
	if d.failing.Load() {
		d.failing.Store(false)
	}
	if n := d.appended.Add(recordSize(len(rec))); n > max(d.compactMin, 2*c.bytes.Load()) {
		c.startCompaction()
	}
	return end, nil
}

// logPut appends a put record of key for the write op (put, incr).
// Caller holds s.mu for writing.
func (c *Cache) logPut(s *shard, op, key string, value []byte, version uint64, expires int64) (uint64, error) {
	s.scratch[0] = appendPutRecord(s.scratch[0][:0], key, value, version, c.expiresMs(expires))
	return c.appendLocked(s, op, key)
}

// logWrite appends the record of a write op (put, incr) of key taking
// effect: a delete record for a key that expires at once (immediate: its
// version stays in the log), else a put of value. Caller holds s.mu for
// writing.
func (c *Cache) logWrite(s *shard, op, key string, value []byte, version uint64, expires int64, immediate bool) (uint64, error) {
	if immediate {
		return c.logDel(s, op, key, version)
	}
	return c.logPut(s, op, key, value, version, expires)
}

// logDel appends a delete record of key. Caller holds s.mu for writing.
func (c *Cache) logDel(s *shard, op, key string, version uint64) (uint64, error) {
	s.scratch[0] = appendDelRecord(s.scratch[0][:0], key, version)
	return c.appendLocked(s, op, key)
}

// durableWait finishes a write of a durable cache whose record ends at
// end: it waits for the fsync (SyncAlways).
func (c *Cache) durableWait(op, key string, end uint64) error {
	if err := c.dur.log.WaitDurable(context.Background(), end); err != nil {
		return &StorageError{Scope: c.scope, Op: op, Key: key, Err: err}
	}
	return nil
}

// Dir is where a broker keeps the log of the durable cache scope under
// its data directory: <dataDir>/caches/<tenant>/<namespace>/<cache>, one
// escaped level per name part (commitlog.DirFor). felix serve
// --durable-cache, the control plane's durable caches and embed use it.
func Dir(dataDir string, scope Scope) string {
	return commitlog.DirFor(dataDir, "caches", scope.Tenant, scope.Namespace, scope.Cache)
}

// openDurable opens the log of a durable cache.
func openDurable(opts DurableOptions) (*durable, error) {
	if opts.Dir == "" {
		return nil, fmt.Errorf("%w: durable cache without a directory", ErrInvalidConfig)
	}
	logger := cmp.Or(opts.Logger, slog.Default())
	lg, err := commitlog.Open(opts.Dir, commitlog.Options{
		Sync: opts.Sync, SyncInterval: opts.SyncInterval, SegmentBytes: opts.SegmentBytes,
		// A record holds a whole key and value, which the cache bounds
		// (MaxBytes, the server's frame limit): the log must not refuse it.
		MaxRecordBytes: commitlog.MaxRecordLimit,
		Logger:         logger, OnSync: opts.OnSync, OnWrite: opts.OnWrite,
	})
	if err != nil {
		return nil, err
	}
	d := &durable{
		log: lg, logger: logger,
		compactMin: cmp.Or(opts.CompactMinBytes, max(DefaultCompactMinBytes, cmp.Or(opts.SegmentBytes, commitlog.DefaultSegmentBytes))),
	}
	return d, nil
}

// logSize is the size of the log's segment files.
func logSize(dir string) int64 {
	entries, _ := os.ReadDir(dir)
	var n int64
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".log") {
			continue
		}
		if fi, err := os.Stat(filepath.Join(dir, e.Name())); err == nil {
			n += fi.Size()
		}
	}
	return n
}

// close stops a running compaction (background or Compact's), waits for
// it and closes the log.
func (d *durable) close() error {
	d.bgMu.Lock()
	d.closed = true
	d.closing.Store(true)
	d.bgMu.Unlock()
	if d.closeHook != nil && d.compacting.Load() {
		d.closeHook()
	}
	d.bg.Wait()
	return d.log.Close()
}
