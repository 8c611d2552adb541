package bench

import (
	"strings"
	"testing"
	"time"
)

func lat(p50 time.Duration) Summary {
	return Summary{Count: 100, P50: p50, P90: 2 * p50, P99: 3 * p50, P999: 4 * p50, Max: 5 * p50, Mean: p50}
}

func TestPubSubRowsMoveSharedLayoutToTheCase(t *testing.T) {
	cfg := PubSubConfig{Fanout: 10, PayloadSize: 256, Batch: 1, Rate: 1000}
	rows := PubSubRows([]PubSubResult{
		{Target: "felix", Config: cfg, Latency: lat(time.Millisecond), DeliveredMsgsPerSec: 10000, DeliveredMBPerSec: 2.56},
		{Target: "nats-shared", Config: cfg, Lost: 3},
		{Target: "felix", Config: cfg},
		{Target: "felix-shared", Config: PubSubConfig{Fanout: 1, PayloadSize: 16, Batch: 64}},
	})
	want := []Row{
		{Case: "fanout=10 payload=256 batch=1 rate=1000", System: "felix", Felix: true, Round: 1, Latency: lat(time.Millisecond), Rate: 10000, Unit: "msg/s", MBPerSec: 2.56},
		{Case: "fanout=10 payload=256 batch=1 rate=1000 conns=shared", System: "nats", Round: 1, Unit: "msg/s", Drops: 3},
		{Case: "fanout=10 payload=256 batch=1 rate=1000", System: "felix", Felix: true, Round: 2, Unit: "msg/s"},
		{Case: "fanout=1 payload=16 batch=64 rate=max", System: "felix", Felix: true, Round: 1, Unit: "msg/s"},
	}
	for i := range want {
		if rows[i] != want[i] {
			t.Errorf("row %d:\n got %+v\nwant %+v", i, rows[i], want[i])
		}
	}
}

func TestCacheAndQueueRowsCountDrops(t *testing.T) {
	c := CacheRows([]CacheResult{{Target: "redis", Config: CacheConfig{Op: "get", Concurrency: 4, ValueSize: 100},
		OpsPerSec: 1000, Errors: 1, BadValues: 2, Misses: 3}})[0]
	if c.Case != "get conc=4 value=100" || c.Felix || c.Drops != 6 || c.Unit != "ops/s" || c.MBPerSec != 0.1 {
		t.Errorf("cache row %+v", c)
	}
	q := QueueRows([]QueueResult{{Target: "felix", Config: QueueConfig{Consumers: 4, PayloadSize: 1000, PublishBatch: 64},
		AckedPerSec: 2000, Lost: 5, AckErrors: 1, Duplicates: 7}})[0]
	if q.Case != "consumers=4 payload=1000 batch=64 rate=max" || !q.Felix || q.Drops != 6 || q.Unit != "acked/s" || q.MBPerSec != 2 {
		t.Errorf("queue row %+v", q)
	}
	if n := QueueNotes([]QueueResult{{Target: "felix", Duplicates: 7}}); len(n) != 1 || !strings.Contains(n[0], "7 duplicates") {
		t.Errorf("queue notes %q", n)
	}
}

func TestFormatRowsRatiosFelixOverPeer(t *testing.T) {
	rows := []Row{
		{Case: "a", System: "felix", Felix: true, Round: 1, Latency: lat(100 * time.Microsecond), Rate: 3000, Unit: "msg/s"},
		{Case: "b", System: "felix", Felix: true, Round: 1, Latency: lat(200 * time.Microsecond), Rate: 1000, Unit: "msg/s"},
		{Case: "a", System: "nats", Round: 1, Latency: lat(50 * time.Microsecond), Rate: 6000, Unit: "msg/s", Drops: 2},
		{Case: "b", System: "nats", Round: 1, Latency: lat(400 * time.Microsecond), Rate: 500, Unit: "msg/s"},
		{Case: "c", System: "nats", Round: 1, Latency: lat(400 * time.Microsecond), Rate: 500, Unit: "msg/s"},
	}
	out := FormatRows(rows, []string{"note: hello"})
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) != 7 {
		t.Fatalf("%d lines:\n%s", len(lines), out)
	}
	for i, want := range [][]string{
		{"case", "system", "p50 µs", "p90 µs", "p99 µs", "p99.9 µs", "max µs", "msg/s", "MB/s", "drops", "p50 felix/peer", "msg/s felix/peer"},
		{"a ", " felix ", " 100.0 ", " 3000 ", " -"},
		{"a ", " nats ", " 50.0 ", " 250.0 ", " 6000 ", " 2 ", " 2.00x ", " 0.50x"},
		{"b ", " felix ", " 200.0 "},
		{"b ", " nats ", " 0.50x ", " 2.00x"},
		{"c ", " nats ", " -  ", " -"},
		{"note: hello"},
	} {
		for _, w := range want {
			if !strings.Contains(lines[i], w) {
				t.Errorf("line %d lacks %q:\n%s", i, w, out)
			}
		}
	}
	if strings.Contains(lines[0], "round") {
		t.Errorf("round column in a one-round run:\n%s", out)
	}
	// Without peers there are no ratio columns; with rounds there is a
	// round column, and each round compares with its own.
	if out := FormatRows(rows[:2], nil); strings.Contains(out, "/peer") {
		t.Errorf("ratio columns without peers:\n%s", out)
	}
	two := append(append([]Row{}, rows[0], rows[2]), rows[0], rows[2])
	two[2].Round, two[3].Round = 2, 2
	two[2].Latency = lat(25 * time.Microsecond)
	got := strings.Split(FormatRows(two, nil), "\n")
	if !strings.Contains(got[0], "round") || !strings.Contains(got[2], " 2.00x ") || !strings.Contains(got[4], " 0.50x ") {
		t.Errorf("rounds:\n%s", strings.Join(got, "\n"))
	}
	if FormatRows(nil, nil) != "(no results)\n" {
		t.Error("empty table")
	}
}
