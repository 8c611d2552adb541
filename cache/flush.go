package cache

import (
	"context"
	"fmt"
)

// Flush removes every entry of the cache (Redis FLUSHDB) and returns how
// many live entries it removed; the expired entries it drops are counted
// as expirations, not in removed. Stats.Flushed counts the live ones.
//
// It is atomic with respect to the cache's writers: it takes every
// shard's write lock, in index order, and holds them all while it
// removes the entries, so a write is wholly before the flush (removed)
// or wholly after it (kept), whatever its shard. The tables and maps of
// the shards are dropped, not kept at their high-water size, and the
// byte counter goes back to 0. The version counter is not reset: a
// version read before the flush never matches an entry written after it,
// so a compare-and-set with it fails.
//
// On a durable cache, still under the locks, Flush appends a version
// floor record (the version counter, which no writer can move while the
// locks are held), purges the log (commitlog.DiskLog.Purge: every record
// below its Next goes, the floor's segment last), and appends a second
// floor record in the new, empty log; only then does it empty the
// shards. Under SyncAlways it returns once that record is fsynced,
// waiting after it released the locks, as writes do. Once Flush has
// returned without error, a restart loads an empty cache plus what was
// written after the flush, with versions above every version handed out
// before it (the second floor is in the log, and writes after the flush
// follow it). A crash during Flush leaves, by the purge's crash safety, a
// suffix of the old log's segments, so (replay being "a key's last
// record wins") it loads the old state, an empty cache, or a state where
// every key present has its latest value, never an older one: a key's
// last record is either in the suffix, or no record of the key is. (Only
// if the crash comes after the purge deleted the floor's segment and
// before the second floor was written, or under SyncInterval or
// SyncNever a machine crash loses the second floor as it may any write
// of its interval, do versions restart above the clock only, as for any
// new cache.) A compaction running meanwhile writes each shard's
// snapshot under that shard's read lock, so wholly before the purge point
// (purged with the rest) or after the flush (the state since); it ends
// with its own floor and TruncateBefore of a point that is below the
// purge point (nothing left to drop) or after the flush.
//
// If the log refuses the first floor record or the purge (a full disk,
// a closed or failed log), Flush returns a *StorageError and leaves every
// entry as it was; if the purge failed after it had deleted some of the
// log (a segment file that cannot be removed), Flush first writes every
// entry to the log again (as a compaction does), so that a restart still
// loads them. If the second floor cannot be written or synced, the log
// is already purged: the entries are removed all the same and Flush
// returns removed with the *StorageError, whose only consequence is that
// a restart before the next logged write would start versions above the
// clock rather than above the floor.
//
// A deleted cache returns ErrDeleted.
func (c *Cache) Flush() (removed uint64, err error) {
	if c.deleted.Load() {
		return 0, ErrDeleted
	}
	if c.dur != nil {
		// Most of the purge's fsync, before writers have to wait for it.
		_ = c.dur.log.Sync()
	}
	for i := range c.shards {
		c.shards[i].mu.Lock()
	}
	unlock := func() {
		for i := range c.shards {
			c.shards[i].mu.Unlock()
		}
	}
	if c.deleted.Load() { // closeWrites waits for the locks: checked under them, as writes do
		unlock()
		return 0, ErrDeleted
	}
	var end uint64
	if c.dur != nil {
		var purged bool
		if end, purged, err = c.purgeLocked(); !purged {
			unlock()
			return 0, err
		}
	}
	now := c.now()
	var freed int64
	for i := range c.shards {
		s := &c.shards[i]
		live, expired, size := s.empty(now)
		freed += size
		removed += live
		s.flushed.Add(live)
		s.expirations.Add(expired)
	}
	c.account(-freed)
	unlock()
	if end != 0 {
		if werr := c.dur.log.WaitDurable(context.Background(), end); werr != nil {
			err = c.flushError("version floor after the purge", werr)
		}
	}
	return removed, err
}

// purgeLocked is the log's part of Flush, with every shard's write lock
// held: a floor, the purge, a floor. purged reports whether the log was
// purged, in which case Flush empties the shards (and end is the offset
// after the second floor record, for WaitDurable; err, if any, says that
// record was not written).
func (c *Cache) purgeLocked() (end uint64, purged bool, err error) {
	d := c.dur
	ver := c.version.Load()
	floor := [][]byte{appendFloorRecord(nil, ver)}
	// The first floor: a full disk is found before anything is removed,
	// and a purge cut short by a crash leaves it in its last segment.
	if _, _, err := d.log.AppendNoWait(floor); err != nil {
		return 0, false, c.flushError("version floor", err)
	}
	oldest := d.log.Oldest()
	purge := func() (uint64, error) {
		first, _, err := d.log.Purge()
		return first, err
	}
	if d.purgeHook != nil {
		purge = d.purgeHook
	}
	if _, err := purge(); err != nil {
		err = c.flushError("purge", err)
		if d.log.Oldest() != oldest {
			// Part of the log is gone: write the entries again, so that
			// a restart loads what memory keeps.
			if rerr := c.relogLocked(ver); rerr != nil {
				d.logger.Error("cache flush: the log lost entries that stay in memory; a restart will not load them",
					"cache", c.scope.String(), "purge_err", err, "err", rerr)
				err = fmt.Errorf("%w; writing the entries again: %w", err, c.flushError("rewrite", rerr))
			}
		}
		return 0, false, err
	}
	// The log is purged: from here on the flush has happened.
	d.acctMu.Lock()
	d.flushes++
	d.appended.Store(0)
	d.baseBytes.Store(logSize(d.log.Dir()))
	d.acctMu.Unlock()
	_, end, err = d.log.AppendNoWait(floor)
	if err != nil {
		return 0, true, c.flushError("version floor after the purge", err)
	}
	return end, true, nil
}

// relogLocked appends a floor with version ver and a put record of every
// live entry, each durable per the sync policy when it returns, as a
// compaction does. Caller holds every shard's lock.
func (c *Cache) relogLocked(ver uint64) error {
	if _, err := c.dur.log.Append(context.Background(), [][]byte{appendFloorRecord(nil, ver)}); err != nil {
		return err
	}
	var snap snapshot
	for i := range c.shards {
		if err := c.appendSnapshot(&c.shards[i], &snap); err != nil {
			return err
		}
	}
	return nil
}

// flushError counts a log error of Flush and wraps it.
func (c *Cache) flushError(what string, err error) error {
	c.dur.writeErrors.Add(1)
	return &StorageError{Scope: c.scope, Op: "flush", Err: fmt.Errorf("%s: %w", what, err)}
}
