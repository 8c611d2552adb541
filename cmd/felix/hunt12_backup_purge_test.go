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

// Backups of a data dir whose logs are purged all the while (a purge rolls
// a new segment at the purge point, then deletes every older one) as
// writers append: every backup succeeds or refuses with
// errSegmentsDeleted, and each log in it verifies and is a gap-free
// prefix of the live one holding what was acknowledged before the backup
// started and not purged; felix log verify accepts the purged live logs.
func TestHunt12BackupRacesPurge(t *testing.T) {
	root := t.TempDir()
	src := filepath.Join(root, "data")
	opts := commitlog.Options{
		SegmentBytes:      1024,
		IndexSpacingBytes: 256,
		RetentionInterval: -1,
		Sync:              commitlog.SyncNever,
		Logger:            slog.New(slog.DiscardHandler),
	}
	logs := openLiveLogs(t, src, opts, "streams/t/ns/a", "caches/t/ns/kv")
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for rel, h := range logs {
		name := strings.ReplaceAll(rel, "/", ".")
		h.runWriters(ctx, t, name, &wg)
		wg.Go(func() {
			for i := 0; i < 2000 && ctx.Err() == nil; i++ {
				if _, _, err := h.lg.Purge(); err != nil {
					t.Errorf("%s purge: %v", name, err)
					return
				}
				time.Sleep(2 * time.Millisecond)
			}
		})
	}
	defer func() { stop(); wg.Wait() }()

	deadline := time.Now().Add(3 * time.Second)
	backups := 0
	for n := 0; n < 30 && time.Now().Before(deadline) && !t.Failed(); n++ {
		oldest := map[string]uint64{}
		for rel, h := range logs {
			oldest[rel] = h.lg.Oldest()
		}
		dst := filepath.Join(root, fmt.Sprintf("backup-%d", n))
		_, err := runBackup(context.Background(), backupFlags{cpAPIFlags{dataDir: src}}, dst)
		if errors.Is(err, errSegmentsDeleted) {
			assertNoBackup(t, dst)
			continue
		}
		if err != nil {
			t.Fatalf("backup %d: %v", n, err)
		}
		backups++
		for rel, h := range logs {
			// The purges may have removed anything acknowledged: the
			// copy holds at least the log's oldest before the backup.
			h.check(t, filepath.Join(dst, filepath.FromSlash(rel)), oldest[rel])
		}
	}
	stop()
	wg.Wait()
	if backups < 3 {
		t.Fatalf("only %d backups succeeded", backups)
	}
	for rel, h := range logs {
		if _, err := commitlog.Verify(h.lg.Dir()); err != nil {
			t.Fatalf("verify the purged live log %s: %v", rel, err)
		}
		if st := h.lg.Stats(); st.SegmentsDeleted == 0 {
			t.Fatalf("%s: %+v; the test meant purges to delete segments all along", rel, st)
		}
	}
}
