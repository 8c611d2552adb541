package main

import (
	"testing"

	"github.com/felixmq/felix/bench"
	"github.com/felixmq/felix/commitlog"
)

// The brokers felix bench runs in this process (--broker embedded) open
// their durable streams' logs with felix serve's options
// (streamLogOptions) at serve's defaults: a full segment sealed in the
// background, as serve does, and serve's segment size and fsync period as
// `serve --print-config` shows them. Before, they opened them with their
// own options, without RollInBackground.
func TestBenchEmbeddedStreamLogsAsServe(t *testing.T) {
	m, _ := effective(t)
	lo := embeddedBrokerOptions(bench.BenchBrokerOptions{}).StreamLog
	if lo == nil {
		t.Fatal("no StreamLog: the embedded brokers open their logs with bench's own options")
	}
	for _, p := range []commitlog.SyncPolicy{commitlog.SyncInterval, commitlog.SyncAlways, commitlog.SyncNever} {
		o := lo(p)
		if !o.RollInBackground || o.Sync != p {
			t.Errorf("%v: RollInBackground %v, Sync %v; want serve's (true, %v)", p, o.RollInBackground, o.Sync, p)
		}
		if seg, _ := m["segment_bytes"].(int); int64(seg) != o.SegmentBytes {
			t.Errorf("%v: SegmentBytes %d, serve's --segment-bytes %v", p, o.SegmentBytes, m["segment_bytes"])
		}
		if o.SyncInterval.String() != m["fsync_interval"] {
			t.Errorf("%v: SyncInterval %v, serve's --fsync-interval %v", p, o.SyncInterval, m["fsync_interval"])
		}
		if o.RetentionBytes != 0 || o.RetentionAge != 0 || o.Logger == nil {
			t.Errorf("%v: retention %d %v, logger %v", p, o.RetentionBytes, o.RetentionAge, o.Logger)
		}
	}
}
