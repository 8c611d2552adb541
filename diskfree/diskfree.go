package diskfree

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultLimit is the free space below which a Guard refuses writes when
// Options.Limit is zero: 50 MiB (RabbitMQ's disk_free_limit is 50 MB).
const DefaultLimit = 50 << 20

// DefaultInterval is how often a Guard looks at the free space when
// Options.Interval is zero.
const DefaultInterval = time.Second

// nearFactor: within nearFactor limits of the floor a Guard looks
// nearFactor times as often.
const nearFactor = 4

// Options configure a Guard. The zero value (with a Dir) watches Dir's
// file system every second and refuses below 50 MiB free.
type Options struct {
	// Dir is a directory on the file system to watch (the data dir).
	Dir string
	// Limit is the free space, in bytes, below which Check refuses.
	// Default DefaultLimit; negative turns the guard off (Start returns a
	// Guard whose Check always passes and which never looks).
	Limit int64
	// Interval is the time between looks while the free space is more
	// than 4 limits; closer to the floor the Guard looks 4 times as
	// often. Default DefaultInterval.
	Interval time.Duration
	// Free returns the bytes free to this process on dir's file system.
	// Default: the operating system's (statfs's available blocks).
	Free func(dir string) (uint64, error)
	// Tick returns a channel that receives once after d. Default
	// time.After; tests drive the Guard with their own.
	Tick func(d time.Duration) <-chan time.Time
	// Logger receives the alarm's changes of state and a failed look.
	// Default slog.Default().
	Logger *slog.Logger
}

// LowSpaceError is Check's refusal: the free space was below the limit at
// the last look.
type LowSpaceError struct {
	Free, Limit int64
}

func (e *LowSpaceError) Error() string {
	return fmt.Sprintf("free disk space %s is below the broker's limit of %s (--disk-free-limit)", Size(e.Free), Size(e.Limit))
}

// Size formats a byte count in binary units, one decimal.
func Size(n int64) string {
	const unit = 1 << 10
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v, u := float64(n)/unit, 0
	for v >= unit && u < 4 {
		v /= unit
		u++
	}
	return fmt.Sprintf("%.1f %ciB", v, "KMGTP"[u])
}

// Stats are a Guard's readings and counters.
type Stats struct {
	Free     int64  // bytes free at the last look (-1 before the first)
	Limit    int64  // the floor (0: the guard is off)
	Low      bool   // the free space was below the floor at the last look
	Refused  uint64 // writes Check refused since Start
	Alarms   uint64 // times the free space fell below the floor
	LookErrs uint64 // looks that failed (the state was kept)
}

// Guard is a running watch; see the package documentation.
type Guard struct {
	opts    Options
	free    atomic.Int64 // the last reading (-1: none); Check and Stats derive the alarm from it
	low     atomic.Bool  // the alarm as the watch last saw it, to log and count its changes
	refused atomic.Uint64
	alarms  atomic.Uint64
	errs    atomic.Uint64

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// Start looks at the free space once (an error there is returned: a
// data dir whose file system cannot be read is a configuration problem)
// and watches it until Close.
func Start(opts Options) (*Guard, error) {
	g := &Guard{opts: opts}
	g.free.Store(-1)
	if opts.Limit < 0 {
		g.opts.Limit = 0
		return g, nil
	}
	g.opts.Limit = cmp.Or(opts.Limit, DefaultLimit)
	g.opts.Interval = cmp.Or(opts.Interval, DefaultInterval)
	if g.opts.Interval < 0 {
		g.opts.Interval = DefaultInterval
	}
	if g.opts.Free == nil {
		g.opts.Free = osFree
	}
	if g.opts.Tick == nil {
		g.opts.Tick = time.After
	}
	g.opts.Logger = cmp.Or(opts.Logger, slog.Default())
	if err := g.look(); err != nil {
		if errors.Is(err, errUnsupported) {
			g.opts.Logger.Warn("disk free space cannot be read on this platform: --disk-free-limit is off", "dir", opts.Dir)
			g.opts.Limit = 0
			return g, nil
		}
		return nil, fmt.Errorf("disk free space of %s: %w", opts.Dir, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	g.cancel = cancel
	g.wg.Add(1)
	go g.run(ctx)
	return g, nil
}

// Check returns nil while the free space was at least the limit at the
// last look, else a *LowSpaceError (counted). A nil Guard passes.
func (g *Guard) Check() error {
	if g == nil {
		return nil
	}
	// One load: the refusal reports the reading it was made on (the alarm
	// flag and the reading, loaded apart, could pair an old alarm with a
	// newer reading above the limit).
	free := g.free.Load()
	if !g.lowAt(free) {
		return nil
	}
	g.refused.Add(1)
	return &LowSpaceError{Free: free, Limit: g.opts.Limit}
}

// lowAt reports whether the reading free (-1: none yet) is below the
// limit (0: the guard is off).
func (g *Guard) lowAt(free int64) bool { return free >= 0 && free < g.opts.Limit }

// Stats returns the readings and counters. A nil Guard reports a guard
// that is off.
func (g *Guard) Stats() Stats {
	if g == nil {
		return Stats{Free: -1}
	}
	free := g.free.Load()
	return Stats{
		Free: free, Limit: g.opts.Limit, Low: g.lowAt(free),
		Refused: g.refused.Load(), Alarms: g.alarms.Load(), LookErrs: g.errs.Load(),
	}
}

// Close stops the watch; Check keeps answering from the last look.
func (g *Guard) Close() {
	if g == nil || g.cancel == nil {
		return
	}
	g.cancel()
	g.wg.Wait()
}

func (g *Guard) run(ctx context.Context) {
	defer g.wg.Done()
	for {
		d := g.opts.Interval
		if g.free.Load()/nearFactor < g.opts.Limit { // free < nearFactor*Limit, which could overflow
			d /= nearFactor
		}
		select {
		case <-ctx.Done():
			return
		case <-g.opts.Tick(d):
		}
		if err := g.look(); err != nil {
			// Keep the last state: a file system that cannot be read for
			// a moment neither raises nor clears the alarm.
			if g.errs.Add(1) == 1 {
				g.opts.Logger.Warn("disk free space: cannot read; keeping the last reading", "dir", g.opts.Dir, "err", err)
			}
		}
	}
}

// look reads the free space and raises or clears the alarm.
func (g *Guard) look() error {
	n, err := g.opts.Free(g.opts.Dir)
	if err != nil {
		return err
	}
	free := int64(min(n, uint64(1<<63-1)))
	g.free.Store(free)
	low := g.lowAt(free)
	if g.low.Swap(low) == low {
		return nil
	}
	if low {
		g.alarms.Add(1)
		g.opts.Logger.Warn("disk alarm: free space below --disk-free-limit; publishes to durable streams and puts to durable caches are refused until there is room",
			"dir", g.opts.Dir, "free", Size(free), "limit", Size(g.opts.Limit))
	} else {
		g.opts.Logger.Info("disk alarm cleared: durable writes accepted again", "dir", g.opts.Dir, "free", Size(free), "limit", Size(g.opts.Limit))
	}
	return nil
}

// errUnsupported is osFree's error where the platform has no statfs this
// package reads.
var errUnsupported = errors.New("disk free space not supported on this platform")
