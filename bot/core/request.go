package core

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/failover-bot/failover-bot/emapi"
	"github.com/failover-bot/failover-bot/store"
)

// resolveBudget bounds the EM lookups of a check, a retry or a stop refusal: Slack gives the
// whole answer 3 seconds, and the cached inventory makes most lookups free.
const resolveBudget = 2 * time.Second

// preflightBudget bounds a request's pre-flight (names, then every target's restore points) once
// its sender has been answered: 500 targets of a struggling EM still end within it, or the sender
// is told nothing was recorded.
const preflightBudget = time.Minute

// Response is the immediate answer to a slash command. Slack shows it to the sender only.
type Response struct {
	ResponseType string `json:"response_type"`
	Text         string `json:"text"`
}

func ephemeral(text string) Response { return Response{ResponseType: "ephemeral", Text: text} }

func (b *Service) request(ctx context.Context, in Invocation, cmd Command) Response {
	if err := b.auth.canUseChannel(in.Channel); err != nil {
		return b.refuse(err)
	}
	if err := b.auth.canRequest(in.User); err != nil {
		return b.refuse(err)
	}
	if err := b.auth.canBeApproved(in.User, b.opt.ApprovalsRequired); err != nil {
		return b.refuse(err)
	}
	if seen, err := b.st.Seen(ctx, in.ReplayKey); err == nil && seen {
		return b.replayed(store.ErrReplay)
	} else if errors.Is(err, store.ErrUnavailable) {
		// The store does not answer (etcd without quorum or out of reach): say so now. Running
		// the pre-flight anyway would answer "Checking…" and record the request whenever the
		// store came back, up to a minute later, after its sender had moved on.
		return b.replayed(err)
	}
	// The pre-flight reads every target's restore points. It normally ends well inside Slack's
	// 3 seconds and the answer says what was recorded; when EM is slow the answer says what is
	// being checked, and the outcome follows through the response_url (or ephemerally).
	done := make(chan Response, 1)
	b.Go(func(bctx context.Context) {
		ctx, cancel := context.WithTimeout(bctx, preflightBudget)
		defer cancel()
		done <- b.createRequest(ctx, in, cmd)
	})
	wait := time.NewTimer(b.opt.AckBudget)
	defer wait.Stop()
	select {
	case resp := <-done:
		return resp
	case <-wait.C:
	case <-ctx.Done():
	}
	b.Go(func(ctx context.Context) {
		resp := <-done
		b.notify.Respond(ctx, in.ResponseURL, in.Channel, in.User, resp.Text)
	})
	return ephemeral(fmt.Sprintf("Checking %s with Enterprise Manager (names and restore points)… The approval card follows in this channel; if nothing can be recorded I will tell you here.", checkingWhat(cmd)))
}

// checkingWhat names what a command's pre-flight checks, before its targets are known.
func checkingWhat(cmd Command) string {
	switch cmd.Sub {
	case SubVM:
		return plural(len(cmd.VMs), "VM") + " of " + cmd.Replica
	case SubVApp:
		return plural(len(cmd.VApps), "vApp")
	case SubPlan:
		return "every target of plan " + cmd.Plan
	}
	return "every VM of " + cmd.Replica
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// createRequest runs a request's pre-flight and stores it, and returns the answer for its sender.
func (b *Service) createRequest(ctx context.Context, in Invocation, cmd Command) Response {
	p, resp, ok := b.plan(ctx, cmd)
	if !ok {
		return resp
	}
	if len(p.items) == 0 {
		b.met.Refusals.WithLabelValues("no-target").Inc()
		return ephemeral("Nothing to fail over, so nothing was recorded:\n" + exclusionText(p.excluded, 20))
	}
	nr := store.NewRequest{
		Kind: p.kind, Items: p.items, Excluded: p.excluded, Scope: p.scope, Plan: p.planName, Groups: p.groups,
		Intent: store.Intent(cmd.Intent), RestoreTime: cmd.Time, Reason: cmd.Reason,
		Requester: in.User, Channel: in.Channel, ResponseURL: in.ResponseURL, TTL: b.opt.RequestTTL,
		ReplayKey: in.ReplayKey, ReplayTTL: replayWindow,
	}
	r, err := b.st.Create(ctx, nr)
	if errors.Is(err, store.ErrReplay) {
		return b.replayed(err)
	}
	var busy *store.ConflictError
	if errors.As(err, &busy) && busy.Reason == store.ReasonTargetBusy {
		b.met.Refusals.WithLabelValues("target-busy").Inc()
		b.log.Info("request refused: target held by another active request", "user", in.User, "target", busy.Target, "holder", busy.Holder)
		return ephemeral(describeConflict(busy))
	}
	if errors.Is(err, store.ErrUnavailable) {
		b.log.Error("storing a request failed: the store cannot be reached", "error", err, "user", in.User)
		return ephemeral("I cannot record the request right now: the bot's store (etcd) does not answer. Nothing was recorded and nothing was sent to Enterprise Manager. Try again in a minute (should etcd have kept it after all, its card appears and a repeat is refused as already active); if it goes on, tell the bot's operators.")
	}
	if err != nil {
		b.log.Error("storing a request failed", "error", err, "user", in.User)
		return ephemeral("I could not record the request (" + err.Error() + "). Nothing was sent to Enterprise Manager; try again.")
	}
	b.met.Requests.WithLabelValues("requested").Inc()
	b.reqLog(r.ID).Info("request recorded", "user", r.Requester, "target", targetName(r), "intent", r.Intent)
	b.notify.Created(r.ID)
	text := fmt.Sprintf("Recorded *%s*: fail over %s to the %s. The approval card follows in this channel, calling %s to approve it (not you: a second person decides).",
		r.ID, targetText(r), restoreText(r.Intent, r.RestoreTime), b.auth.approversFor(r))
	if pv := previewText(r); pv != "" {
		text += "\n" + pv
	}
	if r.IsPlan() {
		text += "\nGroups, in the order they run:" + planItemsText(r, 5)
	}
	if len(r.Excluded) > 0 {
		text += fmt.Sprintf("\nLeft out (%d, not part of the request):\n%s", len(r.Excluded), exclusionText(r.Excluded, 10))
	}
	return ephemeral(text)
}

// plan resolves a command's targets and runs the pre-flight, or says why not (ok false).
func (b *Service) plan(ctx context.Context, cmd Command) (*plan, Response, bool) {
	if cmd.Sub == SubPlan {
		return b.planRequest(ctx, cmd)
	}
	kind, scope, targets, err := b.resolveTargets(ctx, cmd)
	var ref *refusal
	if errors.As(err, &ref) {
		return nil, b.refuse(err), false
	}
	if err != nil {
		return nil, b.refuseEM(err), false
	}
	if max := b.opt.MaxTargets; len(targets) > max {
		b.met.Refusals.WithLabelValues("too-many").Inc()
		return nil, ephemeral(fmt.Sprintf("That is %d targets; one request holds at most %d (MAX_TARGETS). Nothing was recorded: split it, e.g. with several `vm &lt;replica&gt; &lt;vm&gt; …` requests or `replica … --except …`.", len(targets), max)), false
	}
	p, err := b.preflight(ctx, kind, scope, targets, store.Intent(cmd.Intent), cmd.Time)
	var busy *store.ConflictError
	if errors.As(err, &busy) {
		b.met.Refusals.WithLabelValues("target-busy").Inc()
		return nil, ephemeral(describeConflict(busy)), false
	}
	if err != nil {
		return nil, b.refuseEM(err), false
	}
	return p, Response{}, true
}

// check answers /failover check: the pre-flight alone, nothing stored and nobody asked.
func (b *Service) check(ctx context.Context, in Invocation, cmd Command) Response {
	if err := b.auth.canUseChannel(in.Channel); err != nil {
		return b.refuse(err)
	}
	if err := b.auth.canRequest(in.User); err != nil {
		return b.refuse(err)
	}
	ctx, cancel := context.WithTimeout(ctx, resolveBudget)
	defer cancel()
	if cmd.Sub == SubPlan {
		return b.checkPlan(ctx, cmd)
	}
	p, resp, ok := b.plan(ctx, cmd)
	if !ok {
		return resp
	}
	r := &store.Request{Kind: p.kind, Items: p.items, Excluded: p.excluded, Scope: p.scope, Intent: store.Intent(cmd.Intent), RestoreTime: cmd.Time}
	var out strings.Builder
	fmt.Fprintf(&out, "*Check only — nothing was recorded and nobody was asked.*\n")
	if len(p.items) == 0 {
		fmt.Fprintf(&out, "Nothing could be failed over:\n%s", exclusionText(p.excluded, 20))
		return ephemeral(out.String())
	}
	fmt.Fprintf(&out, "A request now would fail over %s to the %s.\n%s", targetText(r), restoreText(r.Intent, r.RestoreTime), previewText(r))
	if len(p.excluded) > 0 {
		fmt.Fprintf(&out, "\nLeft out (%d):\n%s", len(p.excluded), exclusionText(p.excluded, 20))
	}
	return ephemeral(out.String())
}

// refuseEM answers a lookup failure. A name that is unknown is the sender's mistake; EM being
// unreachable is not, and says so.
func (b *Service) refuseEM(err error) Response {
	var re *emapi.ResolveError
	if errors.As(err, &re) {
		b.met.Refusals.WithLabelValues("unknown-name").Inc()
		return ephemeral(describe(err) + "\nNothing was recorded.")
	}
	if errors.Is(err, context.DeadlineExceeded) {
		err = &emapi.Error{Kind: emapi.KindTimeout, Op: "resolve"}
	}
	b.met.Refusals.WithLabelValues("em").Inc()
	return ephemeral("I could not check the name with Enterprise Manager: " + describe(err) + " Nothing was recorded; try again.")
}

func (b *Service) refuse(err error) Response {
	var ref *refusal
	if errors.As(err, &ref) {
		b.met.Refusals.WithLabelValues(ref.reason).Inc()
	}
	return ephemeral(describe(err))
}

// cancelRequest withdraws a pending request (requester only). It never stops a running failover:
// that is /failover stop, behind a confirmation dialog.
func (b *Service) cancelRequest(ctx context.Context, in Invocation, cmd Command) Response {
	r, err := b.st.Get(ctx, cmd.RequestID)
	if err != nil {
		return ephemeral(describe(err))
	}
	switch r.State {
	case store.Pending:
		w, err := b.st.Withdraw(ctx, r.ID, in.User)
		if err != nil {
			return b.refuse(err)
		}
		b.met.Requests.WithLabelValues("withdrawn").Inc()
		return ephemeral(w.ID + " is withdrawn. Nothing was sent to Enterprise Manager.")
	case store.Running:
		return ephemeral(fmt.Sprintf("%s is running in Enterprise Manager, so there is nothing to withdraw: `cancel` is only for requests that were not sent yet. To stop the running failover, use `/failover stop %s`: it shows what is running and asks you to confirm, because EM cannot undo a stop.", r.ID, r.ID))
	case store.Approved, store.Submitting:
		return ephemeral(r.ID + " is being sent to Enterprise Manager right now, so it can no longer be withdrawn. Once its task appears in the thread, `/failover stop " + r.ID + "` can stop it.")
	case store.Stopping:
		return ephemeral(r.ID + " is already being stopped.")
	}
	if r.State == store.Rejected || r.State == store.Expired || r.State == store.Withdrawn {
		return ephemeral(fmt.Sprintf("%s is already %s; nothing was sent to Enterprise Manager, so there is nothing to cancel.", r.ID, stateWords(r.State)))
	}
	return ephemeral(fmt.Sprintf("%s is already %s; there is nothing to cancel. Enterprise Manager's REST API cannot undo or fail back a CDP failover: use the Veeam console or PowerShell for that.", r.ID, stateWords(r.State)))
}

// replayWindow is how long a Slack delivery's key is kept: Slack signatures are accepted for
// 5 minutes either side of now, so a captured request cannot be replayed after 10.
const replayWindow = 10 * time.Minute

func (b *Service) replayed(err error) Response {
	if errors.Is(err, store.ErrReplay) {
		b.met.Refusals.WithLabelValues("replay").Inc()
		b.log.Warn("replayed slash command ignored")
		return ephemeral(replayText)
	}
	b.log.Error("recording a slash command failed", "error", err)
	if errors.Is(err, store.ErrUnavailable) {
		return ephemeral("I cannot record the request right now: the bot's store (etcd) does not answer. Nothing was recorded and nothing was done. Try again in a minute; if it goes on, tell the bot's operators.")
	}
	return ephemeral("I could not record the command (" + describe(err) + "). Nothing was done; try again.")
}

const replayText = "Already received: Slack delivered this exact command or click twice, and it was acted on the first time. Nothing more was done."

// Invocation is who sent a command, from where, and how to answer it later.
type Invocation struct {
	User, Channel, ResponseURL, TriggerID string
	// ReplayKey identifies this delivery of the command: a key seen within the replay window is
	// not acted on again.
	ReplayKey string
}

// Request asks for a failover (vm, vapp, replica): names resolved, restore points checked, the
// request recorded for approval. A check (cmd.Check) records nothing.
func (b *Service) Request(ctx context.Context, in Invocation, cmd Command) Response {
	cmd = b.withPlanDefaults(cmd)
	if cmd.Check {
		return b.check(ctx, in, cmd)
	}
	return b.request(ctx, in, cmd)
}

// Cancel withdraws a pending request of its requester.
func (b *Service) Cancel(ctx context.Context, in Invocation, cmd Command) Response {
	if err := b.st.Remember(ctx, in.ReplayKey, replayWindow); err != nil {
		return b.replayed(err)
	}
	return b.cancelRequest(ctx, in, cmd)
}

// Status describes one request.
func (b *Service) Status(ctx context.Context, id string) Response {
	r, err := b.st.Get(ctx, id)
	if err != nil {
		return ephemeral(describe(err))
	}
	return ephemeral(statusText(r, b.now()))
}

// List describes the pending and active requests and, with --recent (cmd.Recent), those that
// finished in the period.
func (b *Service) List(ctx context.Context, cmd Command) Response { return b.list(ctx, cmd) }

// Plans answers /failover plans: the recovery plans with their groups and sizes.
func (b *Service) Plans() Response { return b.plansList() }

// Ephemeral is a private answer to the sender.
func Ephemeral(text string) Response { return ephemeral(text) }
