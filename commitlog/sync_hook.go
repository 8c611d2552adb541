package commitlog

import (
	"os"
	"time"
)

// fileSync fsyncs a segment file holding records; a test replaces it to
// make an fsync fail.
var fileSync = (*os.File).Sync

// timedSync fsyncs f and reports how long it took to Options.OnSync.
func (l *DiskLog) timedSync(f *os.File) error {
	if l.opts.OnSync == nil {
		return fileSync(f)
	}
	start := time.Now()
	err := fileSync(f)
	l.opts.OnSync(time.Since(start))
	return err
}
