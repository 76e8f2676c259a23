package bot

import (
	"context"
	"fmt"
	"strings"

	"github.com/slack-go/slack"

	"github.com/failover-bot/failover-bot/bot/core"
	"github.com/failover-bot/failover-bot/store"
)

// Stopping a running failover is a deliberate act, unlike withdrawing a pending request: EM's
// REST API has no undo, and a failover stopped half-way can leave a VM part failed over. So a
// stop is never one mistyped word. /failover stop or the card's Stop button opens a dialog that
// names what is running and says there is no undo; only its submission (with a reason) asks EM to
// stop, and with Options.StopApprovals 2 a second authorised person must confirm the same way.
// The stop is DELETE /tasks/{ID} in the EM logon session that created the task; afterwards the
// bot keeps following the restore session and reports what EM says happened, not what was asked.

const (
	actionStop      = "fo_stop"
	callbackStop    = "fo_stop_modal"
	blockStopWhy    = "fo_stop_reason"
	actionStopWhy   = "fo_stop_reason_input"
	stopNoUndoWords = "Enterprise Manager has *no undo* through this API: stopping does not fail back. Whatever the failover already did stays done, and the VM may be left part-way; check it in the Veeam console afterwards."
)

// stopModal names what is running and what a stop cannot do; for a halted plan, what ending its
// run skips. private_metadata ties the answer to this request and task (or halt), so a dialog
// left open cannot stop a later task or end a later halt.
func stopModal(r *store.Request, approvals int) slack.ModalViewRequest {
	md := func(s string) *slack.TextBlockObject {
		return slack.NewTextBlockObject(slack.MarkdownType, s, false, false)
	}
	if r.State == store.Halted {
		// Nothing is in flight: the stop skips what was not sent.
		what := fmt.Sprintf("*End the run of %s?*\n%s\n\nStopping ends the run here: the %d items not sent yet are *skipped*. What already failed over stays as it is (EM's API has no undo); check it in the Veeam console.",
			r.ID, core.HaltText(r), store.Counts(r)[store.Approved])
		return reasonModal(r, "Stop run "+r.ID, "Stop the run", "Keep it halted", "Why end the run?",
			slack.NewSectionBlock(md(core.Truncate(what, 2900)), nil, nil))
	}
	now := core.Counts(r) + ". Every running item with a task in the current EM logon session is asked to stop"
	if len(r.Items) == 1 {
		now = core.ItemEMText(r, &r.Items[0])
	}
	what := fmt.Sprintf("*Stop the running failover %s?*\nFailover of %s to the %s, requested by <@%s>; %s.\nNow: %s.",
		r.ID, core.TargetText(r), core.RestoreText(r.Intent, r.RestoreTime), r.Requester, core.ApprovedBy(r), now)
	who := "Submitting asks Enterprise Manager to stop it now."
	switch {
	case approvals > 1 && r.Stop == nil:
		who = "A second person (the requester or an approver, not you) must confirm before the stop is sent."
	case approvals > 1:
		who = fmt.Sprintf("<@%s> asked to stop it: “%s”. Submitting confirms, and the stop is sent now.", r.Stop.User, core.Esc(core.Truncate(r.Stop.Reason, 300)))
	}
	return reasonModal(r, "Stop "+r.ID, "Stop the failover", "Keep it running", "Why stop it?",
		slack.NewSectionBlock(md(what), nil, nil),
		slack.NewSectionBlock(md(":warning: "+stopNoUndoWords), nil, nil),
		slack.NewContextBlock("fo_stop_who", md(who)))
}

// reasonModal is the stop dialog: the blocks that say what is stopped, then the reason input.
func reasonModal(r *store.Request, title, submit, keep, placeholder string, blocks ...slack.Block) slack.ModalViewRequest {
	pt := func(s string) *slack.TextBlockObject {
		return slack.NewTextBlockObject(slack.PlainTextType, s, false, false)
	}
	input := slack.NewPlainTextInputBlockElement(pt(placeholder), actionStopWhy)
	input.Multiline = true
	input.MaxLength = 500
	return slack.ModalViewRequest{
		Type:            slack.VTModal,
		CallbackID:      callbackStop,
		PrivateMetadata: r.ID + "|" + core.StopKey(r),
		Title:           pt(title),
		Submit:          pt(submit),
		Close:           pt(keep),
		Blocks:          slack.Blocks{BlockSet: append(blocks, slack.NewInputBlock(blockStopWhy, pt("Reason"), nil, input))},
	}
}

// stopSubmission answers the stop dialog's submission.
func (b *Bot) stopSubmission(ctx context.Context, cb slack.InteractionCallback) any {
	id, task, _ := strings.Cut(cb.View.PrivateMetadata, "|")
	user := cb.User.ID
	var reason string
	if cb.View.State != nil {
		if v, ok := cb.View.State.Values[blockStopWhy][actionStopWhy]; ok {
			reason = strings.TrimSpace(v.Value)
		}
	}
	if id == "" || task == "" || user == "" {
		b.log.Warn("ignoring a stop dialog without its request, task or user")
		return nil
	}
	if reason == "" {
		return slack.NewErrorsViewSubmissionResponse(map[string]string{blockStopWhy: "Say why, so everyone in the thread knows."})
	}
	if err := b.st.Remember(ctx, viewReplayKey(cb), core.ReplayWindow); err != nil {
		b.log.Warn("stop dialog not acted on", "reason", err, "user", user, "request", id)
		return nil
	}
	b.goBackground(func(ctx context.Context) { b.core.RequestStop(ctx, id, task, user, reason) })
	return nil
}
