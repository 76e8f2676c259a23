package bot

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/slack-go/slack"

	"github.com/failover-bot/failover-bot/emapi"
	"github.com/failover-bot/failover-bot/store"
)

// HandleInteraction answers a click or a modal submission. The returned value (nil for none) is
// the body of the acknowledgement: only a modal with a validation error needs one. All other work
// runs after the acknowledgement.
func (b *Bot) HandleInteraction(ctx context.Context, cb slack.InteractionCallback) any {
	switch cb.Type {
	case slack.InteractionTypeBlockActions:
		if len(cb.ActionCallback.BlockActions) != 1 {
			b.log.Warn("ignoring block_actions with an unexpected shape", "actions", len(cb.ActionCallback.BlockActions))
			return nil
		}
		act := *cb.ActionCallback.BlockActions[0]
		user, channel := cb.User.ID, cb.Channel.ID
		switch act.ActionID {
		case actionApprove:
			id, digest, ok := strings.Cut(act.Value, "|")
			if !ok || id == "" || digest == "" {
				b.log.Warn("ignoring an approve click with a malformed value", "user", user)
				return nil
			}
			b.goBackground(func(ctx context.Context) { b.approve(ctx, id, digest, user, channel) })
		case actionReject:
			id, trigger := act.Value, cb.TriggerID
			b.goBackground(func(ctx context.Context) { b.openReject(ctx, id, user, channel, trigger) })
		default:
			b.log.Warn("ignoring an unknown action", "action", act.ActionID)
		}
		return nil
	case slack.InteractionTypeViewSubmission:
		if cb.View.CallbackID != callbackReject {
			return nil
		}
		reason := strings.TrimSpace(cb.View.State.Values[blockRejectWhy][actionRejectWhy].Value)
		if reason == "" {
			return slack.NewErrorsViewSubmissionResponse(map[string]string{blockRejectWhy: "Say why, so the requester knows what to change."})
		}
		id, user := cb.View.PrivateMetadata, cb.User.ID
		b.goBackground(func(ctx context.Context) { b.reject(ctx, id, user, reason) })
		return nil
	}
	return nil
}

// approve records one approval. The store enforces the two-person rule and the state machine;
// this checks who the person is, at click time.
func (b *Bot) approve(ctx context.Context, id, digest, user, channel string) {
	log := b.reqLog(id).With("user", user)
	if err := b.auth.canApprove(ctx, user); err != nil {
		b.clickRefused(err, channel, user, log)
		return
	}
	r, err := b.st.Approve(id, user, digest)
	if err != nil {
		b.clickRefused(b.lateApproval(id, err), channel, user, log)
		return
	}
	b.met.Approvals.Inc()
	log.Info("approval recorded", "approvals", len(r.Approvals), "required", r.ApprovalsRequired)
	b.audit(r, fmt.Sprintf("%s approved by <@%s> (%d of %d)", r.ID, user, len(r.Approvals), r.ApprovalsRequired))
	b.cardChanged(r)
	if r.State != store.Approved {
		b.out.Ephemeral(channel, user, fmt.Sprintf("Your approval of %s is recorded; it needs %d more.", r.ID, r.ApprovalsRequired-len(r.Approvals)))
		return
	}
	b.met.Requests.WithLabelValues("approved").Inc()
	b.thread(r, ":white_check_mark: "+approvedBy(r)+". Sending the failover to Enterprise Manager.")
	b.submit(ctx, r.ID)
}

// lateApproval answers an approve or reject click on a request that was already decided with
// who decided it and when ("already approved by <@U…> at 14:02 UTC"), whatever happened since.
func (b *Bot) lateApproval(id string, err error) error {
	var ce *store.ConflictError
	if !errors.As(err, &ce) || ce.Reason != store.ReasonState {
		return err
	}
	r, gerr := b.st.Get(id)
	if gerr != nil || len(r.Approvals) < r.ApprovalsRequired || r.State == store.Rejected {
		return err
	}
	a := r.Approvals[len(r.Approvals)-1]
	return &refusal{"late", fmt.Sprintf("%s is already approved by <@%s> at %s; it is now %s.",
		r.ID, a.User, a.At.UTC().Format(clockFormat), stateWords(r.State))}
}

func (b *Bot) clickRefused(err error, channel, user string, log interface{ Info(string, ...any) }) {
	var ref *refusal
	var ce *store.ConflictError
	switch {
	case errors.As(err, &ref):
		b.met.Refusals.WithLabelValues(ref.reason).Inc()
	case errors.As(err, &ce):
		b.met.Refusals.WithLabelValues(ce.Reason).Inc()
	default:
		b.met.Refusals.WithLabelValues("error").Inc()
	}
	log.Info("click refused", "reason", err)
	b.out.Ephemeral(channel, user, describe(err))
}

func (b *Bot) openReject(ctx context.Context, id, user, channel, trigger string) {
	log := b.reqLog(id).With("user", user)
	if err := b.auth.canApprove(ctx, user); err != nil {
		b.clickRefused(err, channel, user, log)
		return
	}
	r, err := b.st.Get(id)
	if err != nil {
		b.clickRefused(err, channel, user, log)
		return
	}
	if r.State != store.Pending {
		b.clickRefused(b.lateApproval(id, &store.ConflictError{ID: r.ID, State: r.State, By: r.StateBy, At: r.StateAt, Op: "reject", Reason: store.ReasonState}), channel, user, log)
		return
	}
	if _, err := b.api.OpenViewContext(ctx, trigger, rejectModal(r)); err != nil {
		log.Warn("reject dialog could not be opened", "error", err)
		b.out.Ephemeral(channel, user, fmt.Sprintf("I could not open the reject dialog (%v). Click Reject again.", err))
	}
}

func (b *Bot) reject(ctx context.Context, id, user, reason string) {
	log := b.reqLog(id).With("user", user)
	if err := b.auth.canApprove(ctx, user); err != nil {
		log.Info("reject refused", "reason", err)
		return
	}
	r, err := b.st.Reject(id, user, reason)
	if err != nil {
		log.Info("reject refused", "reason", err)
		if cur, gerr := b.st.Get(id); gerr == nil && cur.Channel != "" {
			b.out.Ephemeral(cur.Channel, user, describe(b.lateApproval(id, err)))
		}
		return
	}
	b.met.Requests.WithLabelValues("rejected").Inc()
	log.Info("request rejected")
	b.cardChanged(r)
	b.thread(r, fmt.Sprintf(":no_entry: Rejected by <@%s>: %s", user, esc(reason)))
	b.audit(r, fmt.Sprintf("%s rejected by <@%s>: %s", r.ID, user, esc(truncate(reason, 300))))
}

// submit sends the failover for an approved request, exactly once. "submitting" is stored before
// the POST, so a crash between the two leaves evidence that the POST may have gone out, and the
// request is reconciled instead of sent again.
func (b *Bot) submit(ctx context.Context, id string) {
	if !b.claim(id) {
		return
	}
	defer b.release(id)
	log := b.reqLog(id)
	r, err := b.st.Get(id)
	if err != nil || r.State != store.Approved {
		return
	}
	r, err = b.st.Transition(store.Change{ID: id, Version: r.Version, From: []store.State{store.Approved},
		To: store.Submitting, Actor: "bot", Action: "submitting", Details: "sending the failover to Enterprise Manager"})
	if err != nil {
		log.Info("submission not started", "reason", err)
		return
	}
	b.cardChanged(r)
	ctx, cancel := context.WithTimeout(ctx, b.opt.EMTimeout)
	defer cancel()
	intent := emapi.RestoreIntent{Kind: intentKind(r.Intent), Time: r.RestoreTime}
	var task *emapi.Task
	if r.Kind == store.KindVApp {
		task, err = b.em.StartVAppFailover(ctx, r.Target.ID, intent)
	} else {
		task, err = b.em.StartVMFailover(ctx, r.Target.ReplicaID, r.Target.ID, intent)
	}
	if err != nil {
		b.submitFailed(r, err)
		return
	}
	r, err = b.st.Transition(store.Change{ID: id, From: []store.State{store.Submitting}, To: store.Running,
		Actor: "em", Action: "submitted", Details: "EM task " + task.ID + " " + task.State,
		Apply: func(r *store.Request) {
			r.TaskID, r.EMState = task.ID, task.State
			if task.RestoreSessionID != "" {
				r.RestoreSessionID = task.RestoreSessionID
			}
		}})
	if err != nil {
		// The failover is running in EM but we could not record its task: say so loudly, keep
		// "submitting" so the poller reconciles through the restore sessions.
		log.Error("failover started but its task ID could not be stored", "task", task.ID, "error", err)
		b.thread(r, fmt.Sprintf(":warning: Enterprise Manager started the failover (task %s), but I could not record it (%v). I will look for its restore session; check EM if this thread stays quiet.", task.ID, err))
		return
	}
	b.met.Requests.WithLabelValues("submitted").Inc()
	log.Info("failover submitted", "task", task.ID)
	b.cardChanged(r)
	b.thread(r, fmt.Sprintf(":rocket: Enterprise Manager accepted the failover: task %s is %s. I will post every change here.", task.ID, task.State))
	b.audit(r, fmt.Sprintf("%s submitted to Enterprise Manager: task %s", r.ID, task.ID))
}

// submitFailed handles a failover POST that did not return a task. When EM answered, the
// failover did not start and the request fails with EM's words. When the answer was lost
// (timeout, network), EM may have started it: the request stays "submitting" for the poller to
// reconcile, and is never sent again.
func (b *Bot) submitFailed(r *store.Request, err error) {
	log := b.reqLog(r.ID)
	switch emapi.KindOf(err) {
	case emapi.KindTimeout, emapi.KindTransport, emapi.KindUnknown:
		log.Error("failover POST outcome unknown", "error", err)
		b.thread(r, ":warning: I sent the failover but got no answer from Enterprise Manager ("+describe(err)+"). It may or may not have started. I will not send it again; I am looking for its restore session and will report here.")
		b.audit(r, fmt.Sprintf("%s: failover POST got no answer (%s); reconciling", r.ID, describe(err)))
		return
	}
	msg := describe(err)
	f, terr := b.st.Transition(store.Change{ID: r.ID, From: []store.State{store.Submitting}, To: store.Failed,
		Actor: "em", Action: "error", Details: msg,
		Apply: func(r *store.Request) { r.EMMessage = emMessage(err) }})
	if terr != nil {
		log.Error("could not record the failed submission", "error", terr)
	} else {
		r = f
	}
	b.met.Requests.WithLabelValues("failed").Inc()
	log.Error("failover refused by EM", "error", err)
	b.cardChanged(r)
	b.thread(r, ":red_circle: The failover was not started. "+msg)
	b.audit(r, fmt.Sprintf("%s failed to start: %s", r.ID, msg))
}

func emMessage(err error) string {
	var ee *emapi.Error
	if errors.As(err, &ee) && ee.Message != "" {
		return ee.Message
	}
	return describe(err)
}

func intentKind(i store.Intent) emapi.IntentKind {
	switch i {
	case store.IntentLatestVSS:
		return emapi.IntentLatestVSS
	case store.IntentPointInTime:
		return emapi.IntentPointInTime
	case store.IntentInterval:
		return emapi.IntentInterval
	}
	return emapi.IntentLatest
}

// cardChanged updates the request's card to its current state.
func (b *Bot) cardChanged(r *store.Request) {
	if r.Channel == "" || r.MessageTS == "" {
		return
	}
	b.out.Update(r.Channel, r.MessageTS, cardText(r), cardBlocks(r))
}

// thread posts a reply in the card's thread (or in the channel when the card is unknown).
func (b *Bot) thread(r *store.Request, text string) {
	if r.Channel == "" {
		return
	}
	b.out.Reply(r.Channel, r.MessageTS, text)
}

// audit posts one event to the audit channel, linked to the card. The store has already written
// the same event to its audit log in the transaction that made the change.
func (b *Bot) audit(r *store.Request, text string) {
	if b.opt.AuditChannel == "" {
		return
	}
	if link := permalink(b.opt.WorkspaceURL, r.Channel, r.MessageTS); link != "" {
		text += " — <" + link + "|card>"
	} else if r.Channel != "" {
		text += " — in <#" + r.Channel + ">"
	}
	b.out.Reply(b.opt.AuditChannel, "", text)
}
