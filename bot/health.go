package bot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/failover-bot/failover-bot/store"
)

// Liveness defaults.
const (
	// DefaultProbeEvery is how long one store probe answers /healthz for everyone.
	DefaultProbeEvery = 5 * time.Second
	// DefaultHangAfter is how long a store write may stay unfinished before liveness fails: bbolt
	// commits in milliseconds, so ten seconds means a stuck disk or a stuck writer.
	DefaultHangAfter = 10 * time.Second
	// DefaultProbeWait is how long a request waits for a probe under way before it answers from
	// the previous one. It stays below Kubernetes' default probe timeout of 1 s.
	DefaultProbeWait = 500 * time.Millisecond
)

// StoreProbe is what liveness needs from the store: one small durable write (*store.Bolt).
type StoreProbe interface {
	Writable(ctx context.Context) error
}

// Health answers GET /healthz: liveness, the question "should this process be restarted?". It
// checks only what a restart can fix: that the process answers and that its store takes a write.
// It makes no outbound call (Enterprise Manager and Slack are /readyz's business, from background
// checks), and however often it is asked it writes to the store at most once per ProbeEvery: the
// probe runs in its own goroutine and its result is shared by every request until it is older
// than that. A probe that does not finish within HangAfter fails liveness, and no second one is
// started while it hangs, so a stuck store costs one goroutine, not one per request.
//
// Set the fields before the first request; a Health must not be copied after that.
type Health struct {
	Store StoreProbe
	// Leader, when set (several instances on etcd), says whether this instance leads; /healthz
	// reports it as "role" (leader or standby) without changing the status: a standby is live.
	Leader func() bool
	// Now is the clock probe ages are measured with (default time.Now).
	Now func() time.Time
	// ProbeEvery is how long a probe's result is reused (default DefaultProbeEvery).
	ProbeEvery time.Duration
	// HangAfter is how long an unfinished probe may run before liveness fails (default
	// DefaultHangAfter).
	HangAfter time.Duration
	// Wait bounds how long a request waits, in real time, for a probe under way before it answers
	// from the previous result (default DefaultProbeWait). Without a previous result it waits up
	// to HangAfter, or until the request is cancelled.
	Wait time.Duration

	mu       sync.Mutex
	result   *probeResult
	probing  chan struct{} // closed when the probe under way ends; nil when none runs
	probedAt time.Time     // when the probe under way started
}

type probeResult struct {
	at  time.Time
	err error
}

// healthBody is /healthz's answer.
type healthBody struct {
	Status    string    `json:"status"` // ok or unhealthy
	Store     string    `json:"store"`  // ok or why not
	Role      string    `json:"role"`   // leader (submits, polls, delivers) or standby
	CheckedAt time.Time `json:"checked_at,omitzero"`
}

func (h *Health) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// ServeHTTP answers GET /healthz with 200 or 503 and a small JSON document.
func (h *Health) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	res := h.check(r.Context())
	body := healthBody{Status: "ok", Store: "ok", Role: "leader", CheckedAt: res.at}
	if h.Leader != nil && !h.Leader() {
		body.Role = "standby"
	}
	code := http.StatusOK
	switch {
	case errors.Is(res.err, store.ErrUnavailable):
		// etcd out of reach: a restart cannot bring it back, and this process still tells
		// people so in Slack (and takes over again when etcd returns). Live, and says why.
		body.Store = "unreachable: " + res.err.Error()
	case res.err != nil:
		body.Status, body.Store, code = "unhealthy", res.err.Error(), http.StatusServiceUnavailable
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(body)
}

// check returns the store's liveness: a fresh enough probe result, or the result of the probe it
// starts or finds under way.
func (h *Health) check(ctx context.Context) probeResult {
	now := h.now()
	h.mu.Lock()
	if res := h.result; res != nil && h.probing == nil && now.Sub(res.at) < orDefault(h.ProbeEvery, DefaultProbeEvery) {
		h.mu.Unlock()
		return *res
	}
	if h.probing == nil {
		h.probing, h.probedAt = make(chan struct{}), now
		go h.probe(h.probing)
	}
	done, prev := h.probing, h.result
	h.mu.Unlock()

	// With an answer to fall back on, wait briefly; without one, until the probe counts as hung.
	wait := orDefault(h.HangAfter, DefaultHangAfter)
	if prev != nil {
		wait = orDefault(h.Wait, DefaultProbeWait)
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
	case <-ctx.Done():
	}

	h.mu.Lock()
	defer h.mu.Unlock()
	if h.probing != done { // it ended: its result is the newest
		return *h.result
	}
	now = h.now()
	if hung := now.Sub(h.probedAt); hung >= orDefault(h.HangAfter, DefaultHangAfter) {
		return probeResult{at: now, err: fmt.Errorf("a store write has not finished for %s: the database or its disk is stuck", hung.Round(time.Second))}
	}
	if prev != nil {
		return *prev
	}
	return probeResult{at: now, err: errors.New("the first store write has not finished yet")}
}

// probe writes to the store once and records the result for everyone. It is bounded by
// HangAfter; a store that ignores the deadline keeps this goroutine, and liveness says so.
func (h *Health) probe(done chan struct{}) {
	// A store that honours the deadline answers before the probe counts as hung.
	ctx, cancel := context.WithTimeout(context.Background(), orDefault(h.HangAfter, DefaultHangAfter)*3/4)
	err := h.Store.Writable(ctx)
	cancel()
	h.mu.Lock()
	h.result = &probeResult{at: h.now(), err: err}
	h.probing = nil
	h.mu.Unlock()
	close(done)
}
