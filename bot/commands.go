package bot

import (
	"context"
	"errors"

	"github.com/failover-bot/failover-bot/bot/core"
	"github.com/slack-go/slack"
)

// HandleCommand answers a /failover command. It does only what the answer needs (parse,
// authorise, resolve names, record the request) and leaves Slack posts to background work, so it
// returns well within Slack's 3 seconds.
func (b *Bot) HandleCommand(ctx context.Context, sc slack.SlashCommand) Response {
	if !b.teamAllowed(sc.TeamID, sc.EnterpriseID) {
		b.met.Refusals.WithLabelValues("team").Inc()
		b.log.Warn("slash command from another workspace refused", "team", sc.TeamID, "enterprise", sc.EnterpriseID, "user", sc.UserID)
		return ephemeral(foreignTeamText)
	}
	// Before the use cases run: the audit event this command writes records the name.
	b.names.FromPayload(sc.UserID, sc.UserName)
	cmd, err := core.ParseCommand(sc.Text, b.now())
	if err != nil {
		var ue *core.UsageError
		if errors.As(err, &ue) {
			b.met.Refusals.WithLabelValues("usage").Inc()
			// Escaped for mrkdwn: Slack would swallow <vm> as a link, and a mistyped command
			// echoed back must never ping anyone (<!channel>).
			return ephemeral(core.Esc(ue.Msg) + "\n\nUsage:\n" + core.Esc(ue.Usage))
		}
		return ephemeral(core.Describe(err))
	}
	in := core.Invocation{User: sc.UserID, Channel: sc.ChannelID, ResponseURL: sc.ResponseURL, TriggerID: sc.TriggerID,
		ReplayKey: commandReplayKey(sc)}
	switch cmd.Sub {
	case core.SubVM, core.SubVApp, core.SubReplica, core.SubPlan:
		return b.core.Request(ctx, in, cmd)
	case core.SubPlans:
		return b.core.Plans()
	case core.SubStatus:
		return b.core.Status(ctx, cmd.RequestID)
	case core.SubList:
		return b.core.List(ctx, cmd)
	case core.SubCancel:
		return b.core.Cancel(ctx, in, cmd)
	case core.SubStop:
		return b.core.Stop(ctx, in, cmd)
	}
	return ephemeral(helpText)
}

// Response is the answer to a slash command (see core.Response).
type Response = core.Response

func ephemeral(text string) Response { return core.Ephemeral(text) }

// commandReplayKey identifies one slash-command invocation. Slack gives each its own
// trigger_id (the same in a redelivery or a replay of the captured body); response_url is as
// unique and is the fallback.
func commandReplayKey(sc slack.SlashCommand) string {
	if sc.TriggerID != "" {
		return "cmd:" + sc.TriggerID
	}
	return "cmd:" + hashKey(sc.TeamID, sc.ChannelID, sc.UserID, sc.Text, sc.ResponseURL)
}

// helpText is the help, escaped for mrkdwn once (its <placeholders> must show in Slack).
var helpText = core.Esc(core.HelpText())
