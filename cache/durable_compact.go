package cache

import (
	"context"
	"errors"
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
	if !d.enter() {
		d.compacting.Store(false)
		return
	}
	go func() {
		defer d.bg.Done()
		defer d.compacting.Store(false)
		if err := c.compact(); err != nil && !stopped(err) {
			d.logger.Warn("cache log compaction failed; the log stays longer until the next one", "cache", c.scope.String(), "err", err)
		}
	}()
}

// Compact rewrites the log of a durable cache so that it holds its live
// entries and little else; see the package documentation. It does nothing
// for an in-memory cache. Writes go on meanwhile; each shard's writes wait
// while its own entries are written. The background compaction runs the
// same code when the log has grown enough. It fails with ErrCompacting
// while another compaction runs, and with ErrDeleted once the cache is
// deleted (ErrClosed once its Store is closed): Store.DeleteDurable and
// Store.Close stop a running compaction at the end of the shard it is
// on, and wait for it, before they close the log.
func (c *Cache) Compact() error {
	d := c.dur
	if d == nil {
		return nil
	}
	if !d.compacting.CompareAndSwap(false, true) {
		return ErrCompacting
	}
	defer d.compacting.Store(false)
	if !d.enter() {
		return c.closedErr()
	}
	defer d.bg.Done()
	return c.compact()
}

// enter counts a compaction about to run in d.bg, which close waits for,
// unless the log is closing: then it reports false and the compaction
// must not run.
func (d *durable) enter() bool {
	d.bgMu.Lock()
	defer d.bgMu.Unlock()
	if d.closed {
		return false
	}
	d.bg.Add(1)
	return true
}

// closedErr is why a compaction does not run or goes no further once the
// log is closing: the cache was deleted (DeleteDurable), or else its
// Store closed.
func (c *Cache) closedErr() error {
	if c.deleted.Load() {
		return ErrDeleted
	}
	return ErrClosed
}

// stopped reports whether err is a compaction's stop for its log closing.
func stopped(err error) bool {
	return errors.Is(err, ErrDeleted) || errors.Is(err, ErrClosed)
}

// compact runs one compaction; the caller owns d.compacting.
func (c *Cache) compact() error {
	d := c.dur
	d.acctMu.Lock()
	started, flushes := d.appended.Load(), d.flushes
	d.acctMu.Unlock()
	ctx := context.Background()
	fail := func(what string, err error) error {
		d.writeErrors.Add(1)
		return &StorageError{Scope: c.scope, Op: "compact", Err: fmt.Errorf("%s: %w", what, err)}
	}
	// The version floor: its offset is where the snapshot starts: every
	// record below it may go.
	start, err := d.log.Append(ctx, [][]byte{appendFloorRecord(nil, c.version.Load())})
	if err != nil {
		return fail("version floor", err)
	}
	var snap snapshot
	for i := range c.shards {
		s := &c.shards[i]
		// The read lock keeps the shard's writers (who append under the
		// write lock) out, so no record of these keys falls between the
		// snapshot of their state and the records that state is written
		// as. It keeps a Flush out too: the shard's records are written
		// wholly before the flush's purge point (and purged) or wholly
		// after the flush (its state since).
		s.mu.RLock()
		err := c.appendSnapshot(s, &snap)
		s.mu.RUnlock()
		if err != nil {
			return fail("snapshot", err)
		}
		if d.compactHook != nil {
			if err := d.compactHook(i); err != nil {
				return err
			}
		}
		if d.closing.Load() {
			// DeleteDurable or Store.Close waits to close the log: stop
			// here, harmlessly as a crash would (see (a)).
			return c.closedErr()
		}
	}
	// The closing floor keeps the versions of the records dropped below
	// start, deletes' included: each took its version before it was
	// appended, before start was, before this load. (The first floor's
	// load may precede writes appended below start.)
	if _, err := d.log.Append(ctx, [][]byte{appendFloorRecord(nil, c.version.Load())}); err != nil {
		return fail("version floor", err)
	}
	// TruncateBefore fsyncs the log before it deletes a segment.
	if err := d.log.TruncateBefore(start); err != nil {
		return fmt.Errorf("cache %s: compaction: drop old segments: %w", c.scope, err)
	}
	d.acctMu.Lock()
	if d.flushes == flushes { // else a flush reset appended since started was read
		d.appended.Add(-started)
	}
	d.baseBytes.Store(logSize(d.log.Dir()))
	d.acctMu.Unlock()
	d.compactions.Add(1)
	return nil
}

// snapshot is the buffer of the put records being written by
// appendSnapshot.
type snapshot struct {
	buf   []byte
	batch [][]byte
}

// appendSnapshot appends a put record of every live entry of s to the
// log, as it is now, in batches of about compactBatchBytes (each appended
// as Append does: durable per the sync policy when it returns). Caller
// holds s.mu, for reading or writing, throughout.
func (c *Cache) appendSnapshot(s *shard, sn *snapshot) error {
	now := c.now()
	for j := range s.slots {
		sl := &s.slots[j]
		if sl.version == 0 || sl.expires <= now {
			continue
		}
		at := len(sn.buf)
		sn.buf = appendPutRecord(sn.buf, sl.key, sl.value, sl.version, c.expiresMs(sl.expires))
		sn.batch = append(sn.batch, sn.buf[at:len(sn.buf):len(sn.buf)])
		if len(sn.buf) >= compactBatchBytes {
			if err := c.appendBatch(sn); err != nil {
				return err
			}
		}
	}
	return c.appendBatch(sn)
}

// appendBatch appends the records sn holds and empties it.
func (c *Cache) appendBatch(sn *snapshot) error {
	if len(sn.batch) == 0 {
		return nil
	}
	_, err := c.dur.log.Append(context.Background(), sn.batch)
	sn.buf, sn.batch = sn.buf[:0], sn.batch[:0] // the log copied them
	return err
}
