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
	"time"

	bolt "go.etcd.io/bbolt"
)

// Event is one entry of the audit log: who did what to which request, and when.
// Prev is the Hash of the event before it ("" for the first); Hash is the hex SHA-256
// of the event's canonical encoding, which includes Prev, so the events form a chain.
type Event struct {
	Seq       uint64
	Time      time.Time
	Actor     string
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

// eventFormat is the first byte of every stored event, so the encoding can evolve.
const eventFormat = 1

// encodeEventBody is the canonical encoding the hash is computed over: a format byte,
// seq, time (Unix seconds and nanoseconds), then each string length-prefixed in a fixed
// order. It is written byte for byte to disk, followed by the 32-byte SHA-256.
func encodeEventBody(ev *Event) []byte {
	b := make([]byte, 0, 64+len(ev.Actor)+len(ev.RequestID)+len(ev.Action)+len(ev.Details)+len(ev.Prev))
	b = append(b, eventFormat)
	b = binary.BigEndian.AppendUint64(b, ev.Seq)
	b = binary.BigEndian.AppendUint64(b, uint64(ev.Time.Unix()))
	b = binary.BigEndian.AppendUint32(b, uint32(ev.Time.Nanosecond()))
	for _, s := range []string{ev.Actor, ev.RequestID, ev.Action, string(ev.From), string(ev.To), ev.Details, ev.Prev} {
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
	if body[0] != eventFormat {
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
	var fields [7]string
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
	ev.Actor, ev.RequestID, ev.Action = fields[0], fields[1], fields[2]
	ev.From, ev.To, ev.Details, ev.Prev = State(fields[3]), State(fields[4]), fields[5], fields[6]
	ev.Hash = hex.EncodeToString(sum)
	return ev, nil
}

func uvarintLen(n uint64) int {
	var b [binary.MaxVarintLen64]byte
	return binary.PutUvarint(b[:], n)
}

// appendEvent gives ev the next sequence number, links it to the current head of the
// chain, stores it and moves the head, all in tx.
func appendEvent(tx *bolt.Tx, ev *Event) error {
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
	events.FillPercent = 1 // append-only: a split page is never written again
	if err := events.Put(seqKey(ev.Seq), append(body, sum[:]...)); err != nil {
		return err
	}
	head := append(seqKey(ev.Seq), sum[:]...)
	return meta.Put(keyAuditHead, head)
}

// readHead returns the last event's seq and hex hash, or 0 and "" for an empty log.
func readHead(meta *bolt.Bucket) (uint64, string, error) {
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
func (s *Bolt) Events(ctx context.Context, sinceSeq uint64, since time.Time, fn func(Event) error) error {
	if sinceSeq == math.MaxUint64 {
		return nil
	}
	after := sinceSeq
	for {
		var page []Event
		err := s.view(ctx, func(tx *bolt.Tx) error {
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
// was altered, is missing, or does not link to the one before it; nil if the chain holds.
func (s *Bolt) Verify(ctx context.Context) error {
	return s.view(ctx, verifyChain)
}

func verifyChain(tx *bolt.Tx) error {
	var prevSeq uint64
	var prevHash string
	c := tx.Bucket(bucketAudit).Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if len(k) != 8 {
			return &ChainError{Seq: prevSeq + 1, Reason: fmt.Sprintf("malformed key %x after event %d", k, prevSeq)}
		}
		seq := binary.BigEndian.Uint64(k)
		if seq != prevSeq+1 {
			return &ChainError{Seq: prevSeq + 1, Reason: fmt.Sprintf("missing (the next stored event is %d)", seq)}
		}
		ev, err := decodeEvent(v)
		if err != nil {
			return &ChainError{Seq: seq, Reason: "undecodable: " + err.Error()}
		}
		body, sum := v[:len(v)-sha256.Size], v[len(v)-sha256.Size:]
		if got := sha256.Sum256(body); !bytes.Equal(got[:], sum) {
			return &ChainError{Seq: seq, Reason: "hash mismatch: the stored event was altered"}
		}
		if ev.Seq != seq {
			return &ChainError{Seq: seq, Reason: fmt.Sprintf("stored under %d but records seq %d", seq, ev.Seq)}
		}
		if ev.Prev != prevHash {
			return &ChainError{Seq: seq, Reason: fmt.Sprintf("broken link: prev does not match the hash of event %d", prevSeq)}
		}
		prevSeq, prevHash = seq, ev.Hash
	}
	headSeq, headHash, err := readHead(tx.Bucket(bucketMeta))
	if err != nil {
		return &ChainError{Seq: prevSeq, Reason: err.Error()}
	}
	if headSeq != prevSeq {
		return &ChainError{Seq: prevSeq + 1, Reason: fmt.Sprintf("log ends at %d but the head records %d: events were removed", prevSeq, headSeq)}
	}
	if headHash != prevHash {
		return &ChainError{Seq: prevSeq, Reason: "last event does not match the recorded head hash"}
	}
	return nil
}
