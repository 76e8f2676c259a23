package core

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/failover-bot/failover-bot/emapi"
	"github.com/failover-bot/failover-bot/store"
	"github.com/failover-bot/failover-bot/store/failover"
)

// submit sends the failovers of an approved request, exactly once: every item, or a plan's
// first group within its concurrency (the rest follow as items finish, see dispatch).
// "submitting" is stored before the POST, so a crash between the two leaves evidence that the
// POST may have gone out, and the request is reconciled instead of sent again.
func (b *Service) submit(ctx context.Context, id string) {
	if !b.leads() {
		b.handOver(ctx, Job{Kind: JobPoll, ID: id}, nil) // the leader sends it
		return
	}
	r, err := b.st.Get(ctx, id)
	if err != nil || r.State != store.Approved {
		return
	}
	if r.IsPlan() {
		b.dispatch(r)
		return
	}
	var todo []leg
	for _, i := range failover.Eligible(r, b.now()) {
		todo = append(todo, leg{r, &r.Items[i]})
	}
	b.submitLegs(ctx, todo)
}

// submitLegs sends the failovers of ls, each as soon as a POST slot is free
// (MaxConcurrentFailovers across the whole bot), and returns when all have been tried. An item
// EM refuses fails alone; the others go on.
func (b *Service) submitLegs(ctx context.Context, ls []leg) {
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
func (b *Service) submitLeg(ctx context.Context, l leg) {
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
	if r.KindOf(l.Item) == store.KindVApp {
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
func (b *Service) submitFailed(r leg, err error) {
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
	if n, terr := b.st.Transition(b.sctx, store.Change{ID: r.Request.ID, Item: r.Target.ID, From: []store.State{store.Submitting}, To: store.Failed,
		Actor: "em", Action: "error", Details: msg, Thread: line,
		Apply: func(it *store.Item) { it.EMMessage = emMessage(err) }}); terr != nil {
		log.Error("could not record the failed submission", "error", terr)
	} else {
		b.dispatch(n)
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
func (b *Service) notSent(r leg, err error) {
	log := b.reqLog(r.Request.ID).With("target", r.name())
	why := describe(err)
	if !r.DecidedAt.IsZero() && b.now().Sub(r.DecidedAt) >= b.opt.SubmitRetryFor {
		line := fmt.Sprintf(":red_circle: Enterprise Manager stayed unreachable for %s after the approval (%s). *Nothing was sent*: no failover was started. Ask again when EM answers.", b.opt.SubmitRetryFor, why)
		if !r.single() {
			line = fmt.Sprintf(":red_circle: *%s*: Enterprise Manager stayed unreachable for %s after the approval (%s). *Nothing was sent* for it.", esc(r.name()), b.opt.SubmitRetryFor, why)
		}
		if n, terr := b.st.Transition(b.sctx, store.Change{ID: r.Request.ID, Item: r.Target.ID, From: []store.State{store.Submitting}, To: store.Failed,
			Actor: "bot", Action: "not-sent", Details: fmt.Sprintf("EM unreachable for %s since the approval; nothing was sent: %s", b.opt.SubmitRetryFor, why),
			Thread: line,
			Apply:  func(q *store.Item) { q.EMMessage = "EM unreachable; nothing was sent" }}); terr != nil {
			log.Error("could not record the unsent submission", "error", terr)
		} else {
			b.dispatch(n)
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
