package main

import (
	"testing"

	"github.com/felixmq/felix/bench"
)

// TestBenchSoakCLIEmbedded runs a 2 s soak through the command, at low
// rates, and checks its JSON report; memory figures are not checked.
func TestBenchSoakCLIEmbedded(t *testing.T) {
	out, err := runCLI(t, "bench", "soak", "--broker", "embedded", "--duration", "2s", "--sample-interval", "250ms",
		"--mem-rate", "200", "--mem-readers", "1", "--durable-rate", "50", "--queue-rate", "50", "--queue-consumers", "1",
		"--nack-every", "3", "--cache-rate", "100", "--drain", "5s", "--json", "--quiet")
	if err != nil {
		t.Fatalf("bench soak: %v\n%s", err, out)
	}
	rep := decodeReport[bench.SoakResult](t, out)
	if rep.Command != "soak" || len(rep.Results) != 1 {
		t.Fatalf("report: command %q, %d results", rep.Command, len(rep.Results))
	}
	r := rep.Results[0]
	if len(r.Samples) < 5 || !r.Verdict.Available || len(r.Windows) == 0 || len(r.Failures) != 0 ||
		r.Config.Warmup <= 0 || r.Config.Warmup >= r.Config.Duration {
		t.Fatalf("result: %d samples, verdict %+v, %d windows, failures %v, config %+v",
			len(r.Samples), r.Verdict, len(r.Windows), r.Failures, r.Config)
	}
	if r.Mem.Received == 0 || r.Durable.Received != r.Durable.Published || r.Queue.Acked != r.Queue.Published ||
		r.Queue.Published == 0 || r.Cache.Puts == 0 || len(r.Queue.PerConsumer) != 2 {
		t.Fatalf("workload: %+v %+v %+v %+v", r.Mem, r.Durable, r.Queue, r.Cache)
	}
	for _, args := range [][]string{
		{"--duration", "25h"}, {"--payload", "8"}, {"--broker", "nowhere"}, {"--cache-bytes", "0"},
		{"--addr", "127.0.0.1:1"}, {"--warmup", "3s", "--duration", "2s"},
	} {
		if _, err := runCLI(t, append([]string{"bench", "soak", "--quiet"}, args...)...); err == nil {
			t.Errorf("bench soak accepted %v", args)
		}
	}
}
