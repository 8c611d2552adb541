package bench

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/felixmq/felix/commitlog"
)

func TestRunLogExcludesWarmupAndCleansUp(t *testing.T) {
	dir := t.TempDir()
	for _, sync := range []commitlog.SyncPolicy{commitlog.SyncAlways, commitlog.SyncNever} {
		res, err := RunLog(context.Background(), LogConfig{Dir: dir, Sync: sync, Writers: 3, RecordBytes: 100, Batch: 2,
			Warmup: 20 * time.Millisecond, Duration: 30 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		c := res.Config
		if c.SyncName != sync.String() || c.Writers != 3 || res.Appends == 0 || res.Records != 2*res.Appends ||
			res.Latency.Count != res.Appends || res.FailedAppends != 0 {
			t.Fatalf("%s: %+v", sync, res)
		}
		if res.RecordsPerSec <= 0 || res.MBPerSec != res.RecordsPerSec*100/1e6 {
			t.Fatalf("%s: rates %+v", sync, res)
		}
		if sync == commitlog.SyncAlways && (res.Fsyncs == 0 || res.AppendsPerFsync <= 0) {
			t.Fatalf("always: %d fsyncs", res.Fsyncs)
		}
		row := LogRows([]LogResult{res})[0]
		if row.System != "felix" || row.Rate != res.RecordsPerSec || row.Drops != 0 || row.Unit != "records/s" {
			t.Fatalf("row %+v", row)
		}
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Fatalf("%d logs left behind", len(left))
	}
	if _, err := RunLog(context.Background(), LogConfig{Dir: dir, Writers: -1}); err == nil {
		t.Fatal("negative writers accepted")
	}
}

func TestRunLogEmptyRecords(t *testing.T) {
	res, err := RunLog(context.Background(), LogConfig{Dir: t.TempDir(), EmptyRecords: true, Duration: 10 * time.Millisecond})
	if err != nil || res.Config.RecordBytes != 0 || res.Appends == 0 || res.MBPerSec != 0 {
		t.Fatalf("%v: %+v", err, res)
	}
}
