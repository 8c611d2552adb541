package cache

import (
	"context"
	"fmt"
)

// compactBatchBytes bounds the snapshot records compaction encodes before
// it appends them.
const compactBatchBytes = 1 << 20

// startCompaction runs Compact in the background unless one is running or
// the cache's log is closing.
func (c *Cache) startCompaction() {
	d := c.dur
	if !d.compacting.CompareAndSwap(false, true) {
		return
	}
	d.bgMu.Lock()
	if d.closed {
		d.bgMu.Unlock()
		d.compacting.Store(false)
		return
	}
	d.bg.Add(1)
	d.bgMu.Unlock()
	go func() {
		defer d.bg.Done()
		defer d.compacting.Store(false)
		if err := c.compact(); err != nil {
			d.logger.Warn("cache log compaction failed; the log stays longer until the next one", "cache", c.scope.String(), "err", err)
		}
	}()
}

// Compact rewrites the log of a durable cache so that it holds its live
// entries and little else; see the package documentation. It does nothing
// for an in-memory cache. Writes go on meanwhile; each shard's writes wait
// while its own entries are written. The background compaction runs the
// same code when the log has grown enough.
func (c *Cache) Compact() error {
	d := c.dur
	if d == nil {
		return nil
	}
	if !d.compacting.CompareAndSwap(false, true) {
		return ErrCompacting
	}
	defer d.compacting.Store(false)
	return c.compact()
}

// compact runs one compaction; the caller owns d.compacting.
func (c *Cache) compact() error {
	d := c.dur
	started := d.appended.Load()
	ctx := context.Background()
	fail := func(what string, err error) error {
		d.writeErrors.Add(1)
		return &StorageError{Scope: c.scope, Op: "compact", Err: fmt.Errorf("%s: %w", what, err)}
	}
	// The version floor: every version handed out so far is at most this,
	// so versions continue above it even once the records that carried
	// them (of deleted keys) are dropped. Its offset is where the
	// snapshot starts: every record below it may go.
	start, err := d.log.Append(ctx, [][]byte{appendFloorRecord(nil, c.version.Load())})
	if err != nil {
		return fail("version floor", err)
	}
	var (
		buf   []byte
		batch [][]byte
	)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		_, err := d.log.Append(ctx, batch)
		buf, batch = buf[:0], batch[:0] // the log copied them
		return err
	}
	for i := range c.shards {
		s := &c.shards[i]
		// The read lock keeps the shard's writers (who append under the
		// write lock) out, so no record of these keys falls between the
		// snapshot of their state and the records that state is written as.
		s.mu.RLock()
		now := c.now()
		var err error
		for j := range s.slots {
			sl := &s.slots[j]
			if sl.version == 0 || sl.expires <= now {
				continue
			}
			at := len(buf)
			buf = appendPutRecord(buf, sl.key, sl.value, sl.version, c.expiresMs(sl.expires))
			batch = append(batch, buf[at:len(buf):len(buf)])
			if len(buf) >= compactBatchBytes {
				if err = flush(); err != nil {
					break
				}
			}
		}
		if err == nil {
			err = flush()
		}
		s.mu.RUnlock()
		if err != nil {
			return fail("snapshot", err)
		}
		if d.compactHook != nil {
			if err := d.compactHook(i); err != nil {
				return err
			}
		}
	}
	// TruncateBefore fsyncs the log before it deletes a segment.
	if err := d.log.TruncateBefore(start); err != nil {
		return fmt.Errorf("cache %s: compaction: drop old segments: %w", c.scope, err)
	}
	d.appended.Add(-started)
	d.baseBytes.Store(logSize(d.log.Dir()))
	d.compactions.Add(1)
	return nil
}
