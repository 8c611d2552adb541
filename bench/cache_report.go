package bench

import (
	"cmp"
	"fmt"
	"io"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// CacheTable formats cache results as one aligned text table.
type CacheTable struct {
	// Baseline is the target whose rows the ratio column compares against:
	// each row's ops/s is divided by the ops/s of the nearest earlier
	// Baseline row of the same case (op, concurrency, keys, value size,
	// TTL), else the first later one. Default: the first result's target.
	Baseline string
}

// FormatCacheTable is CacheTable{}.Format(results).
func FormatCacheTable(results []CacheResult) string { return CacheTable{}.Format(results) }

// Format returns a table with one row per result: target, op,
// concurrency, value bytes, latency percentiles and max in µs, ops/s,
// errors, misses, and the ops/s ratio against the baseline. Rows with
// values that were not the ones stored get a note under the table, and
// so do rows whose run reported a first error.
func (t CacheTable) Format(results []CacheResult) string {
	if len(results) == 0 {
		return "(no results)\n"
	}
	base := cmp.Or(t.Baseline, results[0].Target)
	header := []string{"target", "op", "conc", "value"}
	header = append(header, latencyHeader...)
	rows := [][]string{append(header, "ops/s", "errors", "misses", "ops/s vs "+base)}
	var notes []string
	for i, r := range results {
		c := r.Config
		row := []string{r.Target, c.Op, strconv.Itoa(c.Concurrency), strconv.Itoa(c.ValueSize)}
		row = append(row, latencyCells(r.Latency)...)
		rows = append(rows, append(row,
			strconv.FormatFloat(r.OpsPerSec, 'f', 0, 64),
			strconv.FormatInt(r.Errors, 10),
			strconv.FormatInt(r.Misses, 10),
			cacheRatioCell(i, results, base)))
		what := fmt.Sprintf("note: %s %s concurrency %d", r.Target, c.Op, c.Concurrency)
		if r.BadValues != 0 {
			notes = append(notes, fmt.Sprintf("%s: %d GETs returned a value other than the one stored", what, r.BadValues))
		}
		if r.FirstError != "" {
			notes = append(notes, fmt.Sprintf("%s: first error: %s", what, r.FirstError))
		}
	}
	return renderTable(rows, notes)
}

// latencyHeader heads the columns latencyCells fills.
var latencyHeader = []string{"p50 µs", "p90 µs", "p99 µs", "p99.9 µs", "max µs"}

// latencyCells is s's percentiles and max in µs, one decimal.
func latencyCells(s Summary) []string {
	return []string{usCell(s.P50), usCell(s.P90), usCell(s.P99), usCell(s.P999), usCell(s.Max)}
}

// renderTable is rows aligned into columns (the first row the header),
// then one line per note.
func renderTable(rows [][]string, notes []string) string {
	var b strings.Builder
	writeAligned(&b, rows)
	for _, n := range notes {
		b.WriteString(n + "\n")
	}
	return b.String()
}

// cacheRatioCell is the ops/s of row i over the ops/s of its baseline row
// (see nearestMatch).
func cacheRatioCell(i int, all []CacheResult, base string) string {
	r := all[i]
	b := nearestMatch(i, len(all), func(j int) bool {
		return all[j].Target == base && sameCacheCase(all[j].Config, r.Config)
	})
	if b < 0 || all[b].OpsPerSec <= 0 || r.Ops == 0 {
		return "-"
	}
	return strconv.FormatFloat(r.OpsPerSec/all[b].OpsPerSec, 'f', 2, 64) + "x"
}

// nearestMatch returns the row of [0, n) that a ratio column compares row
// i against: the nearest matching row at or before i (the same round of a
// repeated run), else the first after it; -1 when none matches.
func nearestMatch(i, n int, match func(j int) bool) int {
	for j := i; j >= 0; j-- {
		if match(j) {
			return j
		}
	}
	for j := i + 1; j < n; j++ {
		if match(j) {
			return j
		}
	}
	return -1
}

func sameCacheCase(a, b CacheConfig) bool {
	return a.Op == b.Op && a.Concurrency == b.Concurrency && a.Keys == b.Keys &&
		a.ValueSize == b.ValueSize && a.TTL == b.TTL
}

// CacheReport is what WriteCacheJSON writes.
type CacheReport = JSONReport[CacheResult]

// RunEnv is the machine and Go runtime a report was measured on.
type RunEnv struct {
	Generated  time.Time `json:"generated"`
	GoVersion  string    `json:"go_version"`
	GOOS       string    `json:"goos"`
	GOARCH     string    `json:"goarch"`
	NumCPU     int       `json:"num_cpu"`
	GOMAXPROCS int       `json:"gomaxprocs"`
}

// CurrentRunEnv describes this process's machine and runtime, now.
func CurrentRunEnv() RunEnv {
	return RunEnv{
		Generated:  time.Now().UTC(),
		GoVersion:  runtime.Version(),
		GOOS:       runtime.GOOS,
		GOARCH:     runtime.GOARCH,
		NumCPU:     runtime.NumCPU(),
		GOMAXPROCS: runtime.GOMAXPROCS(0),
	}
}

// WriteCacheJSON writes results, with the Go version and CPU counts, as an
// indented JSON CacheReport (command "cache").
func WriteCacheJSON(w io.Writer, results []CacheResult) error {
	return WriteReport(w, "cache", CacheRows(results), results)
}
