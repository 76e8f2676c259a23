package bot

import (
	"github.com/failover-bot/failover-bot/bot/core"
	"github.com/failover-bot/failover-bot/store"
)

// ThreadLine is the store's projection of a change onto its card's thread (store.Options.Thread):
// the use cases' words, queued in the same transaction as the change.
func ThreadLine(r *store.Request, e *store.Event) string { return core.ThreadLine(r, e) }

// HelpText is the full usage of /failover in Slack mrkdwn.
func HelpText() string { return helpText }
