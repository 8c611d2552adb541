// Package fulldisk is a commitlog.Log for tests that refuses appends as a
// DiskLog on a full disk does: a *commitlog.WriteError wrapping ENOSPC,
// with nothing stored and the log going on.
package fulldisk

import (
	"context"
	"os"
	"sync/atomic"
	"syscall"

	"github.com/felixmq/felix/commitlog"
)

// Path is the file the refusals name: a server path, which errors sent to
// clients must not show.
const Path = "/var/lib/felix/data/streams/t/ns/s/00000000000000000000.log"

// Log wraps a log. Its appends are refused while Full is set, and the
// next Refuse ones (a count that goes down with each append); so are its
// purges while Full is set, as a DiskLog's whose new segment cannot be
// made, with nothing removed.
type Log struct {
	commitlog.Log
	Full   atomic.Bool
	Refuse atomic.Int32
}

// New wraps l.
func New(l commitlog.Log) *Log { return &Log{Log: l} }

// Append refuses p (see Log) or appends it to the wrapped log.
func (l *Log) Append(ctx context.Context, p [][]byte) (uint64, error) {
	if l.Full.Load() || l.Refuse.Add(-1) >= 0 {
		return 0, full()
	}
	return l.Log.Append(ctx, p)
}

// Purge refuses while Full is set, removing nothing, or purges the
// wrapped log.
func (l *Log) Purge() (first, removed uint64, err error) {
	if l.Full.Load() {
		return 0, 0, full()
	}
	return l.Log.Purge()
}

func full() error {
	return &commitlog.WriteError{Err: &os.PathError{Op: "write", Path: Path, Err: syscall.ENOSPC}}
}
