package commitlog

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// chaosBook keeps what appenders and readers were told, across reopens.
type chaosBook struct {
	mu     sync.Mutex
	acked  map[uint64]string // offset → payload, appends that succeeded
	failed map[string]bool   // payloads of appends that failed (WriteError)
	seen   map[uint64]string // offset → payload, as readers saw them
	maxEnd uint64            // highest end of an acked append
}

func (b *chaosBook) ack(first uint64, ps [][]byte) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, p := range ps {
		off := first + uint64(i)
		if prev, ok := b.acked[off]; ok {
			return fmt.Errorf("offset %d acked twice: %q and %q", off, prev, p)
		}
		b.acked[off] = string(p)
	}
	b.maxEnd = max(b.maxEnd, first+uint64(len(ps)))
	return nil
}

func (b *chaosBook) fail(ps [][]byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, p := range ps {
		b.failed[string(p)] = true
	}
}

func (b *chaosBook) saw(r Record) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if prev, ok := b.seen[r.Offset]; ok && prev != string(r.Payload) {
		return fmt.Errorf("offset %d read as %q, earlier as %q", r.Offset, r.Payload, prev)
	}
	b.seen[r.Offset] = string(r.Payload)
	return nil
}

// Group writes (AppendNoWait from many goroutines, with Append and
// AppendAt-free streams of Append mixed in), segment rolls every few
// records, writes and rolls that fail now and then (a full disk: half
// the bytes written, then ENOSPC; a directory fsync that fails), size
// retention and TruncateBefore running all along, readers following
// (and jumping to Oldest when retention passes them), then Close with
// appends still in flight, and a reopen; several rounds over one log.
// After each round: every acknowledged record at or above Oldest is there
// with its payload, Next covers every acknowledged append, no record of a
// failed append is in the log or was ever seen by a reader, and what
// readers saw is what the log holds.
func TestHunt9GroupWriteChaos(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	dir := t.TempDir()
	var chaos atomic.Bool
	var calls atomic.Uint64
	failAt := func() bool { // about one call in 9, spread by the seed
		n := calls.Add(1)
		return chaos.Load() && (n*2654435761+seed)%9 == 0
	}
	writeAt = func(f *os.File, b []byte, off int64) (int, error) {
		if failAt() {
			n, _ := f.WriteAt(b[:len(b)/2], off)
			return n, &os.PathError{Op: "write", Path: f.Name(), Err: syscall.ENOSPC}
		}
		return f.WriteAt(b, off)
	}
	dirSync = func(d string) error {
		if failAt() {
			return &os.PathError{Op: "sync", Path: d, Err: syscall.EIO}
		}
		return syncDir(d)
	}
	t.Cleanup(func() { writeAt, dirSync = (*os.File).WriteAt, syncDir })

	book := &chaosBook{acked: map[uint64]string{}, failed: map[string]bool{}, seen: map[uint64]string{}}
	policies := []SyncPolicy{SyncAlways, SyncInterval, SyncNever, SyncAlways}
	deadline := time.Now().Add(4 * time.Second)
	for round, policy := range policies {
		if time.Now().After(deadline) {
			t.Logf("time bound reached before round %d", round)
			break
		}
		opts := testOptions()
		opts.Sync = policy
		opts.SyncInterval = time.Millisecond
		opts.RetentionBytes = 6 << 10
		l, err := Open(dir, opts)
		if err != nil {
			t.Fatalf("round %d: Open: %v", round, err)
		}
		checkChaosLog(t, round, l, book)
		chaos.Store(true)
		roundEnd := time.Now().Add(700 * time.Millisecond)
		ctx, stop := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		var errs = make(chan error, 64)
		report := func(err error) {
			select {
			case errs <- err:
			default:
			}
		}
		for w := range 6 {
			wg.Go(func() {
				rng := rand.New(rand.NewPCG(seed, uint64(round*100+w)))
				for i := 0; i < 400 && ctx.Err() == nil; i++ {
					k := 1 + rng.IntN(4)
					ps := make([][]byte, k)
					for j := range ps {
						ps[j] = fmt.Appendf(nil, "r%d-w%d-%d-%d-%s", round, w, i, j, strings.Repeat("x", rng.IntN(200)))
					}
					var first, end uint64
					var err error
					if w == 0 { // a stream's Append among the group writers
						first, err = l.Append(context.Background(), ps)
						end = first + uint64(k)
					} else {
						first, end, err = l.AppendNoWait(ps)
						if err == nil {
							err = l.WaitDurable(context.Background(), end)
						}
					}
					var we *WriteError
					switch {
					case err == nil:
						if end != first+uint64(k) {
							report(fmt.Errorf("append of %d records got [%d, %d)", k, first, end))
							return
						}
						if err := book.ack(first, ps); err != nil {
							report(err)
							return
						}
					case errors.As(err, &we):
						book.fail(ps)
					case errors.Is(err, ErrClosed):
						return // in flight at Close: not stored, not acked
					default:
						report(fmt.Errorf("writer %d: %v", w, err))
						return
					}
				}
			})
		}
		wg.Go(func() { // retention and truncation, without the write lock
			rng := rand.New(rand.NewPCG(seed, uint64(round)))
			for ctx.Err() == nil {
				var err error
				if rng.IntN(2) == 0 {
					err = l.EnforceRetention()
				} else if next := l.Next(); next > 20 {
					err = l.TruncateBefore(next - uint64(rng.IntN(20)))
				}
				// An injected directory fsync failure stops a deletion
				// (the one before it may not be durable): nothing lost.
				if err != nil && !errors.Is(err, ErrClosed) && !errors.Is(err, syscall.EIO) {
					report(fmt.Errorf("retention: %v", err))
					return
				}
				time.Sleep(time.Millisecond)
			}
		})
		for range 2 {
			wg.Go(func() {
				next := l.Oldest()
				for ctx.Err() == nil {
					recs, err := l.Read(next, 16, 0)
					var too *TooOldError
					switch {
					case errors.As(err, &too):
						next = too.Oldest
						continue
					case errors.Is(err, ErrClosed):
						return
					case err != nil:
						report(fmt.Errorf("reader at %d: %v", next, err))
						return
					}
					for _, r := range recs {
						if r.Offset != next {
							report(fmt.Errorf("reader: offset %d, want %d", r.Offset, next))
							return
						}
						if err := book.saw(r); err != nil {
							report(err)
							return
						}
						next++
					}
					if len(recs) == 0 {
						wctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
						l.Wait(wctx, next)
						cancel()
					}
				}
			})
		}
		<-time.After(time.Until(roundEnd))
		// Close with appends, truncations and reads still going on.
		if err := l.Close(); err != nil {
			t.Fatalf("round %d: Close: %v", round, err)
		}
		stop()
		wg.Wait()
		chaos.Store(false)
		close(errs)
		for err := range errs {
			t.Fatalf("round %d: %v", round, err)
		}
		st := l.Stats()
		t.Logf("round %d (%v): %d appends in %d writes, %d write errors, %d segments deleted", round, policy, st.Appends, st.Writes, st.WriteErrors, st.SegmentsDeleted)
	}
	l := openT(t, dir, testOptions())
	checkChaosLog(t, len(policies), l, book)
	if len(book.failed) == 0 {
		t.Fatal("no append failed: the test meant to inject failures")
	}
	if _, err := Verify(dir); err != nil {
		t.Fatal(err)
	}
}

// checkChaosLog checks the reopened log against the book.
func checkChaosLog(t *testing.T, round int, l *DiskLog, book *chaosBook) {
	t.Helper()
	book.mu.Lock()
	defer book.mu.Unlock()
	if l.Next() < book.maxEnd {
		t.Fatalf("round %d: reopened with Next %d, below the end of an acknowledged append %d", round, l.Next(), book.maxEnd)
	}
	oldest := l.Oldest()
	recs := readAll(t, l, oldest)
	for i, r := range recs {
		if r.Offset != oldest+uint64(i) {
			t.Fatalf("round %d: record %d has offset %d", round, i, r.Offset)
		}
		if book.failed[string(r.Payload)] {
			t.Fatalf("round %d: offset %d holds %q, of an append that failed", round, r.Offset, r.Payload)
		}
		if want, ok := book.acked[r.Offset]; ok && want != string(r.Payload) {
			t.Fatalf("round %d: offset %d holds %q, acked as %q", round, r.Offset, r.Payload, want)
		}
		if saw, ok := book.seen[r.Offset]; ok && saw != string(r.Payload) {
			t.Fatalf("round %d: offset %d holds %q, a reader saw %q", round, r.Offset, r.Payload, saw)
		}
	}
	for off, p := range book.acked {
		if off >= oldest && off-oldest >= uint64(len(recs)) {
			t.Fatalf("round %d: acknowledged offset %d (%q) missing; log [%d, %d)", round, off, p, oldest, l.Next())
		}
	}
	for _, p := range book.seen {
		if book.failed[p] {
			t.Fatalf("round %d: a reader saw %q, of an append that failed", round, p)
		}
	}
}
