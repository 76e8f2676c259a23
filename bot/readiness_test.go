package bot_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/slack-go/slack"

	"github.com/failover-bot/failover-bot/bot"
	"github.com/failover-bot/failover-bot/store"
)

// readinessFixture is a harness bot with its metrics in reg, and its readiness served on srv.
type readinessFixture struct {
	h     *harness
	reg   *prometheus.Registry
	ready *bot.Readiness
	srv   *httptest.Server
}

func newReadinessFixture(t *testing.T, opt bot.ReadinessOptions) *readinessFixture {
	t.Helper()
	reg := prometheus.NewRegistry()
	h := newHarness(t, func(c *harnessConfig) { c.opt.Metrics = bot.NewMetrics(reg) })
	api := slack.New("xoxb-test-token-never-logged", slack.OptionAPIURL(h.slack.APIURL()))
	ready, err := bot.NewReadiness(h.bot, api, opt)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /readyz", ready)
	mux.Handle("GET /healthz", &bot.Health{Store: h.st, Now: h.clock.Now})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &readinessFixture{h: h, reg: reg, ready: ready, srv: srv}
}

// readyz GETs /readyz and decodes the report; the raw body is returned for substring checks.
func (f *readinessFixture) readyz(t *testing.T) (int, bot.ReadinessReport, string) {
	t.Helper()
	resp, err := http.Get(f.srv.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var raw json.RawMessage
	if err := json.NewDecoder(resp.Body).Decode(&raw); err != nil {
		t.Fatalf("/readyz body: %v", err)
	}
	var rep bot.ReadinessReport
	if err := json.Unmarshal(raw, &rep); err != nil {
		t.Fatalf("/readyz body %s: %v", raw, err)
	}
	return resp.StatusCode, rep, string(raw)
}

// outbound counts what reached the EM simulator and the fake Slack so far.
func (f *readinessFixture) outbound() (em, slack int) {
	return len(f.h.em.Requests()), len(f.h.slack.Calls())
}

// gauge reads one series of a gauge from reg; labels are name, value pairs.
func gauge(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue series
				}
			}
			return m.GetGauge().GetValue()
		}
	}
	t.Fatalf("no series %s %v", name, labels)
	return 0
}

// TestReadyzFollowsTheChecks: /readyz follows background checks on a fake clock. EM stops
// answering (the simulator drops every connection): the first failed checks are within the grace,
// the grace ends with 503, and the first good check brings 200 back; then Slack refuses the token,
// the same way. Asking /readyz between checks judges the last results at that moment and never
// reaches EM or Slack.
func TestReadyzFollowsTheChecks(t *testing.T) {
	f := newReadinessFixture(t, bot.ReadinessOptions{Grace: 30 * time.Second, Interval: 15 * time.Second})
	t0 := f.h.clock.Now()
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }

	steps := []struct {
		name    string
		fault   func()
		advance time.Duration
		check   bool // run a round before asking
		code    int
		em      string // status
		emErr   string // substring of the error, "" for none
		emSince time.Time
		slack   string
		slErr   string
		slSince time.Time
		emUp    float64
		emAge   float64 // failover_bot_em_seconds_since_ok
		slUp    float64
	}{
		{name: "before the first check: unchecked, ready", code: 200, em: "unchecked", slack: "unchecked"},
		{name: "first check: both ok", check: true, code: 200, em: "ok", slack: "ok", emUp: 1, slUp: 1},
		{name: "EM stops answering: failing within the grace", fault: func() { f.h.em.DropConnections(1 << 30) },
			advance: 15 * time.Second, check: true, code: 200,
			em: "failing", emErr: "could not reach Enterprise Manager", emSince: at(15), slack: "ok", emAge: 15, slUp: 1},
		{name: "second failed check, half the grace", advance: 15 * time.Second, check: true, code: 200,
			em: "failing", emErr: "could not reach Enterprise Manager", emSince: at(15), slack: "ok", emAge: 30, slUp: 1},
		{name: "asked between checks once the grace is over: 503", advance: 15 * time.Second, code: 503,
			em: "down", emErr: "could not reach Enterprise Manager", emSince: at(15), slack: "ok", emAge: 30, slUp: 1},
		{name: "third failed check: still down", check: true, code: 503,
			em: "down", emErr: "could not reach Enterprise Manager", emSince: at(15), slack: "ok", emAge: 45, slUp: 1},
		{name: "EM answers again: ready at the first good check", fault: func() { f.h.em.DropConnections(0) },
			advance: 15 * time.Second, check: true, code: 200, em: "ok", slack: "ok", emUp: 1, slUp: 1},
		{name: "Slack refuses the token", fault: func() { f.h.slack.FailAll("invalid_auth") },
			advance: 15 * time.Second, check: true, code: 200, em: "ok", emUp: 1,
			slack: "failing", slErr: "Slack refused the bot token (invalid_auth): check SLACK_BOT_TOKEN", slSince: at(75)},
		{name: "Slack still refuses after the grace: 503", advance: 30 * time.Second, check: true, code: 503, em: "ok", emUp: 1,
			slack: "down", slErr: "invalid_auth", slSince: at(75)},
		{name: "Slack accepts it again", fault: func() { f.h.slack.FailAll("") },
			advance: 15 * time.Second, check: true, code: 200, em: "ok", slack: "ok", emUp: 1, slUp: 1},
	}
	for _, s := range steps {
		if s.fault != nil {
			s.fault()
		}
		f.h.clock.Advance(s.advance)
		if s.check {
			f.ready.Check(context.Background())
		}
		em0, sl0 := f.outbound()
		code, rep, raw := f.readyz(t)
		for range 20 {
			f.readyz(t)
		}
		if em1, sl1 := f.outbound(); em1 != em0 || sl1 != sl0 {
			t.Fatalf("%s: asking /readyz reached EM %d times and Slack %d times, want never", s.name, em1-em0, sl1-sl0)
		}
		if code != s.code || rep.EM.Status != s.em || rep.Slack.Status != s.slack {
			t.Fatalf("%s: %d em=%s slack=%s, want %d em=%s slack=%s\n%s", s.name, code, rep.EM.Status, rep.Slack.Status, s.code, s.em, s.slack, raw)
		}
		if wantStatus := map[int]string{200: "ready", 503: "not ready"}[s.code]; rep.Status != wantStatus {
			t.Fatalf("%s: status %q, want %q", s.name, rep.Status, wantStatus)
		}
		for _, d := range []struct {
			what       string
			got        bot.DependencyReport
			err        string
			since      time.Time
			wantChecks bool
		}{{"em", rep.EM, s.emErr, s.emSince, s.check || s.em != "unchecked"}, {"slack", rep.Slack, s.slErr, s.slSince, s.check || s.slack != "unchecked"}} {
			if (d.err == "") != (d.got.Error == "") || !strings.Contains(d.got.Error, d.err) {
				t.Errorf("%s: %s error %q, want %q", s.name, d.what, d.got.Error, d.err)
			}
			if !d.got.FailingSince.Equal(d.since) {
				t.Errorf("%s: %s failing since %v, want %v", s.name, d.what, d.got.FailingSince, d.since)
			}
			if d.wantChecks && d.got.LastCheck.IsZero() {
				t.Errorf("%s: %s has no last check time", s.name, d.what)
			}
		}
		if s.check && !rep.EM.LastCheck.Equal(f.h.clock.Now()) {
			t.Errorf("%s: em last check %v, want %v", s.name, rep.EM.LastCheck, f.h.clock.Now())
		}
		if s.check || s.em != "unchecked" {
			if got := gauge(t, f.reg, "failover_bot_em_up"); got != s.emUp {
				t.Errorf("%s: failover_bot_em_up %v, want %v", s.name, got, s.emUp)
			}
			if got := gauge(t, f.reg, "failover_bot_slack_up"); got != s.slUp {
				t.Errorf("%s: failover_bot_slack_up %v, want %v", s.name, got, s.slUp)
			}
			if got := gauge(t, f.reg, "failover_bot_em_seconds_since_ok"); got != s.emAge {
				t.Errorf("%s: failover_bot_em_seconds_since_ok %v, want %v", s.name, got, s.emAge)
			}
		}
		for _, secret := range secrets {
			if strings.Contains(raw, secret) {
				t.Fatalf("%s: /readyz shows a secret: %s", s.name, raw)
			}
		}
	}
	mustContain(t, "logs", f.h.logs.String(), "readiness: Enterprise Manager check failed",
		"has failed every check; /readyz answers 503", "readiness: Enterprise Manager answers again", "readiness: Slack answers again")
}

// TestHealthzAndReadyzNeverCallOut: a thousand requests each to /healthz and /readyz reach
// neither the EM simulator nor the fake Slack; they read what the last background round found.
func TestHealthzAndReadyzNeverCallOut(t *testing.T) {
	f := newReadinessFixture(t, bot.ReadinessOptions{})
	f.ready.Check(context.Background())
	em0, sl0 := f.outbound()
	for range 1000 {
		for _, path := range []string{"/healthz", "/readyz"} {
			resp, err := http.Get(f.srv.URL + path)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("%s answered %d", path, resp.StatusCode)
			}
		}
	}
	if em1, sl1 := f.outbound(); em1 != em0 || sl1 != sl0 {
		t.Fatalf("1,000 requests each to /healthz and /readyz made %d EM requests and %d Slack calls, want none", em1-em0, sl1-sl0)
	}
}

// TestReadinessRunsOnItsTicks: Run checks once at start and once per tick, EM and Slack each
// once a round, and returns when its ticks end.
func TestReadinessRunsOnItsTicks(t *testing.T) {
	ticks := make(chan time.Time)
	f := newReadinessFixture(t, bot.ReadinessOptions{Ticks: ticks})
	done := make(chan struct{})
	go func() { defer close(done); f.ready.Run(context.Background()) }()
	for range 3 {
		ticks <- f.h.clock.Now() // received once the previous round has finished
	}
	close(ticks) // Run returns after the round under way
	<-done
	pings := 0
	for _, r := range f.h.em.Requests() {
		if r.Method == http.MethodGet && r.Path == "/api/" {
			pings++
		}
	}
	if pings != 4 {
		t.Errorf("%d EM pings, want 4 (at start and at 3 ticks)", pings)
	}
	if got := len(f.h.slack.CallsTo("auth.test")); got != 4 {
		t.Errorf("%d Slack auth.test calls, want 4", got)
	}
}

// TestReadinessDistrustsOldResults: results older than the grace plus one interval and one
// timeout mean the checks stopped; an old "ok" is then not trusted.
func TestReadinessDistrustsOldResults(t *testing.T) {
	f := newReadinessFixture(t, bot.ReadinessOptions{Grace: 30 * time.Second, Interval: 15 * time.Second, Timeout: 5 * time.Second})
	f.ready.Check(context.Background())
	f.h.clock.Advance(49 * time.Second)
	if code, rep, raw := f.readyz(t); code != 200 || rep.EM.Status != "ok" {
		t.Fatalf("49 s after a good check: %d\n%s", code, raw)
	}
	f.h.clock.Advance(time.Second)
	code, rep, raw := f.readyz(t)
	if code != 503 || rep.EM.Status != "down" || rep.Slack.Status != "down" || !strings.Contains(rep.EM.Error, "no check has completed since") {
		t.Fatalf("50 s after the last check: %d\n%s", code, raw)
	}
	if rep.Summary() == "" || !strings.HasPrefix(rep.Summary(), "not ready: Enterprise Manager down since ") {
		t.Errorf("summary %q", rep.Summary())
	}
	f.ready.Check(context.Background())
	if code, _, raw := f.readyz(t); code != 200 {
		t.Fatalf("after a new check: %d\n%s", code, raw)
	}
}

// TestSlackBacklogGauges: while Slack is down, what it is owed (the card, the audit events, a
// queued notice) is counted and the age of the oldest grows with the clock; once Slack has it
// all, the backlog is empty again.
func TestSlackBacklogGauges(t *testing.T) {
	f := newReadinessFixture(t, bot.ReadinessOptions{})
	h := f.h
	t0 := h.clock.Now()
	h.slack.Outage(true)
	mustContain(t, "ack", h.command(Requester, `vm CDP-Finance fin-db01 --reason "site down"`), "Recorded *FO-1*")
	h.clock.Advance(10 * time.Minute)
	if err := h.st.Enqueue(context.Background(), Channel, "a notice"); err != nil {
		t.Fatal(err)
	}
	f.ready.Check(context.Background())
	checks := []struct {
		kind string
		min  float64
	}{{"messages", 1}, {"cards", 1}}
	for _, c := range checks {
		if got := gauge(t, f.reg, "failover_bot_slack_backlog", "kind", c.kind); got < c.min {
			t.Errorf("backlog of %s = %v during the outage, want at least %v", c.kind, got, c.min)
		}
	}
	if got := gauge(t, f.reg, "failover_bot_slack_oldest_undelivered_seconds"); got != 600 {
		t.Errorf("oldest undelivered %v s, want 600 (the card owed since the request)", got)
	}
	_, rep, raw := f.readyz(t)
	if rep.SlackBacklog == nil || !rep.SlackBacklog.Oldest.Equal(t0) || rep.SlackBacklog.Messages < 1 {
		t.Errorf("/readyz backlog during the outage:\n%s", raw)
	}

	h.slack.Outage(false)
	h.idle()
	f.ready.Check(context.Background())
	for _, k := range []string{"messages", "cards", "audit_events"} {
		if got := gauge(t, f.reg, "failover_bot_slack_backlog", "kind", k); got != 0 {
			t.Errorf("backlog of %s = %v after delivery, want 0", k, got)
		}
	}
	if got := gauge(t, f.reg, "failover_bot_slack_oldest_undelivered_seconds"); got != 0 {
		t.Errorf("oldest undelivered %v s after delivery, want 0", got)
	}
}

// TestOldestActiveRequestGauge: per active state, how long its longest-waiting request has been
// in it; states with none read 0, and finished requests do not count.
func TestOldestActiveRequestGauge(t *testing.T) {
	now := time.Date(2026, 11, 23, 14, 0, 0, 0, time.UTC)
	req := func(s store.State, ago time.Duration) *store.Request {
		return &store.Request{State: s, StateAt: now.Add(-ago)}
	}
	tests := []struct {
		name string
		reqs []*store.Request
		want map[store.State]float64
	}{
		{"none", nil, map[store.State]float64{}},
		{"oldest of each state", []*store.Request{
			req(store.Pending, time.Minute), req(store.Pending, 40*time.Minute), req(store.Running, 2*time.Hour),
			req(store.Approved, 90*time.Second), req(store.Running, time.Hour), req(store.Halted, 5*time.Minute),
		}, map[store.State]float64{store.Pending: 2400, store.Running: 7200, store.Approved: 90, store.Halted: 300}},
		{"a request stamped after now counts as just entered", []*store.Request{req(store.Submitting, -time.Second)},
			map[store.State]float64{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			m := bot.NewMetrics(reg)
			m.ObserveActive([]*store.Request{req(store.Stopping, time.Hour)}, now) // replaced below
			m.ObserveActive(tt.reqs, now)
			for _, s := range []store.State{store.Pending, store.Approved, store.Submitting, store.Running, store.Stopping, store.Halted} {
				if got := gauge(t, reg, "failover_bot_oldest_active_request_seconds", "state", string(s)); got != tt.want[s] {
					t.Errorf("%s: %v s, want %v", s, got, tt.want[s])
				}
			}
		})
	}
}
