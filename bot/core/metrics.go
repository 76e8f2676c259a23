package core

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the bot's Prometheus series. Names carry the failover_bot_ prefix.
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
}

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
	}
	if reg != nil {
		reg.MustRegister(m.Requests, m.Approvals, m.Refusals, m.EMCalls, m.PollDuration, m.SlackCalls,
			m.SlackErrors, m.SlackRateLimited, m.SlackCoalesced, m.Active)
	}
	return m
}

// ObserveEM is emapi.Config.Observe.
func (m *Metrics) ObserveEM(endpoint string, status int, d time.Duration) {
	m.EMCalls.WithLabelValues(endpoint, strconv.Itoa(status)).Observe(d.Seconds())
}
