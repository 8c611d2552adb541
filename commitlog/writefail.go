package commitlog

import (
	"os"
	"time"

	"golang.org/x/time/rate"
)

// writeAt writes segment records; a test replaces it to make writes fail.
var writeAt = (*os.File).WriteAt

// writeWarnInterval spaces the warnings about appends not written.
const writeWarnInterval = 10 * time.Second

// writeFailures tracks appends not written (WriteError), for the
// warnings; under DiskLog.mu. warns survives appends written in between,
// so a disk that fails every other append (small writes fit its last
// blocks, larger ones do not) still gets at most one warning per
// writeWarnInterval.
type writeFailures struct {
	since    uint64        // appends not written since the last one written
	unwarned uint64        // failures since the last warning
	warns    *rate.Limiter // spaces the warnings, on Options.Clock; nil until the first failure
	told     bool          // a warning was logged since the last "written again"
}

// writeFailedLocked counts the appends (calls of them: a group write's)
// of a write that failed and left the log as it was, warns (at the first
// failure, then at most once per writeWarnInterval, with the count since
// the last warning), and returns their *WriteError. l.mu is held.
func (l *DiskLog) writeFailedLocked(err error, calls int) error {
	werr := &WriteError{Err: err}
	l.stats.writeErrors.Add(uint64(calls))
	w := &l.writeFail
	w.since += uint64(calls)
	w.unwarned += uint64(calls)
	if w.warns == nil {
		w.warns = rate.NewLimiter(rate.Every(writeWarnInterval), 1) // the first failure is warned at once
	}
	if w.warns.AllowN(l.opts.Clock(), 1) {
		l.log.Warn("commitlog: append not written (nothing of it stored; the log takes the next appends)",
			"err", werr.Err, "not_written", w.unwarned)
		w.unwarned, w.told = 0, true
	}
	return werr
}

// writtenLocked notes an append written: after failures, it says that
// appends are written again. l.mu is held.
func (l *DiskLog) writtenLocked() {
	w := &l.writeFail
	if w.since == 0 {
		return
	}
	if w.told { // one line per warning, so both are rate-limited
		l.log.Info("commitlog: appends written again", "not_written", w.since)
		w.told = false
	}
	w.since = 0
}
