package bot

import (
	"fmt"
	"strings"

	"github.com/slack-go/slack"

	"github.com/failover-bot/failover-bot/bot/core"
	"github.com/failover-bot/failover-bot/store"
)

// Block and action IDs are part of the protocol with Slack: clicks come back carrying them.
const (
	blockCard       = "fo_card"
	blockStatus     = "fo_status"
	blockActions    = "fo_actions"
	actionApprove   = "fo_approve"
	actionReject    = "fo_reject"
	actionRetry     = "fo_retry"
	actionContinue  = "fo_continue"
	callbackReject  = "fo_reject_modal"
	blockRejectWhy  = "fo_reject_reason"
	actionRejectWhy = "fo_reject_reason_input"
)

// cardBlocks renders the approval card. Approve and Reject exist only while the request is
// pending; Stop (which opens a confirmation dialog) only while its failover runs. approvers
// names who can still approve (mentions, never the requester): a pending card calls them.
func cardBlocks(r *store.Request, approvers string) []slack.Block {
	md := func(s string) *slack.TextBlockObject {
		return slack.NewTextBlockObject(slack.MarkdownType, s, false, false)
	}
	pt := func(s string) *slack.TextBlockObject {
		return slack.NewTextBlockObject(slack.PlainTextType, s, false, false)
	}
	restore := core.RestoreText(r.Intent, r.RestoreTime)
	blocks := []slack.Block{
		slack.NewHeaderBlock(pt("Failover request " + r.ID)),
		slack.NewSectionBlock(md("Fail over "+core.TargetText(r)), []*slack.TextBlockObject{
			md("*Restore point*\n" + restore),
			md(fmt.Sprintf("*Requested by*\n<@%s> at %s", r.Requester, r.CreatedAt.UTC().Format(core.DayFormat))),
			md("*Reason*\n" + core.Esc(core.Truncate(r.Reason, 500))),
			md(approvalsField(r, approvers)),
		}, nil, slack.SectionBlockOptionBlockID(blockCard)),
	}
	if pv := core.PreviewText(r); pv != "" {
		blocks = append(blocks, slack.NewContextBlock("fo_preview", md(core.Truncate(pv, 2900))))
	}
	if r.Scope != "" || r.RetryOf != "" {
		what := "Asked for: " + core.Esc(r.Scope)
		if r.RetryOf != "" {
			what = fmt.Sprintf("Retries the items of *%s* that did not succeed", r.RetryOf)
		}
		blocks = append(blocks, slack.NewContextBlock("fo_scope", md(core.Truncate(what, 2900))))
	}
	if len(r.Excluded) > 0 {
		blocks = append(blocks, slack.NewSectionBlock(md(core.Truncate(fmt.Sprintf("*Left out (%d), not part of this request*\n%s",
			len(r.Excluded), core.ExclusionText(r.Excluded, 15)), 2900)), nil, nil, slack.SectionBlockOptionBlockID("fo_excluded")))
	}
	switch {
	case r.IsPlan():
		// The approver sees the run order before approving: groups, items, restore points.
		blocks = append(blocks, planTable(r)...)
	case len(r.Items) > 1 && r.State != store.Pending:
		blocks = append(blocks, itemTable(r)...)
	}
	if r.State != store.Pending && len(r.Approvals) > 0 {
		// Once decided, the buttons give way to who approved and when.
		blocks = append(blocks, slack.NewContextBlock("fo_approvals", md(":white_check_mark: "+core.ApprovedBy(r))))
	}
	blocks = append(blocks, slack.NewContextBlock(blockStatus, md(core.Truncate(core.StatusLine(r), 2900))))
	if r.State == store.Pending {
		confirm := slack.NewConfirmationBlockObject(
			pt("Start this failover?"),
			md(fmt.Sprintf("Approving sends the failover of %s to Veeam Enterprise Manager now, restoring the %s. It cannot be undone from Slack.", core.TargetText(r), restore)),
			pt("Approve and start"), pt("Cancel"))
		approve := slack.NewButtonBlockElement(actionApprove, r.ID+"|"+r.Digest, pt("Approve")).
			WithStyle(slack.StylePrimary).WithConfirm(confirm)
		reject := slack.NewButtonBlockElement(actionReject, r.ID, pt("Reject")).WithStyle(slack.StyleDanger)
		blocks = append(blocks, slack.NewActionBlock(blockActions, approve, reject))
	}
	if n := len(core.Retryable(r)); n > 0 && r.State.Terminal() {
		// A new, linked request with just these items; it needs its own approval.
		label := "Retry failed items"
		if len(r.Items) == 1 {
			label = "Retry…"
		}
		blocks = append(blocks, slack.NewActionBlock(blockActions, slack.NewButtonBlockElement(actionRetry, r.ID, pt(fmt.Sprintf("%s (%d)", label, n)))))
	}
	if r.State == store.Halted && r.Halt != nil {
		next := r.Groups[min(r.Halt.Group+1, len(r.Groups)-1)].Name
		confirm := slack.NewConfirmationBlockObject(
			pt("Continue despite the failure?"),
			md(fmt.Sprintf("Continuing starts group %d (%s) of %s although critical items of group %d did not succeed. Your decision is recorded in the audit log.", r.Halt.Group+2, core.Esc(next), r.ID, r.Halt.Group+1)),
			pt("Continue"), pt("Cancel"))
		cont := slack.NewButtonBlockElement(actionContinue, fmt.Sprintf("%s|%d", r.ID, r.Halt.Group), pt("Continue")).
			WithStyle(slack.StylePrimary).WithConfirm(confirm)
		stop := slack.NewButtonBlockElement(actionStop, r.ID, pt("Stop run…")).WithStyle(slack.StyleDanger)
		blocks = append(blocks, slack.NewActionBlock(blockActions, cont, stop))
	}
	if r.State == store.Running && core.HasTask(r) {
		// Opens the stop dialog; nothing is stopped by the click itself.
		label := "Stop…"
		if r.Stop != nil {
			label = "Confirm stop…"
		}
		blocks = append(blocks, slack.NewActionBlock(blockActions, slack.NewButtonBlockElement(actionStop, r.ID, pt(label)).WithStyle(slack.StyleDanger)))
	}
	return blocks
}

// approvalsField says who must decide: while pending, the approvers who can still approve
// (mentioned, so the card calls them) and who approved so far.
func approvalsField(r *store.Request, approvers string) string {
	if r.State != store.Pending {
		return fmt.Sprintf("*Approvals needed*\n%d, from someone other than the requester", r.ApprovalsRequired)
	}
	s := fmt.Sprintf("*Approvers*\n%s — %d of %d approvals", approvers, len(r.Approvals), r.ApprovalsRequired)
	if len(r.Approvals) > 0 {
		s += "; " + core.ApprovedBy(r)
	}
	return s
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
			slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, "Reject the failover of "+core.TargetText(r)+"?", false, false), nil, nil),
			slack.NewInputBlock(blockRejectWhy, pt("Reason"), nil, input),
		}},
	}
}

// Slack's limits on a card: 50 blocks, 3,000 characters per section. The item table keeps well
// inside them: at most tableSections sections, and beyond tableRows items only the rows that
// need eyes (everything not succeeded) are listed.
const (
	tableSections = 20
	tableRows     = 100
	sectionChars  = 2900
)

// itemTable renders a request's items as rows (name, state, progress, restore point, EM's
// message) in monospace sections.
func itemTable(r *store.Request) []slack.Block {
	var rows []string
	hidden := 0
	for i := range r.Items {
		l := &r.Items[i]
		st := l.State
		if len(r.Items) > tableRows && (st == store.Succeeded || st == store.Warning) {
			hidden++
			continue
		}
		rows = append(rows, itemRow(l))
	}
	md := func(s string) *slack.TextBlockObject {
		return slack.NewTextBlockObject(slack.MarkdownType, s, false, false)
	}
	blocks := []slack.Block{slack.NewSectionBlock(md(fmt.Sprintf("*Items (%d)*: %s", len(r.Items), core.Counts(r))), nil, nil, slack.SectionBlockOptionBlockID("fo_counts"))}
	var cur []string
	size := 0
	flush := func() {
		if len(cur) > 0 {
			blocks = append(blocks, slack.NewSectionBlock(md("```"+core.Esc(strings.Join(cur, "\n"))+"```"), nil, nil))
			cur, size = nil, 0
		}
	}
	for i, row := range rows {
		if size+len(row)+8 > sectionChars {
			flush()
		}
		if len(blocks) == tableSections {
			hidden += len(rows) - i
			break
		}
		cur = append(cur, row)
		size += len(row) + 1
	}
	flush()
	if hidden > 0 {
		blocks = append(blocks, slack.NewContextBlock("fo_table_more", md(fmt.Sprintf("%d more items not listed (succeeded items first); `/failover status %s` lists every failure.", hidden, r.ID))))
	}
	return blocks
}

// planRows is how many item rows a plan's card shows per group; the rest are counted (every
// failure is in the thread and in /failover status).
const planRows = 20

// planTable renders a plan request's groups in order, each with its counts and its items, the
// current group marked. One section per group keeps a 50-group plan inside Slack's limits.
func planTable(r *store.Request) []slack.Block {
	md := func(s string) *slack.TextBlockObject {
		return slack.NewTextBlockObject(slack.MarkdownType, s, false, false)
	}
	blocks := []slack.Block{slack.NewSectionBlock(md(fmt.Sprintf("*Plan %s* — %d groups, %d items: %s", core.Esc(r.Plan), len(r.Groups), len(r.Items), core.Counts(r))),
		nil, nil, slack.SectionBlockOptionBlockID("fo_counts"))}
	for gi := range r.Groups {
		if len(blocks) == tableSections {
			blocks = append(blocks, slack.NewContextBlock("fo_table_more", md(fmt.Sprintf("%d more groups not shown; `/failover status %s` lists them.", len(r.Groups)-gi, r.ID))))
			break
		}
		var rows []string
		idx := r.GroupItems(gi)
		hidden := 0
		for _, i := range idx {
			it := &r.Items[i]
			if len(idx) > planRows && (it.State == store.Succeeded || it.State == store.Warning || it.State == store.Pending) {
				hidden++
				continue
			}
			rows = append(rows, itemRow(it))
		}
		if len(rows) > planRows {
			hidden += len(rows) - planRows
			rows = rows[:planRows]
		}
		text := core.GroupTitle(r, gi)
		if len(rows) > 0 {
			text += "\n```" + core.Esc(strings.Join(rows, "\n")) + "```"
		}
		if hidden > 0 {
			text += fmt.Sprintf("\n%d more items not listed", hidden)
		}
		blocks = append(blocks, slack.NewSectionBlock(md(core.Truncate(text, sectionChars)), nil, nil))
	}
	return blocks
}

// itemRow is one item's row: name, state, progress, restore point, EM's message, and
// "(opt)" for an optional item of a plan.
func itemRow(l *store.Item) string {
	st := l.State
	name := core.Truncate(l.Target.Name, 16)
	if l.Optional {
		name = core.Truncate(l.Target.Name, 10) + " (opt)"
	}
	row := fmt.Sprintf("%-16s %-10s", name, core.ItemWords(st))
	if l.EMProgress > 0 && l.EMProgress < 100 {
		row += fmt.Sprintf(" %3d%%", l.EMProgress)
	} else {
		row += "     "
	}
	if !l.Point.IsZero() {
		row += " " + l.Point.UTC().Format("15:04:05")
	}
	if l.EMMessage != "" && st != store.Succeeded {
		row += " " + core.Truncate(strings.ReplaceAll(l.EMMessage, "`", "'"), 60)
	}
	return row
}
