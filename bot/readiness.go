package bot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/slack-go/slack"

	"github.com/failover-bot/failover-bot/bot/core"
)

// Readiness defaults.
const (
	// DefaultReadinessInterval is how often EM and Slack are checked.
	DefaultReadinessInterval = 15 * time.Second
	// DefaultReadinessGrace is how long EM or Slack may fail every check before /readyz answers
	// 503 (READINESS_GRACE): two failed checks in a row are a blip, three are an outage.
	DefaultReadinessGrace = 30 * time.Second
	// defaultCheckTimeout bounds one check, below the interval so rounds never overlap.
	defaultCheckTimeout = 10 * time.Second
)

// The states of a dependency in /readyz.
const (
	DependencyOK        = "ok"        // the last check succeeded
	DependencyFailing   = "failing"   // checks fail, for less than the grace so far
	DependencyDown      = "down"      // every check has failed for the grace or longer, or none completes
	DependencyUnchecked = "unchecked" // no check has completed yet (the first runs at start)
)

// SlackAuthTester is how readiness asks Slack whether the bot's token works (*slack.Client).
type SlackAuthTester interface {
	AuthTestContext(ctx context.Context) (*slack.AuthTestResponse, error)
}

// ReadinessOptions configures a Readiness. Zero values take the defaults.
type ReadinessOptions struct {
	// Interval between check rounds (default DefaultReadinessInterval).
	Interval time.Duration
	// Grace is how long a dependency may fail every check before /readyz answers 503
	// (READINESS_GRACE, default DefaultReadinessGrace).
	Grace time.Duration
	// Timeout bounds one round (default 10 s, and never more than Interval).
	Timeout time.Duration
	// Ticks, when set, starts a round for each value received instead of a ticker of Interval;
	// tests send on it. Interval still decides when results are too old to trust.
	Ticks <-chan time.Time
}

// Readiness runs the background checks behind GET /readyz and the gauges alerts use: every
// Interval it asks Enterprise Manager whether it answers (GET /api/, which needs no logon) and
// Slack whether the bot's token works (auth.test), and samples the store for the Slack backlog and
// the age of the oldest request in each active state. /readyz only reads the last results, so no
// request rate ever causes an outbound call: a load balancer or a scanner hammering it cannot
// spend EM's or Slack's rate limits.
//
// /readyz answers 503 once EM or Slack has failed every check for Grace, and 200 again after the
// first good check. It reports; it does not fix: while EM is down the bot still records requests
// and approvals and tells people why nothing is sent, so a single replica should not be taken out
// of Slack's reach because of it (see the README on probes).
type Readiness struct {
	b       *Bot
	opt     ReadinessOptions
	now     func() time.Time
	log     *slog.Logger
	met     *Metrics
	started time.Time
	em      *dependency
	slack   *dependency

	mu        sync.Mutex
	backlog   SlackBacklog
	sampledAt time.Time
}

// dependency is one thing readiness checks, with what its checks found.
type dependency struct {
	name     string // em or slack, for logs
	title    string // for logs
	check    func(ctx context.Context) error
	describe func(error) string // one secret-free sentence
	up       prometheus.Gauge
	sinceOK  prometheus.Gauge

	// Guarded by Readiness.mu.
	lastCheck    time.Time // start of the last completed check
	lastOK       time.Time
	failingSince time.Time // start of the first failed check since the last good one; zero while ok
	err          string
	judged       string // the status as of the last check, to log changes once
}

// NewReadiness returns the readiness checks of b, with Slack reached through api. Call Run to
// check in the background, and serve the Readiness on GET /readyz.
func NewReadiness(b *Bot, api SlackAuthTester, opt ReadinessOptions) (*Readiness, error) {
	if b == nil || api == nil {
		return nil, errors.New("readiness: the bot and the Slack API are required")
	}
	opt.Interval = orDefault(opt.Interval, DefaultReadinessInterval)
	opt.Grace = orDefault(opt.Grace, DefaultReadinessGrace)
	opt.Timeout = min(orDefault(opt.Timeout, defaultCheckTimeout), opt.Interval)
	r := &Readiness{b: b, opt: opt, now: b.now, log: b.log, met: b.met, started: b.now()}
	r.em = &dependency{name: "em", title: "Enterprise Manager", check: b.core.PingEM, describe: core.Describe,
		up: r.met.EMUp, sinceOK: r.met.EMSinceOK}
	r.slack = &dependency{name: "slack", title: "Slack", describe: describeSlackCheck,
		check: func(ctx context.Context) error { _, err := api.AuthTestContext(ctx); return err },
		up:    r.met.SlackUp, sinceOK: r.met.SlackSinceOK}
	return r, nil
}

// Run checks at once and then every Interval (or at every value of Ticks, until it is closed)
// until ctx ends. The caller owns it: cancel ctx and wait for Run to return.
func (r *Readiness) Run(ctx context.Context) {
	ticks := r.opt.Ticks
	if ticks == nil {
		t := time.NewTicker(r.opt.Interval)
		defer t.Stop()
		ticks = t.C
	}
	for {
		r.Check(ctx)
		select {
		case <-ctx.Done():
			return
		case _, ok := <-ticks:
			if !ok {
				return
			}
		}
	}
}

// Check runs one round now: EM, Slack and the store sample at the same time, each bounded by
// Timeout, so a hanging EM delays nothing else. A round cut short by ctx records nothing: the
// bot's own shutdown is not an outage.
func (r *Readiness) Check(ctx context.Context) {
	at := r.now()
	cctx, cancel := context.WithTimeout(ctx, r.opt.Timeout)
	defer cancel()
	deps := []*dependency{r.em, r.slack}
	errs := make([]error, len(deps))
	var (
		wg     sync.WaitGroup
		bl     SlackBacklog
		blErr  error
		actErr error
	)
	for i, d := range deps {
		wg.Go(func() { errs[i] = d.check(cctx) })
	}
	wg.Go(func() {
		reqs, err := r.b.st.Active(cctx)
		if actErr = err; err == nil {
			r.met.ObserveActive(reqs, at)
		}
		bl, blErr = r.b.slackBacklog(cctx)
	})
	wg.Wait()
	if ctx.Err() != nil {
		return
	}
	done := r.now()
	if actErr != nil {
		r.log.Warn("readiness: reading the active requests failed", "error", actErr)
	}
	if blErr != nil {
		r.log.Warn("readiness: reading the Slack backlog failed", "error", blErr)
	} else {
		r.observeBacklog(bl, at)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if blErr == nil {
		r.backlog, r.sampledAt = bl, at
	}
	for i, d := range deps {
		r.record(d, at, done, errs[i])
	}
}

func (r *Readiness) observeBacklog(bl SlackBacklog, at time.Time) {
	r.met.SlackBacklog.WithLabelValues("messages").Set(float64(bl.Messages))
	r.met.SlackBacklog.WithLabelValues("cards").Set(float64(bl.Cards))
	r.met.SlackBacklog.WithLabelValues("audit_events").Set(float64(bl.AuditEvents))
	r.met.SlackBacklog.WithLabelValues("ephemeral").Set(float64(bl.Ephemeral))
	age := 0.0
	if !bl.Oldest.IsZero() {
		age = max(at.Sub(bl.Oldest).Seconds(), 0)
	}
	r.met.SlackOldestUnsent.Set(age)
}

// record keeps the result of one check that started at and ended at done, sets its gauges and
// logs a change of state (not every failure: EM down for an hour is one warning, one error and
// one recovery, not 240 lines). r.mu is held.
func (r *Readiness) record(d *dependency, at, done time.Time, err error) {
	d.lastCheck = at
	if err == nil {
		d.lastOK, d.failingSince, d.err = at, time.Time{}, ""
		d.up.Set(1)
	} else {
		if d.failingSince.IsZero() {
			d.failingSince = at
		}
		d.err = d.describe(err)
		d.up.Set(0)
	}
	okAt := d.lastOK
	if okAt.IsZero() {
		okAt = r.started
	}
	d.sinceOK.Set(max(at.Sub(okAt).Seconds(), 0))
	before, after := d.judged, r.status(d, done)
	d.judged = after.Status
	switch {
	case before == after.Status:
	case after.Status == DependencyOK && before != "":
		r.log.Info("readiness: "+d.title+" answers again", "dependency", d.name, "was", before)
	case after.Status == DependencyFailing:
		r.log.Warn("readiness: "+d.title+" check failed", "dependency", d.name, "error", d.err)
	case after.Status == DependencyDown:
		r.log.Error("readiness: "+d.title+" has failed every check; /readyz answers 503", "dependency", d.name,
			"error", d.err, "failing_since", d.failingSince, "grace", r.opt.Grace)
	}
}

// DependencyReport is what /readyz says of EM or of Slack.
type DependencyReport struct {
	Status string `json:"status"` // ok, failing, down or unchecked
	// Error is the last failure in one secret-free sentence (empty while ok).
	Error string `json:"error,omitempty"`
	// FailingSince is when the current run of failed checks began (zero while ok).
	FailingSince time.Time `json:"failing_since,omitzero"`
	LastCheck    time.Time `json:"last_check,omitzero"`
	LastOK       time.Time `json:"last_ok,omitzero"`
}

// ReadinessReport is /readyz's answer.
type ReadinessReport struct {
	Status string           `json:"status"` // ready or not ready
	EM     DependencyReport `json:"em"`
	Slack  DependencyReport `json:"slack"`
	// SlackBacklog is what Slack was owed at the last sample (nil before the first).
	SlackBacklog *SlackBacklog `json:"slack_backlog,omitempty"`
	// Grace and Interval are the settings the statuses were judged with.
	Grace    string `json:"grace"`
	Interval string `json:"interval"`
}

// Ready reports whether neither EM nor Slack is down.
func (rep ReadinessReport) Ready() bool {
	return rep.EM.Status != DependencyDown && rep.Slack.Status != DependencyDown
}

// Summary is the report in one line for a person: "ready", or what is down and since when.
func (rep ReadinessReport) Summary() string {
	var parts []string
	for _, d := range []struct {
		name string
		r    DependencyReport
	}{{"Enterprise Manager", rep.EM}, {"Slack", rep.Slack}} {
		switch d.r.Status {
		case DependencyOK, DependencyUnchecked:
			continue
		}
		s := d.name + " " + d.r.Status
		if !d.r.FailingSince.IsZero() {
			s += " since " + d.r.FailingSince.UTC().Format("2006-01-02 15:04:05 UTC")
		}
		if d.r.Error != "" {
			s += ": " + d.r.Error
		}
		parts = append(parts, s)
	}
	if len(parts) == 0 {
		return rep.Status
	}
	return rep.Status + ": " + strings.Join(parts, "; ")
}

// Report judges the last results at the clock's now.
func (r *Readiness) Report() ReadinessReport {
	now := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	rep := ReadinessReport{EM: r.status(r.em, now), Slack: r.status(r.slack, now),
		Grace: r.opt.Grace.String(), Interval: r.opt.Interval.String()}
	if !r.sampledAt.IsZero() {
		bl := r.backlog
		rep.SlackBacklog = &bl
	}
	rep.Status = "ready"
	if !rep.Ready() {
		rep.Status = "not ready"
	}
	return rep
}

// status judges d at now. Results older than Grace+Interval+Timeout mean the checks themselves
// stopped (they cannot hang: each is bounded by Timeout), and an old "ok" is not trusted. r.mu is
// held.
func (r *Readiness) status(d *dependency, now time.Time) DependencyReport {
	rep := DependencyReport{Error: d.err, FailingSince: d.failingSince, LastCheck: d.lastCheck, LastOK: d.lastOK}
	stale := r.opt.Grace + r.opt.Interval + r.opt.Timeout
	last := d.lastCheck
	if last.IsZero() {
		last = r.started
	}
	switch {
	case now.Sub(last) >= stale:
		rep.Status = DependencyDown
		what := "no check has completed since " + last.UTC().Format(time.RFC3339)
		if d.err != "" {
			what += "; the last one failed: " + d.err
		}
		rep.Error = what
		if rep.FailingSince.IsZero() {
			rep.FailingSince = last
		}
	case d.lastCheck.IsZero():
		rep.Status = DependencyUnchecked
	case d.failingSince.IsZero():
		rep.Status = DependencyOK
	case now.Sub(d.failingSince) >= r.opt.Grace:
		rep.Status = DependencyDown
	default:
		rep.Status = DependencyFailing
	}
	return rep
}

// ServeHTTP answers GET /readyz: 200 when ready, 503 when EM or Slack is down, with the report
// as JSON either way. It only reads the last results.
func (r *Readiness) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	rep := r.Report()
	code := http.StatusOK
	if !rep.Ready() {
		code = http.StatusServiceUnavailable
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(rep)
}

// describeSlackCheck says why auth.test failed in one sentence without the token or the URL:
// Slack's error code when it answered, else what kept the call from an answer.
func describeSlackCheck(err error) string {
	var (
		rl *slack.RateLimitedError
		se slack.SlackErrorResponse
		sc slack.StatusCodeError
		ue *url.Error
	)
	switch {
	case errors.As(err, &rl):
		return fmt.Sprintf("Slack rate-limited auth.test (retry after %s)", rl.RetryAfter)
	case errors.As(err, &se):
		switch se.Err {
		case "invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired":
			return "Slack refused the bot token (" + se.Err + "): check SLACK_BOT_TOKEN"
		}
		return "Slack answered auth.test with " + se.Err
	case errors.As(err, &sc):
		return fmt.Sprintf("Slack answered HTTP %d", sc.Code)
	case errors.Is(err, context.DeadlineExceeded):
		return "Slack did not answer in time"
	case errors.As(err, &ue):
		return "could not reach Slack: " + ue.Err.Error()
	}
	return "Slack auth.test failed: " + err.Error()
}
