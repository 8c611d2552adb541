package bench

import (
	"cmp"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// chartFormats are the files every chart is written as.
var chartFormats = []string{"svg", "png"}

// percentileNames label the x axis of latency charts, in the order of
// latencyPoints.
var percentileNames = []string{"p50", "p90", "p99", "p99.9", "max"}

// latencyPoints is s's percentiles and max in µs, in percentileNames order.
func latencyPoints(s Summary) []float64 {
	return []float64{micros(s.P50), micros(s.P90), micros(s.P99), micros(s.P999), micros(s.Max)}
}

// WriteCharts draws rows as charts in dir (created if missing), each as
// SVG and PNG, and returns the paths it wrote:
//
//   - NAME-latency-CASE.{svg,png}, one per case: latency percentile curves,
//     x = p50, p90, p99, p99.9, max; y = µs on a log scale; one line per
//     system.
//   - NAME-throughput.{svg,png}: the rate as bars, one group per case and
//     one bar per system.
//
// Rows of repeated rounds are merged first: every figure is the median of
// its rounds. Rows without latency samples are left out of the latency
// charts.
func WriteCharts(dir, name string, rows []Row) ([]string, error) {
	if len(rows) == 0 {
		return nil, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("bench: charts: %w", err)
	}
	merged := MergeRounds(rows)
	var cases, systems []string
	for _, r := range merged {
		if !slices.Contains(cases, r.Case) {
			cases = append(cases, r.Case)
		}
		if !slices.Contains(systems, r.System) {
			systems = append(systems, r.System)
		}
	}
	var files []string
	save := func(p *plot.Plot, w, h vg.Length, base string) error {
		for _, ext := range chartFormats {
			f := filepath.Join(dir, base+"."+ext)
			if err := p.Save(w, h, f); err != nil {
				return fmt.Errorf("bench: chart %s: %w", f, err)
			}
			files = append(files, f)
		}
		return nil
	}
	for _, c := range cases {
		p, ok, err := latencyChart(name, c, systems, merged)
		if err != nil {
			return files, err
		}
		if ok {
			if err := save(p, 16*vg.Centimeter, 11*vg.Centimeter, name+"-latency-"+slug(c)); err != nil {
				return files, err
			}
		}
	}
	p, err := throughputChart(name, cases, systems, merged)
	if err != nil {
		return files, err
	}
	width := max(16*vg.Centimeter, vg.Length(len(cases)*len(systems))*vg.Centimeter+4*vg.Centimeter)
	return files, save(p, width, 12*vg.Centimeter, name+"-throughput")
}

// latencyChart draws case c's percentile curves, one line per system; ok
// is false when no system has latency samples for c.
func latencyChart(name, c string, systems []string, rows []Row) (p *plot.Plot, ok bool, err error) {
	p = plot.New()
	p.Title.Text = name + " latency: " + c
	p.X.Label.Text = "percentile"
	p.Y.Label.Text = "latency (µs, log scale)"
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Legend.Top, p.Legend.Left = true, true
	p.NominalX(percentileNames...)
	for i, sys := range systems {
		j := slices.IndexFunc(rows, func(r Row) bool { return r.Case == c && r.System == sys })
		if j < 0 || rows[j].Latency.Count == 0 {
			continue
		}
		xys := make(plotter.XYs, len(percentileNames))
		for k, v := range latencyPoints(rows[j].Latency) {
			xys[k] = plotter.XY{X: float64(k), Y: max(v, 0.001)} // log scale: > 0
		}
		line, points, err := plotter.NewLinePoints(xys)
		if err != nil {
			return nil, false, fmt.Errorf("bench: latency chart: %w", err)
		}
		line.Color, points.Color = plotutil.Color(i), plotutil.Color(i)
		points.Shape = plotutil.Shape(i)
		p.Add(line, points)
		p.Legend.Add(sys, line, points)
		ok = true
	}
	return p, ok, nil
}

// throughputChart draws every case's rate as a group of bars, one per
// system.
func throughputChart(name string, cases, systems []string, rows []Row) (*plot.Plot, error) {
	p := plot.New()
	unit := rows[0].Unit
	p.Title.Text = name + " throughput (" + unit + ")"
	p.Y.Label.Text = unit
	p.Y.Min = 0
	p.Legend.Top = true
	labels := make([]string, len(cases))
	for i, c := range cases {
		labels[i] = strings.ReplaceAll(c, " ", "\n")
	}
	p.NominalX(labels...)
	top := 0.0
	for _, r := range rows {
		top = max(top, r.Rate)
	}
	p.Y.Max = top * 1.3      // room for the legend above the bars
	w := 0.8 * vg.Centimeter // the chart is about 1 cm wide per bar
	for i, sys := range systems {
		vals := make(plotter.Values, len(cases))
		for k, c := range cases {
			if j := slices.IndexFunc(rows, func(r Row) bool { return r.Case == c && r.System == sys }); j >= 0 {
				vals[k] = rows[j].Rate
			}
		}
		bars, err := plotter.NewBarChart(vals, w)
		if err != nil {
			return nil, fmt.Errorf("bench: throughput chart: %w", err)
		}
		bars.Color = plotutil.Color(i)
		bars.LineStyle.Width = 0
		bars.Offset = w * vg.Length(float64(i)-float64(len(systems)-1)/2)
		p.Add(bars)
		p.Legend.Add(sys, bars)
	}
	return p, nil
}

// MergeRounds returns one row per (case, system), in first-appearance
// order, whose latency figures, rate, MB/s and drops are the medians over
// the rounds (drops: the maximum, so that a loss is never hidden). Round
// is the number of rounds merged.
func MergeRounds(rows []Row) []Row {
	type key struct{ c, s string }
	groups := map[key][]Row{}
	var order []key
	for _, r := range rows {
		k := key{r.Case, r.System}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], r)
	}
	out := make([]Row, 0, len(order))
	for _, k := range order {
		g := groups[k]
		m := g[0]
		m.Round = len(g)
		m.Latency.P50 = median[time.Duration](g, func(r Row) float64 { return float64(r.Latency.P50) })
		m.Latency.P90 = median[time.Duration](g, func(r Row) float64 { return float64(r.Latency.P90) })
		m.Latency.P99 = median[time.Duration](g, func(r Row) float64 { return float64(r.Latency.P99) })
		m.Latency.P999 = median[time.Duration](g, func(r Row) float64 { return float64(r.Latency.P999) })
		m.Latency.Max = median[time.Duration](g, func(r Row) float64 { return float64(r.Latency.Max) })
		m.Latency.Mean = median[time.Duration](g, func(r Row) float64 { return float64(r.Latency.Mean) })
		m.Rate = median[float64](g, func(r Row) float64 { return r.Rate })
		m.MBPerSec = median[float64](g, func(r Row) float64 { return r.MBPerSec })
		for _, r := range g[1:] {
			m.Latency.Count += r.Latency.Count
			m.Drops = max(m.Drops, r.Drops)
		}
		out = append(out, m)
	}
	return out
}

// median of f over rows (the mean of the middle two for an even count),
// converted to T.
func median[T ~int64 | ~float64](rows []Row, f func(Row) float64) T {
	v := make([]float64, len(rows))
	for i, r := range rows {
		v[i] = f(r)
	}
	slices.Sort(v)
	n := len(v)
	if n%2 == 1 {
		return T(v[n/2])
	}
	return T((v[n/2-1] + v[n/2]) / 2)
}

// slug turns a case label into a file name part: letters and digits kept,
// every other run of characters one '-'.
func slug(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
			dash = false
		} else if !dash && b.Len() > 0 {
			b.WriteByte('-')
			dash = true
		}
	}
	return cmp.Or(strings.TrimSuffix(b.String(), "-"), "case")
}
