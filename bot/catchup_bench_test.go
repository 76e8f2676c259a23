package bot_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/failover-bot/failover-bot/bot"
	"github.com/failover-bot/failover-bot/bot/slackfake"
)

// BenchmarkCatchUp measures how long a restarted bot takes to deliver 300 messages left in the
// outbox over 3 channels (100 each, none mergeable) to a Slack that allows 1 message per second
// per channel (with the short burst of 2 Slack tolerates). The floor is the rate limit's: 99 s
// after the first message of each channel (the channels are served in parallel). It reports
// the time, the floor, the Slack calls and the 429s.
func BenchmarkCatchUp(b *testing.B) {
	const perChannel = 100
	channels := []string{"C0CATCH01", "C0CATCH02", "C0CATCH03"}
	for range b.N {
		b.StopTimer()
		h := newHarness(b, withOptions(func(o *bot.Options) { o.PostRate, o.UpdateRate, o.AuditChannel = 1, 50.0/60, "" }))
		h.slack.EnforceLimits(slackfake.Limits{PostPerSecond: 1, PostBurst: 2})
		// Queue the backlog while Slack is down, stop, then start for real.
		h.slack.Outage(true)
		for i := range perChannel {
			for _, ch := range channels {
				if err := h.st.Enqueue(context.Background(), ch, fmt.Sprintf("queued message %d for %s", i, ch)); err != nil {
					b.Fatal(err)
				}
			}
		}
		stopQuick(b, h)
		h.slack.Outage(false)
		before := len(h.slack.Calls())
		b.StartTimer()
		start := time.Now()
		h.start()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		if err := h.bot.Idle(ctx); err != nil {
			b.Fatal(err)
		}
		cancel()
		took := time.Since(start)
		b.StopTimer()
		for _, ch := range channels {
			if n := len(h.slack.Posted(ch)); n != perChannel {
				b.Fatalf("%s has %d messages, want %d", ch, n, perChannel)
			}
		}
		floor := time.Duration(perChannel-2) * time.Second // the burst of 2, then 1/s
		b.ReportMetric(took.Seconds(), "s-to-deliver")
		b.ReportMetric(floor.Seconds(), "s-floor")
		b.ReportMetric(took.Seconds()/floor.Seconds(), "x-floor")
		b.ReportMetric(float64(len(h.slack.Calls())-before), "slack-calls")
		b.ReportMetric(float64(h.slack.RateLimited()["chat.postMessage"]), "429s")
	}
}

// stopQuick stops the bot with a short deadline (Slack is down: nothing can be delivered).
func stopQuick(tb testing.TB, h *harness) {
	tb.Helper()
	h.srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_ = h.bot.Close(ctx)
	_ = h.client.Close(context.Background())
	if err := h.st.Close(); err != nil {
		tb.Fatal(err)
	}
	h.bot = nil
}
