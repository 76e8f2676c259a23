package store

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/failover-bot/failover-bot/store/failover"
)

func allEvents(t testing.TB, s *testStore) []Event {
	t.Helper()
	var evs []Event
	if err := s.Events(context.Background(), 0, time.Time{}, func(ev Event) error { evs = append(evs, ev); return nil }); err != nil {
		t.Fatalf("Events: %v", err)
	}
	return evs
}

func lastEvent(t testing.TB, s *testStore) Event {
	t.Helper()
	evs := allEvents(t, s)
	if len(evs) == 0 {
		t.Fatal("no events")
	}
	return evs[len(evs)-1]
}

// seedFinished writes n requests that went through a whole successful lifecycle, with
// their audit events, in transactions of 5,000, the way history accumulates but far faster
// than one commit per change. It goes through the same save path as the public methods.
func seedFinished(tb testing.TB, s *Bolt, n int) {
	tb.Helper()
	now := t0
	for done := 0; done < n; {
		batch := min(5000, n-done)
		err := s.db.Update(func(tx *bolt.Tx) error {
			for range batch {
				nr := validNewRequest()
				r := Request{Kind: nr.Kind, Items: []Item{{Target: nr.Target, State: Pending, StateAt: now, Version: 1}},
					Intent: nr.Intent, DigestV: failover.DigestVersion, Reason: nr.Reason,
					Requester: nr.Requester, Channel: nr.Channel, ApprovalsRequired: 1, State: Pending,
					StateBy: nr.Requester, StateAt: now, CreatedAt: now, ExpiresAt: now.Add(nr.TTL)}
				r.Digest = r.ComputeDigest()
				if err := s.createRequest(tx, &r, now); err != nil {
					return err
				}
				steps := []struct {
					to     State
					actor  string
					action string
					apply  func()
				}{
					{Approved, "U200", "approved", func() { r.Approvals = []Approval{{User: "U200", At: now}}; r.DecidedAt = now }},
					{Submitting, "bot", "submitting", func() { r.SubmittedAt, r.Items[0].SubmittedAt = now, now }},
					{Running, "bot", "submitted", func() { r.Items[0].TaskID, r.StartedAt, r.Items[0].StartedAt = "task-"+r.ID, now, now }},
					{Running, "poller", "em-state", func() { r.Items[0].EMState, r.Items[0].EMProgress = "Working", 50 }},
					{Succeeded, "poller", "succeeded", func() { r.Items[0].EMResult, r.FinishedAt, r.Items[0].FinishedAt = "Success", now, now }},
				}
				for _, st := range steps {
					from := r.State
					st.apply()
					r.Items[0].Version++
					if st.to != from {
						r.State, r.StateBy, r.StateAt = st.to, st.actor, now
						r.Items[0].State, r.Items[0].StateAt = st.to, now
					}
					if err := s.saveRequest(tx, &r, from, now, audit{actor: st.actor, action: st.action}); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil {
			tb.Fatalf("seed: %v", err)
		}
		done += batch
	}
}

func TestAuditChainVerifies(t *testing.T) {
	s := mustOpenStore(t, Options{})
	if err := s.Verify(context.Background()); err != nil {
		t.Fatalf("Verify on an empty log: %v", err)
	}
	for _, st := range allStates {
		reach(t, s, st)
	}
	if err := s.Verify(context.Background()); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	evs := allEvents(t, s)
	prev := ""
	for i, ev := range evs {
		if ev.Seq != uint64(i+1) || ev.Prev != prev || len(ev.Hash) != 64 {
			t.Fatalf("event %d: seq %d prev %.8s hash %.8s, want seq %d prev %.8s", i, ev.Seq, ev.Prev, ev.Hash, i+1, prev)
		}
		prev = ev.Hash
	}
	s.Close()
	s2 := mustOpenStoreAt(t, s.path, Options{})
	mustCreate(t, s2)
	if err := s2.Verify(context.Background()); err != nil {
		t.Fatalf("Verify after reopen and append: %v", err)
	}
}

func TestEventsFilters(t *testing.T) {
	s := mustOpenStore(t, Options{})
	seedFinished(t, s.Bolt, 100) // 600 events: more than two pages
	s.clock.Advance(time.Hour)
	late := mustCreate(t, s)
	all := allEvents(t, s)
	if len(all) != 601 {
		t.Fatalf("%d events, want 601", len(all))
	}
	tests := []struct {
		name     string
		sinceSeq uint64
		since    time.Time
		wantN    int
		wantSeq  uint64 // first
	}{
		{"everything", 0, time.Time{}, 601, 1},
		{"after a seq", 256, time.Time{}, 345, 257},
		{"after the last seq", 601, time.Time{}, 0, 0},
		{"far past the end", 1 << 63, time.Time{}, 0, 0},
		{"max seq", ^uint64(0), time.Time{}, 0, 0},
		{"since a time", 0, t0.Add(time.Minute), 1, 601},
		{"since an earlier time", 0, t0, 601, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []Event
			err := s.Events(context.Background(), tt.sinceSeq, tt.since, func(ev Event) error { got = append(got, ev); return nil })
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != tt.wantN {
				t.Fatalf("got %d events, want %d", len(got), tt.wantN)
			}
			for i := 1; i < len(got); i++ {
				if got[i].Seq != got[i-1].Seq+1 {
					t.Fatalf("events out of order at %d: %d after %d", i, got[i].Seq, got[i-1].Seq)
				}
			}
			if tt.wantN > 0 && got[0].Seq != tt.wantSeq {
				t.Errorf("first seq %d, want %d", got[0].Seq, tt.wantSeq)
			}
		})
	}
	if ev := all[600]; ev.RequestID != late.ID || ev.Action != "requested" {
		t.Errorf("last event %+v, want the late request", ev)
	}
	stop := errors.New("stop")
	calls := 0
	err := s.Events(context.Background(), 0, time.Time{}, func(Event) error { calls++; return stop })
	if !errors.Is(err, stop) || calls != 1 {
		t.Errorf("Events with a failing fn: %v after %d calls, want stop after 1", err, calls)
	}
	// fn may write to the store: Events holds no transaction while calling it.
	err = s.Events(context.Background(), 599, time.Time{}, func(ev Event) error {
		_, err := s.Get(context.Background(), ev.RequestID)
		mustCreate(t, s)
		return err
	})
	if err != nil {
		t.Errorf("writing from fn: %v", err)
	}
}

// tamper changes the stored audit bucket of a closed store's file directly with bbolt,
// the way someone with the file would, then reopens the store.
func tamper(t *testing.T, s *testStore, change func(b *bolt.Bucket) error) *testStore {
	t.Helper()
	s.Close()
	db, err := bolt.Open(s.path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error { return change(tx.Bucket(bucketAudit)) }); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	return mustOpenStoreAt(t, s.path, Options{})
}

func wantChainError(t *testing.T, err error, seq uint64, reason string) {
	t.Helper()
	var ce *ChainError
	if !errors.As(err, &ce) {
		t.Fatalf("Verify = %v, want *ChainError", err)
	}
	if ce.Seq != seq || !strings.Contains(ce.Reason, reason) {
		t.Errorf("Verify = %v, want event %d: %s", ce, seq, reason)
	}
}

func TestAuditChainDetectsTampering(t *testing.T) {
	const victim = 7
	tests := []struct {
		name    string
		change  func(b *bolt.Bucket) error
		wantSeq uint64
		reason  string
	}{
		{"flipped byte in details", func(b *bolt.Bucket) error {
			v := append([]byte(nil), b.Get(seqKey(victim))...)
			v[len(v)-40] ^= 0x01
			return b.Put(seqKey(victim), v)
		}, victim, "hash mismatch"},
		{"rewritten event with a fresh hash", func(b *bolt.Bucket) error {
			ev, err := decodeEvent(b.Get(seqKey(victim)))
			if err != nil {
				return err
			}
			ev.Actor = "U666"
			return putEvent(b, &ev)
		}, victim + 1, "broken link"},
		{"deleted event", func(b *bolt.Bucket) error { return b.Delete(seqKey(victim)) }, victim, "missing"},
		{"deleted last events", func(b *bolt.Bucket) error {
			last, _ := b.Cursor().Last()
			return b.Delete(last)
		}, 0, "events were removed"},
		{"event moved to another key", func(b *bolt.Bucket) error {
			ev, err := decodeEvent(b.Get(seqKey(victim)))
			if err != nil {
				return err
			}
			ev.Seq = victim + 100
			body := encodeEventBody(&ev)
			return b.Put(seqKey(victim), append(body, sumOf(body)...))
		}, victim, "records seq"},
		{"truncated value", func(b *bolt.Bucket) error { return b.Put(seqKey(victim), []byte{1, 2, 3}) }, victim, "undecodable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustOpenStore(t, Options{})
			for range 3 {
				reach(t, s, Succeeded)
			}
			n := uint64(len(allEvents(t, s)))
			s = tamper(t, s, tt.change)
			want := tt.wantSeq
			if want == 0 {
				want = n // the removed last event
			}
			wantChainError(t, s.Verify(context.Background()), want, tt.reason)
		})
	}
}

// TestAuditChainDetectsEveryFlippedByte flips each byte of one stored event in turn: every
// single change must be caught and blamed on that event.
func TestAuditChainDetectsEveryFlippedByte(t *testing.T) {
	s := mustOpenStore(t, Options{})
	for range 2 {
		reach(t, s, Running)
	}
	const victim = 5
	errRollback := errors.New("rollback")
	var length int
	s.db.View(func(tx *bolt.Tx) error { length = len(tx.Bucket(bucketAudit).Get(seqKey(victim))); return nil })
	for i := range length {
		for _, mask := range []byte{0x01, 0x20, 0x80} {
			err := s.db.Update(func(tx *bolt.Tx) error {
				b := tx.Bucket(bucketAudit)
				v := append([]byte(nil), b.Get(seqKey(victim))...)
				v[i] ^= mask
				if err := b.Put(seqKey(victim), v); err != nil {
					return err
				}
				if err := verifyChain(tx); err != nil {
					var ce *ChainError
					if !errors.As(err, &ce) || ce.Seq != victim {
						return fmt.Errorf("byte %d ^ %#x: got %v, want event %d", i, mask, err, victim)
					}
					return errRollback
				}
				return fmt.Errorf("byte %d ^ %#x: Verify passed", i, mask)
			})
			if !errors.Is(err, errRollback) {
				t.Error(err)
			}
		}
	}
	if err := s.Verify(context.Background()); err != nil {
		t.Errorf("Verify after rolled-back tampering: %v", err)
	}
}

func sumOf(body []byte) []byte {
	h := sha256.Sum256(body)
	return h[:]
}

// putEvent re-stores ev with a correct hash for its (changed) contents.
func putEvent(b *bolt.Bucket, ev *Event) error {
	body := encodeEventBody(ev)
	return b.Put(seqKey(ev.Seq), append(body, sumOf(body)...))
}
