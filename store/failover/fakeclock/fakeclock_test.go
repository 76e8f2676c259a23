package fakeclock

import (
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2025, 8, 15, 9, 0, 0, 0, time.UTC)

func TestClock(t *testing.T) {
	type step struct {
		advance time.Duration
		set     *time.Time // if non-nil, Set instead of Advance
	}
	at := func(t time.Time) *time.Time { return &t }
	tests := []struct {
		name  string
		start time.Time
		steps []step
		want  time.Time
	}{
		{"new reads its start", t0, nil, t0},
		{"zero start", time.Time{}, nil, time.Time{}},
		{"advance", t0, []step{{advance: time.Minute}}, t0.Add(time.Minute)},
		{"advances add up", t0, []step{{advance: time.Second}, {advance: time.Hour}, {advance: 0}}, t0.Add(time.Hour + time.Second)},
		{"negative advance goes back", t0, []step{{advance: -time.Hour}}, t0.Add(-time.Hour)},
		{"set", t0, []step{{set: at(t0.AddDate(1, 0, 0))}}, t0.AddDate(1, 0, 0)},
		{"set back in time", t0, []step{{advance: time.Hour}, {set: at(t0.Add(-time.Minute))}}, t0.Add(-time.Minute)},
		{"advance after set", t0, []step{{set: at(t0.Add(time.Hour))}, {advance: time.Minute}}, t0.Add(time.Hour + time.Minute)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := New(tt.start)
			for _, s := range tt.steps {
				if s.set != nil {
					c.Set(*s.set)
				} else {
					c.Advance(s.advance)
				}
			}
			if got := c.Now(); !got.Equal(tt.want) {
				t.Errorf("Now() = %v, want %v", got, tt.want)
			}
			if got := c.Now(); !got.Equal(tt.want) {
				t.Errorf("second Now() = %v, want %v: reading must not move the clock", got, tt.want)
			}
		})
	}
}

func TestZeroValue(t *testing.T) {
	var c Clock
	if got := c.Now(); !got.IsZero() {
		t.Fatalf("zero Clock Now() = %v, want the zero time", got)
	}
	c.Advance(time.Second)
	if got, want := c.Now(), (time.Time{}).Add(time.Second); !got.Equal(want) {
		t.Fatalf("Now() = %v, want %v", got, want)
	}
}

// TestConcurrent advances and reads the clock from many goroutines at once; under -race it
// fails if any method touches the time without the lock. Every advance must count, and a
// reader must never see time go backwards.
func TestConcurrent(t *testing.T) {
	const writers, readers, advances = 8, 8, 500
	c := New(t0)
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			for range advances {
				c.Advance(time.Millisecond)
			}
		})
	}
	errs := make(chan string, readers)
	for range readers {
		wg.Go(func() {
			prev := c.Now()
			for range advances {
				now := c.Now()
				if now.Before(prev) {
					errs <- "Now went backwards from " + prev.String() + " to " + now.String()
					return
				}
				prev = now
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if got, want := c.Now(), t0.Add(writers*advances*time.Millisecond); !got.Equal(want) {
		t.Errorf("after %d concurrent advances of 1ms: Now() = %v, want %v", writers*advances, got, want)
	}
}
