// Package testclock is a clock for tests that moves only when told to, so
// TTLs, timeouts and backoff are tested without sleeping.
package testclock

import (
	"sync"
	"time"
)

// Clock is safe for concurrent use; its zero value starts at the zero time.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// New returns a clock at a fixed, arbitrary instant.
func New() *Clock { return &Clock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock by d and returns the new time.
func (c *Clock) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	return c.now
}

// Set moves the clock to t (forwards or back: a clock stepped back).
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}
