// Package fakeclock is the one fake clock every test in the module shares: tests move time
// instead of sleeping. A Clock's Now method is passed wherever code takes a func() time.Time,
// and the test calls Advance or Set to move it; all methods are safe for concurrent use.
package fakeclock

import (
	"sync"
	"time"
)

// Clock is a fake clock that only moves when told to. Its zero value reads the zero time.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// New returns a Clock that reads t until it is moved.
func New(t time.Time) *Clock {
	return &Clock{t: t}
}

// Now returns the clock's current time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d (backward if d is negative).
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}
