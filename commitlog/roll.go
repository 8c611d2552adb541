package commitlog

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
)

// Rolling: sealing the active segment and starting the next one.
//
// A roll runs under the write lock (DiskLog.mu): every appender waits for
// it. So it does there only what must come before the next record is
// written, and prepares the rest ahead or leaves it for after:
//
//   - The next segment file is prepared ahead: once the active segment is
//     half full, a background goroutine creates a spare file (spareName)
//     holding a zeroed header, and fsyncs it and the directory. The roll
//     writes the header, gives the file its name with a hard link (which,
//     like O_EXCL, never replaces a file), removes the spare name, and
//     fsyncs the file and the directory (concurrently): the new segment is
//     as durable as one created in the roll, before any record is written
//     to it, at about half the cost. With no spare ready (none asked yet,
//     still being made, or its making failed), or if using it fails, the
//     roll creates the segment itself.
//   - The sealed segment's index file is written after the lock is
//     released, by the appender that rolled, before its append returns.
//
// At most one spare exists per log (one name; one preparation at a time,
// and none while one is ready), asked for at most once per segment.
// Close waits for a preparation and an index write under way, then
// removes the spare. Open removes a spare left by a crash (and Verify
// mentions it): whatever its state, it is not part of the log.

// spareName is the name of the spare segment file in a log directory.
// It is not a segment name: listDir ignores it.
const spareName = "segment.next"

// spareState is the spare segment file; under DiskLog.mu.
type spareState struct {
	// ready: the spare file is made and waits for the next roll. It is
	// closed meanwhile (no descriptor held between rolls; the roll opens
	// it again, which costs no fsync).
	ready bool
	busy  bool  // a goroutine is preparing one
	asked bool  // one was asked for while this segment is active
	err   error // why the last preparation failed, until a roll tells
}

// sealedIndex is the index file a roll left to write, with the entries of
// its segment when it was sealed.
type sealedIndex struct {
	seg     *segment
	next    uint64 // seg.next when sealed
	entries []indexEntry
}

// openSpare is createSpareFile; a test replaces it to make it fail.
var openSpare = createSpareFile

// createSpareFile creates the spare file at path, fsynced with its
// directory (by syncDir itself: it runs in the background, and the hook
// dirSync is for the log's own files; a test makes the spare fail through
// openSpare). It holds 32 zero bytes where the header goes: the roll
// writes the header over them without growing the file, and a roll cut
// short leaves a segment with no valid header and no records, which Open
// gives a fresh header.
func createSpareFile(path string) (*os.File, error) {
	return createSynced(path, make([]byte, segmentHeaderSize), syncDir)
}

// writeIndex writes an index file; a test replaces it to stall it.
var writeIndex = writeIndexFile

// rollLocked seals old (fsyncing what it holds unsynced; its index file
// is written once l.mu is released, see unlockWrite) and starts the next
// segment. calls is the appends waiting for it, counted as not written if
// the new segment cannot be created; 0 for a purge (purge.go), which no
// append waits for: its *WriteError is then neither counted nor warned
// about here.
func (l *DiskLog) rollLocked(old *segment, calls int) (*segment, error) {
	if old.sealed != old.next {
		// lockForWrite fsynced it just before, unless records came since.
		if err := l.syncRecords(old, old.next); err != nil {
			return nil, err // the log failed
		}
		l.sealedIndex = sealedIndex{seg: old, next: old.next, entries: old.index.entries}
		l.wg.Add(1) // Close waits for the index write
		old.sealed = old.next
	}
	created := l.opts.Clock().UnixMicro()
	seg := l.useSpareLocked(old.next, created)
	if seg == nil {
		var err error
		if seg, err = createSegment(l.dir, old.next, created); err != nil {
			// createSegment removed the file it may have created: make
			// that durable now, or before the next record is written.
			l.unsyncedRemoval = true
			if serr := l.syncRemovalLocked(); serr != nil {
				err = errors.Join(err, serr)
			}
			err = fmt.Errorf("roll: %w", explainFDs(err))
			if calls == 0 {
				return nil, &WriteError{Err: err}
			}
			return nil, l.writeFailedLocked(err, calls)
		}
	}
	l.stats.fsyncs.Add(2)     // the new file and the directory
	l.unsyncedRemoval = false // that directory fsync made any earlier removal durable too
	l.spare.asked = false
	l.segMu.Lock()
	l.segs = append(slices.Clip(l.segs), seg)
	l.segMu.Unlock()
	return seg, nil
}

// syncRemovalLocked fsyncs the directory if a failed roll removed its new
// segment file since the last directory fsync. The name of that file may
// have reached the disk (its directory fsync may have succeeded where the
// file's failed, or run before the failure was known); its removal must
// reach the disk too before a record is written into the segment that
// stayed active: else after a power failure the removed file could come
// back, starting at an offset the active segment now holds records at,
// and Open would refuse the overlap. So a write calls it first, and fails
// (a *WriteError: nothing written) while the directory cannot be fsynced.
// l.mu is held.
func (l *DiskLog) syncRemovalLocked() error {
	if !l.unsyncedRemoval {
		return nil
	}
	if err := dirSync(l.dir); err != nil {
		return fmt.Errorf("make the removal of a segment a roll could not complete durable: %w", err)
	}
	l.stats.fsyncs.Add(1)
	l.unsyncedRemoval = false
	return nil
}

// useSpareLocked makes the spare, if one is ready, the segment with base
// base, or returns nil: then the roll creates the segment itself. A spare
// that cannot be used is closed and removed (from under either name).
func (l *DiskLog) useSpareLocked(base uint64, created int64) *segment {
	if !l.spare.ready {
		if err := l.spare.err; err != nil {
			l.log.Warn("commitlog: the next segment could not be prepared ahead; the roll creates it", "err", err)
			l.spare.err = nil
		}
		return nil
	}
	l.spare.ready = false
	spare, path := filepath.Join(l.dir, spareName), filepath.Join(l.dir, segmentName(base))
	f, err := os.OpenFile(spare, os.O_RDWR, 0)
	if err != nil {
		os.Remove(spare)
		l.log.Warn("commitlog: the segment prepared ahead could not be used; the roll creates it", "file", spare, "err", explainFDs(err))
		return nil
	}
	// The header first: the segment's name never shows a zeroed one to a
	// reader of the directory (a backup).
	_, err = f.WriteAt(segmentHeaderBytes(base, created), 0)
	if err == nil {
		err = os.Link(spare, path)
	}
	// Whether the file is now the segment or is dropped, the spare name
	// goes. If that fails the name is harmless: the next preparation, or
	// Close, or Open removes it (a name only: the file is the segment's).
	os.Remove(spare)
	if err == nil {
		if err = syncFileAndDir(f, l.dir, dirSync); err != nil {
			// Like a segment created in the roll whose fsync failed: it
			// may or may not survive a crash, so it goes, and the
			// removal is made durable (by the directory fsync of the
			// segment the roll creates instead, or syncRemovalLocked).
			os.Remove(path)
			l.unsyncedRemoval = true
		}
	}
	if err != nil {
		f.Close()
		l.log.Warn("commitlog: the segment prepared ahead could not be used; the roll creates it", "file", path, "err", explainFDs(err))
		return nil
	}
	return newSegment(base, path, created, f)
}

// prepareSpareLocked starts preparing a spare once active is half full,
// unless one is ready or under way, or was already asked for while active
// is the active segment (a preparation that failed is not retried before
// the next segment). l.mu is held and the log is open.
func (l *DiskLog) prepareSpareLocked(active *segment) {
	sp := &l.spare
	if sp.ready || sp.busy || sp.asked || active.size < l.opts.SegmentBytes/2 {
		return
	}
	sp.busy, sp.asked = true, true
	l.wg.Add(1) // Close waits for it, then removes the spare
	go l.prepareSpare(openSpare)
}

// prepareSpare creates the spare file with open, and hands it to the next
// roll.
func (l *DiskLog) prepareSpare(open func(path string) (*os.File, error)) {
	defer l.wg.Done()
	path := filepath.Join(l.dir, spareName)
	// A name left by a roll that could not remove it (it may name the
	// active segment: only the name goes).
	err := os.Remove(path)
	if errors.Is(err, fs.ErrNotExist) {
		err = nil
	}
	var f *os.File
	if err == nil {
		// Its two fsyncs are not counted in Stats.Fsyncs, which then
		// moves only with appends, Sync, TruncateBefore, Purge and Close.
		f, err = open(path)
	}
	if err == nil {
		err = f.Close()
	}
	l.mu.Lock()
	l.spare.busy = false
	if err != nil {
		l.spare.err = fmt.Errorf("prepare %s: %w", path, explainFDs(err))
	} else {
		l.spare.ready, l.spare.err = true, nil
	}
	l.mu.Unlock()
}

// removeSpare removes the spare of a closed log, whose background work
// has ended (also a name a roll could not remove).
func (l *DiskLog) removeSpare() {
	l.mu.Lock()
	l.spare.ready = false
	l.mu.Unlock()
	os.Remove(filepath.Join(l.dir, spareName))
}

// removeLeftoverSpare removes a spare file left by a crash (or a roll
// that could not remove its name); Open calls it before anything else.
func (l *DiskLog) removeLeftoverSpare() error {
	path := filepath.Join(l.dir, spareName)
	err := os.Remove(path)
	switch {
	case err == nil:
		l.log.Info("commitlog: removed a spare segment file left from before", "file", path)
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("commitlog: %w", err)
	}
	return nil
}

// unlockWrite releases l.mu after a write, then writes the index file of
// the segment a roll of that write sealed, if any: a sealed segment's
// records no longer change, and nobody waits for its index.
func (l *DiskLog) unlockWrite() {
	job := l.sealedIndex
	l.sealedIndex = sealedIndex{}
	l.mu.Unlock()
	if job.seg == nil {
		return
	}
	defer l.wg.Done()
	l.writeSealedIndex(job)
}

// writeSealedIndex writes the index file of a sealed segment. Index
// writes take turns, and a write older than the last one written for its
// segment is skipped (a segment sealed again after a failed roll). An
// index written for a segment that retention deleted meanwhile is
// removed: a deletion removes the segment before its index, so either it
// finds this index, or this write finds the segment gone.
func (l *DiskLog) writeSealedIndex(job sealedIndex) {
	l.indexMu.Lock()
	defer l.indexMu.Unlock()
	s := job.seg
	if job.next <= s.indexed {
		return
	}
	s.indexed = job.next
	if err := writeIndex(s.indexPath(), s.base, job.entries); err != nil {
		l.log.Warn("commitlog: index not written; it will be rebuilt on open", "file", s.indexPath(), "err", err)
		return
	}
	if _, err := os.Lstat(s.path); errors.Is(err, fs.ErrNotExist) {
		os.Remove(s.indexPath())
	}
}

// rollBehindLocked starts sealing active in the background once a write
// has taken it past SegmentBytes, under RollInBackground, once per
// segment. l.mu is held and the log is open.
func (l *DiskLog) rollBehindLocked(active *segment) {
	if !l.opts.RollInBackground || l.rollingSeg == active || active.size <= l.opts.SegmentBytes {
		return
	}
	l.rollingSeg = active
	l.wg.Add(1) // Close waits for it
	go l.rollBehind(active)
}

// rollBehind seals seg, the active segment past SegmentBytes, and starts
// the next one: it fsyncs seg without the write lock (appends go on into
// seg meanwhile, and return without waiting for it), then rolls under
// the lock, which has only what was written since left to fsync. Like
// every roll, seg is complete on disk before the next segment exists. A
// roll that fails (no room for the new segment) is logged and not tried
// again in the background: the append that would take seg past twice
// SegmentBytes rolls itself, and fails as a roll does. A log that failed
// or closed meanwhile, or a roll done meanwhile (such an append, a
// purge), ends it.
func (l *DiskLog) rollBehind(seg *segment) {
	defer l.wg.Done()
	l.syncActive() // an error failed the log: the check below sees it
	l.mu.Lock()
	if l.closed || l.segs[len(l.segs)-1] != seg || l.failed.Load() != nil {
		l.mu.Unlock()
		return
	}
	if _, err := l.rollLocked(seg, 0); err != nil {
		l.log.Warn("commitlog: the segment could not be sealed in the background; the append that would take it past twice its size rolls", "file", seg.path, "err", err)
	} else {
		l.rollingSeg = nil
	}
	l.unlockWrite() // writes the sealed segment's index
}
