package commitlog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/felixmq/felix/internal/testwait"
)

// eventually and within wait for something that must happen (a
// goroutine to queue, an append to return), bounded against hangs.
var (
	eventually = testwait.Eventually
	within     = testwait.Within
)

// stallWrites makes the next segment write block, once it has written,
// until the returned release is called; entered is closed once it blocks.
// While it blocks the log's write lock is held, as during a slow write.
// fail makes the writes after it fail as a full disk does.
func stallWrites(t *testing.T) (entered <-chan struct{}, release func(), fail *atomic.Bool) {
	t.Helper()
	in, out := make(chan struct{}), make(chan struct{})
	fail = new(atomic.Bool)
	var once sync.Once
	writeAt = func(f *os.File, b []byte, off int64) (int, error) {
		if fail.Load() {
			n, _ := f.WriteAt(b[:len(b)/2], off)
			return n, &os.PathError{Op: "write", Path: f.Name(), Err: syscall.ENOSPC}
		}
		n, err := f.WriteAt(b, off)
		stalled := false
		once.Do(func() { stalled = true })
		if stalled {
			close(in)
			<-out
		}
		return n, err
	}
	t.Cleanup(func() { writeAt = (*os.File).WriteAt })
	return in, sync.OnceFunc(func() { close(out) }), fail
}

// stallNextSync makes opts.OnSync stall the first fsync after stall is
// called: entered is closed when that fsync has run, and it returns once
// release is called (release may be called more than once).
func stallNextSync(opts *Options) (stall func(), entered <-chan struct{}, release func()) {
	var armed atomic.Bool
	in, out := make(chan struct{}), make(chan struct{})
	opts.OnSync = func(time.Duration) {
		if armed.CompareAndSwap(true, false) {
			close(in)
			<-out
		}
	}
	return func() { armed.Store(true) }, in, sync.OnceFunc(func() { close(out) })
}

type appended struct {
	first, end uint64
	err        error
}

// Appenders that arrive while the log writes share the next write call:
// with one write stalled, 8 appenders queue and are then written by a
// single write, each with its own consecutive offsets. Without the group
// write each append has a write of its own (Writes == Appends), and the 8
// never show as queued.
func TestGroupWriteSharesOneWrite(t *testing.T) {
	dir := t.TempDir()
	opts := testOptions()
	opts.SegmentBytes = 1 << 20
	var writes, written atomic.Int64
	opts.OnWrite = func(records, bytes int) { writes.Add(1); written.Add(int64(records)) }
	l := openT(t, dir, opts)
	entered, release, _ := stallWrites(t)
	defer release()

	first := make(chan appended, 1)
	go func() {
		f, e, err := l.AppendNoWait([][]byte{[]byte("first")})
		first <- appended{f, e, err}
	}()
	within(t, "the first write", entered)
	const n = 8
	res := make([]appended, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			// Two records per appender: each gets consecutive offsets.
			f, e, err := l.AppendNoWait([][]byte{[]byte(fmt.Sprintf("a%d-0", i)), []byte(fmt.Sprintf("a%d-1", i))})
			res[i] = appended{f, e, err}
		})
	}
	eventually(t, "8 appenders queued behind the stalled write", func() bool { return l.Stats().Queued == n })
	release()
	wg.Wait()
	if r := <-first; r.err != nil || r.first != 0 || r.end != 1 {
		t.Fatalf("first append: %+v", r)
	}
	seen := map[uint64]bool{}
	for i, r := range res {
		if r.err != nil || r.end != r.first+2 {
			t.Fatalf("appender %d: %+v", i, r)
		}
		recs, err := l.Read(r.first, 2, 0)
		if err != nil || len(recs) != 2 {
			t.Fatalf("read appender %d's records: %v, %d", i, err, len(recs))
		}
		for j, rec := range recs {
			if want := fmt.Sprintf("a%d-%d", i, j); string(rec.Payload) != want || seen[rec.Offset] {
				t.Fatalf("offset %d holds %q, want %q (seen before: %v)", rec.Offset, rec.Payload, want, seen[rec.Offset])
			}
			seen[rec.Offset] = true
		}
	}
	st := l.Stats()
	if st.Writes != 2 || st.Appends != n+1 || st.Records != 2*n+1 || st.Next != 2*n+1 || st.Queued != 0 {
		t.Fatalf("stats %+v: want 2 writes of %d appends, %d records", st, n+1, 2*n+1)
	}
	if writes.Load() != 2 || written.Load() != 2*n+1 {
		t.Fatalf("OnWrite saw %d writes of %d records", writes.Load(), written.Load())
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openT(t, dir, opts)
	if got := len(readAll(t, l, 0)); got != 2*n+1 {
		t.Fatalf("reopened with %d records, want %d", got, 2*n+1)
	}
}

// A group write that fails (disk full) fails every appender of the group
// with the *WriteError and stores none of their records: the log is cut
// back to the write before, the next append takes the same offset, and
// the reopened log holds only what was acknowledged.
func TestGroupWriteFailureFailsEveryAppender(t *testing.T) {
	dir := t.TempDir()
	opts := testOptions()
	opts.SegmentBytes = 1 << 20
	l := openT(t, dir, opts)
	entered, release, full := stallWrites(t)
	defer release()
	first := make(chan appended, 1)
	go func() {
		f, e, err := l.AppendNoWait([][]byte{[]byte("kept")})
		first <- appended{f, e, err}
	}()
	within(t, "the first write", entered)
	const n = 6
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			_, _, errs[i] = l.AppendNoWait([][]byte{bytes.Repeat([]byte{'x'}, 100+i)})
		})
	}
	eventually(t, "6 appenders queued behind the stalled write", func() bool { return l.Stats().Queued == n })
	full.Store(true) // the group's write will fail
	release()
	wg.Wait()
	if r := <-first; r.err != nil {
		t.Fatalf("the write before the failure: %v", r.err)
	}
	size := fileSize(t, segPath(dir, 0))
	for i, err := range errs {
		var we *WriteError
		if !errors.As(err, &we) || !errors.Is(err, syscall.ENOSPC) {
			t.Fatalf("appender %d of the failed group: %v, want a *WriteError wrapping ENOSPC", i, err)
		}
	}
	st := l.Stats()
	if st.Next != 1 || st.WriteErrors != n || st.Writes != 1 || st.Appends != 1 {
		t.Fatalf("after the failed group: %+v; want Next 1, %d write errors, 1 write", st, n)
	}
	if recs := readAll(t, l, 0); len(recs) != 1 || string(recs[0].Payload) != "kept" {
		t.Fatalf("records after the failed group: %v", recs)
	}
	full.Store(false)
	if f, e, err := l.AppendNoWait([][]byte{[]byte("after")}); err != nil || f != 1 || e != 2 {
		t.Fatalf("append once there is room: %d, %d, %v", f, e, err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if got := fileSize(t, segPath(dir, 0)); got <= size {
		t.Fatalf("segment %d bytes, was %d before the last append", got, size)
	}
	l = openT(t, dir, opts)
	recs := readAll(t, l, 0)
	if len(recs) != 2 || string(recs[0].Payload) != "kept" || string(recs[1].Payload) != "after" {
		t.Fatalf("reopened with %d records: %v", len(recs), recs)
	}
}

// Many goroutines appending with AppendNoWait across segment rolls, with
// readers following, end with a log whose records are each appender's,
// at the offsets it was told, every offset once; the counters add up.
func TestGroupWriteConcurrentRolls(t *testing.T) {
	dir := t.TempDir()
	opts := testOptions() // 1 KiB segments: rolls all along
	opts.Sync = SyncAlways
	l := openT(t, dir, opts)
	const writers, each = 8, 60
	type got struct {
		off     uint64
		payload string
	}
	out := make([][]got, writers)
	var wg sync.WaitGroup
	ctx, stop := context.WithCancel(context.Background())
	var readerErr atomic.Value
	reader := make(chan struct{})
	go func() { // a reader following the log sees only whole, ordered records
		defer close(reader)
		next := uint64(0)
		for ctx.Err() == nil {
			recs, err := l.Read(next, 0, 0)
			if err != nil {
				readerErr.Store(err)
				return
			}
			for _, r := range recs {
				if r.Offset != next {
					readerErr.Store(fmt.Errorf("read offset %d, want %d", r.Offset, next))
					return
				}
				next++
			}
			if len(recs) == 0 {
				l.Wait(ctx, next)
			}
		}
	}()
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				k := 1 + i%3
				ps := make([][]byte, k)
				for j := range ps {
					ps[j] = []byte(fmt.Sprintf("w%d-%d-%d-%s", w, i, j, bytes.Repeat([]byte{'p'}, (w*7+i*13+j)%150)))
				}
				first, end, err := l.AppendNoWait(ps)
				if err == nil {
					err = l.WaitDurable(context.Background(), end)
				}
				if err != nil || end != first+uint64(k) {
					t.Errorf("writer %d append %d: %d..%d, %v", w, i, first, end, err)
					return
				}
				for j, p := range ps {
					out[w] = append(out[w], got{first + uint64(j), string(p)})
				}
			}
		})
	}
	wg.Wait()
	if _, err := l.Append(context.Background(), [][]byte{[]byte("end")}); err != nil {
		t.Fatal(err)
	}
	stop()
	<-reader
	if err, _ := readerErr.Load().(error); err != nil {
		t.Fatalf("reader: %v", err)
	}
	recs := readAll(t, l, 0)
	byOff := map[uint64]string{}
	for _, r := range recs {
		byOff[r.Offset] = string(r.Payload)
	}
	total := 0
	for w := range out {
		for _, g := range out[w] {
			if byOff[g.off] != g.payload {
				t.Fatalf("offset %d holds %q, writer was told %q", g.off, byOff[g.off], g.payload)
			}
			total++
		}
	}
	st := l.Stats()
	if total+1 != len(recs) || st.Records != uint64(len(recs)) || st.Appends != writers*each+1 || st.Writes > st.Appends || st.Synced < st.Next {
		t.Fatalf("%d records read, %d appended; stats %+v", len(recs), total+1, st)
	}
	if st.Segments < 10 {
		t.Fatalf("only %d segments: the test meant to roll often", st.Segments)
	}
	t.Logf("%d appends in %d writes", st.Appends, st.Writes)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openT(t, dir, opts)
	if got := readAll(t, l, 0); len(got) != len(recs) {
		t.Fatalf("reopened with %d records, want %d", len(got), len(recs))
	}
}

// TruncateBefore fsyncs and deletes segments without holding the write
// lock: an append goes through while its fsync is stalled. Before, the
// append waited for the fsync and the deletions (a durable cache's writes
// stalled up to 100 ms at the end of each compaction).
func TestTruncateDoesNotBlockAppends(t *testing.T) {
	dir := t.TempDir()
	opts := testOptions()
	opts.Sync = SyncNever // only the calls under test fsync
	stall, entered, release := stallNextSync(&opts)
	l := openT(t, dir, opts)
	defer release()      // before the Close of openT's cleanup, also on failure
	appendN(t, l, 40, 1) // several 1 KiB segments
	if l.Stats().Segments < 3 {
		t.Fatalf("%d segments", l.Stats().Segments)
	}
	cut := l.Next() - 1 // in the active segment
	stall()
	truncated := make(chan error, 1)
	go func() { truncated <- l.TruncateBefore(cut) }()
	within(t, "TruncateBefore's fsync", entered)
	done := make(chan struct{})
	go func() {
		defer close(done)
		appendN(t, l, 1, 1)
	}()
	within(t, "an append during TruncateBefore's fsync", done)
	release()
	if err := <-truncated; err != nil {
		t.Fatal(err)
	}
	st := l.Stats()
	if st.Oldest == 0 || st.Oldest > cut || st.SegmentsDeleted == 0 {
		t.Fatalf("after TruncateBefore(%d): %+v", cut, st)
	}
	checkRecords(t, readAll(t, l, st.Oldest), st.Oldest)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openT(t, dir, opts)
	checkRecords(t, readAll(t, l, l.Oldest()), l.Oldest())
	if l.Next() != 41 {
		t.Fatalf("reopened with Next %d, want 41", l.Next())
	}
}

// An append that rolls the segment fsyncs it before taking the write
// lock, so the seal finds nothing left to flush: another append that
// fits the segment goes through while that fsync is stalled, and the
// sealed segment is whole (the roll's own fsync flushes only what came
// meanwhile, or is skipped when nothing did).
func TestRollFsyncsBeforeTakingTheLock(t *testing.T) {
	dir := t.TempDir()
	opts := testOptions()
	opts.Sync = SyncNever
	stall, entered, release := stallNextSync(&opts)
	l := openT(t, dir, opts)
	defer release() // before the Close of openT's cleanup, also on failure
	if _, err := l.Append(context.Background(), [][]byte{bytes.Repeat([]byte{'a'}, 700)}); err != nil {
		t.Fatal(err)
	}
	stall()
	rolled := make(chan error, 1)
	go func() { // 700 more bytes do not fit the 1 KiB segment
		_, err := l.Append(context.Background(), [][]byte{bytes.Repeat([]byte{'b'}, 700)})
		rolled <- err
	}()
	within(t, "the fsync before the roll", entered)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if _, _, err := l.AppendNoWait([][]byte{[]byte("small")}); err != nil {
			t.Error(err)
		}
	}()
	within(t, "an append during the fsync before a roll", done)
	release()
	if err := <-rolled; err != nil {
		t.Fatal(err)
	}
	st := l.Stats()
	if st.Segments != 2 || st.Next != 3 {
		t.Fatalf("after the roll: %+v", st)
	}
	recs := readAll(t, l, 0)
	if string(recs[1].Payload) != "small" || len(recs[2].Payload) != 700 {
		t.Fatalf("records in the wrong order: %d, %q, %d bytes", len(recs[0].Payload), recs[1].Payload, len(recs[2].Payload))
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openT(t, dir, opts)
	if got := len(readAll(t, l, 0)); got != 3 {
		t.Fatalf("reopened with %d records", got)
	}
}
