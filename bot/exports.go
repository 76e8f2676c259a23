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

// RequesterNotes is the store's projection of a change onto what its requester is told
// (store.Options.Requester), by a mention in the thread or, with mode "dm", a direct message.
func RequesterNotes(mode string) func(r *store.Request, e *store.Event, told bool) (mention, direct string) {
	return core.RequesterNotes(mode)
}
