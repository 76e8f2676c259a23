package bot_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/failover-bot/failover-bot/bot"
	"github.com/failover-bot/failover-bot/store"
	"github.com/failover-bot/failover-bot/store/failover/fakeclock"
)

// getJSON GETs url and decodes its JSON answer into a map.
func getJSON(t *testing.T, url string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("%s body: %v", url, err)
	}
	return resp.StatusCode, body
}

// probeStore is a StoreProbe whose answer a test scripts: it counts the writes, answers err, and
// while blocked holds each write until release is sent to.
type probeStore struct {
	mu      sync.Mutex
	calls   int
	err     error
	blocked bool
	release chan struct{}
}

func newProbeStore() *probeStore { return &probeStore{release: make(chan struct{})} }

func (p *probeStore) Writable(ctx context.Context) error {
	p.mu.Lock()
	p.calls++
	err, blocked := p.err, p.blocked
	p.mu.Unlock()
	if blocked {
		<-p.release // a stuck disk ignores the deadline, as bbolt's writer lock does
	}
	return err
}

func (p *probeStore) set(err error, blocked bool) {
	p.mu.Lock()
	p.err, p.blocked = err, blocked
	p.mu.Unlock()
}

func (p *probeStore) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls
}

// TestHealthzProbesTheStoreOncePerWindow: liveness is the store taking a write, probed at most
// once per ProbeEvery however many ask; a failed write fails it; a write that hangs fails it
// after HangAfter without starting a second one; and it recovers when the store does.
func TestHealthzProbesTheStoreOncePerWindow(t *testing.T) {
	clock := fakeclock.New(time.Date(2026, 11, 23, 14, 0, 0, 0, time.UTC))
	ps := newProbeStore()
	h := &bot.Health{Store: ps, Now: clock.Now, ProbeEvery: 5 * time.Second, HangAfter: 10 * time.Second,
		Wait: 200 * time.Millisecond}
	srv := httptest.NewServer(h)
	defer srv.Close()

	steps := []struct {
		name      string
		before    func()
		advance   time.Duration
		requests  int
		wantCode  int
		wantStore string // substring of the "store" field
		wantCalls int    // store writes so far
	}{
		{name: "first request probes", requests: 1, wantCode: 200, wantStore: "ok", wantCalls: 1},
		{name: "a thousand more within the window reuse it", requests: 1000, wantCode: 200, wantStore: "ok", wantCalls: 1},
		{name: "after the window one new probe", advance: 5 * time.Second, requests: 50, wantCode: 200, wantStore: "ok", wantCalls: 2},
		{name: "a failed write fails liveness", before: func() { ps.set(errors.New("database not writable: disk full"), false) },
			advance: 5 * time.Second, requests: 3, wantCode: 503, wantStore: "disk full", wantCalls: 3},
		{name: "a good write again", before: func() { ps.set(nil, false) },
			advance: 5 * time.Second, requests: 1, wantCode: 200, wantStore: "ok", wantCalls: 4},
		{name: "a write that hangs: the previous answer stands meanwhile", before: func() { ps.set(nil, true) },
			advance: 5 * time.Second, requests: 1, wantCode: 200, wantStore: "ok", wantCalls: 5},
		{name: "still hanging after HangAfter: unhealthy, and no second write", advance: 10 * time.Second,
			requests: 1, wantCode: 503, wantStore: "has not finished for 10s", wantCalls: 5},
		// The request waits (up to Wait) for the write under way, which ends as it is released.
		{name: "the write ends: healthy", before: func() { ps.set(nil, false); ps.release <- struct{}{} },
			requests: 1, wantCode: 200, wantStore: "ok", wantCalls: 5},
	}
	for _, s := range steps {
		if s.before != nil {
			s.before()
		}
		clock.Advance(s.advance)
		for i := range s.requests {
			code, body := getJSON(t, srv.URL)
			if code != s.wantCode || !strings.Contains(body["store"].(string), s.wantStore) {
				t.Fatalf("%s: request %d answered %d %v, want %d with store %q", s.name, i+1, code, body, s.wantCode, s.wantStore)
			}
			if want := map[int]string{200: "ok", 503: "unhealthy"}[s.wantCode]; body["status"] != want {
				t.Fatalf("%s: status %v, want %s", s.name, body["status"], want)
			}
		}
		if got := ps.count(); got != s.wantCalls {
			t.Fatalf("%s: %d store writes, want %d", s.name, got, s.wantCalls)
		}
	}
}

// TestHealthzWithTheRealStore: the bot's bbolt store answers the probe, and a closed store fails
// liveness once the last good probe is older than ProbeEvery.
func TestHealthzWithTheRealStore(t *testing.T) {
	h := newHarness(t)
	srv := httptest.NewServer(&bot.Health{Store: h.st, Now: h.clock.Now})
	defer srv.Close()

	if code, body := getJSON(t, srv.URL); code != http.StatusOK || body["status"] != "ok" || body["store"] != "ok" {
		t.Fatalf("healthy bot: %d %v", code, body)
	}
	if err := h.st.Close(); err != nil { // the store is gone: the process must be restarted
		t.Fatal(err)
	}
	if code, _ := getJSON(t, srv.URL); code != http.StatusOK {
		t.Fatalf("within the probe window the last result stands: %d", code)
	}
	h.clock.Advance(bot.DefaultProbeEvery)
	code, body := getJSON(t, srv.URL)
	if code != http.StatusServiceUnavailable || body["status"] != "unhealthy" || !strings.Contains(body["store"].(string), "database not writable") {
		t.Fatalf("closed store: %d %v", code, body)
	}
	// Shut the rest down here: the harness would close the store a second time.
	h.srv.Close()
	if err := h.bot.Close(context.Background()); err != nil {
		t.Error(err)
	}
	h.bot = nil
}

// TestMetrics: the flow's series reach /metrics.
func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	h := newHarness(t, func(c *harnessConfig) { c.opt.Metrics = bot.NewMetrics(reg) })
	h.command(Requester, `vm CDP-Finance fin-db01 --reason "site down"`)
	h.idle()
	h.approve(Approver1, "FO-1")
	h.idle()
	h.command(Outsider, `vm CDP-Finance nosuch --reason "typo"`)
	h.poll()

	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	mustContain(t, "/metrics", string(b),
		`failover_bot_requests_total{outcome="requested"} 1`,
		`failover_bot_requests_total{outcome="approved"} 1`,
		`failover_bot_requests_total{outcome="submitted"} 1`,
		`failover_bot_approvals_total 1`,
		`failover_bot_refusals_total{reason="unknown-name"} 1`,
		`failover_bot_slack_request_duration_seconds_count{method="chat.postMessage",result="ok"}`,
		`failover_bot_poll_cycle_seconds_count 1`,
		`failover_bot_active_requests 1`,
		// The readiness series exist from the start, every state and kind with its own series.
		`failover_bot_em_up 0`,
		`failover_bot_oldest_active_request_seconds{state="running"} 0`,
		`failover_bot_slack_backlog{kind="messages"} 0`,
		`failover_bot_slack_oldest_undelivered_seconds 0`)
}

// TestHealthzEtcdUnreachable: a store that cannot be reached (etcd without quorum) leaves the
// process live — restarting it would not bring etcd back — and /healthz says why; the role is
// reported either way.
func TestHealthzEtcdUnreachable(t *testing.T) {
	for _, tc := range []struct {
		name     string
		err      error
		leading  bool
		code     int
		store    string
		role     string
		unhealth bool
	}{
		{"leader, etcd fine", nil, true, http.StatusOK, "ok", "leader", false},
		{"standby, etcd fine", nil, false, http.StatusOK, "ok", "standby", false},
		{"etcd unreachable", fmt.Errorf("etcd commit: %w (context deadline exceeded)", store.ErrUnavailable), false, http.StatusOK, "unreachable: ", "standby", false},
		{"store broken", errors.New("disk full"), true, http.StatusServiceUnavailable, "disk full", "leader", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newProbeStore()
			p.set(tc.err, false)
			srv := httptest.NewServer(&bot.Health{Store: p, Leader: func() bool { return tc.leading }})
			defer srv.Close()
			code, body := getJSON(t, srv.URL)
			if code != tc.code || !strings.Contains(body["store"].(string), tc.store) || body["role"] != tc.role {
				t.Fatalf("got %d %v, want %d store %q role %s", code, body, tc.code, tc.store, tc.role)
			}
			if (body["status"] == "unhealthy") != tc.unhealth {
				t.Fatalf("status %v", body["status"])
			}
		})
	}
}
