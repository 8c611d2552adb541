package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/felixmq/felix/bench"
)

// decodeReport decodes the JSON report that follows any progress lines in
// out.
func decodeReport[R any](t *testing.T, out string) bench.JSONReport[R] {
	t.Helper()
	i := strings.Index(out, "{")
	if i < 0 {
		t.Fatalf("no JSON in output:\n%s", out)
	}
	var rep bench.JSONReport[R]
	if err := json.NewDecoder(strings.NewReader(out[i:])).Decode(&rep); err != nil {
		t.Fatalf("json: %v\n%s", err, out)
	}
	return rep
}

// checkRow fails unless r is a lossless row with the uniform fields.
func checkRow(t *testing.T, r bench.Row, system, unit string, samples int64) {
	t.Helper()
	if r.System != system || r.Unit != unit || r.Drops != 0 || r.Rate <= 0 || r.Latency.Count != samples ||
		r.Latency.P50 <= 0 || r.Latency.P90 < r.Latency.P50 || r.Latency.P99 < r.Latency.P90 ||
		r.Latency.P999 < r.Latency.P99 || r.Latency.Max < r.Latency.P999 || r.Case == "" || r.Round != 1 {
		t.Fatalf("row %+v, want system %s unit %s, %d samples, no drops", r, system, unit, samples)
	}
}

func TestBenchPubSubJSONAndCompareQUIC(t *testing.T) {
	out, err := runCLI(t, "bench", "pubsub", "--broker", "embedded", "--fanout", "1,2", "--total", "300", "--warmup", "50",
		"--rate", "3000", "--sub-conns", "per-sub", "--compare", "quic", "--json")
	if err != nil {
		t.Fatalf("bench pubsub: %v\n%s", err, out)
	}
	rep := decodeReport[bench.PubSubResult](t, out)
	if rep.Command != "pubsub" || rep.GoVersion == "" || rep.NumCPU == 0 || len(rep.Results) != 5 || len(rep.Rows) != 5 {
		t.Fatalf("report: command %q, %d results, %d rows", rep.Command, len(rep.Results), len(rep.Rows))
	}
	// Warm-up excluded: latency samples are total × fanout; counts cover
	// the warm-up too. The echo runs at fanout 1 only, the relay at both.
	checkRow(t, rep.Rows[0], "felix", "msg/s", 300)
	checkRow(t, rep.Rows[1], bench.QUICEchoName, "msg/s", 300)
	checkRow(t, rep.Rows[2], bench.QUICRelayName, "msg/s", 300)
	checkRow(t, rep.Rows[3], "felix", "msg/s", 600)
	checkRow(t, rep.Rows[4], bench.QUICRelayName, "msg/s", 600)
	for _, i := range []int{3, 4} {
		if r := rep.Results[i]; r.Delivered != 2*350 || r.Lost != 0 || r.Config.Fanout != 2 || r.Config.Warmup != 50 {
			t.Fatalf("result %d: %+v", i, r)
		}
	}
	if !rep.Rows[0].Felix || rep.Rows[1].Felix || !strings.Contains(out, `"p99_ns"`) || !strings.Contains(out, `"mb_per_sec"`) {
		t.Fatalf("rows %+v", rep.Rows)
	}

	// The table: every system in one table, the peers with Felix/peer ratios.
	out, err = runCLI(t, "bench", "pubsub", "--broker", "embedded", "--fanout", "1", "--total", "200", "--warmup", "20",
		"--rate", "2000", "--sub-conns", "shared", "--compare", "quic", "--quiet")
	if err != nil {
		t.Fatalf("bench pubsub: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "case") || !strings.Contains(lines[0], "p50 felix/peer") ||
		!strings.Contains(lines[1], " felix ") || !strings.Contains(lines[2], bench.QUICEchoName) ||
		!strings.Contains(lines[3], bench.QUICRelayName) ||
		!strings.HasSuffix(lines[2], "x") || strings.Contains(lines[1], "conns=shared") {
		t.Fatalf("--quiet table (nothing else) with every system:\n%s", out)
	}
	for _, args := range [][]string{{"--compare", "kafka"}, {"--compare", "jetstream"}, {"--sub-conns", "some"}} {
		if _, err := runCLI(t, append([]string{"bench", "pubsub", "--broker", "embedded", "--total", "10"}, args...)...); err == nil {
			t.Errorf("bench pubsub accepted %v", args)
		}
	}
}

func TestBenchPubSubCompareNATS(t *testing.T) {
	out, err := runCLI(t, "bench", "pubsub", "--broker", "embedded", "--fanout", "2", "--total", "300", "--warmup", "30",
		"--rate", "3000", "--sub-conns", "per-sub", "--compare", "nats,nats-tls", "--quiet")
	if errors.Is(err, bench.ErrPeerNotInstalled) {
		t.Skipf("nats-server is not installed (run scripts/peers.sh install): %v", err)
	}
	if err != nil {
		t.Fatalf("bench pubsub: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) != 4 || !strings.Contains(lines[1], " felix ") || !strings.Contains(lines[2], " nats ") ||
		!strings.Contains(lines[3], " nats-tls ") || !strings.Contains(lines[0], "msg/s felix/peer") ||
		!strings.HasSuffix(lines[2], "x") || !strings.HasSuffix(lines[3], "x") {
		t.Fatalf("table:\n%s", out)
	}
	t.Log("\n" + out)
}

func TestBenchPubSubCompareRedis(t *testing.T) {
	out, err := runCLI(t, "bench", "pubsub", "--broker", "embedded", "--fanout", "2", "--total", "300", "--warmup", "30",
		"--rate", "3000", "--compare", "redis", "--quiet")
	if errors.Is(err, bench.ErrPeerNotInstalled) {
		t.Skipf("redis-server is not installed (run scripts/peers.sh install redis): %v", err)
	}
	if err != nil {
		t.Fatalf("bench pubsub: %v\n%s", err, out)
	}
	// felix per-sub and shared, redis per-sub (its subscribers cannot
	// share a connection): redis compares with the per-sub felix row.
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) != 4 || !strings.Contains(lines[2], " redis ") || !strings.HasSuffix(lines[2], "x") ||
		!strings.Contains(lines[3], "conns=shared") {
		t.Fatalf("table:\n%s", out)
	}
	t.Log("\n" + out)
}

func TestBenchCacheCompareRedis(t *testing.T) {
	out, err := runCLI(t, "bench", "cache", "--broker", "embedded", "--compare", "redis", "--op", "get",
		"--concurrency", "2", "--keys", "200", "--duration", "150ms", "--warmup", "50ms", "--quiet")
	if errors.Is(err, bench.ErrPeerNotInstalled) {
		t.Skipf("redis-server is not installed (run scripts/peers.sh install redis): %v", err)
	}
	if err != nil {
		t.Fatalf("bench cache: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) != 3 || !strings.Contains(lines[0], "ops/s felix/peer") || !strings.Contains(lines[1], "get conc=2 value=256") ||
		!strings.Contains(lines[1], " felix ") || !strings.Contains(lines[2], " redis ") || !strings.HasSuffix(lines[2], "x") {
		t.Fatalf("table:\n%s", out)
	}
	t.Log("\n" + out)
}

func TestBenchCacheJSON(t *testing.T) {
	out, err := runCLI(t, "bench", "cache", "--broker", "embedded", "--op", "put", "--concurrency", "2", "--keys", "100",
		"--duration", "100ms", "--warmup", "20ms", "--json")
	if err != nil {
		t.Fatalf("bench cache: %v\n%s", err, out)
	}
	rep := decodeReport[bench.CacheResult](t, out)
	if rep.Command != "cache" || len(rep.Rows) != 1 || len(rep.Results) != 1 {
		t.Fatalf("report %+v", rep)
	}
	checkRow(t, rep.Rows[0], "felix", "ops/s", rep.Results[0].Ops)
	if rep.Rows[0].MBPerSec <= 0 {
		t.Fatalf("row %+v", rep.Rows[0])
	}
}

func TestBenchMatrixTiny(t *testing.T) {
	charts := t.TempDir()
	out, err := runCLI(t, "bench", "matrix", "--broker", "embedded", "--fanouts", "1,2", "--batches", "1,8",
		"--payloads", "0,64", "--count", "160", "--warmup", "16", "--rate", "4000", "--json", "--chart-dir", charts)
	if err != nil {
		t.Fatalf("bench matrix: %v\n%s", err, out)
	}
	rep := decodeReport[bench.PubSubResult](t, out)
	if rep.Command != "matrix" || len(rep.Results) != 8 || len(rep.Rows) != 8 {
		t.Fatalf("report: %q, %d results", rep.Command, len(rep.Results))
	}
	for i, r := range rep.Results {
		c := r.Config
		wantFanout, wantBatch, wantSize := 1+i/4, []int{1, 8}[i/2%2], []int{16, 64}[i%2]
		wantRate := map[int]int{1: 4000, 8: 0}[wantBatch]
		if c.Fanout != wantFanout || c.Batch != wantBatch || c.PayloadSize != wantSize || c.Rate != wantRate {
			t.Errorf("case %d: %+v", i, c)
		}
		checkRow(t, rep.Rows[i], "felix", "msg/s", int64(160*wantFanout))
	}
	// Every case's latency chart plus the throughput chart, as SVG and PNG.
	files, _ := filepath.Glob(filepath.Join(charts, "*"))
	if len(files) != 2*(8+1) {
		t.Fatalf("%d chart files: %v", len(files), files)
	}
	b, err := os.ReadFile(filepath.Join(charts, "matrix-throughput.png"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := png.Decode(bytes.NewReader(b)); err != nil {
		t.Fatalf("throughput png: %v", err)
	}
	if b, err = os.ReadFile(filepath.Join(charts, "matrix-latency-fanout-2-payload-64-batch-8-rate-max-conns-shared.svg")); err != nil ||
		!bytes.Contains(b, []byte("<svg")) {
		t.Fatalf("latency svg: %v", err)
	}
}

func TestBenchLogJSON(t *testing.T) {
	tmp := t.TempDir()
	out, err := runCLI(t, "bench", "log", "--dir", tmp, "--duration", "30ms", "--warmup", "10ms", "--writers", "1,2",
		"--sync", "never", "--json")
	if err != nil {
		t.Fatalf("bench log: %v\n%s", err, out)
	}
	rep := decodeReport[bench.LogResult](t, out)
	if rep.Command != "log" || len(rep.Rows) != 2 || rep.Results[1].Config.Writers != 2 {
		t.Fatalf("report %+v", rep)
	}
	for i, r := range rep.Rows {
		checkRow(t, r, "felix", "records/s", rep.Results[i].Appends)
	}
	out, err = runCLI(t, "bench", "log", "--dir", tmp, "--duration", "20ms", "--writers", "1", "--sync", "always")
	if err != nil || !strings.Contains(out, "sync=always writers=1 record=256 batch=1") || !strings.Contains(out, "appends per fsync") {
		t.Fatalf("bench log table: %v\n%s", err, out)
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Fatalf("%d logs left behind", len(left))
	}
}

func TestParseCompare(t *testing.T) {
	got, err := parseCompare([]string{"nats, JS", "jetstream"}, queuePeers)
	if err != nil || len(got) != 1 || got[0] != "jetstream" {
		t.Fatalf("got %q, %v", got, err)
	}
	if _, err := parseCompare([]string{"nats,kafka"}, pubsubPeers); err == nil || !strings.Contains(err.Error(), "want nats, nats-tls, quic") {
		t.Fatalf("unknown peer: %v", err)
	}
}

// --server-gomaxprocs becomes the GOMAXPROCS of the server processes the
// command starts (bench.TestPeerProcessEnv checks that a child gets it),
// not of this process; negative values are refused.
func TestBenchServerGOMAXPROCS(t *testing.T) {
	if got := (brokerTarget{serverProcs: 1}).serverEnv(); len(got) != 1 || got[0] != "GOMAXPROCS=1" {
		t.Fatalf("serverEnv with --server-gomaxprocs 1: %q", got)
	}
	if got := (brokerTarget{}).serverEnv(); got != nil {
		t.Fatalf("serverEnv by default: %q, want nothing", got)
	}
	t.Setenv("GOMAXPROCS", "") // restored when the test ends
	out, err := runCLI(t, "bench", "pubsub", "--broker", "embedded", "--fanout", "1", "--total", "100", "--warmup", "10",
		"--rate", "2000", "--sub-conns", "per-sub", "--server-gomaxprocs", "1", "--quiet")
	if err != nil {
		t.Fatalf("bench pubsub: %v\n%s", err, out)
	}
	if got := os.Getenv("GOMAXPROCS"); got != "" {
		t.Fatalf("the bench process's own GOMAXPROCS became %q", got)
	}
	if out, err := runCLI(t, "bench", "pubsub", "--broker", "embedded", "--server-gomaxprocs", "-1", "--quiet"); err == nil ||
		!strings.Contains(err.Error()+out, "--server-gomaxprocs") {
		t.Fatalf("negative --server-gomaxprocs: %v\n%s", err, out)
	}
}
