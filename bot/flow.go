package bot

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/slack-go/slack"

	"github.com/failover-bot/failover-bot/emapi"
	"github.com/failover-bot/failover-bot/store"
)

// HandleInteraction answers a click or a modal submission. The returned value (nil for none) is
// the body of the acknowledgement: only a modal with a validation error needs one. All other work
// runs after the acknowledgement. Every payload is checked before it is acted on: its shape, its
// workspace, that it was not already received, and that a button belongs to the card it is on.
func (b *Bot) HandleInteraction(ctx context.Context, cb slack.InteractionCallback) any {
	if !b.teamAllowed(cb.Team.ID, cb.Enterprise.ID) {
		b.met.Refusals.WithLabelValues("team").Inc()
		b.log.Warn("interaction from another workspace refused", "team", cb.Team.ID, "user", cb.User.ID)
		return nil
	}
	switch cb.Type {
	case slack.InteractionTypeBlockActions:
		return b.blockAction(ctx, cb)
	case slack.InteractionTypeViewSubmission:
		return b.viewSubmission(ctx, cb)
	}
	b.log.Info("ignoring an interaction of an unhandled type", "type", cb.Type)
	return nil
}

func (b *Bot) blockAction(ctx context.Context, cb slack.InteractionCallback) any {
	if len(cb.ActionCallback.BlockActions) != 1 || cb.ActionCallback.BlockActions[0] == nil || cb.User.ID == "" {
		b.log.Warn("ignoring block_actions with an unexpected shape", "actions", len(cb.ActionCallback.BlockActions), "user", cb.User.ID)
		return nil
	}
	act := *cb.ActionCallback.BlockActions[0]
	user := cb.User.ID
	channel := firstNonEmpty(cb.Container.ChannelID, cb.Channel.ID)
	msgTS := firstNonEmpty(cb.Container.MessageTs, cb.Message.Timestamp)
	var id, digest string
	switch act.ActionID {
	case actionApprove:
		var ok bool
		id, digest, ok = strings.Cut(act.Value, "|")
		if !ok || id == "" || digest == "" {
			b.log.Warn("ignoring an approve click with a malformed value", "user", user)
			return nil
		}
	case actionReject, actionStop, actionRetry:
		id = act.Value
	default:
		b.log.Warn("ignoring an unknown action", "action", act.ActionID, "user", user)
		return nil
	}
	if id == "" || channel == "" || msgTS == "" {
		b.log.Warn("ignoring a click without its request or card", "action", act.ActionID, "user", user)
		return nil
	}
	if err := b.st.Remember(ctx, interactionReplayKey(cb, act), replayWindow); err != nil {
		if errors.Is(err, store.ErrReplay) {
			b.met.Refusals.WithLabelValues("replay").Inc()
			b.log.Warn("replayed click ignored", "user", user, "request", id)
			b.out.Ephemeral(channel, user, replayText)
			return nil
		}
		b.log.Error("recording a click failed", "error", err)
		b.out.Ephemeral(channel, user, "I could not record your click ("+describe(err)+"). Nothing was done; click again.")
		return nil
	}
	trigger := cb.TriggerID
	b.goBackground(func(ctx context.Context) {
		if !b.clickOnItsCard(ctx, id, channel, msgTS, user) {
			return
		}
		switch act.ActionID {
		case actionApprove:
			b.approve(ctx, id, digest, user, channel)
		case actionStop:
			b.openStop(ctx, id, user, channel, trigger)
		case actionRetry:
			b.retry(ctx, id, user, channel)
		default:
			b.openReject(ctx, id, user, channel, trigger)
		}
	})
	return nil
}

// clickOnItsCard checks that a button was clicked on the card of the request it names. A
// button on another request's card is refused; a button on a message the store does not know
// (a card whose post answer was lost in a crash, then posted again) is superseded: the message
// is replaced by a link to the current card and nothing changes.
func (b *Bot) clickOnItsCard(ctx context.Context, id, channel, ts, user string) bool {
	log := b.reqLog(id).With("user", user, "channel", channel, "ts", ts)
	owner, err := b.st.ByMessage(ctx, channel, ts)
	switch {
	case err == nil && strings.EqualFold(owner.ID, id):
		return true
	case err == nil:
		b.met.Refusals.WithLabelValues("wrong-card").Inc()
		log.Warn("click refused: the button names another request than its card", "card_of", owner.ID)
		b.out.Ephemeral(channel, user, fmt.Sprintf("That button does not belong to this card (it names %s; this is the card of %s). Nothing was changed.", esc(id), owner.ID))
		return false
	case !errors.Is(err, store.ErrNotFound):
		log.Error("click: looking up the card failed", "error", err)
		b.out.Ephemeral(channel, user, "I could not check which request this card belongs to ("+describe(err)+"). Nothing was changed; click again.")
		return false
	}
	b.met.Refusals.WithLabelValues("superseded").Inc()
	where := "the current card"
	if r, gerr := b.st.Get(ctx, id); gerr == nil {
		if link := permalink(b.opt.WorkspaceURL, r.Channel, r.MessageTS); link != "" {
			where = "<" + link + "|the current card of " + r.ID + ">"
		} else if r.Channel != "" {
			where = "the current card of " + r.ID + " in <#" + r.Channel + ">"
		}
	}
	log.Warn("click on an orphan card: superseded, nothing changed")
	text := "Superseded — see " + where + "."
	b.out.Update(channel, ts, text, []slack.Block{slack.NewContextBlock("fo_superseded",
		slack.NewTextBlockObject(slack.MarkdownType, ":no_entry_sign: This card is out of date. "+text, false, false))})
	b.out.Ephemeral(channel, user, "That card was out of date and nothing was changed. "+text)
	return false
}

func (b *Bot) viewSubmission(ctx context.Context, cb slack.InteractionCallback) any {
	if cb.View.CallbackID == callbackStop {
		return b.stopSubmission(ctx, cb)
	}
	if cb.View.CallbackID != callbackReject {
		b.log.Info("ignoring a view submission of an unknown dialog", "callback", cb.View.CallbackID)
		return nil
	}
	id, user := cb.View.PrivateMetadata, cb.User.ID
	var reason string
	if cb.View.State != nil {
		if v, ok := cb.View.State.Values[blockRejectWhy][actionRejectWhy]; ok {
			reason = strings.TrimSpace(v.Value)
		}
	}
	if id == "" || user == "" {
		b.log.Warn("ignoring a reject dialog without its request or user")
		return nil
	}
	if reason == "" {
		return slack.NewErrorsViewSubmissionResponse(map[string]string{blockRejectWhy: "Say why, so the requester knows what to change."})
	}
	if err := b.st.Remember(ctx, viewReplayKey(cb), replayWindow); err != nil {
		b.log.Warn("reject dialog not acted on", "reason", err, "user", user, "request", id)
		return nil
	}
	b.goBackground(func(ctx context.Context) { b.reject(ctx, id, user, reason) })
	return nil
}

// interactionReplayKey identifies one click: Slack's trigger_id, else the click's own
// action_ts (a replay carries the same one).
func interactionReplayKey(cb slack.InteractionCallback, act slack.BlockAction) string {
	if cb.TriggerID != "" {
		return "click:" + cb.TriggerID
	}
	return "click:" + hashKey(cb.User.ID, act.ActionID, act.Value, act.ActionTs, cb.Container.MessageTs)
}

func viewReplayKey(cb slack.InteractionCallback) string {
	if cb.TriggerID != "" {
		return "view:" + cb.TriggerID
	}
	return "view:" + hashKey(cb.User.ID, cb.View.ID, cb.View.Hash, cb.View.PrivateMetadata)
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// approve records one approval. The store enforces the two-person rule and the state machine;
// this checks who the person is, at click time.
func (b *Bot) approve(ctx context.Context, id, digest, user, channel string) {
	log := b.reqLog(id).With("user", user)
	if err := b.auth.canApprove(ctx, user); err != nil {
		b.clickRefused(err, channel, user, log)
		return
	}
	r, err := b.st.Approve(ctx, id, user, digest)
	if err != nil {
		b.clickRefused(b.lateApproval(id, err), channel, user, log)
		return
	}
	b.met.Approvals.Inc()
	log.Info("approval recorded", "approvals", len(r.Approvals), "required", r.ApprovalsRequired)
	if r.State != store.Approved {
		b.out.Ephemeral(channel, user, fmt.Sprintf("Your approval of %s is recorded; it needs %d more.", r.ID, r.ApprovalsRequired-len(r.Approvals)))
		return
	}
	b.met.Requests.WithLabelValues("approved").Inc()
	b.submit(ctx, r.ID)
}

// lateApproval answers an approve or reject click on a request that was already decided with
// who decided it and when ("already approved by <@U…> at 14:02 UTC"), whatever happened since.
func (b *Bot) lateApproval(id string, err error) error {
	var ce *store.ConflictError
	if !errors.As(err, &ce) || ce.Reason != store.ReasonState {
		return err
	}
	r, gerr := b.st.Get(b.sctx, id)
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
	r, err := b.st.Get(ctx, id)
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
	r, err := b.st.Reject(ctx, id, user, reason)
	if err != nil {
		log.Info("reject refused", "reason", err)
		if cur, gerr := b.st.Get(ctx, id); gerr == nil && cur.Channel != "" {
			b.out.Ephemeral(cur.Channel, user, describe(b.lateApproval(id, err)))
		}
		return
	}
	b.met.Requests.WithLabelValues("rejected").Inc()
	log.Info("request rejected", "state", r.State)
}

// submit sends the failover for an approved request, exactly once. "submitting" is stored before
// the POST, so a crash between the two leaves evidence that the POST may have gone out, and the
// request is reconciled instead of sent again.
func (b *Bot) submit(ctx context.Context, id string) {
	r, err := b.st.Get(ctx, id)
	if err != nil || r.State != store.Approved {
		return
	}
	var todo []leg
	for _, l := range legs(r) {
		if l.Item.State == store.Approved {
			todo = append(todo, l)
		}
	}
	b.submitLegs(ctx, todo)
}

// submitLegs sends the failovers of ls, each as soon as a POST slot is free
// (MaxConcurrentFailovers across the whole bot), and returns when all have been tried. An item
// EM refuses fails alone; the others go on.
func (b *Bot) submitLegs(ctx context.Context, ls []leg) {
	var wg sync.WaitGroup
	for _, l := range ls {
		if !b.claim(l.key()) {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer b.release(l.key())
			b.submitLeg(ctx, l)
		}()
	}
	wg.Wait()
}

// submitLeg sends one item's failover: "submitting" is written before the POST and the task
// after it, so a crash in between is reconciled, never sent twice.
func (b *Bot) submitLeg(ctx context.Context, l leg) {
	log := b.reqLog(l.Request.ID).With("target", l.name())
	// Wait for a slot before "submitting" is written: an item waiting for one is still
	// approved, and nothing has been sent.
	select {
	case b.posts <- struct{}{}:
		defer func() { <-b.posts }()
	case <-ctx.Done():
		return
	}
	// Guarded by the item's state, not a version: another item's change or the card's position
	// may have been written meanwhile, and that must not hold a failover back a poll interval.
	c := store.Change{ID: l.Request.ID, Item: l.Target.ID, From: []store.State{store.Approved}, To: store.Submitting,
		Actor: "bot", Action: "submitting", Details: "sending the failover to Enterprise Manager"}
	r, err := b.st.Transition(ctx, c)
	if err != nil {
		log.Info("submission not started", "reason", err)
		return
	}
	l = leg{r, r.Item(l.Target.ID)}
	ctx, cancel := context.WithTimeout(ctx, b.opt.EMTimeout)
	defer cancel()
	intent := emapi.RestoreIntent{Kind: intentKind(r.Intent), Time: r.RestoreTime}
	var task *emapi.Task
	if r.Kind == store.KindVApp {
		task, err = b.em.StartVAppFailover(ctx, l.Target.ID, intent)
	} else {
		task, err = b.em.StartVMFailover(ctx, l.Target.ReplicaID, l.Target.ID, intent)
	}
	if err != nil {
		b.submitFailed(l, err)
		return
	}
	c = store.Change{ID: r.ID, Item: l.Target.ID, From: []store.State{store.Submitting}, To: store.Running,
		Actor: "em", Action: "submitted", Details: "EM task " + task.ID + " " + task.State,
		Thread: l.chatty(fmt.Sprintf(":rocket: Enterprise Manager accepted the failover: task %s is %s. I will post every change here.", task.ID, task.State)),
		Apply: func(it *store.Item) {
			it.TaskID, it.EMSession, it.EMState, it.EMMessage = task.ID, task.LogonSession, task.State, ""
			if task.RestoreSessionID != "" && it.RestoreSessionID == "" {
				it.RestoreSessionID = task.RestoreSessionID
			}
		}}
	if _, err = b.st.Transition(b.sctx, c); err != nil {
		// The failover is running in EM but we could not record its task: say so loudly, keep
		// "submitting" so the poller reconciles through the restore sessions.
		log.Error("failover started but its task ID could not be stored", "task", task.ID, "error", err)
		b.note(r, "bot", "task-unrecorded", fmt.Sprintf("%s: EM task %s started but could not be recorded: %v", l.name(), task.ID, err),
			fmt.Sprintf(":warning: Enterprise Manager started the failover of %s (task %s), but I could not record it (%v). I will look for its restore session; check EM if this thread stays quiet.", esc(l.name()), task.ID, err))
		return
	}
	b.met.Requests.WithLabelValues("submitted").Inc()
	log.Info("failover submitted", "task", task.ID)
}

// submitFailed handles a failover POST that did not return a task. There are three cases:
//
//   - not sent (connection refused, DNS or TLS failure, the logon before it failed): EM cannot
//     have started anything, so the request goes back to approved and the poller sends it again
//     under the same approval, until SubmitRetryFor has passed since the approval; then it fails
//     saying that nothing was sent;
//   - refused by EM (400, 403, 404, an EM error with a 4xx): the failover did not start, and the
//     request fails with EM's words;
//   - unknown (a timeout, a reset after the request was written, any 5xx): EM may have started
//     it; the request stays submitting for the poller to reconcile, and is never sent again.
func (b *Bot) submitFailed(r leg, err error) {
	log := b.reqLog(r.Request.ID).With("target", r.name())
	switch {
	case emapi.NotSent(err):
		b.notSent(r, err)
		return
	case sentMaybe(err):
		log.Error("failover POST outcome unknown", "error", err)
		b.note(r.Request, "em", "submit-unanswered", fmt.Sprintf("%s: failover POST got no usable answer (%s); reconciling", r.name(), describe(err)),
			r.chatty(":warning: I sent the failover but got no answer from Enterprise Manager that says what happened ("+describe(err)+"). It may or may not have started: I am checking whether EM started it (its restore sessions) and will report here. I will not send it again."))
		return
	}
	msg := describe(err)
	line := ":red_circle: The failover was not started. Enterprise Manager refused it: " + msg
	if !r.single() {
		line = ":red_circle: *" + esc(r.name()) + "* was not started. Enterprise Manager refused it: " + msg
	}
	if _, terr := b.st.Transition(b.sctx, store.Change{ID: r.Request.ID, Item: r.Target.ID, From: []store.State{store.Submitting}, To: store.Failed,
		Actor: "em", Action: "error", Details: msg, Thread: line,
		Apply: func(it *store.Item) { it.EMMessage = emMessage(err) }}); terr != nil {
		log.Error("could not record the failed submission", "error", terr)
	}
	b.met.Requests.WithLabelValues("failed").Inc()
	log.Error("failover refused by EM", "error", err)
}

// sentMaybe reports failures after which EM may have acted on the POST: no answer, or a
// server-side error (5xx, including a proxy's 502/504) that does not prove it refused.
func sentMaybe(err error) bool {
	switch emapi.KindOf(err) {
	case emapi.KindTimeout, emapi.KindTransport, emapi.KindUnknown, emapi.KindServer, emapi.KindUnavailable:
		return true
	}
	return false
}

// notSent puts a submission that never reached EM back to approved (retried by the poller), or
// fails it once SubmitRetryFor has passed since the approval. The thread hears it once per
// outage, not on every attempt.
func (b *Bot) notSent(r leg, err error) {
	log := b.reqLog(r.Request.ID).With("target", r.name())
	why := describe(err)
	if !r.DecidedAt.IsZero() && b.now().Sub(r.DecidedAt) >= b.opt.SubmitRetryFor {
		line := fmt.Sprintf(":red_circle: Enterprise Manager stayed unreachable for %s after the approval (%s). *Nothing was sent*: no failover was started. Ask again when EM answers.", b.opt.SubmitRetryFor, why)
		if !r.single() {
			line = fmt.Sprintf(":red_circle: *%s*: Enterprise Manager stayed unreachable for %s after the approval (%s). *Nothing was sent* for it.", esc(r.name()), b.opt.SubmitRetryFor, why)
		}
		if _, terr := b.st.Transition(b.sctx, store.Change{ID: r.Request.ID, Item: r.Target.ID, From: []store.State{store.Submitting}, To: store.Failed,
			Actor: "bot", Action: "not-sent", Details: fmt.Sprintf("EM unreachable for %s since the approval; nothing was sent: %s", b.opt.SubmitRetryFor, why),
			Thread: line,
			Apply:  func(q *store.Item) { q.EMMessage = "EM unreachable; nothing was sent" }}); terr != nil {
			log.Error("could not record the unsent submission", "error", terr)
		}
		b.met.Requests.WithLabelValues("failed").Inc()
		return
	}
	thread := ""
	if r.EMMessage == "" && (r.single() || r.Target.ID == r.Request.Items[0].Target.ID) {
		thread = fmt.Sprintf(":hourglass: Enterprise Manager is unreachable (%s). Nothing was sent; I keep retrying under the same approval until %s.",
			why, r.DecidedAt.Add(b.opt.SubmitRetryFor).UTC().Format(clockFormat))
	}
	if _, terr := b.st.Transition(b.sctx, store.Change{ID: r.Request.ID, Item: r.Target.ID, From: []store.State{store.Submitting}, To: store.Approved,
		Actor: "bot", Action: "not-sent", Details: "EM unreachable, nothing was sent, retrying: " + why, Thread: thread,
		Apply: func(q *store.Item) { q.EMMessage = "EM unreachable, nothing was sent, retrying" }}); terr != nil {
		log.Error("could not put an unsent submission back to approved", "error", terr)
		return
	}
	log.Warn("failover POST not sent: EM unreachable; retrying", "error", err)
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
