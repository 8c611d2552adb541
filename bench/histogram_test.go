package bench

import (
	"sync"
	"testing"
	"time"
)

// within reports whether got is within 0.1% of want (HDR's 3 significant
// figures) or 1 ns.
func within(got, want time.Duration) bool {
	diff := got - want
	if diff < 0 {
		diff = -diff
	}
	return diff <= max(want/1000, 1)
}

func TestHistogramSummaryKnownValues(t *testing.T) {
	h := NewHistogram()
	for i := 1; i <= 1000; i++ {
		h.Record(time.Duration(i) * time.Microsecond)
	}
	s := h.Summary()
	checks := []struct {
		name      string
		got, want time.Duration
	}{
		{"p50", s.P50, 500 * time.Microsecond},
		{"p90", s.P90, 900 * time.Microsecond},
		{"p99", s.P99, 990 * time.Microsecond},
		{"p99.9", s.P999, 999 * time.Microsecond},
		{"max", s.Max, 1000 * time.Microsecond},
		{"mean", s.Mean, 500500 * time.Nanosecond},
	}
	for _, c := range checks {
		if !within(c.got, c.want) {
			t.Errorf("%s = %v, want %v ±0.1%%", c.name, c.got, c.want)
		}
	}
	if s.Count != 1000 || s.Clamped != 0 {
		t.Errorf("count %d clamped %d, want 1000 and 0", s.Count, s.Clamped)
	}
}

func TestHistogramSmallValuesKeepPrecision(t *testing.T) {
	h := NewHistogram()
	h.Record(81234 * time.Nanosecond)
	if got := h.Summary().P50; !within(got, 81234*time.Nanosecond) {
		t.Fatalf("p50 of one 81.234µs value = %v", got)
	}
}

func TestHistogramEmptyAndClamped(t *testing.T) {
	h := NewHistogram()
	if s := h.Summary(); s != (Summary{}) {
		t.Fatalf("empty summary = %+v, want zero", s)
	}
	h.Record(-time.Second)
	h.Record(2 * time.Minute)
	s := h.Summary()
	if s.Count != 2 || s.Clamped != 2 {
		t.Fatalf("count %d clamped %d, want 2 and 2", s.Count, s.Clamped)
	}
	if !within(s.Max, 60*time.Second) {
		t.Fatalf("max %v, want 60s (clamped)", s.Max)
	}
	h.Reset()
	if s := h.Summary(); s != (Summary{}) {
		t.Fatalf("summary after reset = %+v, want zero", s)
	}
}

func TestHistogramPerGoroutineThenMerge(t *testing.T) {
	const goroutines, each = 8, 5000
	hs := make([]*Histogram, goroutines)
	var wg sync.WaitGroup
	for g := range goroutines {
		hs[g] = NewHistogram()
		wg.Go(func() {
			for i := range each {
				hs[g].Record(time.Duration(g*each+i+1) * time.Microsecond)
			}
		})
	}
	wg.Wait()
	merged, single := NewHistogram(), NewHistogram()
	for _, h := range hs {
		merged.Merge(h)
	}
	for i := 1; i <= goroutines*each; i++ {
		single.Record(time.Duration(i) * time.Microsecond)
	}
	if m, s := merged.Summary(), single.Summary(); m != s {
		t.Fatalf("merged %+v\nsingle %+v", m, s)
	}
	if hs[0].Count() != each {
		t.Fatalf("merge changed its source: count %d", hs[0].Count())
	}
}

func TestSummaryString(t *testing.T) {
	s := Summary{Count: 3, P50: 81200 * time.Nanosecond, Max: time.Millisecond}
	want := "n=3 p50=81.2µs p90=0.0µs p99=0.0µs p99.9=0.0µs max=1000.0µs mean=0.0µs"
	if got := s.String(); got != want {
		t.Fatalf("String() = %q, want %q", got, want)
	}
}
