package bench

import (
	"context"
	"os"
	"testing"
)

func TestZZEchoRates(t *testing.T) {
	if os.Getenv("ZZ") == "" {
		t.Skip()
	}
	ctx := context.Background()
	addr, stop, _ := StartQUICEcho(ctx)
	defer stop()
	var rs []PubSubResult
	for _, rate := range []int{1000, 5000, 10000} {
		for _, p := range []Pacing{PaceSleep, PaceAdaptive} {
			r, err := RunQUICEcho(ctx, addr, PubSubConfig{Rate: rate, Total: 5000, Warmup: 500, Pacing: p})
			if err != nil {
				t.Fatal(err)
			}
			r.Target += " " + p.String()
			rs = append(rs, r)
			t.Logf("%d %s uncorrected %v", rate, p, r.UncorrectedLatency)
		}
	}
	t.Logf("\n%s", FormatTable(rs))
}
