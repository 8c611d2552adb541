package commitlog

import (
	"os"
	"time"
)

// writeAt writes segment records; a test replaces it to make writes fail.
var writeAt = (*os.File).WriteAt

// writeWarnInterval spaces the warnings about appends not written.
const writeWarnInterval = 10 * time.Second

// writeFailures tracks appends not written (WriteError) since the last
// one written, for the warnings; under DiskLog.mu.
type writeFailures struct {
	since    uint64    // appends not written since the last one written
	unwarned uint64    // of those, failures since the last warning
	warned   time.Time // when the last warning was logged
}

// writeFailedLocked counts an append that was not written and left the log
// as it was, warns (at the first failure, then at most once per
// writeWarnInterval, with the count since the last warning), and returns
// the append's *WriteError. l.mu is held.
func (l *DiskLog) writeFailedLocked(err error) error {
	werr := &WriteError{Err: err}
	l.stats.writeErrors.Add(1)
	w := &l.writeFail
	w.since++
	w.unwarned++
	if now := l.opts.Clock(); w.since == 1 || now.Sub(w.warned) >= writeWarnInterval {
		l.log.Warn("commitlog: append not written (nothing of it stored; the log takes the next appends)",
			"err", werr.Err, "not_written", w.unwarned)
		w.warned, w.unwarned = now, 0
	}
	return werr
}

// writtenLocked notes an append written: after failures, it says that
// appends are written again. l.mu is held.
func (l *DiskLog) writtenLocked() {
	if w := &l.writeFail; w.since > 0 {
		l.log.Info("commitlog: appends written again", "not_written", w.since)
		*w = writeFailures{}
	}
}
