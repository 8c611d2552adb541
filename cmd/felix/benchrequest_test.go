package main

import (
	"errors"
	"strings"
	"testing"

	"github.com/felixmq/felix/bench"
)

func TestBenchRequestCLIEmbedded(t *testing.T) {
	out, err := runCLI(t, "bench", "request", "--broker", "embedded", "--total", "200", "--warmup", "20",
		"--concurrency", "1,4", "--json")
	if err != nil {
		t.Fatalf("bench request: %v\n%s", err, out)
	}
	rep := decodeReport[bench.RequestResult](t, out)
	if rep.Command != "request" || len(rep.Rows) != 2 || len(rep.Results) != 2 {
		t.Fatalf("report: command %q, rows %+v, %d results", rep.Command, rep.Rows, len(rep.Results))
	}
	for i, conc := range []int{1, 4} {
		checkRow(t, rep.Rows[i], "felix", "req/s", 200)
		r := rep.Results[i]
		if r.Target != "felix" || r.Requests != 200 || r.Config.Concurrency != conc || r.Config.PayloadSize != 256 {
			t.Fatalf("result %d: %+v", i, r)
		}
	}
	for _, args := range [][]string{{"--compare", "kafka"}, {"--concurrency", "0"}, {"--payload", "0"}, {"--total", "0"}} {
		if _, err := runCLI(t, append([]string{"bench", "request", "--broker", "embedded", "--total", "10"}, args...)...); err == nil {
			t.Errorf("bench request accepted %v", args)
		}
	}
}

func TestBenchRequestCLICompareNATS(t *testing.T) {
	out, err := runCLI(t, "bench", "request", "--broker", "embedded", "--compare", "nats", "--total", "200",
		"--warmup", "20", "--rounds", "2")
	if errors.Is(err, bench.ErrPeerNotInstalled) {
		t.Skipf("nats-server is not installed (run scripts/peers.sh install): %v", err)
	}
	if err != nil {
		t.Fatalf("bench request: %v\n%s", err, out)
	}
	for _, want := range []string{"p50 felix/peer", "req/s felix/peer", "conc=1 payload=256", "conc=16 payload=256",
		" felix ", " nats ", "round", "Client.Serve", "m.Respond"} {
		if !strings.Contains(out, want) {
			t.Fatalf("output lacks %q:\n%s", want, out)
		}
	}
	systems := map[string]int{}
	for line := range strings.Lines(out) {
		if f := strings.Fields(line); len(f) > 3 && strings.HasPrefix(f[0], "conc=") {
			systems[f[2]]++
		}
	}
	if systems["felix"] != 4 || systems["nats"] != 4 {
		t.Fatalf("want 4 felix and 4 nats rows (2 cases × 2 rounds):\n%s", out)
	}
	t.Log("\n" + out)
}
