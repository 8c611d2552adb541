package bench

import (
	"fmt"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Histogram bounds. Values are recorded in nanoseconds: a lowest discernible
// value of 1 ns keeps 3 significant figures at tens of microseconds (with a
// 1 µs unit the first HDR bucket has 512 ns steps, 0.5% at 100 µs).
const (
	histLowest  = 1                       // ns
	histHighest = int64(60 * time.Second) // ns; larger values are clamped
	histSigFigs = 3                       // significant decimal digits
)

// Histogram records latencies with HDR precision: 3 significant figures
// between 1 ns and 60 s. Values below zero are recorded as 0 and values over
// 60 s as 60 s (and counted in [Summary.Clamped]).
//
// A Histogram is not safe for concurrent use: give each recording goroutine
// its own and [Histogram.Merge] them once recording is done. The zero value
// is not usable; call [NewHistogram].
type Histogram struct {
	h       *hdrhistogram.Histogram
	clamped int64
}

// NewHistogram returns an empty histogram.
func NewHistogram() *Histogram {
	return &Histogram{h: hdrhistogram.New(histLowest, histHighest, histSigFigs)}
}

// Record adds one latency.
func (h *Histogram) Record(d time.Duration) {
	v := int64(d)
	switch {
	case v < 0:
		v = 0
		h.clamped++
	case v > histHighest:
		v = histHighest
		h.clamped++
	}
	// Cannot fail: v is within the histogram's range.
	_ = h.h.RecordValue(v)
}

// Merge adds every value recorded in o to h. o is not changed.
func (h *Histogram) Merge(o *Histogram) {
	h.h.Merge(o.h)
	h.clamped += o.clamped
}

// Count is the number of values recorded.
func (h *Histogram) Count() int64 { return h.h.TotalCount() }

// Reset forgets every recorded value.
func (h *Histogram) Reset() {
	h.h.Reset()
	h.clamped = 0
}

// Summary returns the histogram's count, percentiles, max and mean. An empty
// histogram gives a zero Summary.
func (h *Histogram) Summary() Summary {
	if h.h.TotalCount() == 0 {
		return Summary{}
	}
	return Summary{
		Count:   h.h.TotalCount(),
		P50:     time.Duration(h.h.ValueAtPercentile(50)),
		P90:     time.Duration(h.h.ValueAtPercentile(90)),
		P99:     time.Duration(h.h.ValueAtPercentile(99)),
		P999:    time.Duration(h.h.ValueAtPercentile(99.9)),
		Max:     time.Duration(h.h.Max()),
		Mean:    time.Duration(h.h.Mean()),
		Clamped: h.clamped,
	}
}

// Summary is a latency distribution reduced to the numbers a report shows.
// Percentiles and Max are HDR values: exact to 3 significant figures (the
// highest value equivalent to the recorded one).
type Summary struct {
	Count int64         `json:"count"`
	P50   time.Duration `json:"p50_ns"`
	P90   time.Duration `json:"p90_ns"`
	P99   time.Duration `json:"p99_ns"`
	P999  time.Duration `json:"p999_ns"`
	Max   time.Duration `json:"max_ns"`
	Mean  time.Duration `json:"mean_ns"`
	// Clamped counts values recorded out of range (negative, or over 60 s).
	Clamped int64 `json:"clamped,omitempty"`
}

// String formats the summary in microseconds, e.g.
// "n=1000 p50=81.2µs p90=95.0µs p99=130.1µs p99.9=201.0µs max=250.3µs mean=84.0µs".
func (s Summary) String() string {
	return fmt.Sprintf("n=%d p50=%s p90=%s p99=%s p99.9=%s max=%s mean=%s",
		s.Count, us(s.P50), us(s.P90), us(s.P99), us(s.P999), us(s.Max), us(s.Mean))
}

// us formats d in microseconds with one decimal and the unit.
func us(d time.Duration) string { return fmt.Sprintf("%.1fµs", micros(d)) }

// micros converts d to microseconds.
func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
