package bench

import (
	"fmt"
	"strconv"
	"strings"
)

// Row is one measured case of one system reduced to the figures every
// `felix bench` command reports the same way: the latency distribution,
// the delivered rate and bandwidth, and the drops. Warm-up is never in a
// Row: every result it is made from excludes it.
type Row struct {
	// Case names the workload, the same for every system measured on it
	// ("fanout=10 payload=256 batch=1 rate=10000").
	Case string `json:"case"`
	// System is what ran it: "felix", "felix-acked", "nats", "redis",
	// "nats-js", "quic-go echo RTT".
	System string `json:"system"`
	// Felix marks the rows that measure Felix; peers' rows get ratios
	// against the Felix row of their case.
	Felix bool `json:"felix"`
	// Round is the 1-based round of a repeated run (--rounds).
	Round int `json:"round"`
	// Latency is the per-operation latency of the measured phase: publish
	// → deliver, call → return, publish → ack or append → acknowledged.
	Latency Summary `json:"latency"`
	// Rate is Unit per second over the measured phase, all receivers
	// together.
	Rate float64 `json:"rate"`
	// Unit is what Rate counts: "msg/s" (deliveries), "ops/s", "acked/s"
	// or "records/s".
	Unit string `json:"unit"`
	// MBPerSec is Rate × payload bytes, in 10^6 bytes per second.
	MBPerSec float64 `json:"mb_per_sec"`
	// Drops counts what a lossless run must not lose: deliveries never
	// made (pub/sub), records never acked (queues), operations that failed
	// or returned no or a wrong value (cache), failed appends (log).
	Drops int64 `json:"drops"`
}

// isFelix reports whether a target name is one of Felix's.
func isFelix(name string) bool { return name == "felix" || strings.HasPrefix(name, "felix-") }

// sharedSuffix marks a pub/sub target whose subscribers share one
// connection; rows move it from the system to the case so that felix and
// nats on a shared connection compare with each other.
const sharedSuffix = "-shared"

// PubSubRows converts pub/sub results (in run order; round r holds the
// (r-1)-th appearance of each system and case) to rows. Drops are Lost.
// A "-shared" target (subscribers on one connection) is its system with
// " conns=shared" added to the case when the fanout is over 1; at fanout
// 1 sharing changes nothing.
func PubSubRows(results []PubSubResult) []Row {
	rows := make([]Row, 0, len(results))
	for _, r := range results {
		sys, cs := r.Target, PubSubCase(r.Config)
		if s, ok := strings.CutSuffix(sys, sharedSuffix); ok {
			sys = s
			if r.Config.Fanout > 1 {
				cs += " conns=shared"
			}
		}
		rows = append(rows, Row{Case: cs, System: sys, Felix: isFelix(sys), Latency: r.Latency,
			Rate: r.DeliveredMsgsPerSec, Unit: "msg/s", MBPerSec: r.DeliveredMBPerSec, Drops: r.Lost})
	}
	return numberRounds(rows)
}

// PubSubCase labels a pub/sub workload.
func PubSubCase(c PubSubConfig) string {
	return fmt.Sprintf("fanout=%d payload=%d batch=%d rate=%s", c.Fanout, c.PayloadSize, c.Batch, rateLabel(c.Rate))
}

func rateLabel(rate int) string {
	if rate <= 0 {
		return "max"
	}
	return strconv.Itoa(rate)
}

// PubSubNotes says which results delivered duplicates, out of order or
// foreign payloads.
func PubSubNotes(results []PubSubResult) []string {
	var notes []string
	for _, r := range results {
		if r.Duplicates != 0 || r.OutOfOrder != 0 || r.Invalid != 0 {
			notes = append(notes, fmt.Sprintf("note: %s %s: %d duplicates, %d out of order, %d invalid",
				r.Target, PubSubCase(r.Config), r.Duplicates, r.OutOfOrder, r.Invalid))
		}
	}
	return notes
}

// CacheRows converts cache results to rows. Drops are failed operations,
// values other than the one stored, and misses (a get run preloads every
// key, so a miss is a lost value unless the keys expire).
func CacheRows(results []CacheResult) []Row {
	rows := make([]Row, 0, len(results))
	for _, r := range results {
		c := r.Config
		rows = append(rows, Row{
			Case:   fmt.Sprintf("%s conc=%d value=%d", c.Op, c.Concurrency, c.ValueSize),
			System: r.Target, Felix: isFelix(r.Target), Latency: r.Latency,
			Rate: r.OpsPerSec, Unit: "ops/s", MBPerSec: r.OpsPerSec * float64(c.ValueSize) / 1e6,
			Drops: r.Errors + r.BadValues + r.Misses,
		})
	}
	return numberRounds(rows)
}

// CacheNotes reports wrong values and first errors.
func CacheNotes(results []CacheResult) []string {
	var notes []string
	for _, r := range results {
		what := fmt.Sprintf("note: %s %s concurrency %d", r.Target, r.Config.Op, r.Config.Concurrency)
		if r.BadValues != 0 {
			notes = append(notes, fmt.Sprintf("%s: %d GETs returned a value other than the one stored", what, r.BadValues))
		}
		if r.FirstError != "" {
			notes = append(notes, fmt.Sprintf("%s: first error: %s", what, r.FirstError))
		}
	}
	return notes
}

// QueueRows converts queue results to rows. Drops are records never
// acked (Lost) and failed acks; duplicates are in QueueNotes.
func QueueRows(results []QueueResult) []Row {
	rows := make([]Row, 0, len(results))
	for _, r := range results {
		c := r.Config
		rows = append(rows, Row{
			Case: fmt.Sprintf("consumers=%d payload=%d batch=%d rate=%s", c.Consumers, c.PayloadSize, c.PublishBatch,
				rateLabel(c.Rate)),
			System: r.Target, Felix: isFelix(r.Target), Latency: r.Latency,
			Rate: r.AckedPerSec, Unit: "acked/s", MBPerSec: r.AckedPerSec * float64(c.PayloadSize) / 1e6,
			Drops: r.Lost + r.AckErrors,
		})
	}
	return numberRounds(rows)
}

// QueueNotes says once per system how it acks and stores, and reports
// duplicates, redeliveries, ack errors and foreign records.
func QueueNotes(results []QueueResult) []string {
	var notes []string
	described := describedSystems{}
	for _, r := range results {
		notes = described.note(notes, r.Target, r.Describe)
		if r.Duplicates != 0 || r.Redelivered != 0 || r.AckErrors != 0 || r.Invalid != 0 {
			first := r.FirstAckError
			if first == "" {
				first = "none"
			}
			notes = append(notes, fmt.Sprintf("note: %s: %d duplicates, %d redelivered, %d ack errors (first: %s), %d deliveries not from this run",
				r.Target, r.Duplicates, r.Redelivered, r.AckErrors, first, r.Invalid))
		}
	}
	return notes
}

// describedSystems remembers which systems' notes told how they are
// connected, so that each is told once.
type describedSystems map[string]bool

// note appends "system: describe" to notes the first time system comes
// with a description.
func (d describedSystems) note(notes []string, system, describe string) []string {
	if d[system] || describe == "" {
		return notes
	}
	d[system] = true
	return append(notes, fmt.Sprintf("%s: %s", system, describe))
}

// numberRounds sets each row's Round: the n-th row of a (case, system)
// pair is round n.
func numberRounds(rows []Row) []Row {
	seen := map[[2]string]int{}
	for i := range rows {
		k := [2]string{rows[i].Case, rows[i].System}
		seen[k]++
		rows[i].Round = seen[k]
	}
	return rows
}
