package bench

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Table formats results as one aligned text table.
type Table struct {
	// Baseline is the target whose rows the ratio column compares against:
	// each row's p50 is divided by the p50 of the nearest earlier Baseline
	// row with the same fanout, payload, batch and rate (the same round of a
	// repeated run), else the first later one. Default: the first result's
	// target.
	Baseline string
}

// FormatTable is Table{}.Format(results).
func FormatTable(results []PubSubResult) string { return Table{}.Format(results) }

// Format returns a table with one row per result: target, fanout, payload
// bytes, batch, rate (msgs/s, "max" for throughput mode), latency
// percentiles and max in µs, delivered msgs/s and MB/s, lost, and the p50
// ratio against the baseline. Rows with duplicates, reordering or invalid
// deliveries get a note under the table.
func (t Table) Format(results []PubSubResult) string {
	if len(results) == 0 {
		return "(no results)\n"
	}
	base := cmp.Or(t.Baseline, results[0].Target)
	header := append([]string{"target", "fanout", "payload", "batch", "rate"}, latencyHeader...)
	rows := [][]string{append(header, "msg/s", "MB/s", "lost", "p50 vs "+base)}
	var notes []string
	for i, r := range results {
		c := r.Config
		rate := "max"
		if c.Rate > 0 {
			rate = strconv.Itoa(c.Rate)
		}
		row := append([]string{r.Target, strconv.Itoa(c.Fanout), strconv.Itoa(c.PayloadSize), strconv.Itoa(c.Batch), rate},
			latencyCells(r.Latency)...)
		rows = append(rows, append(row,
			strconv.FormatFloat(r.DeliveredMsgsPerSec, 'f', 0, 64),
			strconv.FormatFloat(r.DeliveredMBPerSec, 'f', 1, 64),
			strconv.FormatInt(r.Lost, 10),
			ratioCell(i, results, base)))
		if r.Duplicates != 0 || r.OutOfOrder != 0 || r.Invalid != 0 {
			notes = append(notes, fmt.Sprintf("note: %s fanout %d rate %s: %d duplicates, %d out of order, %d invalid",
				r.Target, c.Fanout, rate, r.Duplicates, r.OutOfOrder, r.Invalid))
		}
	}
	return renderTable(rows, notes)
}

// usCell formats d in microseconds with one decimal.
func usCell(d time.Duration) string { return strconv.FormatFloat(micros(d), 'f', 1, 64) }

// ratioCell is the p50 of row i over the p50 of its baseline row (see
// nearestMatch).
func ratioCell(i int, all []PubSubResult, base string) string {
	r := all[i]
	b := nearestMatch(i, len(all), func(j int) bool { return all[j].Target == base && sameCase(all[j].Config, r.Config) })
	if b < 0 || all[b].Latency.P50 <= 0 || r.Latency.Count == 0 {
		return "-"
	}
	return strconv.FormatFloat(float64(r.Latency.P50)/float64(all[b].Latency.P50), 'f', 2, 64) + "x"
}

func sameCase(a, b PubSubConfig) bool {
	return a.Fanout == b.Fanout && a.PayloadSize == b.PayloadSize && a.Batch == b.Batch && a.Rate == b.Rate
}

// writeAligned writes rows as columns two spaces apart: the first column
// left-aligned, the others right-aligned.
func writeAligned(b *strings.Builder, rows [][]string) {
	width := make([]int, len(rows[0]))
	for _, row := range rows {
		for i, cell := range row {
			width[i] = max(width[i], len([]rune(cell)))
		}
	}
	for _, row := range rows {
		for i, cell := range row {
			pad := strings.Repeat(" ", width[i]-len([]rune(cell)))
			if i == 0 {
				b.WriteString(cell + pad)
			} else {
				b.WriteString("  " + pad + cell)
			}
		}
		b.WriteByte('\n')
	}
}

// JSONReport is what every `felix bench ... --json` writes: the conditions
// the run was measured under (the RunEnv fields, inline), the command, the
// uniform Rows (the figures of the text table) and the command's own
// detailed Results (R is PubSubResult, CacheResult, QueueResult or
// LogResult). Durations are in nanoseconds.
type JSONReport[R any] struct {
	RunEnv
	// Command is the bench subcommand: pubsub, matrix, cache, queue or log.
	Command string `json:"command"`
	Rows    []Row  `json:"rows"`
	Results []R    `json:"results"`
}

// WriteReport writes an indented JSONReport.
func WriteReport[R any](w io.Writer, command string, rows []Row, results []R) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(JSONReport[R]{RunEnv: CurrentRunEnv(), Command: command, Rows: rows, Results: results})
}

// Report is what WriteJSON writes.
type Report = JSONReport[PubSubResult]

// WriteJSON writes pub/sub results, with the Go version and CPU counts,
// as an indented JSON Report (command "pubsub").
func WriteJSON(w io.Writer, results []PubSubResult) error {
	return WriteReport(w, "pubsub", PubSubRows(results), results)
}
