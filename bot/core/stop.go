package core

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/failover-bot/failover-bot/emapi"
	"github.com/failover-bot/failover-bot/store"
)

// stopRefusal says why r cannot be stopped by user now, or "" when a stop dialog may open.
func (b *Service) stopRefusal(ctx context.Context, r *store.Request, user string) string {
	switch r.State {
	case store.Running:
	case store.Halted:
		// Nothing is in flight: the stop ends the run, skipping what was not sent.
		if user != r.Requester {
			if err := b.auth.canApprove(ctx, user); err != nil {
				return "Only the requester or an approver can stop " + r.ID + ". " + describe(err)
			}
		}
		return ""
	case store.Pending:
		return fmt.Sprintf("%s has not been sent to Enterprise Manager: there is nothing to stop. To withdraw it, use `/failover cancel %s`.", r.ID, r.ID)
	case store.Approved, store.Submitting:
		return fmt.Sprintf("%s is being sent to Enterprise Manager right now. Wait for its task to appear in the thread, then stop it.", r.ID)
	case store.Stopping:
		return fmt.Sprintf("%s is already being stopped (asked by <@%s>). I am following what Enterprise Manager does.", r.ID, r.StateBy)
	default:
		return fmt.Sprintf("%s is already %s; there is nothing to stop. Enterprise Manager's REST API cannot undo or fail back a CDP failover: use the Veeam console or PowerShell for that.", r.ID, stateWords(r.State))
	}
	if user != r.Requester {
		if err := b.auth.canApprove(ctx, user); err != nil {
			return "Only the requester or an approver can stop " + r.ID + ". " + describe(err)
		}
	}
	if len(r.Items) == 1 {
		it := r.Items[0]
		if it.TaskID == "" {
			return fmt.Sprintf("I cannot stop %s: Enterprise Manager never gave me its task (I follow it through restore session %s), and EM stops a failover only through its task. Stop it in the Veeam console.", r.ID, orDash(it.RestoreSessionID))
		}
		if it.EMSession == "" || it.EMSession != b.em.LogonSession() {
			return fmt.Sprintf("I cannot stop %s: its task %s belongs to an earlier Enterprise Manager logon session (the bot or EM restarted, or the session expired), and EM lets only that session stop it. Stop it in the Veeam console; I keep following its restore session.", r.ID, it.TaskID)
		}
	} else if len(b.stoppable(r)) == 0 {
		return fmt.Sprintf("I cannot stop any item of %s: none of its running failovers has a task in the current Enterprise Manager logon session (EM lets only the session that started a task stop it). Stop them in the Veeam console; I keep following them.", r.ID)
	}
	if b.opt.StopApprovals > 1 && r.Stop != nil && r.Stop.User == user {
		return fmt.Sprintf("You asked to stop %s already; a second person (the requester or an approver, not you) must confirm it.", r.ID)
	}
	return ""
}

// requestStop records a confirmed stop dialog: the first of two people when a second is
// required, else the stop itself, sent to EM at once.
func (b *Service) requestStop(ctx context.Context, id, task, user, reason string) {
	log := b.reqLog(id).With("user", user)
	r, err := b.st.Get(ctx, id)
	if err != nil {
		log.Info("stop not recorded", "reason", err)
		return
	}
	tell := func(text string) {
		if r.Channel != "" {
			b.notify.Ephemeral(r.Channel, user, text)
		}
	}
	if why := b.stopRefusal(ctx, r, user); why != "" {
		log.Info("stop refused", "why", why)
		tell(why)
		return
	}
	if key := stopKey(r); key != task {
		if r.State == store.Halted || strings.HasPrefix(task, haltKey) {
			tell(fmt.Sprintf("That stop dialog was opened when %s was %s; it has changed since (%s). Nothing was stopped; open the dialog again from the current card.", r.ID, stopKeyWords(task), stateWords(r.State)))
			return
		}
		tell(fmt.Sprintf("That stop dialog was for task %s, but %s now follows task %s. Nothing was stopped; open the dialog again.", task, r.ID, key))
		return
	}
	if r.State == store.Halted {
		b.endRun(ctx, r, user, reason, tell)
		return
	}
	targets := b.stoppable(r)
	if len(targets) == 0 {
		tell(b.stopRefusal(ctx, r, user))
		return
	}
	tasks := taskList(targets)
	now := b.now()
	if b.opt.StopApprovals > 1 && r.Stop == nil {
		first := targets[0]
		_, err := b.st.Transition(ctx, store.Change{ID: r.ID, Item: first.Target.ID, Version: first.Item.Version, From: []store.State{store.Running}, To: store.Running,
			Actor: user, Action: "stop-requested", Details: "asked to stop EM task " + tasks + ": " + truncate(reason, 300),
			Thread: fmt.Sprintf(":octagonal_sign: <@%s> asks to stop this failover: “%s”. Nothing is stopped yet: a second person (the requester or an approver) must confirm with *Confirm stop* on the card or `/failover stop %s`.", user, esc(truncate(reason, 300)), r.ID),
			Stop: func(*store.StopRequest) *store.StopRequest {
				return &store.StopRequest{User: user, Reason: reason, At: now}
			}})
		if err != nil {
			log.Info("stop request not recorded", "reason", err)
			tell(fmt.Sprintf("I could not record your stop request (%s). Nothing was stopped; try again.", describe(err)))
			return
		}
		log.Info("stop requested; waiting for a second person")
		return
	}
	line := fmt.Sprintf(":octagonal_sign: <@%s> asked Enterprise Manager to stop task %s: “%s”. This is a best-effort stop, not an undo. I will report what EM says happened.", user, tasks, esc(truncate(reason, 300)))
	details := "stop EM task " + tasks + ": " + truncate(reason, 300)
	if r.Stop != nil {
		line = fmt.Sprintf(":octagonal_sign: <@%s> confirmed the stop <@%s> asked for; I asked Enterprise Manager to stop task %s (best effort, not an undo). I will report what EM says happened.", user, r.Stop.User, tasks)
		details = "stop EM task " + tasks + " confirmed; asked by " + r.Stop.User + ": " + truncate(r.Stop.Reason, 300)
	}
	if others := running(r) - len(targets); others > 0 {
		line += fmt.Sprintf(" %d other running items have no task in the current EM logon session and cannot be stopped from here: stop them in the Veeam console.", others)
	}
	var sent []leg
	for i, l := range targets {
		c := store.Change{ID: r.ID, Item: l.Target.ID, From: []store.State{store.Running}, To: store.Stopping, Actor: user, Action: "stop", Details: details}
		if i == 0 {
			c.Thread = line
			c.Stop = func(cur *store.StopRequest) *store.StopRequest {
				if cur == nil {
					return &store.StopRequest{User: user, Reason: reason, At: now}
				}
				cur.ConfirmedBy, cur.ConfirmedAt = user, now
				return cur
			}
		}
		s, err := b.st.Transition(ctx, c)
		if err != nil {
			log.Info("stop not recorded", "reason", err, "target", l.name())
			if i == 0 {
				tell(fmt.Sprintf("I could not record the stop (%s). Nothing was stopped; try again.", describe(err)))
				return
			}
			continue
		}
		sent = append(sent, leg{s, s.Item(l.Target.ID)})
	}
	b.met.Requests.WithLabelValues("stop").Inc()
	log.Info("stop recorded; asking EM", "task", tasks)
	for _, l := range sent {
		b.stop(ctx, l)
	}
}

// stoppable returns r's running items whose task belongs to the current EM logon session: the
// only ones EM lets this bot stop.
func (b *Service) stoppable(r *store.Request) []leg {
	var out []leg
	session := b.em.LogonSession()
	for _, l := range legs(r) {
		if l.Item.State == store.Running && l.TaskID != "" && l.EMSession != "" && l.EMSession == session {
			out = append(out, l)
		}
	}
	return out
}

// running counts r's running items.
func running(r *store.Request) int { return store.Counts(r)[store.Running] }

// stopKey ties a stop dialog to what it was opened for: the task of a one-item request (a dialog
// left open must not stop a later task), or "all running items" of a request of many.
func stopKey(r *store.Request) string {
	if r.State == store.Halted && r.Halt != nil {
		return fmt.Sprintf("%s%d", haltKey, r.Halt.Group)
	}
	if len(r.Items) == 1 {
		return r.Items[0].TaskID
	}
	return "all"
}

// haltKey prefixes the stop key of a halted plan: the dialog ends that halt's run, not a later one.
const haltKey = "halt:"

// stopKeyWords says what a stop dialog was opened for.
func stopKeyWords(key string) string {
	if g, ok := strings.CutPrefix(key, haltKey); ok {
		var n int
		fmt.Sscanf(g, "%d", &n)
		return fmt.Sprintf("halted after group %d", n+1)
	}
	return "running task " + key
}

// taskList names the tasks a stop sends DELETEs for.
func taskList(ls []leg) string {
	ids := make([]string, 0, len(ls))
	for i, l := range ls {
		if i == 10 {
			ids = append(ids, fmt.Sprintf("and %d more", len(ls)-10))
			break
		}
		ids = append(ids, l.TaskID)
	}
	return strings.Join(ids, ", ")
}

// stop sends DELETE /tasks/{ID} in the task's own logon session. EM documents it both as "stops
// the task" and as "removes a task", so the outcome is whatever the restore session then says.
func (b *Service) stop(ctx context.Context, r leg) {
	ctx, cancel := context.WithTimeout(ctx, b.opt.EMTimeout)
	defer cancel()
	err := b.em.StopTaskIn(ctx, r.EMSession, r.TaskID)
	if err == nil {
		return
	}
	b.reqLog(r.Request.ID).Error("stopping the task failed", "error", err, "task", r.TaskID, "target", r.name())
	why := describe(err)
	if errors.Is(err, emapi.ErrOtherSession) {
		// Nothing was sent: the failover runs on, and the card must not say it is stopping.
		_, terr := b.st.Transition(b.sctx, store.Change{ID: r.Request.ID, Item: r.Target.ID, From: []store.State{store.Stopping}, To: store.Running,
			Actor: "bot", Action: "stop-not-sent", Details: "stop of task " + r.TaskID + " not sent: the task belongs to an earlier EM logon session",
			Thread: fmt.Sprintf(":warning: The stop was *not* sent: task %s belongs to an earlier Enterprise Manager logon session (the session expired or EM restarted), and EM lets only that session stop it. The failover is still running. Stop it in the Veeam console; I keep following it and will report how it ends.", r.TaskID),
			Stop: func(cur *store.StopRequest) *store.StopRequest {
				if r.single() {
					return nil // the only stop never reached EM: it is withdrawn
				}
				return cur
			}})
		if terr == nil {
			return
		}
		b.reqLog(r.Request.ID).Error("could not record that the stop was not sent", "error", terr)
		why = "its task belongs to an earlier EM logon session, which alone can stop it, so nothing was sent. Stop it in the Veeam console."
	}
	b.note(r.Request, "em", "stop-failed", fmt.Sprintf("stop of task %s failed: %s", r.TaskID, why),
		fmt.Sprintf(":warning: The stop of task %s did not reach Enterprise Manager: %s I keep following the failover and will report how it ends.", r.TaskID, why))
}

// openStop opens the stop dialog for user, or tells them why not.
func (b *Service) openStop(ctx context.Context, id, user, channel, trigger string) {
	log := b.reqLog(id).With("user", user)
	r, err := b.st.Get(ctx, id)
	if err != nil {
		b.notify.Ephemeral(channel, user, describe(err))
		return
	}
	if why := b.stopRefusal(ctx, r, user); why != "" {
		b.met.Refusals.WithLabelValues("stop").Inc()
		log.Info("stop refused", "why", why)
		b.notify.Ephemeral(channel, user, why)
		return
	}
	if err := b.dialogs.AskStopReason(ctx, trigger, r, b.opt.StopApprovals); err != nil {
		log.Warn("stop dialog could not be opened", "error", err)
		b.notify.Ephemeral(channel, user, fmt.Sprintf("I could not open the stop dialog (%v). Nothing was stopped; try again.", err))
	}
}
