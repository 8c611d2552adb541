package bench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// cacheRun is one RunCache's state: the keys, and the workers, which keep
// their key generators and counts across phases.
type cacheRun struct {
	target  CacheTarget
	cfg     CacheConfig
	keys    []string
	workers []*cacheWorker
	errs    errorBudget
}

func newCacheRun(target CacheTarget, cfg CacheConfig) *cacheRun {
	r := &cacheRun{target: target, cfg: cfg, keys: make([]string, cfg.Keys)}
	width := len(fmt.Sprint(cfg.Keys - 1))
	for i := range r.keys {
		r.keys[i] = fmt.Sprintf("%s%0*d", cfg.KeyPrefix, width, i)
	}
	r.errs.max = int64(cfg.MaxErrors)
	for w := range cfg.Concurrency {
		r.workers = append(r.workers, newCacheWorker(r, w))
	}
	return r
}

// preload stores every key once, split among the workers, unmeasured.
func (r *cacheRun) preload(ctx context.Context) error {
	n := len(r.workers)
	errs := make([]error, n)
	runWorkers(n, func(w int) {
		wk := r.workers[w]
		for i := w; i < len(r.keys); i += n {
			if err := wk.put(ctx, i); err != nil {
				errs[w] = fmt.Errorf("bench: %s: preload key %q: %w", r.target.Name(), r.keys[i], ctxCause(ctx, err))
				return
			}
		}
	})
	return errors.Join(errs...)
}

// phase runs the workers until ops operations have been issued (ops > 0)
// or d has passed, and returns when the last operation returned.
func (r *cacheRun) phase(ctx context.Context, ops int, d time.Duration, measured bool) (time.Time, error) {
	var tickets *ticketCounter
	var deadline time.Time
	if ops > 0 {
		tickets = newTicketCounter(int64(ops))
	} else {
		deadline = time.Now().Add(d)
	}
	// Workers stop each other early on a fatal error.
	ctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	errs := make([]error, len(r.workers))
	runWorkers(len(r.workers), func(w int) {
		if errs[w] = r.workers[w].loop(ctx, tickets, deadline, measured); errs[w] != nil {
			stop(errs[w])
		}
	})
	endAt := time.Now()
	for _, err := range errs {
		if err != nil && !errors.Is(err, errPhaseStopped) {
			return endAt, err
		}
	}
	return endAt, nil
}

// result merges the workers' measured counts and histograms into res.
func (r *cacheRun) result(res CacheResult, d time.Duration) CacheResult {
	h := NewHistogram()
	for _, wk := range r.workers {
		h.Merge(wk.hist)
		res.Ops += wk.ops
		res.Errors += wk.errors
		res.Misses += wk.misses
		res.BadValues += wk.badValues
	}
	res.Latency = h.Summary()
	res.FirstError = r.firstError()
	res.Duration = d
	if d > 0 {
		res.OpsPerSec = float64(res.Ops) / d.Seconds()
	}
	return res
}

func (r *cacheRun) firstError() string {
	if err := r.errs.first(); err != nil {
		return err.Error()
	}
	return ""
}

// errPhaseStopped is a worker's result when another worker's fatal error
// ended the phase.
var errPhaseStopped = errors.New("phase stopped")

// cacheWorker is one closed-loop worker. Only its goroutine touches it
// while a phase runs.
type cacheWorker struct {
	r     *cacheRun
	index int
	keys  keyPicker
	value []byte
	hist  *Histogram
	// Measured-phase counts.
	ops, errors, misses, badValues int64
}

func newCacheWorker(r *cacheRun, w int) *cacheWorker {
	wk := &cacheWorker{r: r, index: w, value: newPayloads(1, r.cfg.ValueSize)[0], hist: NewHistogram()}
	wk.keys = newKeyPicker(r.cfg, w)
	return wk
}

// put stores key i with its value: the key index, then filler.
func (wk *cacheWorker) put(ctx context.Context, i int) error {
	binary.LittleEndian.PutUint64(wk.value, uint64(i))
	return wk.r.target.Put(ctx, wk.r.keys[i], wk.value, wk.r.cfg.TTL)
}

// loop issues operations back to back until the tickets run out or the
// deadline passes (tickets == nil), recording them when measured.
func (wk *cacheWorker) loop(ctx context.Context, tickets *ticketCounter, deadline time.Time, measured bool) error {
	isGet := wk.r.cfg.Op == CacheGet
	for {
		if tickets != nil && !tickets.take() {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return wk.stopped(ctx)
		}
		i := wk.keys.next()
		t0 := time.Now()
		if tickets == nil && !t0.Before(deadline) {
			return nil
		}
		var err error
		var found bool
		var got []byte
		if isGet {
			got, found, err = wk.r.target.Get(ctx, wk.r.keys[i])
		} else {
			err = wk.put(ctx, i)
		}
		lat := time.Since(t0)
		if err != nil {
			if ctx.Err() != nil {
				// Cut short by the run's end: neither an op nor an error.
				return wk.stopped(ctx)
			}
			if measured {
				wk.errors++
			}
			if ferr := wk.r.errs.add(fmt.Errorf("%s key %q: %w", wk.r.cfg.Op, wk.r.keys[i], err)); ferr != nil {
				return ferr
			}
			continue
		}
		if !measured {
			continue
		}
		wk.ops++
		wk.hist.Record(lat)
		if isGet {
			switch {
			case !found:
				wk.misses++
			case len(got) != wk.r.cfg.ValueSize || binary.LittleEndian.Uint64(got) != uint64(i):
				wk.badValues++
			}
		}
	}
}

// stopped is loop's error once ctx has ended: errPhaseStopped when a
// worker ended the phase, else the run's timeout or cancellation.
func (wk *cacheWorker) stopped(ctx context.Context) error {
	cause := context.Cause(ctx)
	var fatal *tooManyErrors
	if errors.As(cause, &fatal) {
		return errPhaseStopped
	}
	return fmt.Errorf("stopped: %w", cause)
}

// ctxCause prefers the context's cause over err once ctx has ended.
func ctxCause(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w (%w)", err, context.Cause(ctx))
	}
	return err
}

// runWorkers runs f(0..n-1) in n goroutines and waits for them all.
func runWorkers(n int, f func(w int)) {
	done := make(chan struct{}, n)
	for w := range n {
		go func() {
			defer func() { done <- struct{}{} }()
			f(w)
		}()
	}
	for range n {
		<-done
	}
}

// keyPicker yields key indexes in [0, keys) for one worker.
type keyPicker struct {
	keys int
	pos  int        // next index, sequential order
	rng  *rand.Rand // uniform order; nil for sequential
}

func newKeyPicker(cfg CacheConfig, w int) keyPicker {
	p := keyPicker{keys: cfg.Keys}
	if cfg.KeyOrder == KeysSequential {
		p.pos = int(uint64(w) * uint64(cfg.Keys) / uint64(cfg.Concurrency))
	} else {
		p.rng = rand.New(rand.NewPCG(cfg.Seed, uint64(w)))
	}
	return p
}

func (p *keyPicker) next() int {
	if p.rng != nil {
		return p.rng.IntN(p.keys)
	}
	i := p.pos
	if p.pos++; p.pos == p.keys {
		p.pos = 0
	}
	return i
}

// ticketCounter hands out a phase's operation count among its workers.
type ticketCounter struct{ left atomic.Int64 }

func newTicketCounter(n int64) *ticketCounter {
	t := &ticketCounter{}
	t.left.Store(n)
	return t
}

// take claims one operation; false once all are claimed.
func (t *ticketCounter) take() bool { return t.left.Add(-1) >= 0 }

// errorBudget counts failed operations across workers and phases and keeps
// the first one.
type errorBudget struct {
	mu       sync.Mutex
	max      int64 // -1: unlimited
	n        int64
	firstErr error
}

// add counts err; it returns a *tooManyErrors once more than max failed.
func (b *errorBudget) add(err error) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.n++
	if b.firstErr == nil {
		b.firstErr = err
	}
	if b.max >= 0 && b.n > b.max {
		return &tooManyErrors{n: b.n, max: b.max, last: err}
	}
	return nil
}

func (b *errorBudget) first() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.firstErr
}

// tooManyErrors ends a run whose failures went over CacheConfig.MaxErrors.
type tooManyErrors struct {
	n, max int64
	last   error
}

func (e *tooManyErrors) Error() string {
	return fmt.Sprintf("%d operations failed, over MaxErrors %d; last: %v", e.n, e.max, e.last)
}

func (e *tooManyErrors) Unwrap() error { return e.last }
