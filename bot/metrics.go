package bot

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/slack-go/slack"

	"github.com/failover-bot/failover-bot/bot/core"
)

// Metrics are the bot's Prometheus series (see core.Metrics).
type Metrics = core.Metrics

// NewMetrics creates the series and registers them with reg when reg is not nil.
func NewMetrics(reg prometheus.Registerer) *Metrics { return core.NewMetrics(reg) }

func observeSlack(m *Metrics, method string, err error, d time.Duration) {
	result := "ok"
	if err != nil {
		result = "error"
		code := "transport"
		var se slack.SlackErrorResponse
		var rl *slack.RateLimitedError
		switch {
		case errors.As(err, &rl):
			code = "ratelimited"
		case errors.As(err, &se):
			code = se.Err
		}
		m.SlackErrors.WithLabelValues(method, code).Inc()
	}
	m.SlackCalls.WithLabelValues(method, result).Observe(d.Seconds())
}
