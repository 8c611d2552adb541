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
// segment finish normally; its file is closed after them.
func (l *DiskLog) EnforceRetention() error {
	if l.opts.RetentionBytes == 0 && l.opts.RetentionAge == 0 {
		return nil
	}
	l.mu.Lock() // no roll or write changes the segment list or sizes meanwhile
	defer l.mu.Unlock()
	if l.closed {
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
	return l.dropHeadLocked(drop, "retention")
}

// TruncateBefore deletes the sealed segments at the head of the log whose
// records all lie below offset; the active segment is never deleted.
// Oldest advances to the base of the first remaining segment. Before it
// deletes anything it fsyncs the log, whatever the policy, so a crash
// never leaves the older records gone and the record at offset lost; when
// nothing is to be deleted it does no I/O. A log that keeps its own
// checkpoints (a queue group's state log, whose latest snapshot makes
// older records useless) uses it to stay bounded.
func (l *DiskLog) TruncateBefore(offset uint64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	drop := 0
	for drop < len(l.segs)-1 && l.segs[drop].next <= offset {
		drop++
	}
	if drop == 0 {
		return nil
	}
	if err := l.syncActive(); err != nil {
		return err
	}
	return l.dropHeadLocked(drop, "truncation")
}

// dropHeadLocked deletes the first n segments (l.mu held; n < len(segs)),
// oldest first. It stops at the first segment file it cannot remove: that
// segment and the later ones stay in the log, so the files on disk never
// have a gap (Open would refuse it) and Oldest never moves back after a
// restart. A leftover index file is harmless (Open removes it).
func (l *DiskLog) dropHeadLocked(n int, why string) error {
	if n == 0 {
		return nil
	}
	segs := l.segs
	var errs []error
	removed := 0
	for _, s := range segs[:n] {
		if err := os.Remove(s.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
			break
		}
		if err := os.Remove(s.indexPath()); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
		removed++
	}
	l.segMu.Lock()
	l.segs = slices.Clone(segs[removed:])
	l.oldest.Store(l.segs[0].base)
	l.segMu.Unlock()
	for _, s := range segs[:removed] {
		l.log.Info("commitlog: "+why+" deleted a segment", "file", s.path, "first", s.base, "next", s.next, "bytes", s.size)
		s.release()
		l.stats.deleted.Add(1)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("commitlog: %s: %w", why, err)
	}
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
