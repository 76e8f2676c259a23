package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
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
				if err := s.createRequest(boltTx{tx}, &r, now); err != nil {
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
					if err := s.saveRequest(boltTx{tx}, &r, from, now, audit{actor: st.actor, action: st.action}); err != nil {
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

// TestAuditChainDetectsEveryFlippedByte flips each byte of one stored event in turn, in both
// formats (without and with a display name): every single change must be caught and blamed on
// that event.
func TestAuditChainDetectsEveryFlippedByte(t *testing.T) {
	for _, tc := range []struct {
		name  string
		names func(string) string
	}{
		{"format 1", nil},
		{"format 2", names(map[string]string{"U100": "Rita Requester"})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := mustOpenStore(t, Options{Names: tc.names})
			for range 2 {
				reach(t, s, Running)
			}
			const victim = 5 // the second request's creation, by U100
			errRollback := errors.New("rollback")
			var stored []byte
			s.db.View(func(tx *bolt.Tx) error {
				stored = append(stored, tx.Bucket(bucketAudit).Get(seqKey(victim))...)
				return nil
			})
			wantFormat := byte(eventFormatV1)
			if tc.names != nil {
				wantFormat = eventFormatV2
			}
			if stored[0] != wantFormat {
				t.Fatalf("event %d is stored in format %d, want %d", victim, stored[0], wantFormat)
			}
			for i := range stored {
				for _, mask := range []byte{0x01, 0x20, 0x80} {
					err := s.db.Update(func(tx *bolt.Tx) error {
						b := tx.Bucket(bucketAudit)
						v := append([]byte(nil), b.Get(seqKey(victim))...)
						v[i] ^= mask
						if err := b.Put(seqKey(victim), v); err != nil {
							return err
						}
						if err := verifyChain(boltTx{tx}); err != nil {
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
		})
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

// TestEventEncodingFormats: an event without a display name keeps the first format byte for
// byte (old chains verify unchanged), one with a name is written in the second format, and
// both decode back to the same event.
func TestEventEncodingFormats(t *testing.T) {
	base := Event{Seq: 9, Time: t0.Add(123 * time.Nanosecond), Actor: "U200", RequestID: "FO-3", Action: "approved",
		From: Pending, To: Approved, Details: "1 of 1 approvals", Prev: strings.Repeat("ab", 32)}
	named := base
	named.ActorName = "Bea Ops — DR lead"
	tests := []struct {
		name       string
		ev         Event
		wantFormat byte
	}{
		{"without a name: format 1", base, eventFormatV1},
		{"with a name: format 2", named, eventFormatV2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := encodeEventBody(&tt.ev)
			if body[0] != tt.wantFormat {
				t.Fatalf("format byte %d, want %d", body[0], tt.wantFormat)
			}
			got, err := decodeEvent(append(body, sumOf(body)...))
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			want := tt.ev
			want.Hash = hex.EncodeToString(sumOf(body))
			if got != want {
				t.Errorf("decoded %+v, want %+v", got, want)
			}
		})
	}
	// Format 1 is what every earlier bot wrote: the encoding of an unnamed event must not change.
	// Format byte, seq, Unix seconds, nanoseconds, then each string after its uvarint length.
	golden := "01" + "0000000000000009" + "0000000067d436d8" + "0000007b" +
		"04" + hex.EncodeToString([]byte("U200")) + "04" + hex.EncodeToString([]byte("FO-3")) +
		"08" + hex.EncodeToString([]byte("approved")) + "07" + hex.EncodeToString([]byte("pending")) +
		"08" + hex.EncodeToString([]byte("approved")) + "10" + hex.EncodeToString([]byte("1 of 1 approvals")) +
		"40" + strings.Repeat("6162", 32)
	if got := hex.EncodeToString(encodeEventBody(&base)); got != golden {
		t.Errorf("format 1 encoding changed:\n got %s\nwant %s", got, golden)
	}
}

// TestDecodeEventRefusesAmbiguousNames: a format-2 event with an empty name would be a second
// encoding of a format-1 event, so the hash would cover two byte strings for one meaning.
func TestDecodeEventRefusesAmbiguousNames(t *testing.T) {
	ev := Event{Seq: 1, Time: t0, Actor: "U200", RequestID: "FO-1", Action: "approved", ActorName: "x"}
	body := encodeEventBody(&ev)
	// Turn the one-byte name into an empty one: drop the name's byte, zero its length.
	nameAt := 21 + 1 + len(ev.Actor)
	if body[nameAt] != 1 || body[nameAt+1] != 'x' {
		t.Fatalf("unexpected layout %x", body)
	}
	empty := append(append(append([]byte(nil), body[:nameAt]...), 0), body[nameAt+2:]...)
	if _, err := decodeEvent(append(empty, sumOf(empty)...)); err == nil || !strings.Contains(err.Error(), "without an actor name") {
		t.Errorf("decode of a format-2 event with an empty name: %v, want a refusal", err)
	}
	unknown := append([]byte{3}, body[1:]...)
	if _, err := decodeEvent(append(unknown, sumOf(unknown)...)); err == nil || !strings.Contains(err.Error(), "unknown event format 3") {
		t.Errorf("decode of format 3: %v, want unknown format", err)
	}
}

// names is a display-name directory for Options.Names.
func names(m map[string]string) func(string) string {
	return func(id string) string { return m[id] }
}

// TestAuditEventsCarryNames: with Options.Names every event of a person carries the name known
// when it was written, the bot's own events carry none, a later rename changes only later
// events, and the chain mixing both formats verifies.
func TestAuditEventsCarryNames(t *testing.T) {
	dir := map[string]string{"U100": "Rita Requester", "U200": "alex"}
	var mu sync.Mutex
	s := mustOpenStore(t, Options{Names: func(id string) string { mu.Lock(); defer mu.Unlock(); return dir[id] }})
	r := reach(t, s, Running) // requested by U100, approved by U200, moved by "bot"
	mu.Lock()
	dir["U200"] = "Alex Approver"
	mu.Unlock()
	if _, err := s.Note(context.Background(), r.ID, "U200", "stop-refused", "not now", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Note(context.Background(), r.ID, "U999", "click-refused", "a stranger", ""); err != nil {
		t.Fatal(err)
	}
	want := []struct{ actor, action, name string }{
		{"U100", "requested", "Rita Requester"},
		{"U200", "approved", "alex"},
		{"bot", "submitting", ""},
		{"bot", "submitted", ""},
		{"U200", "stop-refused", "Alex Approver"},
		{"U999", "click-refused", ""},
	}
	evs := allEvents(t, s)
	if len(evs) != len(want) {
		t.Fatalf("%d events, want %d: %+v", len(evs), len(want), evs)
	}
	for i, w := range want {
		if ev := evs[i]; ev.Actor != w.actor || ev.ActorName != w.name {
			t.Errorf("event %d (%s): actor %q named %q, want %q named %q", ev.Seq, ev.Action, ev.Actor, ev.ActorName, w.actor, w.name)
		}
	}
	if err := s.Verify(context.Background()); err != nil {
		t.Fatalf("Verify of a chain with names: %v", err)
	}
	s.Close()
	reopened := mustOpenStoreAt(t, s.path, Options{})
	if err := reopened.Verify(context.Background()); err != nil {
		t.Fatalf("Verify after reopening without a directory: %v", err)
	}
	if got := allEvents(t, reopened)[0].ActorName; got != "Rita Requester" {
		t.Errorf("after reopening, the first event is named %q, want the name it was written with", got)
	}
}

func TestCleanName(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"plain", "Bea Ops", "Bea Ops"},
		{"trimmed", "  bea \t", "bea"},
		{"control characters dropped", "bea\n\x1b[31mred\r", "bea[31mred"},
		{"invalid UTF-8 dropped", "be\xffa", "bea"},
		{"unicode kept", "Zoë Ørsted 🚒", "Zoë Ørsted 🚒"},
		{"bounded at a character boundary", strings.Repeat("é", 200), strings.Repeat("é", maxNameLen/2)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := cleanName(tt.in); got != tt.want {
				t.Errorf("cleanName(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// TestRound1ChainVerifiesWithNamedEvents: the committed round-1 file (events in format 1, from
// before names) verifies after the upgrade, goes on verifying once named events follow, and its
// old events keep no name.
func TestRound1ChainVerifiesWithNamedEvents(t *testing.T) {
	path := copyRound1(t, t.TempDir(), "round1.db")
	s := mustOpenStoreAt(t, path, Options{})
	if err := s.Verify(context.Background()); err != nil {
		t.Fatalf("round-1 chain after the upgrade: %v", err)
	}
	old := len(allEvents(t, s))
	if old == 0 {
		t.Fatal("the round-1 file has no events; the test needs some")
	}
	s.Close()
	s = mustOpenStoreAt(t, path, Options{Names: names(map[string]string{"U100": "Rita", "U200": "Alex"})})
	reach(t, s, Succeeded)
	if err := s.Verify(context.Background()); err != nil {
		t.Fatalf("round-1 chain followed by named events: %v", err)
	}
	evs := allEvents(t, s)
	for _, ev := range evs[:old] {
		if ev.ActorName != "" {
			t.Errorf("round-1 event %d gained a name %q", ev.Seq, ev.ActorName)
		}
	}
	if ev := evs[old]; ev.Actor != "U100" || ev.ActorName != "Rita" {
		t.Errorf("first new event: %q named %q, want U100 named Rita", ev.Actor, ev.ActorName)
	}
}

// TestAuditChainDetectsNameTampering: a recorded name is covered by the chain like every other
// field: editing it, re-hashing the edit, or stripping it are each caught and blamed.
func TestAuditChainDetectsNameTampering(t *testing.T) {
	const victim = 2 // the approval, by U200
	tests := []struct {
		name    string
		change  func(b *bolt.Bucket) error
		wantSeq uint64
		reason  string
	}{
		{"name edited in place", func(b *bolt.Bucket) error {
			v := append([]byte(nil), b.Get(seqKey(victim))...)
			i := bytes.Index(v, []byte("Alex"))
			if i < 0 {
				return errors.New("the name is not stored")
			}
			copy(v[i:], "Eve!")
			return b.Put(seqKey(victim), v)
		}, victim, "hash mismatch"},
		{"name rewritten with a fresh hash", func(b *bolt.Bucket) error {
			ev, err := decodeEvent(b.Get(seqKey(victim)))
			if err != nil {
				return err
			}
			ev.ActorName = "Someone Else"
			return putEvent(b, &ev)
		}, victim + 1, "broken link"},
		{"name stripped with a fresh hash", func(b *bolt.Bucket) error {
			ev, err := decodeEvent(b.Get(seqKey(victim)))
			if err != nil {
				return err
			}
			ev.ActorName = ""
			return putEvent(b, &ev)
		}, victim + 1, "broken link"},
		{"name added to an unnamed event with a fresh hash", func(b *bolt.Bucket) error {
			ev, err := decodeEvent(b.Get(seqKey(victim + 1)))
			if err != nil {
				return err
			}
			if ev.ActorName != "" {
				return fmt.Errorf("event %d is named %q; the test needs an unnamed one", ev.Seq, ev.ActorName)
			}
			ev.ActorName = "Mallory"
			return putEvent(b, &ev)
		}, victim + 2, "broken link"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustOpenStore(t, Options{Names: names(map[string]string{"U100": "Rita", "U200": "Alex Approver"})})
			reach(t, s, Succeeded)
			if ev := allEvents(t, s)[victim-1]; ev.ActorName != "Alex Approver" {
				t.Fatalf("event %d is %s by %q; the test needs the named approval", ev.Seq, ev.Action, ev.ActorName)
			}
			s = tamper(t, s, tt.change)
			wantChainError(t, s.Verify(context.Background()), tt.wantSeq, tt.reason)
		})
	}
}

// TestVerifyInPages: Verify reads the log a page at a time, and a walk across pages finds
// exactly what a walk in one transaction finds, at a page's first and last event as anywhere.
func TestVerifyInPages(t *testing.T) {
	for _, victim := range []uint64{1, verifyPage, verifyPage + 1, 2*verifyPage + 3} {
		t.Run(fmt.Sprint("event ", victim), func(t *testing.T) {
			s := mustOpenStore(t, Options{})
			seedFinished(t, s.Bolt, (2*verifyPage+10)/6+1) // six events each: three pages
			if err := s.Verify(context.Background()); err != nil {
				t.Fatalf("Verify of an intact log of three pages: %v", err)
			}
			s = tamper(t, s, func(b *bolt.Bucket) error {
				v := append([]byte(nil), b.Get(seqKey(victim))...)
				v[len(v)-40] ^= 0x01
				return b.Put(seqKey(victim), v)
			})
			wantChainError(t, s.Verify(context.Background()), victim, "hash mismatch")
			var inOne error
			s.db.View(func(tx *bolt.Tx) error { inOne = verifyChain(boltTx{tx}); return nil })
			wantChainError(t, inOne, victim, "hash mismatch")
		})
	}
	t.Run("a malformed key between two pages", func(t *testing.T) {
		s := mustOpenStore(t, Options{})
		seedFinished(t, s.Bolt, (2*verifyPage)/6+1)
		s = tamper(t, s, func(b *bolt.Bucket) error { return b.Put(append(seqKey(verifyPage), 'x'), []byte("junk")) })
		wantChainError(t, s.Verify(context.Background()), verifyPage+1, "malformed key")
	})
}

// cancelAfter is a context that reports itself cancelled from its n-th look on: Verify looks
// once per page.
type cancelAfter struct {
	context.Context
	mu    sync.Mutex
	looks int
	n     int
}

func (c *cancelAfter) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.looks++
	if c.looks >= c.n {
		return context.Canceled
	}
	return nil
}

// TestVerifyStopsWithItsContext: a long Verify ends when its context does (a bot shutting down
// must not wait for its start-up check), with the context's error and no verdict.
func TestVerifyStopsWithItsContext(t *testing.T) {
	s := mustOpenStore(t, Options{})
	seedFinished(t, s.Bolt, 2*verifyPage/6+1) // six events each: three pages
	ctx := &cancelAfter{Context: context.Background(), n: 2}
	err := s.Verify(ctx)
	var ce *ChainError
	if !errors.Is(err, context.Canceled) || errors.As(err, &ce) {
		t.Fatalf("Verify with a context ended after the first page = %v, want context.Canceled", err)
	}
	if err := s.Verify(context.Background()); err != nil {
		t.Errorf("Verify to the end: %v", err)
	}
}
