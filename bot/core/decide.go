package core

import (
	"context"
	"errors"
	"fmt"

	"github.com/failover-bot/failover-bot/store"
)

// approve records one approval. The store enforces the two-person rule and the state machine;
// this checks who the person is, at click time.
func (b *Service) approve(ctx context.Context, id, digest, user, channel string) {
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
		b.notify.Ephemeral(channel, user, fmt.Sprintf("Your approval of %s is recorded; it needs %d more.", r.ID, r.ApprovalsRequired-len(r.Approvals)))
		return
	}
	b.met.Requests.WithLabelValues("approved").Inc()
	b.submit(ctx, r.ID)
}

// lateApproval answers an approve or reject click on a request that was already decided with
// who decided it and when ("already approved by <@U…> at 14:02 UTC"), whatever happened since.
func (b *Service) lateApproval(id string, err error) error {
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

func (b *Service) clickRefused(err error, channel, user string, log interface{ Info(string, ...any) }) {
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
	b.notify.Ephemeral(channel, user, describe(err))
}

func (b *Service) reject(ctx context.Context, id, user, reason string) {
	log := b.reqLog(id).With("user", user)
	if err := b.auth.canApprove(ctx, user); err != nil {
		log.Info("reject refused", "reason", err)
		return
	}
	r, err := b.st.Reject(ctx, id, user, reason)
	if err != nil {
		log.Info("reject refused", "reason", err)
		if cur, gerr := b.st.Get(ctx, id); gerr == nil && cur.Channel != "" {
			b.notify.Ephemeral(cur.Channel, user, describe(b.lateApproval(id, err)))
		}
		return
	}
	b.met.Requests.WithLabelValues("rejected").Inc()
	log.Info("request rejected", "state", r.State)
}

func (b *Service) openReject(ctx context.Context, id, user, channel, trigger string) {
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
	if err := b.dialogs.AskRejectReason(ctx, trigger, r); err != nil {
		log.Warn("reject dialog could not be opened", "error", err)
		b.notify.Ephemeral(channel, user, fmt.Sprintf("I could not open the reject dialog (%v). Click Reject again.", err))
	}
}
