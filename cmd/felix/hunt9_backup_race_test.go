package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/felixmq/felix/commitlog"
)

// hunt9LiveLog is a log written while backups copy it: writers append
// (AppendNoWait group writes and Append), tiny segments roll all along,
// and retention and TruncateBefore delete the head without the write
// lock. acked keeps every acknowledged record's payload by offset.
type hunt9LiveLog struct {
	lg    *commitlog.DiskLog
	mu    sync.Mutex
	acked map[uint64]string
	end   uint64 // end of the highest acknowledged append
}

func (h *hunt9LiveLog) ackedEnd() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.end
}

// openLiveLogs opens a log for each rel (a path under src) with opts,
// closed when the test ends.
func openLiveLogs(t *testing.T, src string, opts commitlog.Options, rels ...string) map[string]*hunt9LiveLog {
	t.Helper()
	logs := map[string]*hunt9LiveLog{}
	for _, rel := range rels {
		lg, err := commitlog.Open(filepath.Join(src, filepath.FromSlash(rel)), opts)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { lg.Close() })
		logs[rel] = &hunt9LiveLog{lg: lg, acked: map[uint64]string{}}
	}
	return logs
}

// run starts the writers (runWriters) and a goroutine that deletes the
// log's head by retention and TruncateBefore, until ctx ends.
func (h *hunt9LiveLog) run(ctx context.Context, t *testing.T, name string, wg *sync.WaitGroup) {
	h.runWriters(ctx, t, name, wg)
	wg.Go(func() {
		for i := 0; ctx.Err() == nil; i++ {
			var err error
			if i%2 == 0 {
				err = h.lg.EnforceRetention()
			} else if next := h.lg.Next(); next > 200 {
				err = h.lg.TruncateBefore(next - 200)
			}
			if err != nil {
				t.Errorf("%s retention: %v", name, err)
				return
			}
			time.Sleep(200 * time.Microsecond)
		}
	})
}

// runWriters starts three writers (group writes and Append) that record
// every acknowledged record in acked, until ctx ends or 5000 writes each.
func (h *hunt9LiveLog) runWriters(ctx context.Context, t *testing.T, name string, wg *sync.WaitGroup) {
	for w := range 3 {
		wg.Go(func() {
			for i := 0; i < 5000 && ctx.Err() == nil; i++ {
				ps := make([][]byte, 1+(w+i)%3)
				for j := range ps {
					ps[j] = fmt.Appendf(nil, "%s-w%d-%d-%d-%s", name, w, i, j, strings.Repeat("p", (w*31+i*7+j)%120))
				}
				var first, end uint64
				var err error
				if w == 0 {
					first, err = h.lg.Append(context.Background(), ps)
					end = first + uint64(len(ps))
				} else {
					first, end, err = h.lg.AppendNoWait(ps)
				}
				if err != nil {
					t.Errorf("%s writer %d: %v", name, w, err)
					return
				}
				h.mu.Lock()
				for j, p := range ps {
					h.acked[first+uint64(j)] = string(p)
				}
				h.end = max(h.end, end)
				h.mu.Unlock()
			}
		})
	}
}

// check checks the copy of the log in dir: it verifies, its records
// follow each other with no gap, each is the record acknowledged at its
// offset (a prefix of the live log), and it reaches at least wantEnd (the
// acknowledged end when the backup started).
func (h *hunt9LiveLog) check(t *testing.T, dir string, wantEnd uint64) {
	t.Helper()
	rep, err := commitlog.Verify(dir)
	if err != nil {
		t.Fatalf("verify the copy %s: %v", dir, err)
	}
	if rep.Next < wantEnd {
		t.Fatalf("the copy %s ends at %d; records up to %d were acknowledged before the backup started", dir, rep.Next, wantEnd)
	}
	lg, err := commitlog.Open(dir, commitlog.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer lg.Close()
	for off := lg.Oldest(); off < lg.Next(); {
		recs, err := lg.Read(off, 0, 0)
		if err != nil || len(recs) == 0 {
			t.Fatalf("read the copy at %d: %d records, %v", off, len(recs), err)
		}
		for _, r := range recs {
			if r.Offset != off {
				t.Fatalf("the copy: offset %d where %d was due (a gap)", r.Offset, off)
			}
			if want, ok := h.ackedAt(off); !ok || want != string(r.Payload) {
				t.Fatalf("the copy holds %q at offset %d; the live log %q (acked %v)", r.Payload, off, want, ok)
			}
			off++
		}
	}
}

// ackedAt returns the record acknowledged at off. The backup may have
// copied a record whose writer has not recorded it yet (its append
// returns after the write the backup saw): that is waited for, a while.
func (h *hunt9LiveLog) ackedAt(off uint64) (string, bool) {
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		h.mu.Lock()
		p, ok := h.acked[off]
		h.mu.Unlock()
		if ok || time.Now().After(deadline) {
			return p, ok
		}
	}
}

// Backups of a data dir whose logs are written all the while (group
// writes and single appends), roll every few records (1 KiB segments) and
// lose their head to retention and TruncateBefore: every backup succeeds,
// leaves no temporary directory, and each log in it is a gap-free prefix
// of the live one that verifies and holds every record acknowledged
// before the backup started at or above its oldest offset.
func TestHunt9BackupRacesRetentionAndRolls(t *testing.T) {
	root := t.TempDir()
	src := filepath.Join(root, "data")
	opts := commitlog.Options{
		SegmentBytes:      1024,
		IndexSpacingBytes: 256,
		RetentionBytes:    8 << 10,
		RetentionInterval: -1,
		Sync:              commitlog.SyncNever,
		Logger:            slog.New(slog.DiscardHandler),
	}
	logs := openLiveLogs(t, src, opts, "streams/t/ns/a", "streams/t/ns/b", "caches/t/ns/kv", "groups/t/ns/a/g")
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for rel, h := range logs {
		h.run(ctx, t, strings.ReplaceAll(rel, "/", "."), &wg)
	}
	defer func() { stop(); wg.Wait() }()

	deadline := time.Now().Add(4 * time.Second)
	backups, torn := 0, 0
	for n := 0; n < 40 && time.Now().Before(deadline) && !t.Failed(); n++ {
		wantEnd := map[string]uint64{}
		for rel, h := range logs {
			wantEnd[rel] = h.ackedEnd()
		}
		dst := filepath.Join(root, fmt.Sprintf("backup-%d", n))
		sum, err := runBackup(context.Background(), backupFlags{cpAPIFlags{dataDir: src}}, dst)
		if err != nil {
			if errors.Is(err, errSegmentsDeleted) {
				// A refusal the backup documents, not a broken copy.
				t.Logf("backup %d: %v", n, err)
				assertNoBackup(t, dst)
				continue
			}
			t.Fatalf("backup %d: %v", n, err)
		}
		backups++
		torn += sum.tornLogs
		if left, _ := filepath.Glob(dst + ".tmp-*"); len(left) > 0 {
			t.Fatalf("backup %d left %v", n, left)
		}
		for rel, h := range logs {
			h.check(t, filepath.Join(dst, filepath.FromSlash(rel)), wantEnd[rel])
		}
	}
	stop()
	wg.Wait()
	if backups < 3 {
		t.Fatalf("only %d backups succeeded", backups)
	}
	for rel, h := range logs {
		st := h.lg.Stats()
		if st.SegmentsDeleted == 0 || st.Segments > 20 {
			t.Fatalf("%s: %+v; the test meant retention to delete segments all along", rel, st)
		}
	}
	t.Logf("%d backups, %d logs copied with a torn last record; stream a [%d, %d)", backups, torn, logs["streams/t/ns/a"].lg.Oldest(), logs["streams/t/ns/a"].lg.Next())
}
