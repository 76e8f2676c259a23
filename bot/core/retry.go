package core

import (
	"context"
	"errors"
	"fmt"

	"github.com/failover-bot/failover-bot/store"
)

// retry answers a click on Retry failed items: a new request, linked to r (RetryOf), with just
// the items that did not succeed, the same restore option and reason, and user as its requester.
// It goes through the same pre-flight as any request (restore points read again, targets held
// elsewhere left out) and needs its own approval: nothing is sent by the click.
func (b *Service) retry(ctx context.Context, id, user, channel string) {
	log := b.reqLog(id).With("user", user)
	tell := func(text string) { b.notify.Ephemeral(channel, user, text) }
	if err := b.auth.canRequest(user); err != nil {
		tell(describe(err))
		return
	}
	if err := b.auth.canBeApproved(user, b.opt.ApprovalsRequired); err != nil {
		tell(describe(err))
		return
	}
	r, err := b.st.Get(ctx, id)
	if err != nil {
		tell(describe(err))
		return
	}
	failed := retryable(r)
	if !r.State.Terminal() || len(failed) == 0 {
		tell(fmt.Sprintf("%s has nothing to retry: it is %s. Only the failed, stopped or unknown items of a finished request can be retried.", r.ID, stateWords(r.State)))
		return
	}
	// Each item keeps its kind, and in a plan its group and criticality: a retry of a plan runs
	// what is left in the same order, under the same halting rule.
	seeds := make([]store.Item, len(failed))
	for i, it := range failed {
		seeds[i] = store.Item{Target: it.Target, Kind: it.Kind, Group: it.Group, Optional: it.Optional}
	}
	ctx, cancel := context.WithTimeout(ctx, resolveBudget)
	defer cancel()
	scope := fmt.Sprintf("retry of %d failed items of %s", len(failed), r.ID)
	if r.IsPlan() {
		scope = fmt.Sprintf("retry of %d items of %s (plan %s) that did not succeed", len(failed), r.ID, r.Plan)
	}
	p, err := b.preflightItems(ctx, r.Kind, scope, seeds, r.Intent, r.RestoreTime)
	var busy *store.ConflictError
	switch {
	case errors.As(err, &busy):
		tell(describeConflict(busy))
		return
	case err != nil:
		tell(b.refuseEM(err).Text)
		return
	case len(p.items) == 0:
		tell(fmt.Sprintf("Nothing of %s can be retried now, so nothing was recorded:\n%s", r.ID, exclusionText(p.excluded, 20)))
		return
	}
	var groups []store.Group
	if r.IsPlan() {
		groups = r.Groups // their run state is not copied (store.NewRequest)
	}
	n, err := b.st.Create(ctx, store.NewRequest{Kind: r.Kind, Items: p.items, Excluded: p.excluded, Scope: scope, RetryOf: r.ID, Plan: r.Plan, Groups: groups,
		Intent: r.Intent, RestoreTime: r.RestoreTime, Reason: r.Reason, Requester: user, Channel: r.Channel, TTL: b.opt.RequestTTL})
	if errors.As(err, &busy) {
		tell(describeConflict(busy))
		return
	}
	if err != nil {
		log.Error("storing a retry failed", "error", err)
		tell("I could not record the retry (" + err.Error() + "). Nothing was sent to Enterprise Manager; click again.")
		return
	}
	b.met.Requests.WithLabelValues("requested").Inc()
	log.Info("retry recorded", "retry", n.ID, "items", len(n.Items))
	b.notify.Created(n.ID)
	text := fmt.Sprintf("Recorded *%s*: %s, %s. Its approval card follows; it needs its own approval.", n.ID, scope, targetText(n))
	if len(n.Excluded) > 0 {
		text += fmt.Sprintf("\nLeft out (%d):\n%s", len(n.Excluded), exclusionText(n.Excluded, 10))
	}
	tell(text)
}
