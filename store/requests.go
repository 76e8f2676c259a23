package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/failover-bot/failover-bot/store/failover"
)

// Create records a new pending request, gives it the next ID and appends a "requested"
// event. Slash commands arriving together share one commit (see groupCommit) instead of
// queueing behind each other's fsyncs.
func (s *kvStore) Create(ctx context.Context, nr NewRequest) (*Request, error) {
	if err := nr.validate(); err != nil {
		return nil, err
	}
	now := s.now().UTC()
	restore := time.Time{}
	if !nr.RestoreTime.IsZero() {
		restore = nr.RestoreTime.UTC()
	}
	items := append([]Item(nil), nr.items()...)
	for i := range items {
		it := &items[i]
		*it = Item{Target: it.Target, Point: it.Point, RPO: it.RPO, Recent: it.Recent, Kind: it.Kind, Group: it.Group, Optional: it.Optional,
			State: Pending, StateAt: now, Version: 1}
		if !it.Point.IsZero() {
			it.Point = it.Point.UTC()
		}
	}
	base := Request{
		Kind:              nr.Kind,
		Items:             items,
		Excluded:          append([]Exclusion(nil), nr.Excluded...),
		Scope:             nr.Scope,
		RetryOf:           nr.RetryOf,
		Plan:              nr.Plan,
		Groups:            planGroups(nr.Groups),
		DigestV:           failover.DigestVersion,
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
	base.Digest = base.ComputeDigest()

	var out *Request
	// A group commit may run this function more than once (when another function in the
	// same group fails, the whole transaction is rolled back and retried). Every run starts
	// from the same base copy and only overwrites out, and NextSequence and the audit
	// append are undone with the rolled-back transaction, so a retry never skips an ID
	// or appends twice.
	err := s.update(ctx, func(tx kvTx) error {
		if nr.ReplayKey != "" {
			// The replay check and the request share one commit: a replayed command can
			// never create a second request, and a first one is never refused as a replay
			// without having been recorded.
			if err := remember(tx, nr.ReplayKey, now, nr.ReplayTTL); err != nil {
				return err
			}
		}
		r := *base.Clone()
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

func (s *kvStore) createRequest(tx kvTx, r *Request, now time.Time) error {
	for _, it := range r.Items {
		if holder, err := holderOf(tx, failover.TargetKey(r.KindOf(&it), it.Target)); err != nil {
			return err
		} else if holder != nil {
			return failover.TargetBusy(r, holder, it.Target, "request")
		}
	}
	seq, err := tx.Bucket(bucketRequests).NextSequence()
	if err != nil {
		return err
	}
	r.Seq, r.ID = seq, formatID(seq)
	for _, it := range r.Items {
		if err := tx.Bucket(bucketTargets).Put([]byte(failover.TargetKey(r.KindOf(&it), it.Target)), seqKey(seq)); err != nil {
			return err
		}
	}
	details := describeItems(r)
	details += fmt.Sprintf(", %s", r.Intent)
	if !r.RestoreTime.IsZero() {
		details += " " + r.RestoreTime.Format(time.RFC3339)
	}
	details += fmt.Sprintf(", %d approval(s) required, expires %s; reason: %s",
		r.ApprovalsRequired, r.ExpiresAt.Format(time.RFC3339), r.Reason)
	return s.saveRequest(tx, r, "", now, audit{actor: r.Requester, action: "requested", details: details})
}

// planGroups copies a new plan's groups without any run state, each allowed at least one item
// in flight.
func planGroups(gs []Group) []Group {
	if len(gs) == 0 {
		return nil
	}
	out := make([]Group, len(gs))
	for i, g := range gs {
		out[i] = Group{Name: g.Name, Concurrency: max(g.Concurrency, 1), Delay: max(g.Delay, 0)}
	}
	return out
}

func describeTarget(t Target) string { return describeName(t.Name, t.ID) }

// describeItems names what a request fails over, for its "requested" audit event: every
// included target with its ID and previewed restore point, then what the pre-flight left out.
func describeItems(r *Request) string {
	var b strings.Builder
	if r.Scope != "" {
		fmt.Fprintf(&b, "%s: ", r.Scope)
	}
	for i, it := range r.Items {
		if i > 0 {
			b.WriteString("; ")
		}
		if r.IsPlan() {
			fmt.Fprintf(&b, "group %d ", it.Group+1)
		}
		if k := r.KindOf(&it); k == KindVM {
			fmt.Fprintf(&b, "vm %s of replica %s", describeTarget(it.Target), describeName(it.Target.ReplicaName, it.Target.ReplicaID))
		} else {
			fmt.Fprintf(&b, "%s %s", k, describeTarget(it.Target))
		}
		if !it.Point.IsZero() {
			fmt.Fprintf(&b, " at %s", it.Point.Format(time.RFC3339))
		}
	}
	for _, x := range r.Excluded {
		fmt.Fprintf(&b, "; excluded %s: %s", describeTarget(x.Target), x.Reason)
	}
	if r.RetryOf != "" {
		fmt.Fprintf(&b, "; retries failed items of %s", r.RetryOf)
	}
	return b.String()
}

func describeName(name, id string) string {
	if name == "" {
		return id
	}
	return fmt.Sprintf("%s (%s)", name, id)
}

// Get returns the request with the given ID ("FO-42", any case), or ErrNotFound.
func (s *kvStore) Get(ctx context.Context, id string) (*Request, error) {
	var r *Request
	err := s.view(ctx, func(tx kvTx) (err error) {
		r, err = findRequest(tx, id)
		return err
	})
	return r, err
}

// ByMessage returns the request whose Slack card is the message channel+ts, so a button
// click can be tied to its request without trusting the button's payload alone.
func (s *kvStore) ByMessage(ctx context.Context, channel, ts string) (*Request, error) {
	var r *Request
	err := s.view(ctx, func(tx kvTx) error {
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
func (s *kvStore) SetMessage(ctx context.Context, id, channel, ts string, rendered uint64) (*Request, error) {
	ctx, err := s.leaderWrite(ctx)
	if err != nil {
		return nil, err
	}
	if channel == "" || ts == "" {
		return nil, fmt.Errorf("%w: set message of %s: channel and ts are required", ErrInvalid, id)
	}
	return s.modify(ctx, id, func(tx kvTx, r *Request, _ time.Time) (audit, error) {
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

// Recent calls fn with requests from the newest back, until fn returns false or none is left.
// It reads one request at a time by sequence, so walking the last hour costs the last hour's
// requests, however long the history.
func (s *kvStore) Recent(ctx context.Context, fn func(*Request) bool) error {
	return s.view(ctx, func(tx kvTx) error {
		c := tx.Bucket(bucketRequests).Cursor()
		for k, v := c.Last(); k != nil; k, v = c.Prev() {
			r, err := decodeRequest(v)
			if err != nil {
				return fmt.Errorf("request %x: %w", k, err)
			}
			if !fn(r) {
				return nil
			}
		}
		return nil
	})
}

// messageKey joins channel and ts with NUL, which appears in neither.
func messageKey(channel, ts string) []byte { return []byte(channel + "\x00" + ts) }

// Active returns the requests in an active state, oldest first. It reads only the active
// index, so its cost depends on how many requests are active, not on history.
func (s *kvStore) Active(ctx context.Context) ([]*Request, error) {
	var out []*Request
	err := s.view(ctx, func(tx kvTx) error {
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

// UndeliverableActor is recorded as StateBy when a request is withdrawn because Slack
// refused its card for good.
const UndeliverableActor = "bot"

// WithdrawUndeliverable withdraws a pending request whose approval card Slack refused with
// a permanent answer (the channel is gone, the bot is not in it, the token is revoked):
// nobody could ever approve it. why names Slack's answer and lands in the audit log.
func (s *kvStore) WithdrawUndeliverable(ctx context.Context, id, why string) (*Request, error) {
	ctx, err := s.leaderWrite(ctx)
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(why) == "" {
		return nil, fmt.Errorf("%w: withdraw %s: a reason is required", ErrInvalid, id)
	}
	return s.modify(ctx, id, func(tx kvTx, r *Request, now time.Time) (audit, error) {
		if r.State != Pending {
			return audit{}, failover.Conflict(r, "withdraw", ReasonState)
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
		return effect(failover.WithdrawUndeliverable(r, UndeliverableActor, why, now))
	})
}

// Note appends an audit event about a request without changing it (EM unreachable, EM
// reachable again, a click refused), with thread as the line it owes the card's thread
// ("" for none). The request's version does not change, so its card is not re-rendered.
func (s *kvStore) Note(ctx context.Context, id, actor, action, details, thread string) (*Request, error) {
	ctx, err := s.leaderWrite(ctx)
	if err != nil {
		return nil, err
	}
	if actor == "" || action == "" {
		return nil, fmt.Errorf("%w: note on %s: actor and action are required", ErrInvalid, id)
	}
	now := s.now().UTC()
	var out *Request
	err = s.update(ctx, func(tx kvTx) error {
		r, err := findRequest(tx, id)
		if err != nil {
			return err
		}
		ev := &Event{Time: now, Actor: actor, RequestID: r.ID, Action: action, From: r.State, To: r.State, Details: details}
		if err := s.appendEvent(tx, ev); err != nil {
			return err
		}
		if err := s.queueLines(tx, r, ev, thread, false); err != nil {
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

// Update is the compare-and-swap write of one request (see Updater). In bbolt every write
// transaction runs alone, so the request m sees is the stored one and the swap always holds.
func (s *kvStore) Update(ctx context.Context, id string, m Mutation) (*Request, error) {
	return s.modify(ctx, id, func(tx kvTx, r *Request, now time.Time) (audit, error) {
		return effect(m(r, boltView{tx}, now))
	})
}

// boltView is a mutation's View of the transaction it runs in.
type boltView struct{ tx kvTx }

func (v boltView) Holder(key string) (*Request, error) { return holderOf(v.tx, key) }

// holderOf returns the active request holding a target key, or nil when it is free. An entry
// whose request is no longer active (it cannot happen through the store, but a damaged or
// hand-edited file must not block a target forever) counts as free.
func holderOf(tx kvTx, key string) (*Request, error) {
	v := tx.Bucket(bucketTargets).Get([]byte(key))
	if len(v) != 8 {
		return nil, nil
	}
	h, err := requestBySeq(tx, binary.BigEndian.Uint64(v))
	if errors.Is(err, ErrNotFound) || (err == nil && !h.State.Active()) {
		return nil, nil
	}
	return h, err
}

// releaseTargets frees the targets r holds.
func releaseTargets(tx kvTx, r *Request) error {
	b := tx.Bucket(bucketTargets)
	for _, it := range r.Items {
		k := []byte(failover.TargetKey(r.KindOf(&it), it.Target))
		if v := b.Get(k); len(v) == 8 && binary.BigEndian.Uint64(v) == r.Seq {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
	}
	return nil
}

// audit is what a write tells the audit log; an empty action means nothing changed.
type audit struct{ actor, action, details, thread string }

// Change is a guarded write made with Transition (see failover.Change).
type Change = failover.Change

// ConflictError and its reasons are the model's (see package failover).
type ConflictError = failover.ConflictError

// Reasons carried by ConflictError.Reason.
const (
	ReasonStale             = failover.ReasonStale
	ReasonState             = failover.ReasonState
	ReasonSelfApproval      = failover.ReasonSelfApproval
	ReasonDuplicateApproval = failover.ReasonDuplicateApproval
	ReasonNotRequester      = failover.ReasonNotRequester
	ReasonDigest            = failover.ReasonDigest
	ReasonNotExpired        = failover.ReasonNotExpired
	ReasonTargetBusy        = failover.ReasonTargetBusy
	ReasonNotHalted         = failover.ReasonNotHalted
	ReasonSelfContinue      = failover.ReasonSelfContinue
	ReasonNotYet            = failover.ReasonNotYet
)

// effect turns a rule's outcome into what modify records.
func effect(e failover.Effect, err error) (audit, error) {
	if err != nil {
		return audit{}, err
	}
	return audit{actor: e.Actor, action: e.Action, details: e.Details, thread: e.Thread}, nil
}

// modify is the shape of every write to an existing request: one read-write transaction
// that loads the request, lets fn check and change it, then saves it with its audit event.
// Concurrent writes share commits (groupCommit), so fn may run more than once: it must
// derive everything from the r it is given.
func (s *kvStore) modify(ctx context.Context, id string, fn func(tx kvTx, r *Request, now time.Time) (audit, error)) (*Request, error) {
	now := s.now().UTC()
	var out *Request
	err := s.update(ctx, func(tx kvTx) error {
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

func findRequest(tx kvTx, id string) (*Request, error) {
	seq, ok := parseID(id)
	if !ok {
		return nil, fmt.Errorf("request %q: %w", id, ErrNotFound)
	}
	return requestBySeq(tx, seq)
}

func requestBySeq(tx kvTx, seq uint64) (*Request, error) {
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
func (s *kvStore) saveRequest(tx kvTx, r *Request, from State, now time.Time, a audit) error {
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
	fill(requests, 0.9)
	if err := requests.Put(key, data); err != nil {
		return err
	}
	active := tx.Bucket(bucketActive)
	switch {
	case r.State.Active() && !from.Active():
		err = active.Put(key, []byte{})
	case !r.State.Active() && from.Active():
		// Finished: out of the active index, into the finished one (Finished), in this write.
		if err = active.Delete(key); err == nil {
			err = releaseTargets(tx, r)
		}
		if err == nil {
			err = indexFinished(tx, r)
		}
	}
	if err != nil {
		return err
	}
	ev := &Event{Time: now, Actor: a.actor, RequestID: r.ID, Action: a.action,
		From: from, To: r.State, Details: a.details}
	if err := s.appendEvent(tx, ev); err != nil {
		return err
	}
	if err := markCardDue(tx, r); err != nil {
		return err
	}
	return s.queueThread(tx, r, ev, a.thread)
}

// queueThread queues the thread lines ev owes r's card: the change's own line, then the store's
// projection of it (a milestone such as a request's summary can follow an item's line).
func (s *kvStore) queueThread(tx kvTx, r *Request, ev *Event, line string) error {
	return s.queueLines(tx, r, ev, line, true)
}

// queueLines queues line and, for a change (not a note, which changes nothing and so owes no
// milestone), what the thread and requester projections make of ev.
func (s *kvStore) queueLines(tx kvTx, r *Request, ev *Event, line string, change bool) error {
	if r.Channel == "" {
		return nil
	}
	var lines []string
	if line != "" {
		lines = append(lines, line)
	}
	if change && s.thread != nil {
		if p := s.thread(r, ev); p != "" && p != line {
			lines = append(lines, p)
		}
	}
	var direct string
	if change && s.requester != nil {
		var mention string
		mention, direct = s.requester(r, ev, len(lines) > 0)
		switch {
		case mention == "":
		case len(lines) == 0:
			lines = append(lines, mention)
		default:
			lines[len(lines)-1] += "\n" + mention
		}
	}
	for _, l := range lines {
		if err := queueOutgoing(tx, &Outgoing{Channel: r.Channel, RequestID: r.ID, Text: l, At: ev.Time}); err != nil {
			return err
		}
	}
	if direct != "" && r.Requester != "" {
		return queueOutgoing(tx, &Outgoing{Channel: r.Requester, Text: direct, At: ev.Time})
	}
	return nil
}

// Holders returns, for each target key (failover.TargetKey) held by an active request, that
// request; keys nobody holds are absent. It reads the target index, so its cost is the keys
// asked, however many requests are active: a pre-flight asks only about its own targets.
func (s *kvStore) Holders(ctx context.Context, keys []string) (map[string]*Request, error) {
	out := map[string]*Request{}
	err := s.view(ctx, func(tx kvTx) error {
		bySeq := map[uint64]*Request{}
		for _, key := range keys {
			v := tx.Bucket(bucketTargets).Get([]byte(key))
			if len(v) != 8 {
				continue
			}
			seq := binary.BigEndian.Uint64(v)
			h, ok := bySeq[seq]
			if !ok {
				var err error
				if h, err = holderOf(tx, key); err != nil {
					return err
				}
				bySeq[seq] = h
			}
			if h != nil {
				out[key] = h
			}
		}
		return nil
	})
	return out, err
}
