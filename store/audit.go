package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Event is one entry of the audit log: who did what to which request, and when.
// Prev is the Hash of the event before it ("" for the first); Hash is the hex SHA-256
// of the event's canonical encoding, which includes Prev, so the events form a chain.
type Event struct {
	Seq   uint64
	Time  time.Time
	Actor string // a Slack user ID, or the bot's own actors ("bot", "em")
	// ActorName is the actor's display name as the bot knew it when the event was written
	// (Options.Names), so an audit read years later names people even after their accounts
	// are gone. "" when unknown: the bot's own actors, and events written before names were
	// recorded. It is part of the hashed encoding: changing it breaks the chain.
	ActorName string
	RequestID string
	Action    string
	From, To  State // From is "" for the event that created the request
	Details   string
	Prev      string
	Hash      string
}

// ChainError names the first audit event that fails verification.
type ChainError struct {
	Seq    uint64
	Reason string
}

func (e *ChainError) Error() string {
	return fmt.Sprintf("audit log: event %d: %s", e.Seq, e.Reason)
}

// The first byte of every stored event names its encoding, so the log can evolve while old
// events keep verifying byte for byte under the rules they were written with:
//
//   - eventFormatV1: seq, time, then Actor, RequestID, Action, From, To, Details, Prev;
//   - eventFormatV2: the same with ActorName after Actor.
//
// An event is written in V1 when it has no ActorName and in V2 when it has one, so every event
// has exactly one encoding (decode rejects a V2 event with an empty name), and an old reader
// meeting a V2 event reports an unknown format rather than misreading it.
const (
	eventFormatV1 = 1
	eventFormatV2 = 2
)

// eventFields is how many length-prefixed strings follow the fixed header in each format.
var eventFields = map[byte]int{eventFormatV1: 7, eventFormatV2: 8}

// encodeEventBody is the canonical encoding the hash is computed over: a format byte,
// seq, time (Unix seconds and nanoseconds), then each string length-prefixed in a fixed
// order. It is written byte for byte to disk, followed by the 32-byte SHA-256.
func encodeEventBody(ev *Event) []byte {
	format, strs := byte(eventFormatV1), []string{ev.Actor, ev.RequestID, ev.Action, string(ev.From), string(ev.To), ev.Details, ev.Prev}
	if ev.ActorName != "" {
		format = eventFormatV2
		strs = []string{ev.Actor, ev.ActorName, ev.RequestID, ev.Action, string(ev.From), string(ev.To), ev.Details, ev.Prev}
	}
	n := 64
	for _, s := range strs {
		n += len(s)
	}
	b := make([]byte, 0, n)
	b = append(b, format)
	b = binary.BigEndian.AppendUint64(b, ev.Seq)
	b = binary.BigEndian.AppendUint64(b, uint64(ev.Time.Unix()))
	b = binary.BigEndian.AppendUint32(b, uint32(ev.Time.Nanosecond()))
	for _, s := range strs {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	return b
}

// decodeEvent parses a stored event value (body || hash). It checks structure only;
// whether the hash matches and the chain links is Verify's job.
func decodeEvent(data []byte) (Event, error) {
	var ev Event
	if len(data) < sha256.Size+1+8+8+4 {
		return ev, errors.New("event too short")
	}
	body, sum := data[:len(data)-sha256.Size], data[len(data)-sha256.Size:]
	nfields, ok := eventFields[body[0]]
	if !ok {
		return ev, fmt.Errorf("unknown event format %d", body[0])
	}
	ev.Seq = binary.BigEndian.Uint64(body[1:])
	sec := int64(binary.BigEndian.Uint64(body[9:]))
	nsec := binary.BigEndian.Uint32(body[17:])
	if nsec >= 1e9 {
		return ev, fmt.Errorf("event time has %d nanoseconds", nsec)
	}
	ev.Time = time.Unix(sec, int64(nsec)).UTC()
	if ev.Time.Unix() != sec {
		return ev, fmt.Errorf("event time %d out of range", sec)
	}
	rest := body[21:]
	fields := make([]string, nfields)
	for i := range fields {
		n, w := binary.Uvarint(rest)
		// Only the shortest length encoding is accepted, so every event has exactly one
		// encoding and decode/encode round-trips byte for byte.
		if w <= 0 || w != uvarintLen(n) || n > uint64(len(rest)-w) {
			return ev, fmt.Errorf("event field %d: bad length", i)
		}
		fields[i] = string(rest[w : w+int(n)])
		rest = rest[w+int(n):]
	}
	if len(rest) != 0 {
		return ev, fmt.Errorf("event has %d trailing bytes", len(rest))
	}
	ev.Actor = fields[0]
	if body[0] == eventFormatV2 {
		if fields[1] == "" {
			return ev, errors.New("format 2 event without an actor name (it would be format 1)")
		}
		ev.ActorName, fields = fields[1], fields[1:]
	}
	ev.RequestID, ev.Action = fields[1], fields[2]
	ev.From, ev.To, ev.Details, ev.Prev = State(fields[3]), State(fields[4]), fields[5], fields[6]
	ev.Hash = hex.EncodeToString(sum)
	return ev, nil
}

func uvarintLen(n uint64) int {
	var b [binary.MaxVarintLen64]byte
	return binary.PutUvarint(b[:], n)
}

// appendEvent records ev as appendEvent does, with the actor's display name from
// Options.Names when ev has none: the name is captured when the event is written.
func (s *kvStore) appendEvent(tx kvTx, ev *Event) error {
	if ev.ActorName == "" && s.names != nil && ev.Actor != "" {
		ev.ActorName = cleanName(s.names(ev.Actor))
	}
	return appendEvent(tx, ev)
}

// maxNameLen bounds a recorded display name, in bytes: Slack's display names are at most 80
// characters, and the audit log must not grow by whatever a hook returns.
const maxNameLen = 256

// cleanName keeps a display name to one printable line of at most maxNameLen bytes (cut at a
// character boundary), so an export or a terminal never shows control characters from it.
func cleanName(name string) string {
	name = strings.TrimSpace(strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == utf8.RuneError {
			return -1
		}
		return r
	}, name))
	for len(name) > maxNameLen {
		_, w := utf8.DecodeLastRuneInString(name)
		name = name[:len(name)-w]
	}
	return name
}

// appendEvent gives ev the next sequence number, links it to the current head of the
// chain, stores it and moves the head, all in tx.
func appendEvent(tx kvTx, ev *Event) error {
	meta := tx.Bucket(bucketMeta)
	headSeq, headHash, err := readHead(meta)
	if err != nil {
		return err
	}
	ev.Seq = headSeq + 1
	ev.Prev = headHash
	body := encodeEventBody(ev)
	sum := sha256.Sum256(body)
	ev.Hash = hex.EncodeToString(sum[:])
	events := tx.Bucket(bucketAudit)
	fill(events, 1) // append-only: a split page is never written again
	if err := events.Put(seqKey(ev.Seq), append(body, sum[:]...)); err != nil {
		return err
	}
	head := append(seqKey(ev.Seq), sum[:]...)
	return meta.Put(keyAuditHead, head)
}

// readHead returns the last event's seq and hex hash, or 0 and "" for an empty log.
func readHead(meta kvBucket) (uint64, string, error) {
	v := meta.Get(keyAuditHead)
	if v == nil {
		return 0, "", nil
	}
	if len(v) != 8+sha256.Size {
		return 0, "", errors.New("audit log: malformed head record")
	}
	return binary.BigEndian.Uint64(v), hex.EncodeToString(v[8:]), nil
}

// eventPage is how many events Events reads per transaction. fn runs between
// transactions, so a slow consumer never holds a read transaction open (which would stop
// bbolt from growing the file) and may itself call the store.
const eventPage = 256

// Events calls fn for each event with Seq > sinceSeq and, when since is not zero, Time at
// or after since, in sequence order. It stops at the first error from fn and returns it.
func (s *kvStore) Events(ctx context.Context, sinceSeq uint64, since time.Time, fn func(Event) error) error {
	if sinceSeq == math.MaxUint64 {
		return nil
	}
	after := sinceSeq
	for {
		var page []Event
		err := s.view(ctx, func(tx kvTx) error {
			c := tx.Bucket(bucketAudit).Cursor()
			for k, v := c.Seek(seqKey(after + 1)); k != nil && len(page) < eventPage; k, v = c.Next() {
				ev, err := decodeEvent(v)
				if err != nil {
					return &ChainError{Seq: binary.BigEndian.Uint64(k), Reason: err.Error()}
				}
				page = append(page, ev)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, ev := range page {
			after = ev.Seq
			if !since.IsZero() && ev.Time.Before(since) {
				continue
			}
			if err := fn(ev); err != nil {
				return err
			}
		}
		if len(page) < eventPage {
			return nil
		}
	}
}

// Verify walks the whole audit log and returns a *ChainError naming the first event that
// was altered, is missing, or does not link to the one before it; nil if the chain holds. It
// reads verifyPage events per read transaction (600,000 events take about a second in all), so
// a long verification never holds one transaction open: bbolt cannot grow its memory map under
// a reader, and a write waiting for that would miss Slack's 3-second acknowledgement. Events are
// append-only and every write holds the file lock, so the pages together see one chain; the
// head is checked with the last page, in its transaction. When ctx ends first, Verify returns
// ctx's error, not a verdict.
func (s *kvStore) Verify(ctx context.Context) error {
	var w chainWalk
	for {
		var done bool
		err := s.view(ctx, func(tx kvTx) error {
			var err error
			done, err = w.walk(tx, verifyPage)
			return err
		})
		if err != nil || done {
			return err
		}
	}
}

// verifyPage is how many events Verify checks per read transaction: a few milliseconds' work.
const verifyPage = 4096

// verifyChain verifies the whole chain in tx.
func verifyChain(tx kvTx) error {
	var w chainWalk
	_, err := w.walk(tx, 0)
	return err
}

// chainWalk is how far a verification got: the last event verified and its hash.
type chainWalk struct {
	seq  uint64
	hash string
}

// walk verifies up to limit events after w's (all when limit <= 0) and, when it reaches the end
// of the log, the head record; done says it did.
func (w *chainWalk) walk(tx kvTx, limit int) (done bool, err error) {
	c := tx.Bucket(bucketAudit).Cursor()
	k, v := c.First()
	if w.seq > 0 {
		// Resume after the last event verified, which must still be where it was, so a key
		// between two pages (a malformed one) is seen as it is in one walk.
		if k, _ = c.Seek(seqKey(w.seq)); !bytes.Equal(k, seqKey(w.seq)) {
			return false, &ChainError{Seq: w.seq, Reason: "missing (removed during verification)"}
		}
		k, v = c.Next()
	}
	for n := 0; k != nil; k, v = c.Next() {
		if limit > 0 && n == limit {
			return false, nil
		}
		n++
		if len(k) != 8 {
			return false, &ChainError{Seq: w.seq + 1, Reason: fmt.Sprintf("malformed key %x after event %d", k, w.seq)}
		}
		seq := binary.BigEndian.Uint64(k)
		if seq != w.seq+1 {
			return false, &ChainError{Seq: w.seq + 1, Reason: fmt.Sprintf("missing (the next stored event is %d)", seq)}
		}
		ev, err := decodeEvent(v)
		if err != nil {
			return false, &ChainError{Seq: seq, Reason: "undecodable: " + err.Error()}
		}
		body, sum := v[:len(v)-sha256.Size], v[len(v)-sha256.Size:]
		if got := sha256.Sum256(body); !bytes.Equal(got[:], sum) {
			return false, &ChainError{Seq: seq, Reason: "hash mismatch: the stored event was altered"}
		}
		if ev.Seq != seq {
			return false, &ChainError{Seq: seq, Reason: fmt.Sprintf("stored under %d but records seq %d", seq, ev.Seq)}
		}
		if ev.Prev != w.hash {
			return false, &ChainError{Seq: seq, Reason: fmt.Sprintf("broken link: prev does not match the hash of event %d", w.seq)}
		}
		w.seq, w.hash = seq, ev.Hash
	}
	headSeq, headHash, err := readHead(tx.Bucket(bucketMeta))
	if err != nil {
		return false, &ChainError{Seq: w.seq, Reason: err.Error()}
	}
	if headSeq != w.seq {
		return false, &ChainError{Seq: w.seq + 1, Reason: fmt.Sprintf("log ends at %d but the head records %d: events were removed", w.seq, headSeq)}
	}
	if headHash != w.hash {
		return false, &ChainError{Seq: w.seq, Reason: "last event does not match the recorded head hash"}
	}
	return true, nil
}
