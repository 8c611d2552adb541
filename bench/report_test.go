package bench

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func sampleResults() []PubSubResult {
	lat := func(p50 time.Duration) Summary {
		return Summary{Count: 100, P50: p50, P90: 2 * p50, P99: 3 * p50, P999: 4 * p50, Max: 5 * p50, Mean: p50}
	}
	return []PubSubResult{
		{Target: "nats", Config: PubSubConfig{Fanout: 1, PayloadSize: 256, Batch: 1, Rate: 10000}, Latency: lat(160 * time.Microsecond), DeliveredMsgsPerSec: 10000, DeliveredMBPerSec: 2.56},
		{Target: "felix", Config: PubSubConfig{Fanout: 1, PayloadSize: 256, Batch: 1, Rate: 10000}, Latency: lat(80 * time.Microsecond), DeliveredMsgsPerSec: 10000, DeliveredMBPerSec: 2.56},
		{Target: "felix", Config: PubSubConfig{Fanout: 10, PayloadSize: 256, Batch: 64}, Latency: lat(1234567 * time.Nanosecond), DeliveredMsgsPerSec: 1.5e6, DeliveredMBPerSec: 384, Lost: 3, Duplicates: 2, OutOfOrder: 1},
	}
}

func TestFormatTable(t *testing.T) {
	out := FormatTable(sampleResults())
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) != 5 { // header, 3 rows, 1 note
		t.Fatalf("got %d lines:\n%s", len(lines), out)
	}
	for _, l := range lines[1:4] {
		if utf8.RuneCountInString(l) != utf8.RuneCountInString(lines[0]) {
			t.Fatalf("rows not aligned:\n%s", out)
		}
	}
	for i, want := range [][]string{
		{"target", "fanout", "p50 µs", "p99.9 µs", "msg/s", "MB/s", "lost", "p50 vs nats"},
		{"nats ", " 10000 ", " 160.0 ", " 480.0 ", " 800.0 ", " 2.6 ", " 1.00x"},
		{"felix ", " 80.0 ", " 0.50x"},
		{"felix ", " max ", " 1234.6 ", " 1500000 ", " 384.0 ", " 3 ", " -"},
		{"note: felix fanout 10 rate max: 2 duplicates, 1 out of order, 0 invalid"},
	} {
		for _, w := range want {
			if !strings.Contains(lines[i], w) {
				t.Errorf("line %d lacks %q:\n%s", i, w, out)
			}
		}
	}
	if got := (Table{Baseline: "felix"}).Format(sampleResults()); !strings.Contains(got, "p50 vs felix") ||
		!strings.Contains(strings.Split(got, "\n")[1], " 2.00x") {
		t.Errorf("baseline felix:\n%s", got)
	}
	// Repeated rounds: each row compares with its own round's baseline.
	rounds := append(sampleResults()[:2], sampleResults()[:2]...)
	rounds[2].Latency.P50 = 320 * time.Microsecond
	got := strings.Split(FormatTable(rounds), "\n")
	if !strings.HasSuffix(got[3], " 1.00x") || !strings.HasSuffix(got[4], " 0.25x") {
		t.Errorf("round 2 not compared with its own baseline:\n%s", strings.Join(got, "\n"))
	}
	if got := FormatTable(nil); got != "(no results)\n" {
		t.Errorf("empty table %q", got)
	}
}

func TestWriteJSON(t *testing.T) {
	var buf bytes.Buffer
	in := sampleResults()
	in[0].Config.Pacing = PaceAdaptive
	if err := WriteJSON(&buf, in); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), `"pacing": "adaptive"`) || !strings.Contains(buf.String(), `"p50_ns": 160000`) {
		t.Fatalf("unexpected JSON:\n%s", buf.String())
	}
	var rep Report
	if err := json.Unmarshal(buf.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Results) != 3 || rep.Results[2].Lost != 3 || rep.Results[0].Config.Pacing != PaceAdaptive ||
		rep.Results[1].Latency != in[1].Latency || rep.GoVersion == "" || rep.NumCPU == 0 {
		t.Fatalf("round trip lost data: %+v", rep)
	}
}

func TestPacingText(t *testing.T) {
	for _, p := range []Pacing{PaceSleep, PaceAdaptive, PaceSpin} {
		b, err := p.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		var q Pacing
		if err := q.UnmarshalText(b); err != nil || q != p {
			t.Fatalf("%v -> %s -> %v, %v", p, b, q, err)
		}
	}
	var q Pacing
	if err := q.UnmarshalText([]byte("warp")); err == nil {
		t.Fatal("unknown pacing accepted")
	}
	if _, err := Pacing(7).MarshalText(); err == nil {
		t.Fatal("out-of-range pacing marshalled")
	}
}
