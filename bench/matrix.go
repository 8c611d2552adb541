package bench

import "fmt"

// Matrix is the grid of pub/sub cases of the reference's latency demo:
// every fanout × batch × payload. The zero value is the full grid
// (fanout {1, 10} × batch {1, 64} × payload {0, 256, 1024, 4096}, 16
// cases) with 10 000 measured and 1 000 warm-up messages per case, every
// case as fast as possible.
type Matrix struct {
	// Fanouts are the subscriber counts. Default {1, 10}.
	Fanouts []int
	// Batches are the messages per publish call. Default {1, 64}.
	Batches []int
	// Payloads are message sizes in bytes. Default {0, 256, 1024, 4096}.
	// A size below the harness's 16-byte header (send time and sequence)
	// runs as 16 bytes: payload 0 sends the header alone, as the
	// reference's 0-byte case sends its 16-byte timestamp alone.
	Payloads []int
	// Count is the number of measured messages per case. Default 10 000.
	Count int
	// Warmup messages per case are delivered first and not measured.
	// Default 1 000; negative for none.
	Warmup int
	// Rate paces the batch-1 cases (messages per second; latency from the
	// scheduled send time). Batched cases always run as fast as possible:
	// as in the reference, their latency is queueing delay, not
	// per-message latency. Default 0: every case as fast as possible.
	Rate int
}

// Defaults of a zero Matrix.
var (
	DefaultMatrixFanouts  = []int{1, 10}
	DefaultMatrixBatches  = []int{1, 64}
	DefaultMatrixPayloads = []int{0, 256, 1024, 4096}
)

const (
	DefaultMatrixCount  = 10_000
	DefaultMatrixWarmup = 1_000
)

// Cases returns the grid's cases in order fanout, batch, payload (payload
// varying fastest), each base with Fanout, Batch, PayloadSize, Total,
// Warmup and Rate set.
func (m Matrix) Cases(base PubSubConfig) ([]PubSubConfig, error) {
	or := func(v, d []int) []int {
		if len(v) == 0 {
			return d
		}
		return v
	}
	count, warmup := m.Count, m.Warmup
	if count == 0 {
		count = DefaultMatrixCount
	}
	switch {
	case warmup == 0:
		warmup = DefaultMatrixWarmup
	case warmup < 0:
		warmup = 0
	}
	var out []PubSubConfig
	for _, f := range or(m.Fanouts, DefaultMatrixFanouts) {
		for _, b := range or(m.Batches, DefaultMatrixBatches) {
			for _, p := range or(m.Payloads, DefaultMatrixPayloads) {
				if f < 1 || b < 1 || p < 0 {
					return nil, fmt.Errorf("bench: matrix case fanout %d batch %d payload %d: want fanout, batch ≥ 1 and payload ≥ 0", f, b, p)
				}
				c := base
				c.Fanout, c.Batch, c.PayloadSize = f, b, max(p, payloadHeaderSize)
				c.Total, c.Warmup, c.Rate = count, warmup, 0
				if b == 1 {
					c.Rate = m.Rate
				}
				if _, err := c.withDefaults(); err != nil {
					return nil, err
				}
				out = append(out, c)
			}
		}
	}
	return out, nil
}
