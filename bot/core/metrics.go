package core

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/failover-bot/failover-bot/store"
)

// Metrics are the bot's Prometheus series. Names carry the failover_bot_ prefix. The alert rules
// and the dashboard in cmd/bot/monitoring use them by name: a test there fails when one they use
// is renamed or no longer registered.
type Metrics struct {
	Requests         *prometheus.CounterVec   // requests by outcome (requested, approved, rejected, …)
	Approvals        prometheus.Counter       // approval clicks that were recorded
	Refusals         *prometheus.CounterVec   // refused clicks and commands by reason
	EMCalls          *prometheus.HistogramVec // EM calls by endpoint and status, with latency
	PollDuration     prometheus.Histogram     // one poll cycle
	SlackCalls       *prometheus.HistogramVec // Slack Web API calls by method and result
	SlackErrors      *prometheus.CounterVec   // Slack API errors by method and error
	SlackRateLimited prometheus.Counter       // 429 answers from Slack
	SlackCoalesced   prometheus.Counter       // queued messages merged into another
	Active           prometheus.Gauge         // active requests at the last poll

	// The readiness checks' results (bot.Readiness), set at every check (every 15 s).
	EMUp         prometheus.Gauge // 1 when EM answered the last check
	SlackUp      prometheus.Gauge // 1 when Slack's auth.test succeeded at the last check
	EMSinceOK    prometheus.Gauge // seconds since EM last answered a check
	SlackSinceOK prometheus.Gauge // seconds since Slack last answered a check
	// What the store holds, sampled at every readiness check.
	OldestActive      *prometheus.GaugeVec // seconds the longest-waiting active request has been in its state, by state
	SlackBacklog      *prometheus.GaugeVec // what Slack is owed, by kind
	SlackOldestUnsent prometheus.Gauge     // age of the oldest message or card Slack is owed
	// High availability (STORE=etcd).
	Leader    prometheus.Gauge       // 1 while this instance leads (always 1 with bbolt)
	Terms     prometheus.Counter     // leadership terms this instance has won
	Forwarded *prometheus.CounterVec // work handed to the leader, by job kind
}

// ActiveStates are the states failover_bot_oldest_active_request_seconds reports, each always
// present (0 when no request is in it) so an alert on one never sees the series vanish.
var ActiveStates = []store.State{store.Pending, store.Approved, store.Submitting, store.Running, store.Stopping, store.Halted}

// BacklogKinds are the kinds of failover_bot_slack_backlog: thread lines and notices queued in
// the store, cards not posted or not up to date, audit events not yet in the audit channel, and
// ephemeral answers queued in memory.
var BacklogKinds = []string{"messages", "cards", "audit_events", "ephemeral"}

// NewMetrics creates the series and registers them with reg when reg is not nil.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "failover_bot_requests_total", Help: "Failover requests by outcome.",
		}, []string{"outcome"}),
		Approvals: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "failover_bot_approvals_total", Help: "Approvals recorded.",
		}),
		Refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "failover_bot_refusals_total", Help: "Commands and clicks refused, by reason.",
		}, []string{"reason"}),
		EMCalls: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "failover_bot_em_request_duration_seconds", Help: "Enterprise Manager HTTP calls by endpoint and status (0: transport error).",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"endpoint", "status"}),
		PollDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "failover_bot_poll_cycle_seconds", Help: "Duration of one poll cycle.",
			Buckets: []float64{.01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}),
		SlackCalls: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "failover_bot_slack_request_duration_seconds", Help: "Slack Web API calls by method and result.",
			Buckets: []float64{.01, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"method", "result"}),
		SlackErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "failover_bot_slack_errors_total", Help: "Slack Web API errors by method and error.",
		}, []string{"method", "error"}),
		SlackRateLimited: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "failover_bot_slack_rate_limited_total", Help: "Slack 429 answers (each retried after Retry-After).",
		}),
		SlackCoalesced: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "failover_bot_slack_coalesced_total", Help: "Queued Slack messages merged into another instead of sent alone.",
		}),
		Active: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "failover_bot_active_requests", Help: "Active (pending to stopping) requests at the last poll.",
		}),
		EMUp: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "failover_bot_em_up", Help: "1 when Enterprise Manager answered the last readiness check (GET /api/, every 15 s), else 0.",
		}),
		SlackUp: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "failover_bot_slack_up", Help: "1 when Slack's auth.test succeeded at the last readiness check (every 15 s), else 0.",
		}),
		EMSinceOK: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "failover_bot_em_seconds_since_ok", Help: "Seconds since Enterprise Manager last answered a readiness check (since start when it never has), as of the last check.",
		}),
		SlackSinceOK: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "failover_bot_slack_seconds_since_ok", Help: "Seconds since Slack last answered a readiness check (since start when it never has), as of the last check.",
		}),
		OldestActive: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "failover_bot_oldest_active_request_seconds", Help: "Seconds the longest-waiting active request has been in its current state, by state (0: none), as of the last readiness check.",
		}, []string{"state"}),
		SlackBacklog: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "failover_bot_slack_backlog", Help: "What Slack is owed, by kind (messages, cards, audit_events, ephemeral), as of the last readiness check.",
		}, []string{"kind"}),
		SlackOldestUnsent: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "failover_bot_slack_oldest_undelivered_seconds", Help: "Age of the oldest queued message or unposted card Slack is owed (0: none), as of the last readiness check.",
		}),
	}
	m.Leader = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "failover_bot_leader", Help: "1 while this instance is the leader that submits, polls and delivers (always 1 with one instance on bbolt), else 0.",
	})
	m.Terms = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "failover_bot_leader_terms_total", Help: "Leadership terms this instance has won (STORE=etcd).",
	})
	m.Forwarded = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "failover_bot_forwarded_jobs_total", Help: "Work a standby handed to the leader, by kind (poll, open-stop, stop).",
	}, []string{"kind"})
	for _, s := range ActiveStates {
		m.OldestActive.WithLabelValues(string(s)).Set(0)
	}
	for _, k := range BacklogKinds {
		m.SlackBacklog.WithLabelValues(k).Set(0)
	}
	if reg != nil {
		reg.MustRegister(m.Requests, m.Approvals, m.Refusals, m.EMCalls, m.PollDuration, m.SlackCalls,
			m.SlackErrors, m.SlackRateLimited, m.SlackCoalesced, m.Active,
			m.EMUp, m.SlackUp, m.EMSinceOK, m.SlackSinceOK, m.OldestActive, m.SlackBacklog, m.SlackOldestUnsent,
			m.Leader, m.Terms, m.Forwarded)
	}
	return m
}

// ObserveEM is emapi.Config.Observe.
func (m *Metrics) ObserveEM(endpoint string, status int, d time.Duration) {
	m.EMCalls.WithLabelValues(endpoint, strconv.Itoa(status)).Observe(d.Seconds())
}

// ObserveActive sets failover_bot_oldest_active_request_seconds from the active requests at now:
// for each state, how long the request that entered it first has been there. A request that
// stays approved, submitting or running far longer than its failover should is stuck, and this
// is how an alert sees it without reading the store.
func (m *Metrics) ObserveActive(reqs []*store.Request, now time.Time) {
	oldest := make(map[store.State]time.Duration, len(ActiveStates))
	for _, r := range reqs {
		if age := now.Sub(r.StateAt); age > oldest[r.State] {
			oldest[r.State] = age
		}
	}
	for _, s := range ActiveStates {
		m.OldestActive.WithLabelValues(string(s)).Set(oldest[s].Seconds())
	}
}
