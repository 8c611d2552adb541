package metrics

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// A cache or stream whose name is not valid UTF-8 (none is created so
// today, but nothing here checks it) must not panic the scrape, and so
// the broker: its label values are sent with the bad bytes replaced.
func TestEmitInvalidUTF8LabelsDoesNotPanic(t *testing.T) {
	ch := make(chan prometheus.Metric, len(cacheMetrics))
	emit(ch, cacheMetrics, &cacheSnap{}, "default", "ns", "bad\xffname")
	close(ch)
	n := 0
	for m := range ch {
		var pb dto.Metric
		if err := m.Write(&pb); err != nil {
			t.Fatal(err)
		}
		for _, lp := range pb.GetLabel() {
			if !utf8.ValidString(lp.GetValue()) {
				t.Fatalf("label %s=%q is not valid UTF-8", lp.GetName(), lp.GetValue())
			}
			if lp.GetName() == "cache" && !strings.HasPrefix(lp.GetValue(), "bad") {
				t.Fatalf("cache label %q, want the name with its bad byte replaced", lp.GetValue())
			}
		}
		n++
	}
	if n != len(cacheMetrics) {
		t.Fatalf("%d metrics sent, want %d", n, len(cacheMetrics))
	}
}
