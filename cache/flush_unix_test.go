//go:build unix

package cache

import (
	"errors"
	"fmt"
	"testing"

	"github.com/felixmq/felix/commitlog"
)

// A flush whose log write fails (the file size limit, as a full disk)
// fails with a StorageError over the log's WriteError and leaves every
// entry, in memory and in the log; once the log takes writes again, a
// flush works and a restart loads an empty cache.
func TestFlushWriteFailureKeepsEntries(t *testing.T) {
	e := newDurableEnv(t, Config{Shards: 4})
	e.opts.SegmentBytes = 1 << 20
	c := e.open()
	for i := range 40 {
		mustPut(t, c, fmt.Sprintf("k%02d", i), "value", PutOptions{})
	}
	want := contents(c)
	fsize := limitFileSize(t)
	fsize.set(uint64(logSize(e.dir) + 8)) // less than a floor record
	restore := fsize.restore

	removed, err := c.Flush()
	var we *commitlog.WriteError
	if removed != 0 || !errors.Is(err, ErrStorage) || !errors.As(err, &we) {
		t.Fatalf("Flush past the size limit = %d, %v; want a StorageError over a commitlog.WriteError", removed, err)
	}
	t.Logf("error: %v", err)
	sameContents(t, "after the failed flush", contents(c), want)
	if st := c.Stats(); st.LogWriteErrors == 0 || st.Flushed != 0 {
		t.Fatalf("after the failed flush: %+v", st)
	}
	checkInvariants(t, c)
	restore()

	c = e.open()
	sameContents(t, "after the failed flush and a restart", contents(c), want)
	if removed, err := c.Flush(); err != nil || removed != 40 {
		t.Fatalf("Flush once the log takes writes = %d, %v", removed, err)
	}
	c = e.open()
	if st := c.Stats(); st.Entries != 0 {
		t.Fatalf("%d entries after the flush and a restart", st.Entries)
	}
}
