package bench

import (
	"strconv"
)

// FormatRows returns rows as one aligned text table, notes under it.
//
// Rows of one case are printed together (cases in order of first
// appearance, rows of a case in run order). Columns: case, system, round (only when a run has several), latency
// percentiles and max in µs, the rate (in the rows' unit), MB/s and drops.
// When some rows measure peers, two ratio columns follow, filled on the
// peers' rows: Felix's p50 over the peer's (below 1: Felix is faster) and
// Felix's rate over the peer's (above 1: Felix delivers more). The Felix row
// a peer row is compared with is the first Felix system's row of the same
// case, from the same round when there is one, else the nearest round.
func FormatRows(rows []Row, notes []string) string {
	if len(rows) == 0 {
		return "(no results)\n"
	}
	rows = groupByCase(rows)
	unit := rows[0].Unit
	rounds, peers := false, false
	primary := ""
	for _, r := range rows {
		rounds = rounds || r.Round > 1
		peers = peers || !r.Felix
		if primary == "" && r.Felix {
			primary = r.System
		}
	}
	header := []string{"case", "system"}
	if rounds {
		header = append(header, "round")
	}
	header = append(header, latencyHeader...)
	header = append(header, unit, "MB/s", "drops")
	if peers && primary != "" {
		header = append(header, "p50 "+primary+"/peer", unit+" "+primary+"/peer")
	}
	table := [][]string{header}
	for i, r := range rows {
		row := []string{r.Case, r.System}
		if rounds {
			row = append(row, strconv.Itoa(r.Round))
		}
		row = append(row, latencyCells(r.Latency)...)
		row = append(row, strconv.FormatFloat(r.Rate, 'f', 0, 64), strconv.FormatFloat(r.MBPerSec, 'f', 2, 64),
			strconv.FormatInt(r.Drops, 10))
		if peers && primary != "" {
			p50, rate := "-", "-"
			if f := felixRowFor(rows, i, primary); f >= 0 {
				p50 = ratio(float64(rows[f].Latency.P50), float64(r.Latency.P50))
				rate = ratio(rows[f].Rate, r.Rate)
			}
			row = append(row, p50, rate)
		}
		table = append(table, row)
	}
	return renderTable(table, notes)
}

// felixRowFor returns the row peer row i is compared with (see
// FormatRows), or -1 for Felix rows and peers without a Felix row.
func felixRowFor(rows []Row, i int, primary string) int {
	r := rows[i]
	if r.Felix {
		return -1
	}
	sameCase := func(j int) bool { return rows[j].System == primary && rows[j].Case == r.Case }
	for j := range rows {
		if sameCase(j) && rows[j].Round == r.Round {
			return j
		}
	}
	return nearestMatch(i, len(rows), sameCase)
}

// ratio is a/b with two decimals and an "x", or "-" when either is not
// positive.
func ratio(a, b float64) string {
	if a <= 0 || b <= 0 {
		return "-"
	}
	return strconv.FormatFloat(a/b, 'f', 2, 64) + "x"
}

// groupByCase returns rows reordered so that each case's rows are
// adjacent: cases in order of first appearance, rows of a case in their
// original order.
func groupByCase(rows []Row) []Row {
	var cases []string
	byCase := map[string][]Row{}
	for _, r := range rows {
		if _, ok := byCase[r.Case]; !ok {
			cases = append(cases, r.Case)
		}
		byCase[r.Case] = append(byCase[r.Case], r)
	}
	out := make([]Row, 0, len(rows))
	for _, c := range cases {
		out = append(out, byCase[c]...)
	}
	return out
}
