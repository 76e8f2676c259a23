package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/failover-bot/failover-bot/store/failover"
)

// Store is what failover-bot needs from persistence, whatever holds it. *Bolt (one bbolt file)
// implements it; an etcd backend is the next. Every method takes a context: a call whose
// context is already done is refused before it writes anything, and a write that has begun is
// committed whole or not at all. Every implementation must pass the conformance suite in
// package storetest.
//
// Requests are changed in exactly one way: Update, a compare-and-swap of one request. The
// model's rules (package failover) run inside it, so a rule always sees the stored request and
// what it changes is written together with its audit event, the thread line it owes and the
// card it makes stale, or not at all. The rule methods (Approve, Reject, Withdraw, Expire,
// Transition) are Rules over Update and are the same for every backend.
type Store interface {
	RuleMethods

	// Create records a new pending request (see NewRequest), gives it the next ID and holds
	// its target: a target held by another active request is refused with a ConflictError
	// (ReasonTargetBusy). A replay key seen within its TTL is refused with ErrReplay.
	Create(ctx context.Context, nr NewRequest) (*Request, error)
	Get(ctx context.Context, id string) (*Request, error)
	ByMessage(ctx context.Context, channel, ts string) (*Request, error)
	// Active returns the requests in an active state, oldest first, at a cost that does not
	// grow with finished history.
	Active(ctx context.Context) ([]*Request, error)
	// Recent calls fn with requests from the newest back until fn returns false, at a cost of
	// the requests visited.
	Recent(ctx context.Context, fn func(*Request) bool) error
	// Finished returns at most limit requests that finished (entered a terminal state) at or
	// after since, by FinishTime newest first (ties: the higher ID first), and how many more
	// finished since then, counted up to FinishedMoreCap (a count of FinishedMoreCap means at
	// least that many). It reads an index of finished requests by finish time that is written
	// in the same write as the change that finishes a request, so its cost is the requests
	// returned plus at most FinishedMoreCap index entries, however long the history.
	Finished(ctx context.Context, since time.Time, limit int) (reqs []*Request, more int, err error)
	// Holders returns the active request holding each of keys (failover.TargetKey), from the
	// target index: its cost is the keys asked, not the requests active.
	Holders(ctx context.Context, keys []string) (map[string]*Request, error)
	Updater
	Note(ctx context.Context, id, actor, action, details, thread string) (*Request, error)
	WithdrawUndeliverable(ctx context.Context, id, why string) (*Request, error)
	Remember(ctx context.Context, key string, ttl time.Duration) error
	Seen(ctx context.Context, key string) (bool, error)

	// What Slack is owed: cards and their positions, queued messages, the audit cursor.
	SetMessage(ctx context.Context, id, channel, ts string, rendered uint64) (*Request, error)
	UnpostedChannels(ctx context.Context) ([]string, error)
	UnpostedCards(ctx context.Context, channel string, limit int) ([]Card, error)
	StaleCards(ctx context.Context, limit int) ([]Card, error)
	DueCards(ctx context.Context) ([]Card, error)
	CardRendered(ctx context.Context, id string, version uint64) error
	CardDelayNotified(ctx context.Context, id string) error
	AbandonCard(ctx context.Context, id, why string) (*Request, error)
	Enqueue(ctx context.Context, channel, text string) error
	OutboxChannels(ctx context.Context) ([]string, error)
	Outbox(ctx context.Context, channel string, limit int) ([]Outgoing, error)
	Delivered(ctx context.Context, channel string, seqs ...uint64) error
	AuditCursor(ctx context.Context, channel string) (uint64, error)
	SetAuditCursor(ctx context.Context, channel string, seq uint64) error
	Backlog(ctx context.Context, auditChannel string, show func(Event) bool) (messages, cards, events int, err error)
	// Changed is signalled after a commit that may owe Slack something.
	Changed() <-chan struct{}

	// The hash-chained audit log.
	Events(ctx context.Context, sinceSeq uint64, since time.Time, fn func(Event) error) error
	Verify(ctx context.Context) error

	Backup(ctx context.Context, w io.Writer) (int64, error)
	Writable(ctx context.Context) error
	Close() error
}

// Updater is the one compare-and-swap write of a request.
type Updater interface {
	// Update reads request id, runs m on a private copy and writes the result only if the
	// stored request has not changed since it was read; otherwise it reads again and reruns
	// m (so m must derive everything from its arguments and have no side effects). An empty
	// Effect.Action means nothing changed and nothing is written. A write stores the request
	// with Version+1, appends the audit event, queues the thread line and marks the card due;
	// when the request leaves the active states its targets are released.
	Update(ctx context.Context, id string, m Mutation) (*Request, error)
}

// Mutation is a change of one request, made by Update inside the backend's transaction.
type Mutation func(r *Request, v View, now time.Time) (failover.Effect, error)

// View is what a mutation may read besides its own request, in the same transaction.
type View interface {
	// Holder returns the active request holding target key (failover.TargetKey), or nil.
	Holder(key string) (*Request, error)
}

// RuleMethods are the model's rules as store calls; Rules implements them over any Updater.
type RuleMethods interface {
	Approve(ctx context.Context, id, user, digest string) (*Request, error)
	Reject(ctx context.Context, id, user, reason string) (*Request, error)
	Withdraw(ctx context.Context, id, user string) (*Request, error)
	Expire(ctx context.Context, id string) (*Request, error)
	Transition(ctx context.Context, c Change) (*Request, error)
	TransitionAll(ctx context.Context, id string, cs []Change, actor, action, details string) (*Request, int, error)
	Continue(ctx context.Context, id, user string, group int) (*Request, error)
	EndRun(ctx context.Context, id, user, reason string, group int) (*Request, error)
	Remind(ctx context.Context, id string, n int, line string) (*Request, error)
}

// Rules runs the model's rules through U.Update. A backend embeds it.
type Rules struct {
	U Updater
	// Lead, when set, admits a write only the leader may make (see Etcd.Lead): it returns the
	// context to write with (carrying the leadership's fence) or ErrFenced.
	Lead func(ctx context.Context) (context.Context, error)
}

func (x Rules) lead(ctx context.Context) (context.Context, error) {
	if x.Lead == nil {
		return ctx, nil
	}
	return x.Lead(ctx)
}

// Approve records user's approval of the request, which must still be pending and must carry
// digest. The requester cannot approve, nor can anyone approve twice, and the request must
// still hold its target. With the last approval required it becomes approved.
func (x Rules) Approve(ctx context.Context, id, user, digest string) (*Request, error) {
	if user == "" {
		return nil, fmt.Errorf("%w: approve %s: user is required", ErrInvalid, id)
	}
	return x.U.Update(ctx, id, func(r *Request, v View, now time.Time) (failover.Effect, error) {
		for _, it := range r.Items {
			if r.State != Pending {
				break
			}
			holder, err := v.Holder(failover.TargetKey(r.KindOf(&it), it.Target))
			if err != nil {
				return failover.Effect{}, err
			}
			if holder != nil && holder.Seq != r.Seq {
				return failover.Effect{}, failover.TargetBusy(r, holder, it.Target, "approve")
			}
		}
		return failover.Approve(r, user, digest, now)
	})
}

// Reject records that user turned the pending request down, with a reason. The bot decides
// who may reject; the store only requires that the request is still pending.
func (x Rules) Reject(ctx context.Context, id, user, reason string) (*Request, error) {
	if user == "" || strings.TrimSpace(reason) == "" {
		return nil, fmt.Errorf("%w: reject %s: user and reason are required", ErrInvalid, id)
	}
	return x.U.Update(ctx, id, func(r *Request, _ View, now time.Time) (failover.Effect, error) {
		return failover.Reject(r, user, reason, now)
	})
}

// Withdraw lets the requester take back a request nobody has decided yet.
func (x Rules) Withdraw(ctx context.Context, id, user string) (*Request, error) {
	return x.U.Update(ctx, id, func(r *Request, _ View, now time.Time) (failover.Effect, error) {
		return failover.Withdraw(r, user, now)
	})
}

// Remind records that reminder n of the pending request was posted, queueing line in its
// thread in the same write; a reminder already recorded (or a request no longer pending) is a
// ConflictError, so each reminder is posted once.
func (x Rules) Remind(ctx context.Context, id string, n int, line string) (*Request, error) {
	ctx, err := x.lead(ctx)
	if err != nil {
		return nil, err
	}
	return x.U.Update(ctx, id, func(r *Request, _ View, now time.Time) (failover.Effect, error) {
		return failover.Remind(r, n, line, now)
	})
}

// ExpiryActor is recorded as StateBy and audit actor when a request expires.
const ExpiryActor = "bot"

// Expire ends a pending request whose approval window has passed (now >= ExpiresAt).
func (x Rules) Expire(ctx context.Context, id string) (*Request, error) {
	ctx, err := x.lead(ctx)
	if err != nil {
		return nil, err
	}
	return x.U.Update(ctx, id, func(r *Request, _ View, now time.Time) (failover.Effect, error) {
		return failover.Expire(r, ExpiryActor, now)
	})
}

// Transition is the one guarded write for everything after approval: submitting, running,
// stopping, outcomes, unknown, and same-state EM progress updates (To == current state,
// allowed for running and stopping). It checks Version and From, then the state machine.
func (x Rules) Transition(ctx context.Context, c Change) (*Request, error) {
	ctx, err := x.lead(ctx)
	if err != nil {
		return nil, err
	}
	if !c.To.Known() {
		return nil, fmt.Errorf("%w: transition %s: unknown target state %q", ErrInvalid, c.ID, c.To)
	}
	if c.Actor == "" {
		return nil, fmt.Errorf("%w: transition %s: actor is required", ErrInvalid, c.ID)
	}
	return x.U.Update(ctx, c.ID, func(r *Request, _ View, now time.Time) (failover.Effect, error) {
		return failover.Transition(r, c, now)
	})
}

// Continue lets a halted plan go on after group (its index) at user's word; user must not be the
// requester (the bot checks that user is an approver).
func (x Rules) Continue(ctx context.Context, id, user string, group int) (*Request, error) {
	return x.U.Update(ctx, id, func(r *Request, _ View, now time.Time) (failover.Effect, error) {
		return failover.Continue(r, user, group, now)
	})
}

// EndRun ends a plan halted after group: the items not sent are skipped.
func (x Rules) EndRun(ctx context.Context, id, user, reason string, group int) (*Request, error) {
	return x.U.Update(ctx, id, func(r *Request, _ View, now time.Time) (failover.Effect, error) {
		return failover.EndRun(r, user, reason, group, now)
	})
}

var _ Store = (*Bolt)(nil)

// TransitionAll applies many item changes of one request in one write, with one audit event
// (actor, action, details prefixed with the count): EM's progress of 200 items costs one write
// per poll cycle, not 200. A change its item refuses (stale, or not allowed from the item's
// state) is skipped; n says how many were applied. Nothing is written when none was.
func (x Rules) TransitionAll(ctx context.Context, id string, cs []Change, actor, action, details string) (*Request, int, error) {
	ctx, err := x.lead(ctx)
	if err != nil {
		return nil, 0, err
	}
	if actor == "" || action == "" {
		return nil, 0, fmt.Errorf("%w: transition all %s: actor and action are required", ErrInvalid, id)
	}
	var n int
	r, err := x.U.Update(ctx, id, func(r *Request, _ View, now time.Time) (failover.Effect, error) {
		n = 0
		for _, c := range cs {
			c.ID = id
			if _, err := failover.Transition(r, c, now); err == nil {
				n++
			} else if errors.Is(err, ErrInvalid) {
				return failover.Effect{}, err
			}
		}
		if n == 0 {
			return failover.Effect{}, nil
		}
		return failover.Effect{Actor: actor, Action: action, Details: fmt.Sprintf("%d items: %s", n, details)}, nil
	})
	return r, n, err
}
