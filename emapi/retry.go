package emapi

import (
	"context"
	"math/rand/v2"
	"time"
)

// backoff returns the delay before retry n (1-based): RetryBase doubled per retry, capped at
// RetryMax, with "equal jitter" (half fixed, half random) so callers that failed together do not
// retry together.
func (c *Client) backoff(n int) time.Duration {
	d := c.retryBase
	for i := 1; i < n && d < c.retryMax; i++ {
		d *= 2
	}
	if d > c.retryMax {
		d = c.retryMax
	}
	half := d / 2
	return half + rand.N(d-half+1)
}

// sleepCtx waits d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// validID accepts the IDs EM uses in paths (GUIDs, "task-1") and nothing that could change the
// path: no separators, no dot segments, bounded length.
func validID(s string) bool {
	if s == "" || len(s) > 128 || s == "." || s == ".." {
		return false
	}
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case ch >= 'a' && ch <= 'z', ch >= 'A' && ch <= 'Z', ch >= '0' && ch <= '9', ch == '-', ch == '_', ch == '.':
		default:
			return false
		}
	}
	return true
}
