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
	for i := range r.Items {
		r.Items[i].State, r.Items[i].StateAt = Approved, now
		r.Items[i].Version++
	}
	startPlan(r, now)
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

// Remind records that reminder n (1 for the first) of a pending request was posted, with the
// line it owes the thread. Each reminder is posted once: a reminder not after the last one
// recorded is refused (ReasonState), so a poll cycle racing a restart cannot post it twice.
func Remind(r *Request, n int, line string, now time.Time) (Effect, error) {
	const op = "remind"
	if n < 1 || line == "" {
		return Effect{}, fmt.Errorf("%w: remind %s: a reminder number and a line are required", ErrInvalid, r.ID)
	}
	if r.State != Pending || n <= r.Reminded || !now.Before(r.ExpiresAt) {
		return Effect{}, Conflict(r, op, ReasonState)
	}
	r.Reminded = n
	return Effect{Actor: ReminderActor, Action: "reminder", Thread: line,
		Details: fmt.Sprintf("reminder %d: %d of %d approvals, expires %s", n, len(r.Approvals), r.ApprovalsRequired, r.ExpiresAt.Format(time.RFC3339))}, nil
}

// ReminderActor is the audit actor of a reminder.
const ReminderActor = "bot"

// Change is a guarded write for everything after approval, made with Transition. It changes one
// item of the request (Item); the request's state follows from its items (Derive).
type Change struct {
	ID string
	// Item is the target ID of the item to change. It may be "" when the request has exactly
	// one item, which is then the one changed.
	Item    string
	Version uint64  // must equal the item's stored version; 0 = any
	From    []State // allowed current states of the item; empty = whatever the state machine allows
	To      State   // the item's next state
	Actor   string  // Slack user ID, "bot", "poller", "em"
	Action  string  // audit action, e.g. "submitted", "em-state", "stop", "error"; default To
	Details string  // audit details, human readable, no secrets
	// Thread is the line this change owes the card's thread; the store's Options.Thread
	// projection may add a line after it (a milestone), never instead of it.
	Thread string
	// Apply, when set, runs inside the transaction and may change only the item's TaskID,
	// EMSession, RestoreSessionID and EM* fields; changing anything else fails with ErrInvalid.
	// Concurrent writes share commits, so Apply may run more than once (each time on a fresh
	// copy of the stored item): it must only set fields, with no other side effects.
	Apply func(*Item)
	// Stop, when set, records or confirms a stop of the request (see checkStop) together with
	// the item's change; it is called on a copy of the stored StopRequest (nil when none) and
	// returns the new one.
	Stop func(*StopRequest) *StopRequest
}

// Transition applies c to one item of r at now, or, refusing it, leaves r as it was: everything after approval (submitting, running,
// stopping, outcomes, unknown, and same-state EM progress updates). It checks the item's Version
// and From, then the state machine, runs Apply within its limits, enforces the stop rules and
// derives the request's state from its items.
func Transition(r *Request, c Change, now time.Time) (Effect, error) {
	if !c.To.Known() || c.To == PartlyFailed {
		return Effect{}, fmt.Errorf("%w: transition %s: %q is not an item state", ErrInvalid, c.ID, c.To)
	}
	if c.Actor == "" {
		return Effect{}, fmt.Errorf("%w: transition %s: actor is required", ErrInvalid, c.ID)
	}
	op := c.Action
	if op == "" {
		op = string(c.To)
	}
	it, err := item(r, c.Item)
	if err != nil {
		return Effect{}, err
	}
	if r.State == Pending || r.State.Terminal() {
		return Effect{}, Conflict(r, op, ReasonState)
	}
	if c.Version != 0 && c.Version != it.Version {
		return Effect{}, itemConflict(r, it, op, ReasonStale)
	}
	if len(c.From) > 0 && !slices.Contains(c.From, it.State) {
		return Effect{}, itemConflict(r, it, op, ReasonState)
	}
	if !byTransition(it.State, c.To) {
		return Effect{}, itemConflict(r, it, op, ReasonState)
	}
	if c.To == Submitting && it.State == Approved {
		if err := mayStart(r, it, now, op); err != nil {
			return Effect{}, err
		}
	}
	orig := *it
	if c.Apply != nil {
		if err := applyEM(it, c.Apply); err != nil {
			return Effect{}, fmt.Errorf("transition %s: %w", r.ID, err)
		}
	}
	from := it.State
	if c.Stop != nil {
		var cp *StopRequest
		if r.Stop != nil {
			st := *r.Stop
			cp = &st
		}
		after := c.Stop(cp)
		if err := checkStop(r, r.Stop, after, from, c); err != nil {
			*it = orig // a refused change leaves nothing behind
			return Effect{}, fmt.Errorf("transition %s: %w", r.ID, err)
		}
		r.Stop = after
	}
	it.Version++
	if c.To != from {
		it.State, it.StateAt = c.To, now
		switch {
		case c.To == Submitting:
			it.SubmittedAt = now
			if r.SubmittedAt.IsZero() {
				r.SubmittedAt = now
			}
			if r.IsPlan() && r.Groups[it.Group].StartedAt.IsZero() {
				r.Groups[it.Group].StartedAt = now
				tell(r, NewsStarted, it.Group)
			}
		case c.To == Running && from == Submitting:
			it.StartedAt = now
			if r.StartedAt.IsZero() {
				r.StartedAt = now
			}
		case c.To.Terminal():
			it.FinishedAt = now
		}
	}
	if runStopped(r) {
		skipQueued(r, now) // a stop in effect ends the run: nothing more is sent
	}
	advance(r, now)
	if st := Derive(r); st != r.State {
		r.State, r.StateBy, r.StateAt = st, c.Actor, now
		if st.Terminal() {
			r.FinishedAt = now
		}
	}
	details := c.Details
	if len(r.Items) > 1 {
		details = it.Target.Name + ": " + details
	}
	return Effect{Actor: c.Actor, Action: op, Details: details, Thread: c.Thread}, nil
}

// item finds the item a change names; "" names the only item of a one-item request.
func item(r *Request, id string) (*Item, error) {
	if id == "" {
		if len(r.Items) == 1 {
			return &r.Items[0], nil
		}
		return nil, fmt.Errorf("%w: transition %s: the request has %d items; name one", ErrInvalid, r.ID, len(r.Items))
	}
	if it := r.Item(id); it != nil {
		return it, nil
	}
	return nil, fmt.Errorf("%w: transition %s: no item %q", ErrInvalid, r.ID, id)
}

// itemConflict is a refusal because of an item's state: the ConflictError names the item.
func itemConflict(r *Request, it *Item, op, reason string) *ConflictError {
	e := Conflict(r, op, reason)
	if len(r.Items) > 1 {
		e.ID = r.ID + " " + it.Target.Name
	}
	e.State, e.At = it.State, it.StateAt
	return e
}

// Derive is the state of an approved request, from its items: stopping while any item is being
// stopped; running while any runs, or while some have finished and others wait; submitting while
// items are being sent and none has started; approved while all wait. Once all are finished:
// succeeded (warning if any finished with a warning) when all succeeded; partly-failed when some
// succeeded and others did not; stopped when the rest were stopped; unknown when any outcome is
// unknown; otherwise failed (skipped items count as not succeeded). A plan whose run is halted
// is halted. A pending or decided-against request keeps its own state.
func Derive(r *Request) State {
	if r.State == Pending || r.State == Rejected || r.State == Expired || r.State == Withdrawn || len(r.Items) == 0 {
		return r.State
	}
	n := map[State]int{}
	for _, it := range r.Items {
		n[it.State]++
	}
	finished := n[Succeeded] + n[Warning] + n[Failed] + n[Stopped] + n[Unknown] + n[Skipped]
	ok := n[Succeeded] + n[Warning]
	switch {
	case r.Halt != nil:
		return Halted
	case n[Stopping] > 0:
		return Stopping
	case n[Running] > 0:
		return Running
	case finished < len(r.Items) && finished > 0:
		return Running
	case n[Submitting] > 0:
		return Submitting
	case finished < len(r.Items):
		return Approved
	case ok == len(r.Items) && n[Warning] > 0:
		return Warning
	case ok == len(r.Items):
		return Succeeded
	case ok > 0:
		return PartlyFailed
	case n[Unknown] > 0:
		return Unknown
	case n[Stopped]+n[Skipped] > 0 && n[Failed] == 0:
		return Stopped
	}
	return Failed
}

// Counts returns how many of r's items are in each state.
func Counts(r *Request) map[State]int {
	n := map[State]int{}
	for _, it := range r.Items {
		n[it.State]++
	}
	return n
}

// checkStop enforces the rules of a stop request: it is recorded only while the request runs and
// some item has a task, with a change that keeps an item running or starts stopping it, by the
// change's actor; it cannot be taken back, except when the only item being stopped goes back to
// running because the stop provably never reached EM; and a confirmation comes from a second
// person.
func checkStop(r *Request, before, after *StopRequest, from State, c Change) error {
	if reflect.DeepEqual(before, after) {
		return nil
	}
	if after == nil && before != nil && from == Stopping && c.To == Running {
		for _, it := range r.Items {
			if it.Target.ID != c.Item && c.Item != "" && (it.State == Stopping || it.State == Stopped) {
				return fmt.Errorf("%w: a stop that reached EM for another item cannot be taken back", ErrInvalid)
			}
		}
		return nil // the stop never reached EM: it is withdrawn and the failover runs on
	}
	hasTask := slices.ContainsFunc(r.Items, func(it Item) bool { return it.TaskID != "" })
	switch {
	case (r.State != Running && r.State != Stopping) || (c.To != Running && c.To != Stopping):
		return fmt.Errorf("%w: a stop is recorded only on a running failover, moving to running or stopping", ErrInvalid)
	case !hasTask:
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
func applyEM(it *Item, apply func(*Item)) error {
	cp := *it
	apply(&cp)
	check := cp
	check.TaskID, check.EMSession, check.RestoreSessionID = it.TaskID, it.EMSession, it.RestoreSessionID
	check.EMState, check.EMProgress, check.EMResult, check.EMMessage = it.EMState, it.EMProgress, it.EMResult, it.EMMessage
	if check != *it {
		return fmt.Errorf("%w: Apply may change only TaskID, EMSession, RestoreSessionID and EM* fields", ErrInvalid)
	}
	*it = cp
	return nil
}
