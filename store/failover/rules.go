package failover

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"
)

// Effect is what a rule tells the audit log about the change it made: who, what, details, and
// the line the change owes the card's thread ("" leaves it to the store's projection).
type Effect struct {
	Actor, Action, Details, Thread string
}

// Approve records user's approval of r at now, enforcing the two-person rule: only a pending
// request, only for the content its card showed (digest, rehashed from the stored fields too,
// so a record edited on disk no longer matches), never by its requester, once per person. r
// becomes approved with the last approval required.
func Approve(r *Request, user, digest string, now time.Time) (Effect, error) {
	const op = "approve"
	if user == "" {
		return Effect{}, fmt.Errorf("%w: approve %s: user is required", ErrInvalid, r.ID)
	}
	if r.State != Pending {
		return Effect{}, Conflict(r, op, ReasonState)
	}
	if digest != r.Digest || r.ComputeDigest() != r.Digest {
		return Effect{}, Conflict(r, op, ReasonDigest)
	}
	if user == r.Requester {
		return Effect{}, Conflict(r, op, ReasonSelfApproval)
	}
	if i := slices.IndexFunc(r.Approvals, func(a Approval) bool { return a.User == user }); i >= 0 {
		e := Conflict(r, op, ReasonDuplicateApproval)
		e.By, e.At = r.Approvals[i].User, r.Approvals[i].At
		return Effect{}, e
	}
	r.Approvals = append(r.Approvals, Approval{User: user, At: now})
	details := fmt.Sprintf("%d of %d approvals", len(r.Approvals), r.ApprovalsRequired)
	if len(r.Approvals) < r.ApprovalsRequired {
		return Effect{Actor: user, Action: "approval", Details: details}, nil
	}
	r.State, r.StateBy, r.StateAt, r.DecidedAt = Approved, user, now, now
	return Effect{Actor: user, Action: "approved", Details: details}, nil
}

// Reject records that user turned the pending request down, with a reason. Who may reject is
// decided by the caller; the rule only requires a pending request.
func Reject(r *Request, user, reason string, now time.Time) (Effect, error) {
	if user == "" || strings.TrimSpace(reason) == "" {
		return Effect{}, fmt.Errorf("%w: reject %s: user and reason are required", ErrInvalid, r.ID)
	}
	if r.State != Pending {
		return Effect{}, Conflict(r, "reject", ReasonState)
	}
	r.Rejection = &Rejection{User: user, Reason: reason, At: now}
	r.State, r.StateBy, r.StateAt, r.DecidedAt, r.FinishedAt = Rejected, user, now, now, now
	return Effect{Actor: user, Action: "rejected", Details: "reason: " + reason}, nil
}

// Withdraw lets the requester take back a request nobody has decided yet.
func Withdraw(r *Request, user string, now time.Time) (Effect, error) {
	const op = "withdraw"
	if r.State != Pending {
		return Effect{}, Conflict(r, op, ReasonState)
	}
	if user != r.Requester {
		e := Conflict(r, op, ReasonNotRequester)
		e.By, e.At = r.Requester, r.CreatedAt
		return Effect{}, e
	}
	r.State, r.StateBy, r.StateAt, r.FinishedAt = Withdrawn, user, now, now
	return Effect{Actor: user, Action: "withdrawn"}, nil
}

// WithdrawUndeliverable withdraws a pending request nobody can ever approve, because Slack
// refused its card for good; why names Slack's answer.
func WithdrawUndeliverable(r *Request, actor, why string, now time.Time) (Effect, error) {
	if strings.TrimSpace(why) == "" {
		return Effect{}, fmt.Errorf("%w: withdraw %s: a reason is required", ErrInvalid, r.ID)
	}
	if r.State != Pending {
		return Effect{}, Conflict(r, "withdraw", ReasonState)
	}
	r.State, r.StateBy, r.StateAt, r.FinishedAt = Withdrawn, actor, now, now
	return Effect{Actor: actor, Action: "withdrawn-undeliverable", Details: why}, nil
}

// Expire ends a pending request whose approval window has passed (now >= ExpiresAt).
func Expire(r *Request, actor string, now time.Time) (Effect, error) {
	const op = "expire"
	if r.State != Pending {
		return Effect{}, Conflict(r, op, ReasonState)
	}
	if now.Before(r.ExpiresAt) {
		e := Conflict(r, op, ReasonNotExpired)
		e.At = r.ExpiresAt
		return Effect{}, e
	}
	r.State, r.StateBy, r.StateAt, r.FinishedAt = Expired, actor, now, now
	return Effect{Actor: actor, Action: "expired",
		Details: fmt.Sprintf("%d of %d approvals by %s", len(r.Approvals), r.ApprovalsRequired, r.ExpiresAt.Format(time.RFC3339))}, nil
}

// Change is a guarded write for everything after approval, made with Transition.
type Change struct {
	ID      string
	Version uint64  // must equal the stored version; 0 = any
	From    []State // allowed current states; empty = whatever the state machine allows
	To      State
	Actor   string // Slack user ID, "bot", "poller", "em"
	Action  string // audit action, e.g. "submitted", "em-state", "stop", "error"; default To
	Details string // audit details, human readable, no secrets
	// Thread is the line this change owes the card's thread; empty leaves it to the store's
	// Options.Thread projection.
	Thread string
	// Apply, when set, runs inside the transaction and may change only TaskID, EMSession,
	// RestoreSessionID and the EM* fields; changing anything else fails with ErrInvalid.
	// Concurrent writes share commits, so Apply may run more than once (each time on a fresh
	// copy of the stored request): it must only set fields, with no other side effects.
	Apply func(*Request)
}

// Transition applies c to r at now: everything after approval (submitting, running, stopping,
// outcomes, unknown, and same-state EM progress updates). It checks Version and From, then the
// state machine, runs Apply within its limits, and enforces the stop rules.
func Transition(r *Request, c Change, now time.Time) (Effect, error) {
	if !c.To.Known() {
		return Effect{}, fmt.Errorf("%w: transition %s: unknown target state %q", ErrInvalid, c.ID, c.To)
	}
	if c.Actor == "" {
		return Effect{}, fmt.Errorf("%w: transition %s: actor is required", ErrInvalid, c.ID)
	}
	op := c.Action
	if op == "" {
		op = string(c.To)
	}
	if c.Version != 0 && c.Version != r.Version {
		return Effect{}, Conflict(r, op, ReasonStale)
	}
	if len(c.From) > 0 && !slices.Contains(c.From, r.State) {
		return Effect{}, Conflict(r, op, ReasonState)
	}
	if !byTransition(r.State, c.To) {
		return Effect{}, Conflict(r, op, ReasonState)
	}
	before := r.Stop
	if c.Apply != nil {
		if err := applyEM(r, c.Apply); err != nil {
			return Effect{}, fmt.Errorf("transition %s: %w", r.ID, err)
		}
	}
	if err := checkStop(r, before, c); err != nil {
		return Effect{}, fmt.Errorf("transition %s: %w", r.ID, err)
	}
	if c.To != r.State {
		r.State, r.StateBy, r.StateAt = c.To, c.Actor, now
		switch {
		case c.To == Submitting:
			r.SubmittedAt = now
		case c.To == Running:
			r.StartedAt = now
		case c.To.Terminal():
			r.FinishedAt = now
		}
	}
	return Effect{Actor: c.Actor, Action: op, Details: c.Details, Thread: c.Thread}, nil
}

// checkStop enforces the rules of a stop request: it is recorded only on a running failover
// that has a task, by the change's actor; it cannot be taken back, except by the move from
// stopping back to running when the stop provably never reached EM; and a confirmation must
// come from a second person.
func checkStop(r *Request, before *StopRequest, c Change) error {
	after := r.Stop
	if reflect.DeepEqual(before, after) {
		return nil
	}
	if after == nil && r.State == Stopping && c.To == Running {
		return nil // the stop never reached EM: it is withdrawn and the failover runs on
	}
	switch {
	case r.State != Running || (c.To != Running && c.To != Stopping):
		return fmt.Errorf("%w: a stop is recorded only on a running failover, moving to running or stopping", ErrInvalid)
	case r.TaskID == "":
		return fmt.Errorf("%w: a failover without a task cannot be stopped", ErrInvalid)
	case after == nil:
		return fmt.Errorf("%w: a stop request cannot be taken back", ErrInvalid)
	case before == nil && (after.User != c.Actor || after.ConfirmedBy != ""):
		return fmt.Errorf("%w: a new stop request is the actor's own and unconfirmed", ErrInvalid)
	case before != nil && (after.User != before.User || after.Reason != before.Reason || !after.At.Equal(before.At)):
		return fmt.Errorf("%w: a stop request cannot be rewritten", ErrInvalid)
	case before != nil && (after.ConfirmedBy != c.Actor || after.ConfirmedBy == before.User):
		return fmt.Errorf("%w: a stop is confirmed by a second person, as the change's actor", ErrInvalid)
	}
	return nil
}

// applyEM runs apply on a copy and keeps only the fields it is allowed to set, failing
// loudly if it touched others: silently dropping a write would hide a bot bug, and
// honouring it would let the bot bypass the state machine or rewrite approved content.
func applyEM(r *Request, apply func(*Request)) error {
	cp := r.Clone()
	apply(cp)
	check := cp.Clone()
	check.TaskID, check.EMSession, check.RestoreSessionID = r.TaskID, r.EMSession, r.RestoreSessionID
	check.EMState, check.EMProgress, check.EMResult, check.EMMessage = r.EMState, r.EMProgress, r.EMResult, r.EMMessage
	check.Stop = r.Stop
	if !reflect.DeepEqual(check, r) {
		return fmt.Errorf("%w: Apply may change only TaskID, EMSession, RestoreSessionID, EM* and Stop fields", ErrInvalid)
	}
	r.TaskID, r.EMSession, r.RestoreSessionID = cp.TaskID, cp.EMSession, cp.RestoreSessionID
	r.EMState, r.EMProgress, r.EMResult, r.EMMessage = cp.EMState, cp.EMProgress, cp.EMResult, cp.EMMessage
	r.Stop = cp.Stop
	return nil
}
