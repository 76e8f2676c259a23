package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/failover-bot/failover-bot/store/failover"
)

// The transactional outbox. Every Slack message a change owes is written in the same
// transaction as the change, so what people see in Slack is a projection of what is stored:
//
//   - a thread line (or a channel message) is an Outgoing record in the outbox bucket, keyed
//     by channel then sequence, so each channel's messages are read back in the order the
//     changes committed, and deleted once Slack has them;
//   - a card is a render of its request: every write marks the request's card due, and the
//     card state records which request version Slack last showed, so a burst of changes
//     costs one chat.update of the newest render;
//   - the audit channel follows the audit log itself from a durable cursor.
//
// A delivery worker reads these back after a restart, so a crash loses nothing; a crash
// between Slack's answer and the delete (or the cursor move) sends that message once more.

// Outgoing is one queued Slack message.
type Outgoing struct {
	Seq     uint64 `json:"seq"`
	Channel string `json:"channel"`
	// RequestID, when set, makes this a reply in that request's card thread; the card is
	// posted first if it is not yet.
	RequestID string    `json:"request_id,omitempty"`
	Text      string    `json:"text"`
	At        time.Time `json:"at"`
}

// Card is a request together with what Slack shows of its card.
type Card struct {
	Request *Request
	// Rendered is the request version Slack last showed (0: never posted, or posted by a
	// bot that did not record it).
	Rendered uint64
	// DelayNotified says the requester was told that the card is delayed.
	DelayNotified bool
}

type cardState struct {
	Rendered      uint64 `json:"rendered"`
	DelayNotified bool   `json:"delay_notified,omitempty"`
	Abandoned     string `json:"abandoned,omitempty"` // why Slack will never show it
}

func outboxKey(channel string, seq uint64) []byte {
	return append([]byte(channel+"\x00"), seqKey(seq)...)
}

// queueOutgoing appends a message to the outbox in tx.
func queueOutgoing(tx kvTx, m *Outgoing) error {
	if m.Channel == "" || m.Text == "" {
		return nil
	}
	b := tx.Bucket(bucketOutbox)
	seq, err := b.NextSequence()
	if err != nil {
		return err
	}
	m.Seq = seq
	data, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return b.Put(outboxKey(m.Channel, seq), data)
}

// Enqueue queues a message for channel that belongs to no request change (a notice of the
// bot's own). Most messages are queued by the change that causes them instead.
func (s *kvStore) Enqueue(ctx context.Context, channel, text string) error {
	if channel == "" || text == "" {
		return fmt.Errorf("%w: enqueue: channel and text are required", ErrInvalid)
	}
	now := s.now().UTC()
	err := s.update(ctx, func(tx kvTx) error {
		return queueOutgoing(tx, &Outgoing{Channel: channel, Text: text, At: now})
	})
	if err == nil {
		s.signal()
	}
	return err
}

// OutboxChannels lists the channels that have queued messages, in key order.
func (s *kvStore) OutboxChannels(ctx context.Context) ([]string, error) {
	var out []string
	err := s.view(ctx, func(tx kvTx) error {
		var err error
		out, err = prefixes(tx.Bucket(bucketOutbox))
		if err != nil {
			return fmt.Errorf("outbox: %w", err)
		}
		return nil
	})
	return out, err
}

// Outbox returns up to limit queued messages for channel, oldest first.
func (s *kvStore) Outbox(ctx context.Context, channel string, limit int) ([]Outgoing, error) {
	var out []Outgoing
	prefix := []byte(channel + "\x00")
	err := s.view(ctx, func(tx kvTx) error {
		c := tx.Bucket(bucketOutbox).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix) && len(out) < limit; k, v = c.Next() {
			var m Outgoing
			if err := json.Unmarshal(v, &m); err != nil {
				return fmt.Errorf("outbox %s: %w", k, err)
			}
			out = append(out, m)
		}
		return nil
	})
	return out, err
}

// Delivered removes messages Slack has accepted (or that Slack refused for good; the caller
// logs those). Removing a message twice is harmless.
func (s *kvStore) Delivered(ctx context.Context, channel string, seqs ...uint64) error {
	ctx, err := s.leaderWrite(ctx)
	if err != nil {
		return err
	}
	if len(seqs) == 0 {
		return nil
	}
	return s.update(ctx, func(tx kvTx) error {
		b := tx.Bucket(bucketOutbox)
		for _, seq := range seqs {
			if err := b.Delete(outboxKey(channel, seq)); err != nil {
				return err
			}
		}
		return nil
	})
}

// Backlog counts what is still owed to Slack: queued messages, stale cards and, when
// auditChannel is set, audit events after its cursor that the audit channel will show
// (as counted by show; nil counts every event).
func (s *kvStore) Backlog(ctx context.Context, auditChannel string, show func(Event) bool) (messages, cards, events int, err error) {
	var cursor uint64
	err = s.view(ctx, func(tx kvTx) error {
		var err error
		if messages, err = tx.Bucket(bucketOutbox).Count(); err != nil {
			return err
		}
		unposted, err := tx.Bucket(bucketUnposted).Count()
		if err != nil {
			return err
		}
		stale, err := tx.Bucket(bucketStale).Count()
		if err != nil {
			return err
		}
		cards = unposted + stale
		if auditChannel != "" {
			c, ch := readCursor(tx.Bucket(bucketMeta))
			if ch != auditChannel {
				return nil // a new channel starts from the head: nothing owed
			}
			cursor = c
		} else {
			cursor = ^uint64(0)
		}
		return nil
	})
	if err != nil || cursor == ^uint64(0) {
		return messages, cards, 0, err
	}
	err = s.Events(ctx, cursor, time.Time{}, func(e Event) error {
		if show == nil || show(e) {
			events++
		}
		return nil
	})
	return messages, cards, events, err
}

// markCardDue records, in tx, that the card of r no longer shows r.
func markCardDue(tx kvTx, r *Request) error {
	if r.Channel == "" {
		return nil
	}
	st, err := readCardState(tx, r.Seq)
	if err != nil {
		return err
	}
	return setCardDue(tx, r, st.Abandoned == "" && st.Rendered < r.Version)
}

// setCardDue files r's card in the index of unposted cards (by channel, so each channel's
// worker finds its own at once) or of stale posted ones, or in neither.
func setCardDue(tx kvTx, r *Request, due bool) error {
	un, stale := tx.Bucket(bucketUnposted), tx.Bucket(bucketStale)
	uk := outboxKey(r.Channel, r.Seq)
	if err := un.Delete(uk); err != nil {
		return err
	}
	if err := stale.Delete(seqKey(r.Seq)); err != nil {
		return err
	}
	switch {
	case !due || r.Channel == "":
		return nil
	case r.MessageTS == "":
		return un.Put(uk, []byte{})
	default:
		return stale.Put(seqKey(r.Seq), []byte{})
	}
}

func readCardState(tx kvTx, seq uint64) (cardState, error) {
	var st cardState
	v := tx.Bucket(bucketCards).Get(seqKey(seq))
	if v == nil {
		return st, nil
	}
	if err := json.Unmarshal(v, &st); err != nil {
		return st, fmt.Errorf("card of %s: %w", formatID(seq), err)
	}
	return st, nil
}

func writeCardState(tx kvTx, seq uint64, st cardState) error {
	data, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return tx.Bucket(bucketCards).Put(seqKey(seq), data)
}

// DueCards returns every card that Slack does not show at its request's current version:
// the unposted ones (by channel), then the stale posted ones (oldest request first).
func (s *kvStore) DueCards(ctx context.Context) ([]Card, error) {
	chans, err := s.UnpostedChannels(ctx)
	if err != nil {
		return nil, err
	}
	var out []Card
	for _, ch := range chans {
		cards, err := s.UnpostedCards(ctx, ch, -1)
		if err != nil {
			return nil, err
		}
		out = append(out, cards...)
	}
	stale, err := s.StaleCards(ctx, -1)
	return append(out, stale...), err
}

// UnpostedChannels lists the channels with cards Slack does not have yet.
func (s *kvStore) UnpostedChannels(ctx context.Context) ([]string, error) {
	var out []string
	err := s.view(ctx, func(tx kvTx) error {
		var err error
		out, err = prefixes(tx.Bucket(bucketUnposted))
		return err
	})
	return out, err
}

// prefixes lists the distinct channel parts of channel NUL seq keys.
func prefixes(b kvBucket) ([]string, error) {
	var out []string
	c := b.Cursor()
	for k, _ := c.First(); k != nil; {
		i := bytes.IndexByte(k, 0)
		if i < 0 {
			return nil, fmt.Errorf("malformed key %q", k)
		}
		ch := string(k[:i])
		out = append(out, ch)
		k, _ = c.Seek([]byte(ch + "\x01")) // past every key of this channel
	}
	return out, nil
}

// UnpostedCards returns up to limit (all if negative) cards of channel that Slack does not
// have yet, oldest request first.
func (s *kvStore) UnpostedCards(ctx context.Context, channel string, limit int) ([]Card, error) {
	prefix := []byte(channel + "\x00")
	var out []Card
	err := s.view(ctx, func(tx kvTx) error {
		c := tx.Bucket(bucketUnposted).Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix) && (limit < 0 || len(out) < limit); k, _ = c.Next() {
			card, err := loadCard(tx, k[len(prefix):])
			if err != nil {
				return fmt.Errorf("unposted cards: %w", err)
			}
			out = append(out, card)
		}
		return nil
	})
	return out, err
}

// StaleCards returns up to limit (all if negative) posted cards older than their request,
// oldest request first.
func (s *kvStore) StaleCards(ctx context.Context, limit int) ([]Card, error) {
	var out []Card
	err := s.view(ctx, func(tx kvTx) error {
		c := tx.Bucket(bucketStale).Cursor()
		for k, _ := c.First(); k != nil && (limit < 0 || len(out) < limit); k, _ = c.Next() {
			card, err := loadCard(tx, k)
			if err != nil {
				return fmt.Errorf("stale cards: %w", err)
			}
			out = append(out, card)
		}
		return nil
	})
	return out, err
}

func loadCard(tx kvTx, seqBytes []byte) (Card, error) {
	if len(seqBytes) != 8 {
		return Card{}, fmt.Errorf("malformed key %x", seqBytes)
	}
	seq := binary.BigEndian.Uint64(seqBytes)
	r, err := requestBySeq(tx, seq)
	if err != nil {
		return Card{}, err
	}
	st, err := readCardState(tx, seq)
	if err != nil {
		return Card{}, err
	}
	return Card{Request: r, Rendered: st.Rendered, DelayNotified: st.DelayNotified}, nil
}

// CardRendered records that Slack now shows version of request id. The card stays due if
// the request changed since that render. It is bookkeeping, not a change of the request:
// no version, no audit event.
func (s *kvStore) CardRendered(ctx context.Context, id string, version uint64) error {
	ctx, err := s.leaderWrite(ctx)
	if err != nil {
		return err
	}
	return s.cardWrite(ctx, id, func(tx kvTx, r *Request, st *cardState) error {
		if version > st.Rendered {
			st.Rendered = version
		}
		return nil
	})
}

// CardDelayNotified records that the requester has been told the card is delayed, so a
// restart does not tell them again.
func (s *kvStore) CardDelayNotified(ctx context.Context, id string) error {
	ctx, err := s.leaderWrite(ctx)
	if err != nil {
		return err
	}
	return s.cardWrite(ctx, id, func(tx kvTx, r *Request, st *cardState) error {
		st.DelayNotified = true
		return nil
	})
}

// AbandonCard records that Slack will never show the card of a request that is no longer
// pending (its channel is gone, say), with an audit event saying why, so the worker stops
// trying. A pending request whose card cannot be posted is withdrawn instead
// (WithdrawUndeliverable): nobody could approve it.
func (s *kvStore) AbandonCard(ctx context.Context, id, why string) (*Request, error) {
	ctx, err := s.leaderWrite(ctx)
	if err != nil {
		return nil, err
	}
	if why == "" {
		return nil, fmt.Errorf("%w: abandon card of %s: a reason is required", ErrInvalid, id)
	}
	var out *Request
	now := s.now().UTC()
	err = s.update(ctx, func(tx kvTx) error {
		r, err := findRequest(tx, id)
		if err != nil {
			return err
		}
		st, err := readCardState(tx, r.Seq)
		if err != nil {
			return err
		}
		st.Abandoned = why
		if err := writeCardState(tx, r.Seq, st); err != nil {
			return err
		}
		if err := setCardDue(tx, r, false); err != nil {
			return err
		}
		out = r
		return appendEvent(tx, &Event{Time: now, Actor: "bot", RequestID: r.ID, Action: "card-undeliverable",
			From: r.State, To: r.State, Details: why})
	})
	if err != nil {
		return nil, err
	}
	s.signal()
	return out, nil
}

func (s *kvStore) cardWrite(ctx context.Context, id string, fn func(tx kvTx, r *Request, st *cardState) error) error {
	err := s.update(ctx, func(tx kvTx) error {
		r, err := findRequest(tx, id)
		if err != nil {
			return err
		}
		st, err := readCardState(tx, r.Seq)
		if err != nil {
			return err
		}
		if err := fn(tx, r, &st); err != nil {
			return err
		}
		if err := writeCardState(tx, r.Seq, st); err != nil {
			return err
		}
		return setCardDue(tx, r, st.Rendered < r.Version && st.Abandoned == "")
	})
	return err
}

// readCursor returns the audit channel's cursor and the channel it belongs to.
func readCursor(meta kvBucket) (uint64, string) {
	v := meta.Get(keyAuditCursor)
	if len(v) < 8 {
		return 0, ""
	}
	return binary.BigEndian.Uint64(v), string(v[8:])
}

func writeCursor(meta kvBucket, seq uint64, channel string) error {
	return meta.Put(keyAuditCursor, append(seqKey(seq), channel...))
}

// AuditCursor returns the last audit event delivered to channel. A channel the cursor does
// not belong to (the first start, or AUDIT_CHANNEL changed) starts at the head of the log:
// a new audit channel gets what happens from now on, not years of history.
func (s *kvStore) AuditCursor(ctx context.Context, channel string) (uint64, error) {
	if channel == "" {
		return 0, fmt.Errorf("%w: audit cursor: channel is required", ErrInvalid)
	}
	var seq uint64
	err := s.update(ctx, func(tx kvTx) error {
		meta := tx.Bucket(bucketMeta)
		c, ch := readCursor(meta)
		if ch == channel {
			seq = c
			return nil
		}
		head, _, err := readHead(meta)
		if err != nil {
			return err
		}
		seq = head
		return writeCursor(meta, head, channel)
	})
	return seq, err
}

// SetAuditCursor records that the audit channel has every event up to seq. It never moves
// the cursor back.
func (s *kvStore) SetAuditCursor(ctx context.Context, channel string, seq uint64) error {
	ctx, err := s.leaderWrite(ctx)
	if err != nil {
		return err
	}
	return s.update(ctx, func(tx kvTx) error {
		meta := tx.Bucket(bucketMeta)
		c, ch := readCursor(meta)
		if ch == channel && c >= seq {
			return nil
		}
		return writeCursor(meta, seq, channel)
	})
}

// ErrReplay means the same Slack delivery was already acted on.
var ErrReplay = errors.New("already received")

// replayKeyMax bounds a replay key; callers pass a hash or Slack's trigger_id.
const replayKeyMax = 256

// Seen reports whether key is recorded and not yet expired, without recording it: a cheap
// early answer to a replayed delivery. Remember (or Create's ReplayKey) remains the check that
// counts, atomic with what the delivery does.
func (s *kvStore) Seen(ctx context.Context, key string) (bool, error) {
	now := s.now().UTC()
	var seen bool
	err := s.view(ctx, func(tx kvTx) error {
		v := tx.Bucket(bucketReplays).Get([]byte(key))
		seen = len(v) == 8 && int64(binary.BigEndian.Uint64(v)) > now.UnixNano()
		return nil
	})
	return seen, err
}

// Remember records a Slack delivery's key until now+ttl and reports ErrReplay if it is
// already recorded and not yet expired. Slack signatures are valid for 5 minutes, so a
// replay window of that length (plus clock skew) makes a replayed request harmless.
func (s *kvStore) Remember(ctx context.Context, key string, ttl time.Duration) error {
	if key == "" || len(key) > replayKeyMax || ttl <= 0 {
		return fmt.Errorf("%w: remember: key of 1-%d bytes and a positive TTL are required", ErrInvalid, replayKeyMax)
	}
	now := s.now().UTC()
	return s.update(ctx, func(tx kvTx) error { return remember(tx, key, now, ttl) })
}

// remember is Remember inside tx; it also forgets a few expired keys, so the window's
// buckets stay the size of five minutes of traffic.
func remember(tx kvTx, key string, now time.Time, ttl time.Duration) error {
	seen, byExp := tx.Bucket(bucketReplays), tx.Bucket(bucketReplayBy)
	if v := seen.Get([]byte(key)); len(v) == 8 && int64(binary.BigEndian.Uint64(v)) > now.UnixNano() {
		return ErrReplay
	} else if len(v) == 8 {
		if err := byExp.Delete(append(append([]byte(nil), v...), key...)); err != nil {
			return err
		}
	}
	c := byExp.Cursor()
	for k, _ := c.First(); k != nil && len(k) >= 8 && int64(binary.BigEndian.Uint64(k)) <= now.UnixNano(); k, _ = c.First() {
		if err := seen.Delete(k[8:]); err != nil {
			return err
		}
		if err := c.Delete(); err != nil {
			return err
		}
	}
	exp := seqKey(uint64(now.Add(ttl).UnixNano()))
	if err := seen.Put([]byte(key), exp); err != nil {
		return err
	}
	return byExp.Put(append(exp, key...), []byte{})
}

// forEachActive runs fn on every active request, oldest first, during a migration.
func forEachActive(tx kvTx, path string, fn func(*Request) error) error {
	c := tx.Bucket(bucketActive).Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		r, err := requestBySeq(tx, binary.BigEndian.Uint64(k))
		if err == nil {
			err = fn(r)
		}
		if err != nil {
			return fmt.Errorf("open %s: migrate: %w", path, err)
		}
	}
	return nil
}

// migrate upgrades a file of an older schema inside Open's transaction.
func migrate(tx *bolt.Tx, from uint64, path string) error {
	kt := boltTx{tx}
	if from < 4 {
		// Version 4 gives every request items. Each older request becomes a one-item request:
		// its target, task, sessions and EM fields move into the item, and it keeps the
		// single-target digest its card's buttons carry (DigestV 0). Done first, since the
		// steps below read requests in the new form.
		if err := upgradeToItems(tx); err != nil {
			return fmt.Errorf("open %s: migrate: %w", path, err)
		}
	}
	if from == 1 {
		// Version 2 adds the outbox, the card state, the replay window and the audit
		// cursor. Round-1 bots kept Slack messages in memory, so whatever they still owed is
		// lost; the best projection is to bring every active request's card up to date
		// (and post those that never got one) and to start the audit channel at the head.
		for _, name := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("open %s: migrate: %w", path, err)
			}
		}
		if err := forEachActive(kt, path, func(r *Request) error { return setCardDue(kt, r, true) }); err != nil {
			return err
		}
		from = 2
	}
	if from == 2 {
		// Version 3 adds the target index (one active request per target). A store written
		// before it may hold two active requests for one target: the oldest holds it, and the
		// other stays active to be finished as it is.
		if _, err := tx.CreateBucketIfNotExists(bucketTargets); err != nil {
			return fmt.Errorf("open %s: migrate: %w", path, err)
		}
		b := tx.Bucket(bucketTargets)
		err := forEachActive(kt, path, func(r *Request) error {
			for _, it := range r.Items {
				if key := []byte(failover.TargetKey(r.KindOf(&it), it.Target)); b.Get(key) == nil {
					if err := b.Put(key, seqKey(r.Seq)); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		from = 3
	}
	// Version 5 adds the index of finished requests by finish time (Finished). It is built
	// from the requests themselves, after the steps above put them in their current form.
	if err := backfillFinished(tx); err != nil {
		return fmt.Errorf("open %s: migrate: %w", path, err)
	}
	from = 5
	var v [8]byte
	binary.BigEndian.PutUint64(v[:], from)
	return tx.Bucket(bucketMeta).Put(keySchema, v[:])
}

// legacyRequest is the part of a request of schema 3 and older that moved into its item.
type legacyRequest struct {
	Items            []Item    `json:"items"`
	Target           Target    `json:"target"`
	TaskID           string    `json:"task_id"`
	EMSession        string    `json:"em_session"`
	RestoreSessionID string    `json:"restore_session_id"`
	EMState          string    `json:"em_state"`
	EMProgress       int       `json:"em_progress"`
	EMResult         string    `json:"em_result"`
	EMMessage        string    `json:"em_message"`
	SubmittedAt      time.Time `json:"submitted_at"`
	StartedAt        time.Time `json:"started_at"`
	FinishedAt       time.Time `json:"finished_at"`
}

// upgradeToItems rewrites every request record without items as a one-item request.
func upgradeToItems(tx *bolt.Tx) error {
	b := tx.Bucket(bucketRequests)
	if b == nil {
		return nil
	}
	type kv struct{ k, v []byte }
	var todo []kv
	err := b.ForEach(func(k, v []byte) error {
		var l legacyRequest
		if err := json.Unmarshal(v, &l); err != nil {
			return fmt.Errorf("request %x: %w", k, err)
		}
		if len(l.Items) > 0 {
			return nil
		}
		var r Request
		if err := json.Unmarshal(v, &r); err != nil {
			return fmt.Errorf("request %x: %w", k, err)
		}
		state := r.State
		switch state {
		case Pending, Rejected, Expired, Withdrawn:
			state = Pending // an item is approved with its request; these never were
		}
		r.Items = []Item{{Target: l.Target, State: state, StateAt: r.StateAt, Version: 1,
			TaskID: l.TaskID, EMSession: l.EMSession, RestoreSessionID: l.RestoreSessionID,
			EMState: l.EMState, EMProgress: l.EMProgress, EMResult: l.EMResult, EMMessage: l.EMMessage,
			SubmittedAt: l.SubmittedAt, StartedAt: l.StartedAt, FinishedAt: l.FinishedAt}}
		r.DigestV = 0
		data, err := encodeRequest(&r)
		if err != nil {
			return err
		}
		todo = append(todo, kv{append([]byte(nil), k...), data})
		return nil
	})
	if err != nil {
		return err
	}
	b.FillPercent = 0.9
	for _, x := range todo {
		if err := b.Put(x.k, x.v); err != nil {
			return err
		}
	}
	return nil
}
