package commitlog

import (
	"os"
	"time"
)

// timedSync fsyncs f and reports how long it took to Options.OnSync.
func (l *DiskLog) timedSync(f *os.File) error {
	if l.opts.OnSync == nil {
		return f.Sync()
	}
	start := time.Now()
	err := f.Sync()
	l.opts.OnSync(time.Since(start))
	return err
}
