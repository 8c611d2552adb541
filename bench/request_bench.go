package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// RequestTarget is a request/reply system under test: Felix services
// (client.Request against client.Serve), NATS core request/reply, or
// anything where a requester sends a payload and waits for one responder's
// answer.
//
// RunRequest calls Setup once, then Request from cfg.Concurrency
// goroutines at once, and Close once at the end; a target may be set up
// again after Close.
type RequestTarget interface {
	// Name labels the target in reports ("felix", "nats", ...).
	Name() string
	// Describe says how requesters and the responder are connected, for a
	// note under the table.
	Describe() string
	// Setup starts one responder that echoes every request's payload and
	// connects the requesters; concurrency is the number of goroutines
	// that will call Request at once.
	Setup(ctx context.Context, concurrency int) error
	// Request sends payload and returns the reply. It must not keep
	// payload after it returns: the caller reuses the slice.
	Request(ctx context.Context, payload []byte) ([]byte, error)
	// Close releases everything Setup created.
	Close() error
}

// Defaults for a zero RequestConfig.
const (
	DefaultRequestTotal       = 20_000
	DefaultRequestPayloadSize = 256
	DefaultRequestTimeout     = 2 * time.Minute
	DefaultRequestMaxErrors   = 100
	maxRequestTotal           = 1 << 26
	maxRequestConcurrency     = 1 << 12
	maxRequestPayloadSize     = 1 << 20
)

// RequestConfig describes one RunRequest case. The zero value is a valid
// case: one requester, 20 000 measured requests of 256 bytes, no warm-up.
type RequestConfig struct {
	// Concurrency is the number of closed-loop requesters, each sending
	// its next request as soon as the previous reply arrived. Default 1.
	Concurrency int `json:"concurrency"`
	// PayloadSize is each request's size in bytes (the reply, an echo, is
	// as large). Default 256 (0 means the default).
	PayloadSize int `json:"payload_size"`
	// Total is the number of measured requests, all requesters together.
	// Default 20 000.
	Total int `json:"total"`
	// Warmup requests are made first and not measured. Default 0.
	Warmup int `json:"warmup"`
	// MaxErrors stops the run, with an error, once more than MaxErrors
	// requests have failed (warm-up included). Default 100.
	MaxErrors int `json:"max_errors"`
	// Timeout caps the whole run, setup to close; it is also every
	// request's deadline. Default 2 minutes.
	Timeout time.Duration `json:"timeout_ns"`
}

func (c RequestConfig) withDefaults() (RequestConfig, error) {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.Concurrency, 1)
	def(&c.PayloadSize, DefaultRequestPayloadSize)
	def(&c.Total, DefaultRequestTotal)
	def(&c.MaxErrors, DefaultRequestMaxErrors)
	if c.Timeout == 0 {
		c.Timeout = DefaultRequestTimeout
	}
	switch {
	case c.Concurrency < 1 || c.Concurrency > maxRequestConcurrency:
		return c, fmt.Errorf("bench: request concurrency %d: want 1..%d", c.Concurrency, maxRequestConcurrency)
	case c.PayloadSize < 1 || c.PayloadSize > maxRequestPayloadSize:
		return c, fmt.Errorf("bench: request payload size %d: want 1..%d", c.PayloadSize, maxRequestPayloadSize)
	case c.Total < 0 || c.Warmup < 0 || c.Total+c.Warmup > maxRequestTotal:
		return c, fmt.Errorf("bench: requests %d + warm-up %d: want 0..%d", c.Total, c.Warmup, maxRequestTotal)
	case c.MaxErrors < 0 || c.Timeout < 0:
		return c, errors.New("bench: request config: max errors and timeout must not be negative")
	}
	return c, nil
}

// RequestResult is one RunRequest case. Everything but Target, Describe
// and Config covers the measured phase only.
type RequestResult struct {
	Target   string        `json:"target"`
	Describe string        `json:"describe"`
	Config   RequestConfig `json:"config"` // with defaults filled in
	// Latency is every successful request's round trip, from just before
	// the Request call to its return with the reply.
	Latency Summary `json:"latency"`
	// Requests counts the requests answered with the right echo; failed
	// ones are in Errors, wrong answers in BadReplies.
	Requests   int64  `json:"requests"`
	Errors     int64  `json:"errors"`
	BadReplies int64  `json:"bad_replies"`
	FirstError string `json:"first_error,omitempty"`
	// Duration runs from the start of the measured phase until its last
	// request returned; PerSec is Requests / Duration.
	Duration time.Duration `json:"duration_ns"`
	PerSec   float64       `json:"per_sec"`
}

// requestRun is the shared state of one RunRequest.
type requestRun struct {
	target  RequestTarget
	cfg     RequestConfig
	errs    atomic.Int64 // every failed request, warm-up included
	firstMu sync.Mutex
	first   string
}

func (r *requestRun) fail(err error) {
	r.errs.Add(1)
	r.firstMu.Lock()
	if r.first == "" {
		r.first = err.Error()
	}
	r.firstMu.Unlock()
}

// phaseStats is what one phase measured.
type phaseStats struct {
	hist     *Histogram
	ok, bad  int64
	failed   int64
	end      time.Time
	tooMany  bool
	canceled error
}

// phase makes n requests with cfg.Concurrency closed-loop workers, each
// with its own payload (random bytes) and histogram.
func (r *requestRun) phase(ctx context.Context, n int) phaseStats {
	var left atomic.Int64
	left.Store(int64(n))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type worker struct {
		hist            *Histogram
		ok, bad, failed int64
		end             time.Time
	}
	ws := make([]worker, r.cfg.Concurrency)
	var tooMany atomic.Bool
	var wg sync.WaitGroup
	for i := range ws {
		w := &ws[i]
		w.hist = NewHistogram()
		payload := make([]byte, r.cfg.PayloadSize)
		_, _ = rand.Read(payload) // never fails (crypto/rand)
		wg.Go(func() {
			for left.Add(-1) >= 0 && ctx.Err() == nil {
				start := time.Now()
				reply, err := r.target.Request(ctx, payload)
				end := time.Now()
				if err != nil {
					if ctx.Err() != nil {
						return // cut short by the run's end: not counted
					}
					w.failed++
					r.fail(err)
					if r.errs.Load() > int64(r.cfg.MaxErrors) {
						tooMany.Store(true)
						cancel()
						return
					}
					continue
				}
				w.end = end
				if !bytes.Equal(reply, payload) {
					w.bad++
					continue
				}
				w.ok++
				w.hist.Record(end.Sub(start))
			}
		})
	}
	wg.Wait()
	st := phaseStats{hist: NewHistogram(), tooMany: tooMany.Load()}
	for _, w := range ws {
		st.hist.Merge(w.hist)
		st.ok += w.ok
		st.bad += w.bad
		st.failed += w.failed
		if w.end.After(st.end) {
			st.end = w.end
		}
	}
	if !st.tooMany && ctx.Err() != nil {
		st.canceled = context.Cause(ctx) // the run's timeout or the caller's end
	}
	return st
}

// RunRequest measures target with cfg.Concurrency closed-loop requesters:
// Setup, cfg.Warmup requests not measured, then cfg.Total measured ones
// (each phase ends when its count is reached; the workers of one phase all
// finish before the next starts), then Close. Every reply must equal its
// request's payload (the responder echoes).
//
// It returns an error, together with the result so far, when setup
// fails, more than cfg.MaxErrors requests fail, or cfg.Timeout (or ctx)
// ends the run early.
func RunRequest(ctx context.Context, target RequestTarget, cfg RequestConfig) (res RequestResult, err error) {
	cfg, err = cfg.withDefaults()
	res = RequestResult{Target: target.Name(), Describe: target.Describe(), Config: cfg}
	if err != nil {
		return res, err
	}
	ctx, cancel := context.WithTimeoutCause(ctx, cfg.Timeout,
		fmt.Errorf("request run timeout (config Timeout %s)", cfg.Timeout))
	defer cancel()
	closeTarget, err := setUp(target, func() error { return target.Setup(ctx, cfg.Concurrency) })
	if err != nil {
		return res, err
	}
	defer closeTarget(&err)
	r := &requestRun{target: target, cfg: cfg}
	check := func(st phaseStats, what string) error {
		switch {
		case st.tooMany:
			return fmt.Errorf("bench: %s: %s: more than %d requests failed (first: %s)", target.Name(), what, cfg.MaxErrors, r.first)
		case st.canceled != nil:
			return fmt.Errorf("bench: %s: %s: %w", target.Name(), what, st.canceled)
		}
		return nil
	}
	if cfg.Warmup > 0 {
		if err := check(r.phase(ctx, cfg.Warmup), "warm-up"); err != nil {
			res.FirstError = r.first
			return res, err
		}
	}
	start := time.Now()
	st := r.phase(ctx, cfg.Total)
	res.Latency = st.hist.Summary()
	res.Requests, res.BadReplies, res.Errors, res.FirstError = st.ok, st.bad, st.failed, r.first
	if st.end.After(start) {
		res.Duration = st.end.Sub(start)
		res.PerSec = float64(res.Requests) / res.Duration.Seconds()
	}
	return res, check(st, "measured")
}

// RequestCase labels a request/reply workload.
func RequestCase(c RequestConfig) string {
	return fmt.Sprintf("conc=%d payload=%d", c.Concurrency, c.PayloadSize)
}

// RequestRows converts request results to rows: the rate is requests
// (round trips) per second, MB/s counts the request payloads (the replies
// carry as much again) and drops are failed requests and wrong replies.
func RequestRows(results []RequestResult) []Row {
	rows := make([]Row, 0, len(results))
	for _, r := range results {
		rows = append(rows, Row{Case: RequestCase(r.Config), System: r.Target, Felix: isFelix(r.Target),
			Latency: r.Latency, Rate: r.PerSec, Unit: "req/s", MBPerSec: r.PerSec * float64(r.Config.PayloadSize) / 1e6,
			Drops: r.Errors + r.BadReplies})
	}
	return numberRounds(rows)
}

// RequestNotes says once per system how it is connected, and reports
// failed requests and wrong replies.
func RequestNotes(results []RequestResult) []string {
	var notes []string
	described := describedSystems{}
	for _, r := range results {
		notes = described.note(notes, r.Target, r.Describe)
		if r.Errors != 0 || r.BadReplies != 0 {
			notes = append(notes, fmt.Sprintf("note: %s %s: %d failed requests (first: %s), %d wrong replies",
				r.Target, RequestCase(r.Config), r.Errors, r.FirstError, r.BadReplies))
		}
	}
	return notes
}
