package auth

import (
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// LogLimiter paces log lines of one kind that a client can cause as fast as
// it can send (refusals, failed token checks): a burst at once, then a few
// a second. It counts the lines it refuses, so the next line it allows can
// say how many were not logged. Safe for concurrent use.
type LogLimiter struct {
	lines     *rate.Limiter
	notLogged atomic.Uint64 // since the last allowed line
}

// NewLogLimiter allows burst lines at once, then perSec a second. Zero or
// negative values mean DefaultDenialLogBurst (10) and DefaultDenialLogRate
// (1).
func NewLogLimiter(burst int, perSec float64) *LogLimiter {
	if burst <= 0 {
		burst = DefaultDenialLogBurst
	}
	if perSec <= 0 {
		perSec = DefaultDenialLogRate
	}
	return &LogLimiter{lines: rate.NewLimiter(rate.Limit(perSec), burst)}
}

// Allow reports whether a line may be logged at now. When it may,
// notLogged is the number of lines refused since the previous allowed one
// (the line should carry it); when it may not, the refusal is counted.
func (l *LogLimiter) Allow(now time.Time) (ok bool, notLogged uint64) {
	if !l.lines.AllowN(now, 1) {
		l.notLogged.Add(1)
		return false, 0
	}
	return true, l.notLogged.Swap(0)
}
