package bot

import (
	"fmt"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/failover-bot/failover-bot/store"
)

// Block and action IDs are part of the protocol with Slack: clicks come back carrying them.
const (
	blockCard       = "fo_card"
	blockStatus     = "fo_status"
	blockActions    = "fo_actions"
	actionApprove   = "fo_approve"
	actionReject    = "fo_reject"
	callbackReject  = "fo_reject_modal"
	blockRejectWhy  = "fo_reject_reason"
	actionRejectWhy = "fo_reject_reason_input"
)

// Times shown to people are always UTC, to the minute in status lines and to the second where a
// restore point is concerned.
const (
	clockFormat = "15:04 UTC"
	dayFormat   = "2006-01-02 15:04 UTC"
	pointFormat = "2006-01-02 15:04:05 UTC"
)

// esc makes user-typed text safe inside Slack mrkdwn: &, < and > are control characters there.
func esc(s string) string {
	return slackEscaper.Replace(s)
}

// slackEscaper is built once: a Replacer prepares its lookup table on first use, and esc runs
// for every name on every card, ack and thread line (it was 5% of the CPU of a burst of
// /failover vm requests when the Replacer was rebuilt per call).
var slackEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// targetText says what fails over, with names and IDs.
func targetText(r *store.Request) string {
	if r.Kind == store.KindVApp {
		return fmt.Sprintf("vApp *%s* (`%s`)", esc(r.Target.Name), r.Target.ID)
	}
	return fmt.Sprintf("VM *%s* (`%s`) from CDP replica *%s* (`%s`)",
		esc(r.Target.Name), r.Target.ID, esc(r.Target.ReplicaName), r.Target.ReplicaID)
}

func targetName(r *store.Request) string { return r.Target.Name }

// restoreText describes the restore point in words an approver can check.
func restoreText(intent store.Intent, t time.Time) string {
	switch intent {
	case store.IntentLatestVSS:
		return "latest application-consistent (VSS) restore point"
	case store.IntentPointInTime:
		return "newest replicated state before " + t.UTC().Format(pointFormat)
	case store.IntentInterval:
		return "newest restore point of the interval containing " + t.UTC().Format(pointFormat)
	default:
		return "latest crash-consistent state"
	}
}

// statusLine is the card's one-line summary of where the request is.
func statusLine(r *store.Request) string {
	switch r.State {
	case store.Pending:
		return fmt.Sprintf(":hourglass_flowing_sand: Waiting for approval (%d of %d) — expires %s",
			len(r.Approvals), r.ApprovalsRequired, r.ExpiresAt.UTC().Format(dayFormat))
	case store.Approved:
		if r.EMMessage != "" {
			return ":hourglass: " + approvedBy(r) + " — " + esc(r.EMMessage)
		}
		return ":white_check_mark: " + approvedBy(r) + " — sending to Enterprise Manager"
	case store.Submitting:
		return ":outbox_tray: " + approvedBy(r) + " — sending the failover to Enterprise Manager"
	case store.Running:
		if r.Stop != nil {
			return fmt.Sprintf(":arrows_counterclockwise: Failover running — %s — <@%s> asked to stop it at %s; waiting for a second person to confirm", emText(r), r.Stop.User, r.Stop.At.UTC().Format(clockFormat))
		}
		return ":arrows_counterclockwise: Failover running — " + emText(r)
	case store.Stopping:
		return fmt.Sprintf(":octagonal_sign: Stop requested by <@%s> at %s — %s", r.StateBy, r.StateAt.UTC().Format(clockFormat), emText(r))
	case store.Succeeded:
		return ":large_green_circle: Failover succeeded — " + emText(r)
	case store.Warning:
		return ":large_yellow_circle: Failover finished with warnings — " + emText(r)
	case store.Failed:
		return ":red_circle: Failover failed — " + emText(r)
	case store.Stopped:
		return ":black_square_for_stop: Stopped — " + emText(r)
	case store.Rejected:
		if r.Rejection != nil {
			return fmt.Sprintf(":no_entry: Rejected by <@%s> at %s: %s", r.Rejection.User, r.Rejection.At.UTC().Format(clockFormat), esc(r.Rejection.Reason))
		}
		return ":no_entry: Rejected"
	case store.Expired:
		return fmt.Sprintf(":alarm_clock: Expired at %s without enough approvals; nothing was sent to Enterprise Manager", r.StateAt.UTC().Format(clockFormat))
	case store.Withdrawn:
		return fmt.Sprintf(":leftwards_arrow_with_hook: Withdrawn by <@%s> at %s; nothing was sent to Enterprise Manager", r.StateBy, r.StateAt.UTC().Format(clockFormat))
	case store.Unknown:
		return ":warning: Outcome unknown — check Enterprise Manager (" + emText(r) + ")"
	}
	return string(r.State)
}

func approvedBy(r *store.Request) string {
	if len(r.Approvals) == 0 {
		return "Approved"
	}
	parts := make([]string, len(r.Approvals))
	for i, a := range r.Approvals {
		parts[i] = fmt.Sprintf("<@%s> at %s", a.User, a.At.UTC().Format(clockFormat))
	}
	return "Approved by " + strings.Join(parts, ", ")
}

// emText summarises what EM last told us.
func emText(r *store.Request) string {
	var parts []string
	if r.TaskID != "" {
		parts = append(parts, "EM task "+r.TaskID)
	}
	if r.EMState != "" {
		s := r.EMState
		if r.EMProgress > 0 && r.EMProgress < 100 {
			s += fmt.Sprintf(" %d%%", r.EMProgress)
		}
		parts = append(parts, s)
	}
	if r.EMResult != "" && r.EMResult != "None" {
		parts = append(parts, "result "+r.EMResult)
	}
	if r.EMMessage != "" {
		parts = append(parts, "“"+esc(truncate(r.EMMessage, 300))+"”")
	}
	if len(parts) == 0 {
		return "no answer from EM yet"
	}
	return strings.Join(parts, ", ")
}

// cardText is the notification text of a card (shown where blocks are not).
func cardText(r *store.Request) string {
	return fmt.Sprintf("Failover request %s for %s: %s", r.ID, targetName(r), stripEmoji(statusLine(r)))
}

func stripEmoji(s string) string {
	if strings.HasPrefix(s, ":") {
		if i := strings.Index(s[1:], ": "); i >= 0 {
			return s[i+3:]
		}
	}
	return s
}

// cardBlocks renders the approval card. Approve and Reject exist only while the request is
// pending; Stop (which opens a confirmation dialog) only while its failover runs.
func cardBlocks(r *store.Request) []slack.Block {
	md := func(s string) *slack.TextBlockObject {
		return slack.NewTextBlockObject(slack.MarkdownType, s, false, false)
	}
	pt := func(s string) *slack.TextBlockObject {
		return slack.NewTextBlockObject(slack.PlainTextType, s, false, false)
	}
	restore := restoreText(r.Intent, r.RestoreTime)
	blocks := []slack.Block{
		slack.NewHeaderBlock(pt("Failover request " + r.ID)),
		slack.NewSectionBlock(md("Fail over "+targetText(r)), []*slack.TextBlockObject{
			md("*Restore point*\n" + restore),
			md(fmt.Sprintf("*Requested by*\n<@%s> at %s", r.Requester, r.CreatedAt.UTC().Format(dayFormat))),
			md("*Reason*\n" + esc(truncate(r.Reason, 500))),
			md(fmt.Sprintf("*Approvals needed*\n%d, from someone other than the requester", r.ApprovalsRequired)),
		}, nil, slack.SectionBlockOptionBlockID(blockCard)),
	}
	if r.State != store.Pending && len(r.Approvals) > 0 {
		// Once decided, the buttons give way to who approved and when.
		blocks = append(blocks, slack.NewContextBlock("fo_approvals", md(":white_check_mark: "+approvedBy(r))))
	}
	blocks = append(blocks, slack.NewContextBlock(blockStatus, md(truncate(statusLine(r), 2900))))
	if r.State == store.Pending {
		confirm := slack.NewConfirmationBlockObject(
			pt("Start this failover?"),
			md(fmt.Sprintf("Approving sends the failover of %s to Veeam Enterprise Manager now, restoring the %s. It cannot be undone from Slack.", targetText(r), restore)),
			pt("Approve and start"), pt("Cancel"))
		approve := slack.NewButtonBlockElement(actionApprove, r.ID+"|"+r.Digest, pt("Approve")).
			WithStyle(slack.StylePrimary).WithConfirm(confirm)
		reject := slack.NewButtonBlockElement(actionReject, r.ID, pt("Reject")).WithStyle(slack.StyleDanger)
		blocks = append(blocks, slack.NewActionBlock(blockActions, approve, reject))
	}
	if r.State == store.Running && r.TaskID != "" {
		// Opens the stop dialog; nothing is stopped by the click itself.
		label := "Stop…"
		if r.Stop != nil {
			label = "Confirm stop…"
		}
		blocks = append(blocks, slack.NewActionBlock(blockActions, slack.NewButtonBlockElement(actionStop, r.ID, pt(label)).WithStyle(slack.StyleDanger)))
	}
	return blocks
}

// rejectModal asks an approver why they reject.
func rejectModal(r *store.Request) slack.ModalViewRequest {
	pt := func(s string) *slack.TextBlockObject {
		return slack.NewTextBlockObject(slack.PlainTextType, s, false, false)
	}
	input := slack.NewPlainTextInputBlockElement(pt("Why is this failover rejected?"), actionRejectWhy)
	input.Multiline = true
	input.MaxLength = 500
	return slack.ModalViewRequest{
		Type:            slack.VTModal,
		CallbackID:      callbackReject,
		PrivateMetadata: r.ID,
		Title:           pt("Reject " + r.ID),
		Submit:          pt("Reject"),
		Close:           pt("Cancel"),
		Blocks: slack.Blocks{BlockSet: []slack.Block{
			slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, "Reject the failover of "+targetText(r)+"?", false, false), nil, nil),
			slack.NewInputBlock(blockRejectWhy, pt("Reason"), nil, input),
		}},
	}
}

// requestSummary is the text of /failover status.
func requestSummary(r *store.Request) string {
	var b strings.Builder
	fmt.Fprintf(&b, "*%s* — %s\n", r.ID, statusLine(r))
	fmt.Fprintf(&b, "Fail over %s to the %s.\n", targetText(r), restoreText(r.Intent, r.RestoreTime))
	fmt.Fprintf(&b, "Requested by <@%s> at %s: %s\n", r.Requester, r.CreatedAt.UTC().Format(dayFormat), esc(truncate(r.Reason, 300)))
	if len(r.Approvals) > 0 {
		fmt.Fprintf(&b, "%s.\n", approvedBy(r))
	}
	if r.TaskID != "" || r.RestoreSessionID != "" {
		fmt.Fprintf(&b, "EM task `%s`, restore session `%s`.\n", orDash(r.TaskID), orDash(r.RestoreSessionID))
	}
	return strings.TrimSpace(b.String())
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

// listText is the text of /failover list.
func listText(reqs []*store.Request) string {
	if len(reqs) == 0 {
		return "No pending or active failover requests."
	}
	var b strings.Builder
	fmt.Fprintf(&b, "*%d pending or active failover requests*\n", len(reqs))
	for i, r := range reqs {
		if i == 40 {
			fmt.Fprintf(&b, "…and %d more (use `/failover status <id>`).", len(reqs)-40)
			break
		}
		fmt.Fprintf(&b, "• *%s* %s — %s\n", r.ID, esc(targetName(r)), statusLine(r))
	}
	return strings.TrimSpace(b.String())
}

// permalink links to a card, given the workspace URL from auth.test.
func permalink(workspaceURL, channel, ts string) string {
	if workspaceURL == "" || channel == "" || ts == "" {
		return ""
	}
	return strings.TrimSuffix(workspaceURL, "/") + "/archives/" + channel + "/p" + strings.Replace(ts, ".", "", 1)
}
