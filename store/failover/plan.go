package failover

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// KindPlan is a request that runs a recovery plan: ordered groups of VMs and vApps, each item
// carrying its own kind (Item.Kind).
const KindPlan Kind = "plan"

// Halted is a plan request (never an item) whose run stopped before its next group because a
// critical item failed or ended unknown: it waits for a second person to Continue, or for
// someone to end the run (EndRun). Nothing is in flight while a request is halted.
const Halted State = "halted"

// Skipped is an item that was never sent to EM because its run was stopped first (the plan was
// ended while halted, or a stop of the request reached EM before the item's turn).
const Skipped State = "skipped"

// Group is one step of a plan request: its items (Item.Group is the index) run once every
// earlier group has an outcome, at most Concurrency of them failing over at once.
type Group struct {
	Name string `json:"name"`
	// Concurrency is how many items of the group may be submitting, running or stopping at
	// once (at least 1).
	Concurrency int `json:"concurrency"`
	// Delay is how long the next group waits after this one has an outcome for every item.
	Delay time.Duration `json:"delay_ns,omitempty"`

	// StartAt is when the group became current plus the previous group's delay: no item of the
	// group may be submitted before it. Zero while the group is not current yet.
	StartAt   time.Time `json:"start_at,omitzero"`
	StartedAt time.Time `json:"started_at,omitzero"` // its first item entered submitting
	DoneAt    time.Time `json:"done_at,omitzero"`    // every item had an outcome
}

// Halt says why a plan run stopped before its next group.
type Halt struct {
	Group int       `json:"group"` // the group whose critical items failed
	Items []string  `json:"items"` // their names
	At    time.Time `json:"at"`
}

// Continuation is a second person's decision to go on with a halted plan.
type Continuation struct {
	User  string    `json:"user"`
	At    time.Time `json:"at"`
	Group int       `json:"group"` // the halted group it continued after
	Items []string  `json:"items"` // the failed critical items it accepted
}

// PlanNews is what one write did to a plan's run (a group started, had an outcome for every item,
// halted, was continued or ended), for the projection that turns it into thread lines. V is the
// version the write stores (every write of a request increments its version by one), so news
// of an earlier write is never told again.
type PlanNews struct {
	V      uint64      `json:"v"`
	Events []PlanEvent `json:"events"`
}

// PlanEvent is one milestone of a plan run.
type PlanEvent struct {
	Kind  string `json:"kind"` // NewsStarted, NewsDone, NewsHalted, NewsContinued, NewsEnded
	Group int    `json:"group"`
}

// The kinds of PlanEvent.
const (
	NewsStarted   = "started"
	NewsDone      = "done"
	NewsHalted    = "halted"
	NewsContinued = "continued"
	NewsEnded     = "ended"
)

// tell records a milestone of the write in progress.
func tell(r *Request, kind string, group int) {
	if r.News == nil || r.News.V != r.Version+1 {
		r.News = &PlanNews{V: r.Version + 1}
	}
	r.News.Events = append(r.News.Events, PlanEvent{Kind: kind, Group: group})
}

// Milestones returns what the write that stored r did to its plan's run; nil for other writes.
func (r *Request) Milestones() []PlanEvent {
	if r.News == nil || r.News.V != r.Version {
		return nil
	}
	return r.News.Events
}

// Reasons for plan refusals, carried by ConflictError.Reason.
const (
	ReasonNotHalted    = "not-halted"    // Continue or EndRun of a request that is not halted (there)
	ReasonSelfContinue = "self-continue" // the requester tried to continue their own halted plan
)

// IsPlan reports whether r runs a recovery plan.
func (r *Request) IsPlan() bool { return len(r.Groups) > 0 }

// KindOf is the kind of one of r's items: its own for a plan, else the request's.
func (r *Request) KindOf(it *Item) Kind {
	if it.Kind != "" {
		return it.Kind
	}
	return r.Kind
}

// GroupItems returns the indexes of r's items in group g.
func (r *Request) GroupItems(g int) []int {
	var out []int
	for i := range r.Items {
		if r.Items[i].Group == g {
			out = append(out, i)
		}
	}
	return out
}

// inFlight reports whether an item state holds one of its group's concurrency slots.
func inFlight(s State) bool { return s == Submitting || s == Running || s == Stopping }

// runStopped reports whether a stop of r is in effect, so that nothing more may be sent: the run
// was ended while halted, a stop reached EM for an item, or a second person confirmed one.
func runStopped(r *Request) bool {
	if r.Stop == nil {
		return false
	}
	if r.Stop.ConfirmedBy != "" {
		return true
	}
	return slices.ContainsFunc(r.Items, func(it Item) bool { return it.State == Stopping || it.State == Stopped || it.State == Skipped })
}

// mayStart says why item it of r may not enter submitting at now, or nil: a plan's items start
// only in their group's turn, after its start time, within its concurrency and while the run is
// not halted; no item starts once a stop of the request is in effect.
func mayStart(r *Request, it *Item, now time.Time, op string) error {
	if runStopped(r) {
		return itemConflict(r, it, op, ReasonState)
	}
	if !r.IsPlan() {
		return nil
	}
	e := itemConflict(r, it, op, ReasonNotYet)
	switch {
	case r.Halt != nil, it.Group != r.Current:
		return e
	case it.Group < 0 || it.Group >= len(r.Groups):
		return fmt.Errorf("%w: %s: item %s names group %d of %d", ErrInvalid, r.ID, it.Target.Name, it.Group, len(r.Groups))
	}
	g := r.Groups[it.Group]
	if now.Before(g.StartAt) {
		return e
	}
	n := 0
	for _, i := range r.GroupItems(it.Group) {
		if inFlight(r.Items[i].State) {
			n++
		}
	}
	if n >= max(g.Concurrency, 1) {
		return e
	}
	return nil
}

// ReasonNotYet refuses the submission of an item whose turn has not come (an earlier group has
// no outcome yet, its group's delay or concurrency holds it, or the run is halted).
const ReasonNotYet = "not-yet"

// Eligible returns the indexes of r's items that may be submitted at now, in order: every
// approved item of a request that is not a plan (POST slots are the caller's concern), or the
// approved items of a plan's current group within its concurrency, once its start time passed.
func Eligible(r *Request, now time.Time) []int {
	if r.State == Pending || r.State.Terminal() || runStopped(r) {
		return nil
	}
	if !r.IsPlan() {
		var out []int
		for i := range r.Items {
			if r.Items[i].State == Approved {
				out = append(out, i)
			}
		}
		return out
	}
	if r.Halt != nil || r.Current >= len(r.Groups) || now.Before(r.Groups[r.Current].StartAt) {
		return nil
	}
	free := max(r.Groups[r.Current].Concurrency, 1)
	var queued []int
	for _, i := range r.GroupItems(r.Current) {
		switch s := r.Items[i].State; {
		case inFlight(s):
			free--
		case s == Approved:
			queued = append(queued, i)
		}
	}
	if free <= 0 {
		return nil
	}
	return queued[:min(free, len(queued))]
}

// NextStart is when the plan's current group may start, when that is still in the future.
func NextStart(r *Request, now time.Time) (time.Time, bool) {
	if !r.IsPlan() || r.Halt != nil || r.Current >= len(r.Groups) || r.State.Terminal() {
		return time.Time{}, false
	}
	at := r.Groups[r.Current].StartAt
	return at, now.Before(at)
}

// groupDone reports whether every item of group g has an outcome.
func groupDone(r *Request, g int) bool {
	for _, i := range r.GroupItems(g) {
		if !r.Items[i].State.Terminal() {
			return false
		}
	}
	return true
}

// failedCritical names the critical items of group g that did not succeed.
func failedCritical(r *Request, g int) []string {
	var out []string
	for _, i := range r.GroupItems(g) {
		it := r.Items[i]
		if !it.Optional && (it.State == Failed || it.State == Unknown) {
			out = append(out, it.Target.Name)
		}
	}
	return out
}

// pendingAfter reports whether any group after g still has an item to send.
func pendingAfter(r *Request, g int) bool {
	return slices.ContainsFunc(r.Items, func(it Item) bool { return it.Group > g && it.State == Approved })
}

// startPlan makes the first group current at now, at approval.
func startPlan(r *Request, now time.Time) {
	if !r.IsPlan() {
		return
	}
	r.Current = 0
	r.Groups[0].StartAt = now
	advance(r, now)
}

// advance moves a plan on after its current group has an outcome for every item: it halts the
// run when a critical item failed or ended unknown and a later group still has work, else makes
// the next group current, to start after this group's delay. Groups with no items are passed.
func advance(r *Request, now time.Time) {
	for r.IsPlan() && r.Halt == nil && r.Current < len(r.Groups) && groupDone(r, r.Current) && !runStopped(r) {
		g := &r.Groups[r.Current]
		if g.DoneAt.IsZero() {
			g.DoneAt = now
			tell(r, NewsDone, r.Current)
		}
		if r.Current == len(r.Groups)-1 {
			return
		}
		if bad := failedCritical(r, r.Current); len(bad) > 0 && pendingAfter(r, r.Current) {
			r.Halt = &Halt{Group: r.Current, Items: bad, At: now}
			tell(r, NewsHalted, r.Current)
			return
		}
		next := g.DoneAt.Add(g.Delay)
		if next.Before(now) {
			next = now
		}
		r.Current++
		r.Groups[r.Current].StartAt = next
	}
}

// Continue records that user, an approver who is not the requester (the caller checks the
// role), accepts the failed critical items of halted group group and lets the plan go on with
// its next group, after that group's delay. A Continue for another halt than the current one
// is refused: a button left from an earlier halt must not continue a later one.
func Continue(r *Request, user string, group int, now time.Time) (Effect, error) {
	const op = "continue"
	if user == "" {
		return Effect{}, fmt.Errorf("%w: continue %s: user is required", ErrInvalid, r.ID)
	}
	if r.Halt == nil || r.Halt.Group != group {
		e := Conflict(r, op, ReasonNotHalted)
		return Effect{}, e
	}
	if user == r.Requester {
		return Effect{}, Conflict(r, op, ReasonSelfContinue)
	}
	h := r.Halt
	r.Continues = append(r.Continues, Continuation{User: user, At: now, Group: h.Group, Items: h.Items})
	r.Halt = nil
	tell(r, NewsContinued, h.Group)
	g := r.Groups[h.Group]
	next := g.DoneAt.Add(g.Delay)
	if next.Before(now) {
		next = now
	}
	r.Current = h.Group + 1
	r.Groups[r.Current].StartAt = next
	advance(r, now)
	r.State, r.StateBy, r.StateAt = Derive(r), user, now
	return Effect{Actor: user, Action: "continued",
		Details: fmt.Sprintf("after group %d %s despite %s; next: group %d %s", h.Group+1, g.Name, strings.Join(h.Items, ", "), h.Group+2, r.Groups[h.Group+1].Name)}, nil
}

// EndRun ends a halted plan at user's word (the requester or an approver; the caller checks):
// the items not sent yet are skipped and what already failed over stays as it is.
func EndRun(r *Request, user, reason string, group int, now time.Time) (Effect, error) {
	const op = "end-run"
	if user == "" || strings.TrimSpace(reason) == "" {
		return Effect{}, fmt.Errorf("%w: end run %s: user and reason are required", ErrInvalid, r.ID)
	}
	if r.Halt == nil || r.Halt.Group != group {
		return Effect{}, Conflict(r, op, ReasonNotHalted)
	}
	h := r.Halt
	r.Halt = nil
	tell(r, NewsEnded, h.Group)
	r.Stop = &StopRequest{User: user, Reason: reason, At: now}
	skipped := skipQueued(r, now)
	st := Derive(r)
	r.State, r.StateBy, r.StateAt = st, user, now
	if st.Terminal() {
		r.FinishedAt = now
	}
	return Effect{Actor: user, Action: "run-stopped",
		Details: fmt.Sprintf("halted after group %d %s (%s); %d items not sent: %s", h.Group+1, r.Groups[h.Group].Name, strings.Join(h.Items, ", "), skipped, reason)}, nil
}

// skipQueued makes every item not sent yet skipped, and returns how many there were.
func skipQueued(r *Request, now time.Time) int {
	n := 0
	for i := range r.Items {
		if it := &r.Items[i]; it.State == Approved {
			it.State, it.StateAt, it.FinishedAt = Skipped, now, now
			it.Version++
			n++
		}
	}
	return n
}
