package bench

import (
	"cmp"
	"fmt"
	"io"
	"strconv"
)

// QueueTable formats queue results as one aligned text table.
type QueueTable struct {
	// Baseline is the target whose rows the ratio columns compare
	// against: the nearest earlier Baseline row of the same case, else the
	// first later one. Default: the first result's target.
	Baseline string
}

// Format returns a table with one row per result: target, consumers,
// payload bytes, publish batch, measured records, acked records/s, its
// ratio to the baseline, publish→ack latency percentiles and max in µs,
// the p50's ratio to the baseline, duplicates, lost and redeliveries.
// Under it, one note per target says how it acks and stores, and rows
// with ack errors or foreign records get a note too.
func (t QueueTable) Format(results []QueueResult) string {
	if len(results) == 0 {
		return "(no results)\n"
	}
	base := cmp.Or(t.Baseline, results[0].Target)
	header := []string{"target", "consumers", "payload", "batch", "records", "acked/s", "acked/s vs " + base}
	header = append(header, latencyHeader...)
	rows := [][]string{append(header, "p50 vs "+base, "dups", "lost", "redelivered")}
	var notes []string
	described := describedSystems{}
	for i, r := range results {
		c := r.Config
		b := nearestMatch(i, len(results), func(j int) bool {
			return results[j].Target == base && sameQueueCase(results[j].Config, c)
		})
		row := []string{r.Target, strconv.Itoa(c.Consumers), strconv.Itoa(c.PayloadSize), strconv.Itoa(c.PublishBatch),
			strconv.Itoa(c.Records), strconv.FormatFloat(r.AckedPerSec, 'f', 0, 64), queueRatio(b, results, r, func(q QueueResult) float64 { return q.AckedPerSec })}
		row = append(row, latencyCells(r.Latency)...)
		rows = append(rows, append(row, queueRatio(b, results, r, func(q QueueResult) float64 { return float64(q.Latency.P50) }),
			strconv.FormatInt(r.Duplicates, 10), strconv.FormatInt(r.Lost, 10), strconv.FormatInt(r.Redelivered, 10)))
		notes = described.note(notes, r.Target, r.Describe)
		if r.AckErrors != 0 || r.Invalid != 0 {
			notes = append(notes, fmt.Sprintf("note: %s: %d ack errors (first: %s), %d deliveries not from this run",
				r.Target, r.AckErrors, cmp.Or(r.FirstAckError, "none"), r.Invalid))
		}
	}
	return renderTable(rows, notes)
}

// queueRatio is metric(r) over metric of results[b], or "-".
func queueRatio(b int, results []QueueResult, r QueueResult, metric func(QueueResult) float64) string {
	if b < 0 || metric(results[b]) <= 0 || metric(r) <= 0 {
		return "-"
	}
	return strconv.FormatFloat(metric(r)/metric(results[b]), 'f', 2, 64) + "x"
}

func sameQueueCase(a, b QueueConfig) bool {
	return a.Consumers == b.Consumers && a.PayloadSize == b.PayloadSize && a.PublishBatch == b.PublishBatch &&
		a.Records == b.Records && a.Prefetch == b.Prefetch && a.PublishWindow == b.PublishWindow
}

// QueueReport is what WriteQueueJSON writes.
type QueueReport = JSONReport[QueueResult]

// WriteQueueJSON writes results, with the Go version and CPU counts, as an
// indented JSON QueueReport (command "queue").
func WriteQueueJSON(w io.Writer, results []QueueResult) error {
	return WriteReport(w, "queue", QueueRows(results), results)
}
