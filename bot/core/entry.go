package core

import (
	"context"
	"errors"

	"github.com/failover-bot/failover-bot/store"
)

// The use cases as an adapter calls them. Each is what one command, click or dialog asks for;
// who may do it is checked here, at the time it is asked.

// Approve records user's approval of request id for the content digest names, then submits it
// when approvals are complete. channel is where to answer user.
func (b *Service) Approve(ctx context.Context, id, digest, user, channel string) {
	b.approve(ctx, id, digest, user, channel)
}

// OpenReject asks an approver for the reason of a rejection (a dialog opened with trigger).
func (b *Service) OpenReject(ctx context.Context, id, user, channel, trigger string) {
	b.openReject(ctx, id, user, channel, trigger)
}

// Reject records user's rejection of a pending request, with a reason.
func (b *Service) Reject(ctx context.Context, id, user, reason string) {
	b.reject(ctx, id, user, reason)
}

// OpenStop opens the stop confirmation of a running request, or tells user why not.
func (b *Service) OpenStop(ctx context.Context, id, user, channel, trigger string) {
	if !b.leads() {
		b.handOver(ctx, Job{Kind: JobOpenStop, ID: id, User: user, Channel: channel, Trigger: trigger},
			func(text string) { b.notify.Ephemeral(channel, user, text) })
		return
	}
	b.openStop(ctx, id, user, channel, trigger)
}

// RequestStop records a confirmed stop dialog (task is what the dialog was opened for).
func (b *Service) RequestStop(ctx context.Context, id, task, user, reason string) {
	if !b.leads() {
		var tell func(string)
		if r, err := b.st.Get(ctx, id); err == nil && r.Channel != "" {
			tell = func(text string) { b.notify.Ephemeral(r.Channel, user, text) }
		}
		b.handOver(ctx, Job{Kind: JobStop, ID: id, Task: task, User: user, Reason: reason}, tell)
		return
	}
	b.requestStop(ctx, id, task, user, reason)
}

// Continue records user's decision to go on with plan request id, halted after group (the
// halt the button was shown for), and starts its next group.
func (b *Service) Continue(ctx context.Context, id string, group int, user, channel string) {
	b.continueRun(ctx, id, group, user, channel)
}

// Retry records a new request with the items of id that did not succeed.
func (b *Service) Retry(ctx context.Context, id, user, channel string) {
	b.retry(ctx, id, user, channel)
}

// Stop answers /failover stop: the dialog opens in the background, or the answer says why not.
func (b *Service) Stop(ctx context.Context, in Invocation, cmd Command) Response {
	if err := b.st.Remember(ctx, in.ReplayKey, replayWindow); err != nil {
		return b.replayed(err)
	}
	r, err := b.st.Get(ctx, cmd.RequestID)
	if err != nil {
		return ephemeral(describe(err))
	}
	if !b.leads() {
		// Which tasks can be stopped is the leader's to say: its EM logon session owns them.
		b.Go(func(ctx context.Context) { b.OpenStop(ctx, r.ID, in.User, in.Channel, in.TriggerID) })
		return ephemeral("Opening the stop dialog of " + r.ID + ". Nothing is stopped until you submit it.")
	}
	if why := b.stopRefusal(ctx, r, in.User); why != "" {
		b.met.Refusals.WithLabelValues("stop").Inc()
		return ephemeral(why)
	}
	b.Go(func(ctx context.Context) { b.openStop(ctx, r.ID, in.User, in.Channel, in.TriggerID) })
	return ephemeral("Confirm the stop of " + r.ID + " in the dialog. Nothing is stopped until you submit it.")
}

// Remember records a Slack delivery's key for the replay window (store.ErrReplay if seen).
func (b *Service) Remember(ctx context.Context, key string) error {
	return b.st.Remember(ctx, key, replayWindow)
}

// Replayed answers a delivery refused by Remember.
func (b *Service) Replayed(err error) Response { return b.replayed(err) }

// Text the Slack edge renders with: the same words as the use cases' answers.
var (
	Esc                = esc
	Describe           = describe
	Truncate           = truncate
	Permalink          = permalink
	CardText           = cardText
	StatusLine         = statusLine
	TargetText         = targetText
	TargetName         = targetName
	RestoreText        = restoreText
	ApprovedBy         = approvedBy
	Counts             = counts
	ItemWords          = itemWords
	ExclusionText      = exclusionText
	PreviewText        = previewText
	Retryable          = retryable
	HasTask            = hasTask
	StopKey            = stopKey
	StateWords         = stateWords
	ShowInAuditChannel = showInAuditChannel
	AuditLine          = auditLine
	GroupTitle         = groupTitle
	HaltText           = haltText
)

// ItemEMText summarises what EM last told about one item of r.
func ItemEMText(r *store.Request, it *store.Item) string { return emText(leg{r, it}) }

// ReplayText answers a replayed Slack delivery.
const ReplayText = replayText

// Time formats of everything people read.
const (
	ClockFormat = clockFormat
	DayFormat   = dayFormat
	PointFormat = pointFormat
)

// ReplayWindow is how long a Slack delivery's key is kept (see Remember).
const ReplayWindow = replayWindow

// IsApprover reports whether user may approve requests at all: listed in APPROVERS or a member
// of APPROVER_GROUP, and an active, full member of the workspace (the rule a click is checked
// against). An error means Slack could not be asked, so the answer is unknown rather than no.
func (b *Service) IsApprover(ctx context.Context, user string) (bool, error) {
	err := b.auth.canApprove(ctx, user)
	var ref *refusal
	switch {
	case err == nil:
		return true, nil
	case errors.As(err, &ref) && ref.reason == "lookup":
		return false, err
	}
	return false, nil
}

// PingEM checks that Enterprise Manager answers (GET /api/, no logon), for the readiness checks.
func (b *Service) PingEM(ctx context.Context) error { return b.em.Ping(ctx) }

// ApproversFor names who can still approve r, as mentions: the approver group and the listed
// approvers who are not its requester and have not approved it yet.
func (b *Service) ApproversFor(r *store.Request) string { return b.auth.approversFor(r) }
