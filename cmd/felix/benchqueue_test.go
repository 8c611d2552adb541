package main

import (
	"errors"
	"strings"
	"testing"

	"github.com/felixmq/felix/bench"
)

func TestBenchQueueCLIEmbedded(t *testing.T) {
	out, err := runCLI(t, "bench", "queue", "--broker", "embedded", "--records", "600", "--warmup", "60",
		"--consumers", "3", "--publish-batch", "16", "--timeout", "1m", "--json")
	if err != nil {
		t.Fatalf("bench queue: %v\n%s", err, out)
	}
	rep := decodeReport[bench.QueueResult](t, out)
	if rep.Command != "queue" || len(rep.Rows) != 1 {
		t.Fatalf("report: command %q, rows %+v", rep.Command, rep.Rows)
	}
	checkRow(t, rep.Rows[0], "felix", "acked/s", 600)
	if len(rep.Results) != 1 {
		t.Fatalf("results: %+v", rep.Results)
	}
	r := rep.Results[0]
	if r.Target != "felix" || r.Acked != 660 || r.Duplicates != 0 || r.Lost != 0 || r.Latency.Count != 600 ||
		r.Config.Consumers != 3 || r.Config.PublishBatch != 16 {
		t.Fatalf("result: %+v", r)
	}
	for _, args := range [][]string{{"--fsync", "sometimes"}, {"--nats-ack", "triple"}, {"--felix-ack", "maybe"}, {"--compare", "kafka"}, {"--payload", "8"}} {
		if _, err := runCLI(t, append([]string{"bench", "queue", "--broker", "embedded", "--records", "10"}, args...)...); err == nil {
			t.Errorf("bench queue accepted %v", args)
		}
	}
}

func TestBenchQueueCLICompareNATS(t *testing.T) {
	// nats is the old name of the jetstream peer.
	out, err := runCLI(t, "bench", "queue", "--broker", "embedded", "--compare", "nats", "--records", "1000",
		"--warmup", "100", "--rounds", "2", "--timeout", "1m")
	if errors.Is(err, bench.ErrPeerNotInstalled) {
		t.Skipf("nats-server is not installed (run scripts/peers.sh install): %v", err)
	}
	if err != nil {
		t.Fatalf("bench queue: %v\n%s", err, out)
	}
	for _, want := range []string{"acked/s felix/peer", "p50 felix/peer", " felix ", " nats-js ", "round", "DoubleAck", "Message.Ack"} {
		if !strings.Contains(out, want) {
			t.Fatalf("output lacks %q:\n%s", want, out)
		}
	}
	t.Log("\n" + out)
}
