package bot

import (
	"context"
	"fmt"
	"time"

	"github.com/failover-bot/failover-bot/bot/core"
)

// SlackBacklog is what Slack is owed at one moment: what the transactional outbox holds for it,
// plus the best-effort ephemeral answers queued in memory.
type SlackBacklog struct {
	Messages    int `json:"messages"`     // thread lines and notices queued in the store
	Cards       int `json:"cards"`        // cards never posted, or posted but older than their request
	AuditEvents int `json:"audit_events"` // audit events not yet in AUDIT_CHANNEL
	Ephemeral   int `json:"ephemeral"`    // ephemeral answers queued or being sent
	// Oldest is when the oldest queued message was queued, or the oldest unposted card's request
	// was made, whichever is earlier (zero when neither is owed). Stale cards and audit events
	// carry no such time; their counts say that they wait.
	Oldest time.Time `json:"oldest,omitzero"`
}

// slackBacklog reads the backlog from the store: counts from its indexes, and the oldest item of
// each channel's queue (every queue is in commit order, so its head is its oldest). The cost
// grows with the number of channels owed something, not with the backlog.
func (b *Bot) slackBacklog(ctx context.Context) (SlackBacklog, error) {
	var bl SlackBacklog
	var err error
	bl.Messages, bl.Cards, bl.AuditEvents, err = b.st.Backlog(ctx, b.opt.AuditChannel, core.ShowInAuditChannel)
	if err != nil {
		return bl, fmt.Errorf("counting the backlog: %w", err)
	}
	bl.Ephemeral = b.out.Pending()
	older := func(t time.Time) {
		if !t.IsZero() && (bl.Oldest.IsZero() || t.Before(bl.Oldest)) {
			bl.Oldest = t
		}
	}
	chans, err := b.st.OutboxChannels(ctx)
	if err != nil {
		return bl, fmt.Errorf("listing the outbox: %w", err)
	}
	for _, ch := range chans {
		msgs, err := b.st.Outbox(ctx, ch, 1)
		if err != nil {
			return bl, fmt.Errorf("reading the outbox: %w", err)
		}
		if len(msgs) > 0 {
			older(msgs[0].At)
		}
	}
	if chans, err = b.st.UnpostedChannels(ctx); err != nil {
		return bl, fmt.Errorf("listing unposted cards: %w", err)
	}
	for _, ch := range chans {
		cards, err := b.st.UnpostedCards(ctx, ch, 1)
		if err != nil {
			return bl, fmt.Errorf("reading unposted cards: %w", err)
		}
		if len(cards) > 0 {
			older(cards[0].Request.CreatedAt)
		}
	}
	return bl, nil
}
