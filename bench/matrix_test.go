package bench

import (
	"testing"
	"time"
)

func TestMatrixDefaultIsTheReferenceGrid(t *testing.T) {
	cases, err := Matrix{Rate: 5000}.Cases(PubSubConfig{Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if len(cases) != 16 {
		t.Fatalf("%d cases, want 2 fanouts × 2 batches × 4 payloads", len(cases))
	}
	first, last := cases[0], cases[15]
	if first.Fanout != 1 || first.Batch != 1 || first.PayloadSize != 16 || first.Rate != 5000 ||
		first.Total != DefaultMatrixCount || first.Warmup != DefaultMatrixWarmup || first.Timeout != time.Minute {
		t.Errorf("first case %+v", first)
	}
	if last.Fanout != 10 || last.Batch != 64 || last.PayloadSize != 4096 || last.Rate != 0 {
		t.Errorf("last case %+v (batched cases run as fast as possible)", last)
	}
}

func TestMatrixShrinksAndRejectsBadCases(t *testing.T) {
	cases, err := Matrix{Fanouts: []int{3}, Batches: []int{1, 8}, Payloads: []int{100}, Count: 50, Warmup: -1}.Cases(PubSubConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if len(cases) != 2 || cases[1].Batch != 8 || cases[1].Fanout != 3 || cases[1].PayloadSize != 100 ||
		cases[1].Total != 50 || cases[1].Warmup != 0 {
		t.Fatalf("cases %+v", cases)
	}
	for _, m := range []Matrix{{Fanouts: []int{0}}, {Batches: []int{-1}}, {Payloads: []int{-5}}, {Count: -1}} {
		if _, err := m.Cases(PubSubConfig{}); err == nil {
			t.Errorf("accepted %+v", m)
		}
	}
}
