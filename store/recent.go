package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"time"

	bolt "go.etcd.io/bbolt"
)

// FinishedMoreCap bounds how far Finished counts the finished requests it leaves off: counting
// them all would make the answer cost as much as the history it avoids reading. A count of
// FinishedMoreCap means "at least that many".
const FinishedMoreCap = 1000

// FinishTime is when a finished request finished, the time the finished index orders it by:
// FinishedAt, or, for a record written before requests carried it, the time it entered its
// final state. Every backend indexes by it, so they all list history in the same order.
func FinishTime(r *Request) time.Time {
	if !r.FinishedAt.IsZero() {
		return r.FinishedAt
	}
	return r.StateAt
}

// finishedKey is r's key in the finished index: its finish time in Unix nanoseconds, then its
// sequence number, both 8 bytes big-endian, so keys sort by finish time and then by ID and a
// cursor walks back from the newest.
func finishedKey(r *Request) []byte {
	k := make([]byte, 16)
	binary.BigEndian.PutUint64(k, finishStamp(FinishTime(r)))
	binary.BigEndian.PutUint64(k[8:], r.Seq)
	return k
}

// finishStamp is t in Unix nanoseconds, clamped to what 8 unsigned bytes hold in order: the zero
// time and anything before 1970 sort first, anything after 2262 (where int64 nanoseconds end)
// last. Finish times come from the store's clock, so only a query's bound is ever clamped.
func finishStamp(t time.Time) uint64 {
	switch {
	case t.Before(time.Unix(0, 0)):
		return 0
	case t.After(time.Unix(0, math.MaxInt64)):
		return math.MaxUint64
	}
	return uint64(t.UnixNano())
}

// indexFinished adds r, which has just entered a terminal state, to the finished index. Terminal
// states are final, so an entry is never moved or removed.
func indexFinished(tx kvTx, r *Request) error {
	b := tx.Bucket(bucketFinished)
	// Finish times mostly grow, so pages fill from the right; see the same choice for requests.
	fill(b, 0.9)
	return b.Put(finishedKey(r), []byte{})
}

// Finished returns at most limit requests that finished at or after since, newest first, and how
// many more did, counted up to FinishedMoreCap (see Store.Finished). It walks the finished index
// back from its end: the requests returned are read by sequence, the rest are only counted by
// key, so neither the cost nor the memory grows with history.
func (s *kvStore) Finished(ctx context.Context, since time.Time, limit int) ([]*Request, int, error) {
	if limit < 0 {
		return nil, 0, fmt.Errorf("%w: finished: limit %d is negative", ErrInvalid, limit)
	}
	var floor [8]byte
	binary.BigEndian.PutUint64(floor[:], finishStamp(since))
	var (
		out  []*Request
		more int
	)
	err := s.view(ctx, func(tx kvTx) error {
		c := tx.Bucket(bucketFinished).Cursor()
		for k, _ := c.Last(); k != nil; k, _ = c.Prev() {
			if len(k) != 16 {
				return fmt.Errorf("finished index: malformed key %x", k)
			}
			if bytes.Compare(k[:8], floor[:]) < 0 {
				return nil
			}
			if len(out) == limit {
				if more++; more == FinishedMoreCap {
					return nil
				}
				continue
			}
			r, err := requestBySeq(tx, binary.BigEndian.Uint64(k[8:]))
			if err != nil {
				return fmt.Errorf("finished index: %w", err)
			}
			if !r.State.Terminal() {
				return fmt.Errorf("finished index: %s is %s", r.ID, r.State)
			}
			out = append(out, r)
		}
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	return out, more, nil
}

// finishedRecord is what the backfill reads of a stored request: enough to know whether it is
// finished and when, without decoding its items.
type finishedRecord struct {
	Seq        uint64    `json:"seq"`
	State      State     `json:"state"`
	StateAt    time.Time `json:"state_at"`
	FinishedAt time.Time `json:"finished_at"`
}

// backfillFinished builds the finished index of a file written before it existed (schema 4 and
// older): every request in a terminal state gets its entry. It reads each record once, at the
// upgrade; a record it cannot read stops the upgrade (and the open), as in the earlier steps,
// rather than leaving a request out of the history without a word.
func backfillFinished(tx *bolt.Tx) error {
	idx, err := tx.CreateBucketIfNotExists(bucketFinished)
	if err != nil {
		return err
	}
	requests := tx.Bucket(bucketRequests)
	if requests == nil {
		return nil
	}
	return requests.ForEach(func(k, v []byte) error {
		var fr finishedRecord
		if err := json.Unmarshal(v, &fr); err != nil {
			return fmt.Errorf("finished index: request %x: %w", k, err)
		}
		if len(k) != 8 || fr.Seq != binary.BigEndian.Uint64(k) {
			return fmt.Errorf("finished index: request %x: stored record says seq %d", k, fr.Seq)
		}
		if !fr.State.Terminal() {
			return nil
		}
		r := &Request{Seq: fr.Seq, State: fr.State, StateAt: fr.StateAt, FinishedAt: fr.FinishedAt}
		return idx.Put(finishedKey(r), []byte{})
	})
}
