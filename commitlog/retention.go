package commitlog

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"time"
)

// EnforceRetention deletes whole sealed segments from the head of the log
// while the log is larger than Options.RetentionBytes, or while the newest
// record of the head segment is older than Options.RetentionAge (by
// Options.Clock). The active segment is never deleted. Oldest advances to
// the base of the first remaining segment. Reads in flight on a deleted
// segment finish normally; its file is closed after them. Appends go on
// while the files are deleted.
func (l *DiskLog) EnforceRetention() error {
	if l.opts.RetentionBytes == 0 && l.opts.RetentionAge == 0 {
		return nil
	}
	l.dropMu.Lock()
	defer l.dropMu.Unlock()
	l.mu.Lock() // no roll or write changes the segment list or sizes meanwhile
	if l.closed {
		l.mu.Unlock()
		return ErrClosed
	}
	segs := l.segs
	total := int64(0)
	for _, s := range segs {
		total += s.size
	}
	now := l.opts.Clock().UnixMicro()
	drop := 0
	for ; drop < len(segs)-1; drop++ {
		s := segs[drop]
		newest := s.lastTS
		if s.next == s.base {
			newest = s.created
		}
		overSize := l.opts.RetentionBytes > 0 && total > l.opts.RetentionBytes
		tooOld := l.opts.RetentionAge > 0 && now-newest > l.opts.RetentionAge.Microseconds()
		if !overSize && !tooOld {
			break
		}
		total -= s.size
	}
	l.mu.Unlock()
	return l.dropHead(segs[:drop], "retention")
}

// TruncateBefore deletes the sealed segments at the head of the log whose
// records all lie below offset; the active segment is never deleted.
// Oldest advances to the base of the first remaining segment. Before it
// deletes anything it fsyncs the log, whatever the policy, so a crash
// never leaves the older records gone and the record at offset lost; when
// nothing is to be deleted it does no I/O. A log that keeps its own
// checkpoints (a queue group's state log, whose latest snapshot makes
// older records useless) uses it to stay bounded. Appends go on during
// the fsync and the deletion (a durable cache's compaction ends with
// one: before, its writes waited up to 100 ms for it).
func (l *DiskLog) TruncateBefore(offset uint64) error {
	l.dropMu.Lock()
	defer l.dropMu.Unlock()
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return ErrClosed
	}
	segs := l.segs
	drop := 0
	for drop < len(segs)-1 && segs[drop].next <= offset {
		drop++
	}
	l.mu.Unlock()
	if drop == 0 {
		return nil
	}
	// Segments below the active one were fsynced when they were sealed;
	// the active one may hold the record at offset.
	if err := l.syncActive(); err != nil {
		return err
	}
	return l.dropHead(segs[:drop], "truncation")
}

// dropHead deletes the segments drop, the head of the log (never its
// active segment), oldest first, then takes them out of the segment list.
// The caller holds dropMu, so nothing else removes segments meanwhile;
// l.mu is held only to change the list, so appends go on while the files
// are deleted. It stops at the first segment file it cannot remove: that
// segment and the later ones stay in the log, so the files on disk never
// have a gap (Open would refuse it) and Oldest never moves back after a
// restart. For the same reason the deletions reach the disk in order: a
// deletion waits for a directory fsync covering the one before it
// (syncDropped), as a file system without an ordered journal may make a
// later unlink durable before an earlier one. A leftover index file is harmless (Open removes it). Readers
// that found a segment before it left the list read it to the end: its
// file stays open until they release it.
func (l *DiskLog) dropHead(drop []*segment, why string) error {
	if len(drop) == 0 {
		return nil
	}
	var errs []error
	removed := 0
	for _, s := range drop {
		if err := l.syncDropped(); err != nil {
			errs = append(errs, err)
			break
		}
		if err := os.Remove(s.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
			break
		}
		l.unsyncedDrop = true
		if err := os.Remove(s.indexPath()); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
		removed++
	}
	l.mu.Lock()
	closed := l.closed // then Close (waiting for dropMu) releases every segment of the list; Open starts from the first file left
	if !closed {
		l.segMu.Lock()
		l.segs = slices.Clone(l.segs[removed:])
		l.oldest.Store(l.segs[0].base)
		l.segMu.Unlock()
	}
	l.mu.Unlock()
	if closed {
		removed = 0
	}
	for _, s := range drop[:removed] {
		l.log.Info("commitlog: "+why+" deleted a segment", "file", s.path, "first", s.base, "next", s.next, "bytes", s.size)
		// The last reference closes the file, which is when the file
		// system frees its blocks: without l.mu too.
		s.release()
		l.stats.deleted.Add(1)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("commitlog: %s: %w", why, err)
	}
	return nil
}

// syncDropped fsyncs the directory if a segment deletion may not be
// durable yet, so that the next deletion cannot reach the disk before it.
// One fsync per deleted segment, none when one segment goes at a time
// with a directory fsync between (Purge ends with one), without l.mu.
// The caller holds dropMu.
func (l *DiskLog) syncDropped() error {
	if !l.unsyncedDrop {
		return nil
	}
	if err := dirSync(l.dir); err != nil {
		return fmt.Errorf("make the deletion of the previous segment durable first: %w", err)
	}
	l.stats.fsyncs.Add(1)
	l.unsyncedDrop = false
	return nil
}

func (l *DiskLog) runRetention() {
	defer l.wg.Done()
	t := time.NewTicker(l.opts.RetentionInterval)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			if err := l.EnforceRetention(); err != nil && !errors.Is(err, ErrClosed) {
				l.log.Error("commitlog: retention", "err", err)
			}
		}
	}
}
