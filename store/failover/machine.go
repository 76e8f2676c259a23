package failover

import (
	"fmt"
	"slices"
	"time"
)

// next lists the legal moves from each non-terminal state. A state listed as its own
// successor may be "updated in place" (new EM progress) with Transition{To: current}.
var next = map[State][]State{
	Pending: {Approved, Rejected, Expired, Withdrawn},
	// An approved request's own state is derived from its items (Derive); these moves are the
	// items'. An item starts approved (queued) when its request is approved.
	Approved: {Submitting, Failed, Unknown},
	// submitting -> approved: the POST provably never reached EM (connection refused, logon
	// failed), so the approval stands and the submission is tried again.
	Submitting: {Running, Failed, Unknown, Approved},
	Running:    {Running, Stopping, Succeeded, Warning, Failed, Unknown},
	// stopping -> running: the stop provably never reached EM (its task belongs to a logon
	// session that is gone, so nothing was sent); the failover runs on as before.
	Stopping: {Stopping, Stopped, Succeeded, Warning, Failed, Unknown, Running},
}

// Legal reports whether the state machine allows from -> to at all.
func Legal(from, to State) bool { return slices.Contains(next[from], to) }

// byTransition reports whether Transition may make the move. Leaving pending is reserved
// for Approve, Reject, Withdraw and Expire, which enforce the rules that go with it.
func byTransition(from, to State) bool { return from != Pending && Legal(from, to) }

// Reasons carried by ConflictError.Reason.
const (
	ReasonStale             = "stale"              // the caller's Version is out of date
	ReasonState             = "state"              // the request's state does not allow the change
	ReasonSelfApproval      = "self-approval"      // the requester tried to approve
	ReasonDuplicateApproval = "duplicate-approval" // this user has already approved
	ReasonNotRequester      = "not-requester"      // only the requester may withdraw
	ReasonDigest            = "digest"             // the approval was for different content
	ReasonNotExpired        = "not-expired"        // Expire before ExpiresAt
	ReasonTargetBusy        = "target-busy"        // another active request holds the target
)

// ConflictError says why a change was refused and what the request really looks like,
// so the bot can answer with one honest sentence. State is the request's current state.
// By and At depend on Reason: for "duplicate-approval" they are the earlier approval, for
// "not-requester" the requester and creation time, for "not-expired" At is ExpiresAt;
// otherwise they are who put the request in State and when (StateBy, StateAt).
type ConflictError struct {
	ID     string
	State  State
	By     string
	At     time.Time
	Op     string // what was attempted: "approve", "reject", "withdraw", "expire", or the Change's Action
	Reason string
	// Holder, for "target-busy", is the active request that holds the target (State, By and
	// At are then its state, requester and creation time), and Target the target's name.
	Holder, Target string
}

func (e *ConflictError) Error() string {
	switch e.Reason {
	case ReasonState:
		if e.State == Pending {
			return fmt.Sprintf("%s is still pending%s", e.ID, byAt("requested by", e.By, e.At))
		}
		return fmt.Sprintf("%s is already %s%s", e.ID, e.State, byAt("by", e.By, e.At))
	case ReasonStale:
		return fmt.Sprintf("%s changed since it was read; it is now %s%s", e.ID, e.State, byAt("by", e.By, e.At))
	case ReasonSelfApproval:
		return fmt.Sprintf("%s cannot be approved by its requester; another person must approve", e.ID)
	case ReasonDuplicateApproval:
		return fmt.Sprintf("%s was already approved%s; a different approver is needed", e.ID, byAt("by", e.By, e.At))
	case ReasonNotRequester:
		return fmt.Sprintf("%s can only be withdrawn by its requester %s", e.ID, e.By)
	case ReasonDigest:
		return fmt.Sprintf("%s is not what this approval was offered for (digest mismatch)", e.ID)
	case ReasonNotExpired:
		return fmt.Sprintf("%s does not expire until %s", e.ID, clock(e.At))
	case ReasonNotYet:
		return fmt.Sprintf("%s waits for its turn in the plan (%s)", e.ID, e.State)
	case ReasonNotHalted:
		if e.State == Halted {
			return fmt.Sprintf("%s is halted at another group now; use the buttons of the latest halt", e.ID)
		}
		return fmt.Sprintf("%s is not halted: it is %s%s", e.ID, e.State, byAt("by", e.By, e.At))
	case ReasonSelfContinue:
		return fmt.Sprintf("%s cannot be continued by its requester; another approver must decide to go on", e.ID)
	case ReasonTargetBusy:
		return fmt.Sprintf("%s already has an active request, %s (%s%s); one active request per target", e.Target, e.Holder, e.State, byAt("requested by", e.By, e.At))
	}
	return fmt.Sprintf("%s: cannot %s: %s (%s)", e.ID, e.Op, e.Reason, e.State)
}

func clock(t time.Time) string { return t.UTC().Format("15:04 UTC") }

func byAt(verb, by string, at time.Time) string {
	switch {
	case by != "" && !at.IsZero():
		return fmt.Sprintf(" (%s %s at %s)", verb, by, clock(at))
	case by != "":
		return fmt.Sprintf(" (%s %s)", verb, by)
	case !at.IsZero():
		return fmt.Sprintf(" (at %s)", clock(at))
	}
	return ""
}

// Conflict builds the usual ConflictError: the request's state and who put it there.
func Conflict(r *Request, op, reason string) *ConflictError {
	return &ConflictError{ID: r.ID, State: r.State, By: r.StateBy, At: r.StateAt, Op: op, Reason: reason}
}

// TargetKey names a failover target for the one-active-request-per-target rule: its kind and
// EM ID (a VM's ID is unique across replicas).
func TargetKey(k Kind, t Target) string { return string(k) + "/" + t.ID }

// TargetBusy is the refusal of op on r because holder, another active request, holds its target
// t: two failovers of one VM at once must never both reach EM.
func TargetBusy(r, holder *Request, t Target, op string) *ConflictError {
	name := t.Name
	if name == "" {
		name = t.ID
	}
	return &ConflictError{ID: r.ID, Op: op, Reason: ReasonTargetBusy, Holder: holder.ID, Target: name,
		State: holder.State, By: holder.Requester, At: holder.CreatedAt}
}
