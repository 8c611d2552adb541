package commitlog

import (
	"errors"
	"fmt"
)

// Purge removes every record below the Next() it observes and returns
// that offset, the purge point, which becomes Oldest(); see Log.Purge.
//
// Only whole sealed segments can be deleted, so Purge first makes the
// purge point a segment boundary: under the write lock, if the active
// segment holds records, it rolls it (the roll appends do: the segment is
// sealed, fsynced, and a new empty segment is started at the purge point,
// its header and directory entry fsynced, from the spare prepared ahead
// when there is one). An active segment that is empty is already such a
// boundary: no roll, no new file. Appends that take the write lock after
// the roll go to the new segment and are kept. Then, without the write
// lock (appends go on), it deletes every segment before the new active
// one as retention does (oldest first, each segment file before its
// index), and fsyncs the directory so that the deletion is durable
// before Purge returns. It holds the lock retention and TruncateBefore
// hold, so it runs alone among them, and Close waits for it. Before the
// roll it fsyncs the active segment without the write lock, as an append
// that rolls does, so the seal under the lock has little left to flush.
// Stats counts the roll's and the directory's fsyncs and the deleted
// segments (SegmentsDeleted).
//
// A full disk. A roll that cannot create the new segment (no space, no
// inode, no file descriptor) returns a *WriteError, not counted in
// Stats.WriteErrors. A purge is what an operator runs to free space, so
// Purge then makes room itself: it deletes the sealed segments first (all
// below the purge point; the active segment stays, and with it the log's
// end), fsyncs the directory, and tries the roll again, once. If that
// works the purge is complete, as above. If it fails, or there was no
// sealed segment to delete, Purge returns the roll's *WriteError: the
// records of the active segment are kept, the log takes appends as
// before, and removed counts the records of the sealed segments it
// deleted. Deleting before the roll is as crash-safe as the usual order:
// what is deleted is a prefix of the log, oldest first, so a crash leaves
// a suffix of it.
//
// Crashes: the segment sealed by the roll is complete on disk (fsynced)
// before the new segment exists, and the new segment (base = the purge
// point) is on disk, with its directory entry, before any file is
// deleted. So a crash at any moment leaves segments that follow each
// other with no gap, which Open accepts: before the roll, the log as it
// was (the purge has not happened); during the roll, a roll cut short,
// which Open repairs as after any roll's; during the deletions, the old
// segments not yet deleted, then the new one. Oldest after such a crash
// is the first segment left, between the old Oldest and the purge point,
// and Next is at least the purge point: a purge that had not returned
// may have removed only part of the records, never more, and never a
// record at or above the purge point. Once it has returned it stays done:
// it fsyncs the directory after the deletions. (The deletions reach the
// disk in the order they were made, whatever the file system: each waits
// for a directory fsync covering the one before it, see dropHead.) A file that cannot be deleted stops the deletion
// there, as for retention: Purge returns the error, Oldest is the base
// of that segment, and a later Purge (or retention) goes on from it.
//
// Readers that found a deleted segment before it left the list read it
// to the end (its file stays open until they release it); records
// already returned are never touched.
//
// removed counts the records it removed: those from the Oldest it found,
// once retention, TruncateBefore and other purges were held off, to the
// purge point. So purges at the same time count each record once (the
// later ones find nothing left), and records retention deleted just
// before are not counted. On an error removed counts what was deleted
// before it (segments deleted to make room on a full disk, or before a
// file that could not be deleted).
func (l *DiskLog) Purge() (first, removed uint64, err error) {
	l.dropMu.Lock()
	defer l.dropMu.Unlock()
	oldest := l.oldest.Load() // only a holder of dropMu moves it
	first, err = l.purgeLocked()
	if err != nil {
		return 0, l.oldest.Load() - oldest, err
	}
	return first, first - min(oldest, first), nil
}

// purgeLocked is Purge; the caller holds dropMu.
func (l *DiskLog) purgeLocked() (uint64, error) {
	// As an append that will roll does (lockForWrite): the seal under the
	// write lock then has little left to fsync. It also returns ErrClosed
	// once Close has finished, and a failed log's error.
	if err := l.syncActive(); err != nil {
		return 0, err
	}
	first, drop, err := l.purgeRoll()
	if _, full := errors.AsType[*WriteError](err); full && len(drop) > 0 {
		// No room for the new segment: free the sealed segments' space,
		// then roll again, once.
		l.log.Warn("commitlog: purge cannot start a new segment; deleting the sealed segments first to make room",
			"segments", len(drop), "err", err)
		if derr := l.dropPurged(drop); derr != nil {
			return 0, errors.Join(err, derr)
		}
		first, drop, err = l.purgeRoll()
	}
	if err != nil {
		return 0, err
	}
	return first, l.dropPurged(drop)
}

// purgeRoll makes the purge point a segment boundary under the write lock
// (rolling the active segment unless it is empty) and returns it with the
// segments below it, which only a holder of dropMu removes: l.segs starts
// with them until dropHead takes them out. On an error drop is the sealed
// segments below the active one, which stays.
func (l *DiskLog) purgeRoll() (first uint64, drop []*segment, err error) {
	l.mu.Lock()
	if err := l.writableLocked(); err != nil {
		l.mu.Unlock()
		return 0, nil, err
	}
	drop = l.segs[:len(l.segs)-1]
	active := l.segs[len(l.segs)-1]
	if active.next > active.base {
		if active, err = l.rollLocked(active, 0); err != nil {
			l.unlockWrite()     // the index of the segment it sealed, if it did
			return 0, drop, err // a *WriteError (the log goes on), or the log failed
		}
		drop = l.segs[:len(l.segs)-1]
	}
	l.unlockWrite() // writes the sealed segment's index, which dropHead then deletes
	return active.base, drop, nil
}

// dropPurged deletes drop, the segments at the head of the log, and
// fsyncs the directory so that the deletion is durable.
func (l *DiskLog) dropPurged(drop []*segment) error {
	if len(drop) == 0 {
		return nil
	}
	if err := l.dropHead(drop, "purge"); err != nil {
		return err
	}
	if err := dirSync(l.dir); err != nil {
		return fmt.Errorf("commitlog: purge: %w", err)
	}
	l.stats.fsyncs.Add(1)
	l.unsyncedDrop = false
	return nil
}
