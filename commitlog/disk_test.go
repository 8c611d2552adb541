package commitlog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestDiskRoundTripAcrossRolls(t *testing.T) {
	dir := t.TempDir()
	l := openT(t, dir, testOptions())
	appendN(t, l, 100, 3)
	if got := len(segments(t, dir)); got < 10 {
		t.Fatalf("%d segments, want many rolls at 1 KiB segments", got)
	}
	checkRecords(t, readAll(t, l, 0), 0)
	checkRecords(t, readAll(t, l, 57), 57)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	l = openT(t, dir, testOptions())
	if l.Oldest() != 0 || l.Next() != 100 {
		t.Fatalf("reopened at [%d, %d), want [0, 100)", l.Oldest(), l.Next())
	}
	checkRecords(t, readAll(t, l, 0), 0)
	appendN(t, l, 20, 4) // continues at Next
	checkRecords(t, readAll(t, l, 0), 0)
	if n := l.Next(); n != 120 {
		t.Fatalf("Next = %d, want 120", n)
	}
}

func TestDiskSegmentsNeverSplitBatches(t *testing.T) {
	dir := t.TempDir()
	opts := testOptions()
	l := openT(t, dir, opts)
	appendN(t, l, 60, 5)
	for _, base := range segments(t, dir) {
		if base%5 != 0 {
			t.Fatalf("segment base %d splits a batch of 5", base)
		}
	}
	// A batch larger than a segment gets a segment of its own.
	big := bytes.Repeat([]byte("x"), 3000)
	first, err := l.Append(context.Background(), [][]byte{big})
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, l, 1, 1)
	segs := segments(t, dir)
	if segs[len(segs)-2] != first || segs[len(segs)-1] != first+1 {
		t.Fatalf("segments %v: want the 3000-byte record %d alone in its segment", segs, first)
	}
	rs, err := l.Read(first, 10, 10)
	if err != nil || len(rs) != 1 || !bytes.Equal(rs[0].Payload, big) {
		t.Fatalf("Read big record: %d records, %v", len(rs), err)
	}
}

func TestDiskReadBounds(t *testing.T) {
	l := openT(t, t.TempDir(), testOptions())
	appendN(t, l, 50, 10)
	cases := []struct {
		from              uint64
		maxRecords, bytes int
		want              int
	}{
		{0, 5, 1 << 20, 5},
		{3, 1, 1 << 20, 1},
		{0, 100, 1 << 20, 50},
		{45, 100, 1 << 20, 5},
		{50, 10, 10, 0},  // at Next: empty
		{999, 10, 10, 0}, // past Next: empty
	}
	for _, c := range cases {
		rs, err := l.Read(c.from, c.maxRecords, c.bytes)
		if err != nil || len(rs) != c.want {
			t.Fatalf("Read(%d, %d, %d) = %d records, %v; want %d", c.from, c.maxRecords, c.bytes, len(rs), err, c.want)
		}
		checkRecords(t, rs, c.from)
	}
	// maxBytes: records until the next would pass the bound, and always one.
	for from := uint64(0); from < 50; from++ {
		for _, maxBytes := range []int{1, 100, 400, 1000} {
			rs, err := l.Read(from, 1000, maxBytes)
			if err != nil || len(rs) == 0 {
				t.Fatalf("Read(%d, maxBytes %d): %d records, %v", from, maxBytes, len(rs), err)
			}
			checkRecords(t, rs, from)
			size := 0
			for _, r := range rs {
				size += len(r.Payload)
			}
			next := from + uint64(len(rs))
			if len(rs) > 1 && size > maxBytes {
				t.Fatalf("Read(%d, maxBytes %d) returned %d bytes", from, maxBytes, size)
			}
			if next < 50 && size+len(payload(next)) <= maxBytes {
				t.Fatalf("Read(%d, maxBytes %d) stopped at %d with room for the next record", from, maxBytes, next)
			}
		}
	}
	// Defaults for bounds ≤ 0.
	if rs, err := l.Read(0, 0, 0); err != nil || len(rs) != 50 {
		t.Fatalf("Read with default bounds: %d records, %v", len(rs), err)
	}
}

func TestDiskRecordLargerThanReadChunk(t *testing.T) {
	opts := testOptions()
	opts.SegmentBytes = 1 << 20
	l := openT(t, t.TempDir(), opts)
	small, big := []byte("s"), bytes.Repeat([]byte("B"), 200_000)
	if _, err := l.Append(context.Background(), [][]byte{small, big, small}); err != nil {
		t.Fatal(err)
	}
	rs, err := l.Read(0, 10, 10)
	if err != nil || len(rs) != 1 || rs[0].Offset != 0 {
		t.Fatalf("Read(0) = %v, %v", rs, err)
	}
	rs, err = l.Read(1, 10, 10)
	if err != nil || len(rs) != 1 || !bytes.Equal(rs[0].Payload, big) {
		t.Fatalf("Read(1): %d records, %v", len(rs), err)
	}
	rs, err = l.Read(0, 10, 1<<20)
	if err != nil || len(rs) != 3 {
		t.Fatalf("Read(0, 1 MiB): %d records, %v", len(rs), err)
	}
}

func TestDiskTooLargeAndEmpty(t *testing.T) {
	opts := testOptions()
	opts.MaxRecordBytes = 100
	l := openT(t, t.TempDir(), opts)
	if _, err := l.Append(context.Background(), [][]byte{make([]byte, 101)}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversized append: %v", err)
	}
	if first, err := l.Append(context.Background(), nil); err != nil || first != 0 || l.Next() != 0 {
		t.Fatalf("empty append: %d, %v, Next %d", first, err, l.Next())
	}
	if _, err := l.Append(context.Background(), [][]byte{{}, make([]byte, 100)}); err != nil {
		t.Fatalf("empty and limit-sized payloads: %v", err)
	}
	rs := readAll(t, l, 0)
	if len(rs) != 2 || len(rs[0].Payload) != 0 || len(rs[1].Payload) != 100 {
		t.Fatalf("read back %v", rs)
	}
}

func TestDiskTimestampsFromClock(t *testing.T) {
	clock := newFakeClock()
	opts := testOptions()
	opts.Clock = clock.Now
	l := openT(t, t.TempDir(), opts)
	appendN(t, l, 1, 1)
	clock.Advance(time.Second)
	appendN(t, l, 1, 1)
	rs := readAll(t, l, 0)
	if d := rs[1].Timestamp - rs[0].Timestamp; d != 1e6 || rs[0].Timestamp != clock.Now().Add(-time.Second).UnixMicro() {
		t.Fatalf("timestamps %d, %d", rs[0].Timestamp, rs[1].Timestamp)
	}
}

func TestDiskWait(t *testing.T) {
	testWait(t, openT(t, t.TempDir(), testOptions()))
}

func TestMemoryWait(t *testing.T) {
	testWait(t, NewMemory(10, 1000))
}

// testWait: Wait returns at once for an existing record, wakes on append,
// honours ctx, and returns ErrClosed on Close.
func testWait(t *testing.T, l Log) {
	ctx := context.Background()
	woke := make(chan error, 1)
	go func() { woke <- l.Wait(ctx, 0) }()
	appendN(t, l, 1, 1)
	if err := <-woke; err != nil {
		t.Fatalf("Wait woke with %v", err)
	}
	if err := l.Wait(ctx, 0); err != nil {
		t.Fatalf("Wait for an existing record: %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	go func() { woke <- l.Wait(cctx, 1) }()
	cancel()
	if err := <-woke; !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait after cancel: %v", err)
	}
	go func() { woke <- l.Wait(ctx, 1) }()
	l.Close()
	if err := <-woke; !errors.Is(err, ErrClosed) {
		t.Fatalf("Wait after Close: %v", err)
	}
	if _, err := l.Append(ctx, [][]byte{{1}}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Append after Close: %v", err)
	}
	if _, err := l.Read(0, 1, 1); !errors.Is(err, ErrClosed) {
		t.Fatalf("Read after Close: %v", err)
	}
}

// TestDiskConcurrentAppenders: offsets are unique and contiguous, each
// batch contiguous, and every record is where its append said.
func TestDiskConcurrentAppenders(t *testing.T) {
	for _, sync := range []SyncPolicy{SyncNever, SyncAlways} {
		t.Run(sync.String(), func(t *testing.T) {
			opts := testOptions()
			opts.Sync = sync
			opts.SegmentBytes = 4096
			l := openT(t, t.TempDir(), opts)
			testConcurrentAppenders(t, l)
		})
	}
}

func TestMemoryConcurrentAppenders(t *testing.T) {
	testConcurrentAppenders(t, NewMemory(10_000, 1<<30))
}

func testConcurrentAppenders(t *testing.T, l Log) {
	const writers, batches = 16, 20
	type ack struct {
		first uint64
		w, b  int
	}
	acks := make(chan ack, writers*batches)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for b := range batches {
				n := 1 + (w+b)%4
				ps := make([][]byte, n)
				for i := range ps {
					ps[i] = fmt.Appendf(nil, "w%d b%d i%d", w, b, i)
				}
				first, err := l.Append(context.Background(), ps)
				if err != nil {
					t.Error(err)
					return
				}
				acks <- ack{first, w, b}
			}
		})
	}
	wg.Wait()
	close(acks)
	rs := readAll(t, l, 0)
	for i, r := range rs {
		if r.Offset != uint64(i) {
			t.Fatalf("record %d has offset %d", i, r.Offset)
		}
	}
	total := 0
	for a := range acks {
		n := 1 + (a.w+a.b)%4
		total += n
		for i := range n {
			want := fmt.Sprintf("w%d b%d i%d", a.w, a.b, i)
			if got := string(rs[a.first+uint64(i)].Payload); got != want {
				t.Fatalf("offset %d holds %q, want %q", a.first+uint64(i), got, want)
			}
		}
	}
	if total != len(rs) || l.Next() != uint64(total) {
		t.Fatalf("%d records appended, %d read, Next %d", total, len(rs), l.Next())
	}
}

// TestDiskReadersDuringAppends: tailing readers see every record exactly
// once, in order, intact, while writers append and segments roll.
func TestDiskReadersDuringAppends(t *testing.T) {
	opts := testOptions()
	opts.SegmentBytes = 2048
	l := openT(t, t.TempDir(), opts)
	const total = 600
	ctx := context.Background()
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			var next uint64
			for next < total {
				if err := l.Wait(ctx, next); err != nil {
					t.Error(err)
					return
				}
				rs, err := l.Read(next, 13, 700)
				if err != nil {
					t.Error(err)
					return
				}
				for _, r := range rs {
					if r.Offset != next || !bytes.Equal(r.Payload, payload(next)) {
						t.Errorf("reader got offset %d (%d bytes), want %d", r.Offset, len(r.Payload), next)
						return
					}
					next++
				}
			}
		})
	}
	var mu sync.Mutex // appenders take turns so payload(offset) is known in advance
	for range 4 {
		wg.Go(func() {
			for {
				mu.Lock()
				next := l.Next()
				if next >= total {
					mu.Unlock()
					return
				}
				k := min(3, total-int(next))
				ps := make([][]byte, k)
				for i := range ps {
					ps[i] = payload(next + uint64(i))
				}
				_, err := l.Append(ctx, ps)
				mu.Unlock()
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestDiskGroupCommit: 64 concurrent writers under SyncAlways share
// fsyncs, so there are far fewer fsyncs than appends.
func TestDiskGroupCommit(t *testing.T) {
	opts := testOptions()
	opts.Sync = SyncAlways
	opts.SegmentBytes = 64 << 20
	l := openT(t, t.TempDir(), opts)
	before := l.Stats().Fsyncs
	const writers, each = 64, 10
	start := make(chan struct{})
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			<-start
			for range each {
				if _, err := l.Append(context.Background(), [][]byte{make([]byte, 256)}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	close(start)
	wg.Wait()
	st := l.Stats()
	fsyncs := st.Fsyncs - before
	t.Logf("%d appends, %d fsyncs (%.1f appends per fsync)", st.Appends, fsyncs, float64(st.Appends)/float64(fsyncs))
	if st.Appends != writers*each || st.Synced != writers*each {
		t.Fatalf("appends %d, synced %d", st.Appends, st.Synced)
	}
	if fsyncs*4 > st.Appends {
		t.Fatalf("%d fsyncs for %d appends: group commit is not sharing fsyncs", fsyncs, st.Appends)
	}
}

func TestDiskSyncAlwaysOneWriter(t *testing.T) {
	opts := testOptions()
	opts.Sync = SyncAlways
	l := openT(t, t.TempDir(), opts)
	before := l.Stats().Fsyncs
	appendN(t, l, 5, 1)
	st := l.Stats()
	if st.Synced != 5 || st.Fsyncs-before < 5 {
		t.Fatalf("after 5 sequential SyncAlways appends: synced %d, fsyncs %d", st.Synced, st.Fsyncs-before)
	}
}

func TestDiskAppendAt(t *testing.T) {
	dir := t.TempDir()
	l := openT(t, dir, testOptions())
	testAppendAt(t, l)
	l.Close()
	l = openT(t, dir, testOptions())
	rs := readAll(t, l, 0)
	if len(rs) != 3 || rs[2].Timestamp != 77 {
		t.Fatalf("after reopen: %v", rs)
	}
}

func TestMemoryAppendAt(t *testing.T) { testAppendAt(t, NewMemory(10, 1000)) }

func testAppendAt(t *testing.T, l Log) {
	ctx := context.Background()
	appendN(t, l, 1, 1)
	var mm *OffsetMismatchError
	if err := l.AppendAt(ctx, []Record{{Offset: 2, Payload: []byte("x")}}); !errors.As(err, &mm) || mm.Want != 1 || mm.Got != 2 {
		t.Fatalf("AppendAt past Next: %v", err)
	}
	if err := l.AppendAt(ctx, []Record{{Offset: 1}, {Offset: 3}}); !errors.Is(err, ErrOffsetMismatch) {
		t.Fatalf("AppendAt with a gap: %v", err)
	}
	if l.Next() != 1 {
		t.Fatalf("a refused AppendAt moved Next to %d", l.Next())
	}
	recs := []Record{{Offset: 1, Timestamp: 66, Payload: []byte("one")}, {Offset: 2, Timestamp: 77, Payload: []byte("two")}}
	if err := l.AppendAt(ctx, recs); err != nil {
		t.Fatal(err)
	}
	rs, err := l.Read(1, 10, 1000)
	if err != nil || len(rs) != 2 || rs[0].Timestamp != 66 || string(rs[1].Payload) != "two" {
		t.Fatalf("Read after AppendAt: %v, %v", rs, err)
	}
}

func TestDiskAppendContextDone(t *testing.T) {
	l := openT(t, t.TempDir(), testOptions())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := l.Append(ctx, [][]byte{{1}}); !errors.Is(err, context.Canceled) || l.Next() != 0 {
		t.Fatalf("Append with a done context: %v, Next %d", err, l.Next())
	}
}

func TestOptionsValidation(t *testing.T) {
	for _, o := range []Options{
		{Sync: SyncPolicy(9)},
		{SegmentBytes: 10},
		{MaxRecordBytes: MaxRecordLimit + 1},
		{RetentionBytes: -1},
	} {
		if _, err := Open(t.TempDir(), o); err == nil {
			t.Fatalf("Open accepted %+v", o)
		}
	}
	for _, s := range []string{"always", "interval", "never"} {
		if p, err := ParseSyncPolicy(s); err != nil || p.String() != s {
			t.Fatalf("ParseSyncPolicy(%q) = %v, %v", s, p, err)
		}
	}
	if _, err := ParseSyncPolicy("sometimes"); err == nil {
		t.Fatal("ParseSyncPolicy accepted sometimes")
	}
}

func TestDiskOpenTwiceRefused(t *testing.T) {
	dir := t.TempDir()
	l := openT(t, dir, testOptions())
	if _, err := Open(dir, testOptions()); err == nil || !strings.Contains(err.Error(), "open in another log") {
		t.Fatalf("second Open of a log in use: %v", err)
	}
	l.Close()
	openT(t, dir, testOptions()).Close() // free again after Close
}

func TestDiskWritesAfterClose(t *testing.T) {
	testWritesAfterClose(t, openT(t, t.TempDir(), testOptions()))
}

func TestMemoryWritesAfterClose(t *testing.T) { testWritesAfterClose(t, NewMemory(10, 1000)) }

// testWritesAfterClose: every write to a closed log, empty or not, with
// right or wrong offsets, says ErrClosed. A replication follower must
// not take its own shutdown for a divergence from the leader.
func testWritesAfterClose(t *testing.T, l Log) {
	ctx := context.Background()
	appendN(t, l, 2, 1)
	l.Close()
	if _, err := l.Append(ctx, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("empty Append after Close: %v", err)
	}
	if err := l.AppendAt(ctx, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("empty AppendAt after Close: %v", err)
	}
	if err := l.AppendAt(ctx, []Record{{Offset: 2}}); !errors.Is(err, ErrClosed) {
		t.Errorf("AppendAt at Next after Close: %v", err)
	}
	if err := l.AppendAt(ctx, []Record{{Offset: 7}}); !errors.Is(err, ErrClosed) || errors.Is(err, ErrOffsetMismatch) {
		t.Errorf("AppendAt past Next after Close: %v", err)
	}
}

// A roll whose directory fsync fails leaves no new segment file behind:
// the next roll can create it, and the log opens again with every
// acknowledged record (a leftover file beside the segments written after
// it would make Open refuse the overlap, and O_EXCL every later roll).
func TestRollWithFailedDirSyncLeavesNoFile(t *testing.T) {
	dir := t.TempDir()
	opts := testOptions()
	l := openT(t, dir, opts)
	ctx := context.Background()
	body := bytes.Repeat([]byte("x"), 200)
	acked := 0
	dirSync = func(string) error { return errors.New("injected dir fsync failure") }
	defer func() { dirSync = syncDir }()
	for i := 0; ; i++ {
		if i == 20 {
			t.Fatal("no roll within 20 appends")
		}
		if _, err := l.Append(ctx, [][]byte{body}); err != nil {
			break // the roll failed
		}
		acked++
	}
	dirSync = syncDir
	for range 10 { // across another roll or two
		if _, err := l.Append(ctx, [][]byte{body}); err != nil {
			t.Fatalf("append after the failed roll: %v", err)
		}
		acked++
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openT(t, dir, opts)
	if got := len(readAll(t, l, 0)); got != acked || l.Next() != uint64(acked) {
		t.Fatalf("reopened with %d records (next %d), want %d", got, l.Next(), acked)
	}
}
