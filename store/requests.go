package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Create records a new pending request, gives it the next ID and appends a "requested"
// event. Slash commands arriving together share one commit (see groupCommit) instead of
// queueing behind each other's fsyncs.
func (s *Store) Create(nr NewRequest) (*Request, error) {
	if err := nr.validate(); err != nil {
		return nil, err
	}
	now := s.now().UTC()
	restore := time.Time{}
	if !nr.RestoreTime.IsZero() {
		restore = nr.RestoreTime.UTC()
	}
	base := Request{
		Kind:              nr.Kind,
		Target:            nr.Target,
		Intent:            nr.Intent,
		RestoreTime:       restore,
		Reason:            nr.Reason,
		Requester:         nr.Requester,
		Channel:           nr.Channel,
		ResponseURL:       nr.ResponseURL,
		ApprovalsRequired: s.approvalsRequired,
		State:             Pending,
		StateBy:           nr.Requester,
		StateAt:           now,
		CreatedAt:         now,
		ExpiresAt:         now.Add(nr.TTL),
	}
	base.Digest = base.computeDigest()

	var out *Request
	// A group commit may run this function more than once (when another function in the
	// same group fails, the whole transaction is rolled back and retried). Every run starts
	// from the same base copy and only overwrites out, and NextSequence and the audit
	// append are undone with the rolled-back transaction, so a retry never skips an ID
	// or appends twice.
	err := s.group.update(func(tx *bolt.Tx) error {
		if nr.ReplayKey != "" {
			// The replay check and the request share one commit: a replayed command can
			// never create a second request, and a first one is never refused as a replay
			// without having been recorded.
			if err := remember(tx, nr.ReplayKey, now, nr.ReplayTTL); err != nil {
				return err
			}
		}
		r := base
		if err := s.createRequest(tx, &r, now); err != nil {
			return err
		}
		out = &r
		return nil
	})
	if errors.Is(err, ErrReplay) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("create request: %w", err)
	}
	s.signal()
	return out, nil
}

func (s *Store) createRequest(tx *bolt.Tx, r *Request, now time.Time) error {
	seq, err := tx.Bucket(bucketRequests).NextSequence()
	if err != nil {
		return err
	}
	r.Seq, r.ID = seq, formatID(seq)
	details := fmt.Sprintf("%s %s", r.Kind, describeTarget(r.Target))
	if r.Kind == KindVM {
		details = fmt.Sprintf("vm %s of replica %s", describeTarget(r.Target), describeName(r.Target.ReplicaName, r.Target.ReplicaID))
	}
	details += fmt.Sprintf(", %s", r.Intent)
	if !r.RestoreTime.IsZero() {
		details += " " + r.RestoreTime.Format(time.RFC3339)
	}
	details += fmt.Sprintf(", %d approval(s) required, expires %s; reason: %s",
		r.ApprovalsRequired, r.ExpiresAt.Format(time.RFC3339), r.Reason)
	return s.saveRequest(tx, r, "", now, audit{actor: r.Requester, action: "requested", details: details})
}

func describeTarget(t Target) string { return describeName(t.Name, t.ID) }

func describeName(name, id string) string {
	if name == "" {
		return id
	}
	return fmt.Sprintf("%s (%s)", name, id)
}

// Get returns the request with the given ID ("FO-42", any case), or ErrNotFound.
func (s *Store) Get(id string) (*Request, error) {
	var r *Request
	err := s.db.View(func(tx *bolt.Tx) (err error) {
		r, err = findRequest(tx, id)
		return err
	})
	return r, err
}

// ByMessage returns the request whose Slack card is the message channel+ts, so a button
// click can be tied to its request without trusting the button's payload alone.
func (s *Store) ByMessage(channel, ts string) (*Request, error) {
	var r *Request
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketMessages).Get(messageKey(channel, ts))
		if len(v) != 8 {
			return fmt.Errorf("message %s/%s: %w", channel, ts, ErrNotFound)
		}
		var err error
		r, err = requestBySeq(tx, binary.BigEndian.Uint64(v))
		return err
	})
	return r, err
}

// SetMessage records where the request's Slack card was posted and indexes it for
// ByMessage. rendered is the request version the posted card shows: when it is the version
// before this write, the card stays current (recording its position changes nothing on it).
// Setting the same message again is a no-op; a message already recorded for another request
// is refused.
func (s *Store) SetMessage(id, channel, ts string, rendered uint64) (*Request, error) {
	if channel == "" || ts == "" {
		return nil, fmt.Errorf("%w: set message of %s: channel and ts are required", ErrInvalid, id)
	}
	return s.modify(id, func(tx *bolt.Tx, r *Request, _ time.Time) (audit, error) {
		if r.Channel == channel && r.MessageTS == ts {
			return audit{}, nil
		}
		st, err := readCardState(tx, r.Seq)
		if err != nil {
			return audit{}, err
		}
		if rendered == r.Version {
			rendered++ // the version saveRequest is about to write
		}
		if rendered > st.Rendered {
			st.Rendered = rendered
		}
		if err := writeCardState(tx, r.Seq, st); err != nil {
			return audit{}, err
		}
		msgs := tx.Bucket(bucketMessages)
		key := messageKey(channel, ts)
		if v := msgs.Get(key); len(v) == 8 && binary.BigEndian.Uint64(v) != r.Seq {
			return audit{}, fmt.Errorf("%w: message %s/%s already belongs to %s", ErrInvalid, channel, ts, formatID(binary.BigEndian.Uint64(v)))
		}
		if r.MessageTS != "" {
			if err := msgs.Delete(messageKey(r.Channel, r.MessageTS)); err != nil {
				return audit{}, err
			}
		}
		if err := msgs.Put(key, seqKey(r.Seq)); err != nil {
			return audit{}, err
		}
		r.Channel, r.MessageTS = channel, ts
		return audit{actor: "bot", action: "card-posted", details: fmt.Sprintf("channel %s ts %s", channel, ts)}, nil
	})
}

// messageKey joins channel and ts with NUL, which appears in neither.
func messageKey(channel, ts string) []byte { return []byte(channel + "\x00" + ts) }

// Active returns the requests in an active state, oldest first. It reads only the active
// index, so its cost depends on how many requests are active, not on history.
func (s *Store) Active() ([]*Request, error) {
	var out []*Request
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketActive).Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			if len(k) != 8 {
				return fmt.Errorf("active index: malformed key %x", k)
			}
			r, err := requestBySeq(tx, binary.BigEndian.Uint64(k))
			if err != nil {
				return fmt.Errorf("active index: %w", err)
			}
			if !r.State.Active() {
				return fmt.Errorf("active index: %s is %s", r.ID, r.State)
			}
			out = append(out, r)
		}
		return nil
	})
	return out, err
}

// Approve records user's approval of the request, which must still be pending and must
// carry digest. The requester cannot approve, nor can anyone approve twice. When the
// number of approvals reaches ApprovalsRequired the request becomes approved, with
// StateBy the last approver.
func (s *Store) Approve(id, user, digest string) (*Request, error) {
	if user == "" {
		return nil, fmt.Errorf("%w: approve %s: user is required", ErrInvalid, id)
	}
	return s.modify(id, func(_ *bolt.Tx, r *Request, now time.Time) (audit, error) {
		const op = "approve"
		if r.State != Pending {
			return audit{}, conflict(r, op, ReasonState)
		}
		// The stored fields are rehashed too: a record edited on disk no longer matches
		// the digest its approvers were shown.
		if digest != r.Digest || r.computeDigest() != r.Digest {
			return audit{}, conflict(r, op, ReasonDigest)
		}
		if user == r.Requester {
			return audit{}, conflict(r, op, ReasonSelfApproval)
		}
		if i := slices.IndexFunc(r.Approvals, func(a Approval) bool { return a.User == user }); i >= 0 {
			e := conflict(r, op, ReasonDuplicateApproval)
			e.By, e.At = r.Approvals[i].User, r.Approvals[i].At
			return audit{}, e
		}
		r.Approvals = append(r.Approvals, Approval{User: user, At: now})
		if len(r.Approvals) < r.ApprovalsRequired {
			return audit{actor: user, action: "approval",
				details: fmt.Sprintf("%d of %d approvals", len(r.Approvals), r.ApprovalsRequired)}, nil
		}
		r.State, r.StateBy, r.StateAt, r.DecidedAt = Approved, user, now, now
		return audit{actor: user, action: "approved",
			details: fmt.Sprintf("%d of %d approvals", len(r.Approvals), r.ApprovalsRequired)}, nil
	})
}

// Reject records that user turned the pending request down, with a reason. The bot
// decides who may reject; the store only requires that the request is still pending.
func (s *Store) Reject(id, user, reason string) (*Request, error) {
	if user == "" || strings.TrimSpace(reason) == "" {
		return nil, fmt.Errorf("%w: reject %s: user and reason are required", ErrInvalid, id)
	}
	return s.modify(id, func(_ *bolt.Tx, r *Request, now time.Time) (audit, error) {
		if r.State != Pending {
			return audit{}, conflict(r, "reject", ReasonState)
		}
		r.Rejection = &Rejection{User: user, Reason: reason, At: now}
		r.State, r.StateBy, r.StateAt, r.DecidedAt, r.FinishedAt = Rejected, user, now, now, now
		return audit{actor: user, action: "rejected", details: "reason: " + reason}, nil
	})
}

// Withdraw lets the requester take back a request nobody has decided yet.
func (s *Store) Withdraw(id, user string) (*Request, error) {
	return s.modify(id, func(_ *bolt.Tx, r *Request, now time.Time) (audit, error) {
		const op = "withdraw"
		if r.State != Pending {
			return audit{}, conflict(r, op, ReasonState)
		}
		if user != r.Requester {
			e := conflict(r, op, ReasonNotRequester)
			e.By, e.At = r.Requester, r.CreatedAt
			return audit{}, e
		}
		r.State, r.StateBy, r.StateAt, r.FinishedAt = Withdrawn, user, now, now
		return audit{actor: user, action: "withdrawn"}, nil
	})
}

// UndeliverableActor is recorded as StateBy when a request is withdrawn because Slack
// refused its card for good.
const UndeliverableActor = "bot"

// WithdrawUndeliverable withdraws a pending request whose approval card Slack refused with
// a permanent answer (the channel is gone, the bot is not in it, the token is revoked):
// nobody could ever approve it. why names Slack's answer and lands in the audit log.
func (s *Store) WithdrawUndeliverable(id, why string) (*Request, error) {
	if strings.TrimSpace(why) == "" {
		return nil, fmt.Errorf("%w: withdraw %s: a reason is required", ErrInvalid, id)
	}
	return s.modify(id, func(tx *bolt.Tx, r *Request, now time.Time) (audit, error) {
		if r.State != Pending {
			return audit{}, conflict(r, "withdraw", ReasonState)
		}
		st, err := readCardState(tx, r.Seq)
		if err != nil {
			return audit{}, err
		}
		st.Abandoned = why
		if err := writeCardState(tx, r.Seq, st); err != nil {
			return audit{}, err
		}
		if err := setCardDue(tx, r, false); err != nil {
			return audit{}, err
		}
		r.State, r.StateBy, r.StateAt, r.FinishedAt = Withdrawn, UndeliverableActor, now, now
		return audit{actor: UndeliverableActor, action: "withdrawn-undeliverable", details: why}, nil
	})
}

// Note appends an audit event about a request without changing it (EM unreachable, EM
// reachable again, a click refused), with thread as the line it owes the card's thread
// ("" for none). The request's version does not change, so its card is not re-rendered.
func (s *Store) Note(id, actor, action, details, thread string) (*Request, error) {
	if actor == "" || action == "" {
		return nil, fmt.Errorf("%w: note on %s: actor and action are required", ErrInvalid, id)
	}
	now := s.now().UTC()
	var out *Request
	err := s.group.update(func(tx *bolt.Tx) error {
		r, err := findRequest(tx, id)
		if err != nil {
			return err
		}
		ev := &Event{Time: now, Actor: actor, RequestID: r.ID, Action: action, From: r.State, To: r.State, Details: details}
		if err := appendEvent(tx, ev); err != nil {
			return err
		}
		if err := s.queueThread(tx, r, ev, thread); err != nil {
			return err
		}
		out = r
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.signal()
	return out, nil
}

// ExpiryActor is recorded as StateBy and audit actor when a request expires.
const ExpiryActor = "bot"

// Expire ends a pending request whose approval window has passed (now >= ExpiresAt).
func (s *Store) Expire(id string) (*Request, error) {
	return s.modify(id, func(_ *bolt.Tx, r *Request, now time.Time) (audit, error) {
		const op = "expire"
		if r.State != Pending {
			return audit{}, conflict(r, op, ReasonState)
		}
		if now.Before(r.ExpiresAt) {
			e := conflict(r, op, ReasonNotExpired)
			e.At = r.ExpiresAt
			return audit{}, e
		}
		r.State, r.StateBy, r.StateAt, r.FinishedAt = Expired, ExpiryActor, now, now
		return audit{actor: ExpiryActor, action: "expired",
			details: fmt.Sprintf("%d of %d approvals by %s", len(r.Approvals), r.ApprovalsRequired, r.ExpiresAt.Format(time.RFC3339))}, nil
	})
}

// Change is a guarded write made with Transition.
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

// Transition is the one guarded write for everything after approval: submitting, running,
// stopping, outcomes, unknown, and same-state EM progress updates (To == current state,
// allowed for running and stopping). It checks Version and From, then the state machine.
func (s *Store) Transition(c Change) (*Request, error) {
	if !c.To.known() {
		return nil, fmt.Errorf("%w: transition %s: unknown target state %q", ErrInvalid, c.ID, c.To)
	}
	if c.Actor == "" {
		return nil, fmt.Errorf("%w: transition %s: actor is required", ErrInvalid, c.ID)
	}
	return s.modify(c.ID, func(_ *bolt.Tx, r *Request, now time.Time) (audit, error) {
		return transition(r, c, now)
	})
}

func transition(r *Request, c Change, now time.Time) (audit, error) {
	op := c.Action
	if op == "" {
		op = string(c.To)
	}
	if c.Version != 0 && c.Version != r.Version {
		return audit{}, conflict(r, op, ReasonStale)
	}
	if len(c.From) > 0 && !slices.Contains(c.From, r.State) {
		return audit{}, conflict(r, op, ReasonState)
	}
	if !byTransition(r.State, c.To) {
		return audit{}, conflict(r, op, ReasonState)
	}
	before := r.Stop
	if c.Apply != nil {
		if err := applyEM(r, c.Apply); err != nil {
			return audit{}, fmt.Errorf("transition %s: %w", r.ID, err)
		}
	}
	if err := checkStop(r, before, c); err != nil {
		return audit{}, fmt.Errorf("transition %s: %w", r.ID, err)
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
	return audit{actor: c.Actor, action: op, details: c.Details, thread: c.Thread}, nil
}

// checkStop enforces the rules of a stop request: it is recorded only on a running failover
// that has a task, by the change's actor; it cannot be taken back; and a confirmation must come
// from a second person.
func checkStop(r *Request, before *StopRequest, c Change) error {
	after := r.Stop
	if reflect.DeepEqual(before, after) {
		return nil
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
	cp := r.clone()
	apply(cp)
	check := cp.clone()
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

// audit is what a write tells the audit log; an empty action means nothing changed.
type audit struct{ actor, action, details, thread string }

// modify is the shape of every write to an existing request: one read-write transaction
// that loads the request, lets fn check and change it, then saves it with its audit event.
// Concurrent writes share commits (groupCommit), so fn may run more than once: it must
// derive everything from the r it is given.
func (s *Store) modify(id string, fn func(tx *bolt.Tx, r *Request, now time.Time) (audit, error)) (*Request, error) {
	now := s.now().UTC()
	var out *Request
	err := s.group.update(func(tx *bolt.Tx) error {
		r, err := findRequest(tx, id)
		if err != nil {
			return err
		}
		from := r.State
		a, err := fn(tx, r, now)
		if err != nil {
			return err
		}
		if a.action != "" {
			if err := s.saveRequest(tx, r, from, now, a); err != nil {
				return err
			}
		}
		out = r
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.signal()
	return out, nil
}

func findRequest(tx *bolt.Tx, id string) (*Request, error) {
	seq, ok := parseID(id)
	if !ok {
		return nil, fmt.Errorf("request %q: %w", id, ErrNotFound)
	}
	return requestBySeq(tx, seq)
}

func requestBySeq(tx *bolt.Tx, seq uint64) (*Request, error) {
	v := tx.Bucket(bucketRequests).Get(seqKey(seq))
	if v == nil {
		return nil, fmt.Errorf("request %s: %w", formatID(seq), ErrNotFound)
	}
	r, err := decodeRequest(v)
	if err != nil {
		return nil, fmt.Errorf("request %s: %w", formatID(seq), err)
	}
	if r.Seq != seq {
		return nil, fmt.Errorf("request %s: stored record says %s", formatID(seq), r.ID)
	}
	return r, nil
}

// saveRequest writes r with a new version, keeps the active index in step with its state,
// appends the audit event and queues what the change owes Slack (the thread line, a fresh
// render of the card), all in tx. from is the state before the change ("" for new).
func (s *Store) saveRequest(tx *bolt.Tx, r *Request, from State, now time.Time, a audit) error {
	r.Version++
	r.UpdatedAt = now
	data, err := encodeRequest(r)
	if err != nil {
		return err
	}
	key := seqKey(r.Seq)
	requests := tx.Bucket(bucketRequests)
	// Keys only grow, so pages left half full by bbolt's default 50% split never fill
	// up again; packing them keeps the file about half the size. Updates happen mostly to
	// the newest requests, whose pages split again as values grow.
	requests.FillPercent = 0.9
	if err := requests.Put(key, data); err != nil {
		return err
	}
	active := tx.Bucket(bucketActive)
	switch {
	case r.State.Active() && !from.Active():
		err = active.Put(key, []byte{})
	case !r.State.Active() && from.Active():
		err = active.Delete(key)
	}
	if err != nil {
		return err
	}
	ev := &Event{Time: now, Actor: a.actor, RequestID: r.ID, Action: a.action,
		From: from, To: r.State, Details: a.details}
	if err := appendEvent(tx, ev); err != nil {
		return err
	}
	if err := markCardDue(tx, r); err != nil {
		return err
	}
	return s.queueThread(tx, r, ev, a.thread)
}

// queueThread queues the thread line ev owes r's card: line, or the store's projection.
func (s *Store) queueThread(tx *bolt.Tx, r *Request, ev *Event, line string) error {
	if line == "" && s.thread != nil {
		line = s.thread(r, ev)
	}
	if line == "" || r.Channel == "" {
		return nil
	}
	return queueOutgoing(tx, &Outgoing{Channel: r.Channel, RequestID: r.ID, Text: line, At: ev.Time})
}
