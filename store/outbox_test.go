package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// threadProjection is a stand-in for the bot's: one line per state change, none for
// same-state progress.
func threadProjection(r *Request, e *Event) string {
	if e.From == e.To {
		return ""
	}
	return fmt.Sprintf("%s %s -> %s by %s", r.ID, e.From, e.To, e.Actor)
}

func outboxTexts(t *testing.T, s *testStore, channel string) []string {
	t.Helper()
	msgs, err := s.Outbox(context.Background(), channel, 1000)
	if err != nil {
		t.Fatalf("Outbox(%s): %v", channel, err)
	}
	var out []string
	for _, m := range msgs {
		out = append(out, m.Text)
	}
	return out
}

func TestChangesQueueTheirThreadLinesInCommitOrder(t *testing.T) {
	s := mustOpenStore(t, Options{Thread: threadProjection})
	r := mustCreate(t, s)
	other := mustCreate(t, s, func(nr *NewRequest) { nr.Channel = "C2" })
	r, err := s.Approve(context.Background(), r.ID, "U200", r.Digest)
	if err != nil {
		t.Fatal(err)
	}
	r = mustTransition(t, s, Change{ID: r.ID, To: Submitting})
	r = mustTransition(t, s, Change{ID: r.ID, To: Running, Thread: "explicit line"})
	mustTransition(t, s, Change{ID: r.ID, To: Running, Action: "em-state"}) // progress: no line
	if _, err := s.Note(context.Background(), r.ID, "poller", "em-unreachable", "EM down", "cannot read EM"); err != nil {
		t.Fatal(err)
	}

	want := []string{
		"FO-1  -> pending by U100",
		"FO-1 pending -> approved by U200",
		"FO-1 approved -> submitting by bot",
		"explicit line",
		// A change's own line comes first, then the projection's (see Options.Thread).
		"FO-1 submitting -> running by bot",
		"cannot read EM",
	}
	if got := outboxTexts(t, s, "C1"); !slices.Equal(got, want) {
		t.Fatalf("C1 outbox:\n got %q\nwant %q", got, want)
	}
	if got := outboxTexts(t, s, "C2"); !slices.Equal(got, []string{other.ID + "  -> pending by U100"}) {
		t.Fatalf("C2 outbox = %q", got)
	}
	chans, err := s.OutboxChannels(context.Background())
	if err != nil || !slices.Equal(chans, []string{"C1", "C2"}) {
		t.Fatalf("OutboxChannels = %q, %v", chans, err)
	}
	msgs, _ := s.Outbox(context.Background(), "C1", 2)
	if len(msgs) != 2 || msgs[0].RequestID != r.ID || msgs[0].Seq >= msgs[1].Seq {
		t.Fatalf("Outbox(C1, 2) = %+v", msgs)
	}
	if err := s.Delivered(context.Background(), "C1", msgs[0].Seq, msgs[1].Seq); err != nil {
		t.Fatal(err)
	}
	if got := outboxTexts(t, s, "C1"); len(got) != len(want)-2 || got[0] != want[2] {
		t.Fatalf("after Delivered: %q", got)
	}
	// The audit log has every event, the progress tick and the note included.
	var actions []string
	s.Events(context.Background(), 0, time.Time{}, func(e Event) error { actions = append(actions, e.Action); return nil })
	if !slices.Contains(actions, "em-state") || !slices.Contains(actions, "em-unreachable") {
		t.Fatalf("audit actions %q lack the progress tick or the note", actions)
	}
	if err := s.Verify(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestOutboxSurvivesReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "failover.db")
	s, err := Open(path, Options{Now: newClock().Now, Thread: threadProjection})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(context.Background(), validNewRequest()); err != nil {
		t.Fatal(err)
	}
	if err := s.Enqueue(context.Background(), "C9", "bot notice"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s2 := mustOpenStoreAt(t, path, Options{})
	if got := outboxTexts(t, s2, "C1"); len(got) != 1 {
		t.Fatalf("after reopen C1 outbox = %q", got)
	}
	if got := outboxTexts(t, s2, "C9"); !slices.Equal(got, []string{"bot notice"}) {
		t.Fatalf("after reopen C9 outbox = %q", got)
	}
	cards, err := s2.DueCards(context.Background())
	if err != nil || len(cards) != 1 || cards[0].Rendered != 0 {
		t.Fatalf("DueCards after reopen = %+v, %v", cards, err)
	}
}

func TestCardsAreDueUntilTheirNewestVersionIsRendered(t *testing.T) {
	s := mustOpenStore(t, Options{})
	due := func() []string {
		t.Helper()
		cards, err := s.DueCards(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, c := range cards {
			ids = append(ids, fmt.Sprintf("%s@%d/%d", c.Request.ID, c.Rendered, c.Request.Version))
		}
		return ids
	}
	r := mustCreate(t, s)
	noChannel := mustCreate(t, s, func(nr *NewRequest) { nr.Channel = "" })
	_ = noChannel
	if got := due(); !slices.Equal(got, []string{"FO-1@0/1"}) {
		t.Fatalf("after create: %q (a request without a channel has no card)", got)
	}
	// Posting the card that shows version 1 records it without making the card stale.
	r, err := s.SetMessage(context.Background(), r.ID, "C1", "1.1", r.Version)
	if err != nil {
		t.Fatal(err)
	}
	if got := due(); len(got) != 0 {
		t.Fatalf("after SetMessage: %q", got)
	}
	// A burst of changes leaves one due card at the newest version.
	r, _ = s.Approve(context.Background(), r.ID, "U200", r.Digest)
	r = mustTransition(t, s, Change{ID: r.ID, To: Submitting})
	r = mustTransition(t, s, Change{ID: r.ID, To: Running})
	if got := due(); !slices.Equal(got, []string{fmt.Sprintf("FO-1@2/%d", r.Version)}) {
		t.Fatalf("after a burst: %q", got)
	}
	// A render of an older version leaves the card due; the newest clears it.
	if err := s.CardRendered(context.Background(), r.ID, r.Version-1); err != nil {
		t.Fatal(err)
	}
	if got := due(); len(got) != 1 {
		t.Fatalf("after an old render: %q", got)
	}
	if err := s.CardRendered(context.Background(), r.ID, r.Version); err != nil {
		t.Fatal(err)
	}
	if got := due(); len(got) != 0 {
		t.Fatalf("after the newest render: %q", got)
	}
	// A render never moves back.
	if err := s.CardRendered(context.Background(), r.ID, 1); err != nil {
		t.Fatal(err)
	}
	mustTransition(t, s, Change{ID: r.ID, To: Succeeded})
	if got := due(); len(got) != 1 || got[0] != fmt.Sprintf("FO-1@%d/%d", r.Version, r.Version+1) {
		t.Fatalf("finished request: %q", got)
	}
	if err := s.CardDelayNotified(context.Background(), r.ID); err != nil {
		t.Fatal(err)
	}
	if cards, _ := s.DueCards(context.Background()); !cards[0].DelayNotified {
		t.Fatal("CardDelayNotified not recorded")
	}
	if err := s.CardRendered(context.Background(), "FO-99", 1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("CardRendered(FO-99) = %v, want ErrNotFound", err)
	}
}

func TestUndeliverableCards(t *testing.T) {
	s := mustOpenStore(t, Options{})
	p := mustCreate(t, s)
	w, err := s.WithdrawUndeliverable(context.Background(), p.ID, "Slack answered channel_not_found")
	if err != nil {
		t.Fatal(err)
	}
	if w.State != Withdrawn || w.StateBy != UndeliverableActor {
		t.Fatalf("got %s by %s, want withdrawn by %s", w.State, w.StateBy, UndeliverableActor)
	}
	if cards, _ := s.DueCards(context.Background()); len(cards) != 0 {
		t.Fatalf("an undeliverable card is still due: %+v", cards)
	}
	if _, err := s.WithdrawUndeliverable(context.Background(), p.ID, "again"); asConflict(t, err).Reason != ReasonState {
		t.Fatalf("second WithdrawUndeliverable = %v", err)
	}
	if _, err := s.WithdrawUndeliverable(context.Background(), p.ID, " "); !errors.Is(err, ErrInvalid) {
		t.Fatalf("empty reason = %v, want ErrInvalid", err)
	}
	running := reach(t, s, Running)
	if _, err := s.AbandonCard(context.Background(), running.ID, "Slack answered is_archived"); err != nil {
		t.Fatal(err)
	}
	mustTransition(t, s, Change{ID: running.ID, To: Succeeded})
	if cards, _ := s.DueCards(context.Background()); len(cards) != 0 {
		t.Fatalf("an abandoned card became due again: %+v", cards)
	}
	var last Event
	s.Events(context.Background(), 0, time.Time{}, func(e Event) error {
		if e.Action == "card-undeliverable" {
			last = e
		}
		return nil
	})
	if last.Details != "Slack answered is_archived" || last.From != Running || last.To != Running {
		t.Fatalf("card-undeliverable event = %+v", last)
	}
}

func TestReplayWindow(t *testing.T) {
	s := mustOpenStore(t, Options{})
	const ttl = 5 * time.Minute
	if err := s.Remember(context.Background(), "trigger-1", ttl); err != nil {
		t.Fatal(err)
	}
	if err := s.Remember(context.Background(), "trigger-1", ttl); !errors.Is(err, ErrReplay) {
		t.Fatalf("second Remember = %v, want ErrReplay", err)
	}
	s.clock.Advance(ttl)
	if err := s.Remember(context.Background(), "trigger-2", ttl); err != nil {
		t.Fatal(err)
	}
	// trigger-1 expired and was forgotten by the write above.
	var keys int
	s.db.View(func(tx *bolt.Tx) error { keys = tx.Bucket(bucketReplays).Stats().KeyN; return nil })
	if keys != 1 {
		t.Fatalf("%d replay keys kept, want 1 (expired keys are purged)", keys)
	}
	if err := s.Remember(context.Background(), "trigger-1", ttl); err != nil {
		t.Fatalf("Remember after expiry = %v", err)
	}
	for _, bad := range []string{"", string(make([]byte, replayKeyMax+1))} {
		if err := s.Remember(context.Background(), bad, ttl); !errors.Is(err, ErrInvalid) {
			t.Errorf("Remember(%d bytes) = %v, want ErrInvalid", len(bad), err)
		}
	}
}

func TestCreateWithReplayKeyCreatesOnce(t *testing.T) {
	s := mustOpenStore(t, Options{})
	withKey := func(nr *NewRequest) { nr.ReplayKey, nr.ReplayTTL = "trigger-7", 5*time.Minute }
	mustCreate(t, s, withKey)
	nr := validNewRequest()
	withKey(&nr)
	if _, err := s.Create(context.Background(), nr); !errors.Is(err, ErrReplay) {
		t.Fatalf("replayed Create = %v, want ErrReplay", err)
	}
	if act, _ := s.Active(context.Background()); len(act) != 1 {
		t.Fatalf("%d requests after a replay, want 1", len(act))
	}
	if err := s.Remember(context.Background(), "trigger-7", time.Minute); !errors.Is(err, ErrReplay) {
		t.Fatalf("Create did not record its key: %v", err)
	}
}

func TestAuditCursor(t *testing.T) {
	s := mustOpenStore(t, Options{})
	mustCreate(t, s)
	mustCreate(t, s)
	// A channel the cursor has never seen starts at the head, not at the first event.
	c, err := s.AuditCursor(context.Background(), "CAUDIT")
	if err != nil || c != 2 {
		t.Fatalf("first AuditCursor = %d, %v; want 2", c, err)
	}
	mustCreate(t, s)
	if _, _, n, _ := s.Backlog(context.Background(), "CAUDIT", nil); n != 1 {
		t.Fatalf("backlog = %d events, want 1", n)
	}
	if err := s.SetAuditCursor(context.Background(), "CAUDIT", 3); err != nil {
		t.Fatal(err)
	}
	if err := s.SetAuditCursor(context.Background(), "CAUDIT", 1); err != nil { // never back
		t.Fatal(err)
	}
	if c, _ := s.AuditCursor(context.Background(), "CAUDIT"); c != 3 {
		t.Fatalf("cursor = %d, want 3", c)
	}
	mustCreate(t, s)
	if c, _ := s.AuditCursor(context.Background(), "CNEW"); c != 4 {
		t.Fatalf("a new audit channel starts at %d, want the head 4", c)
	}
	if _, _, n, _ := s.Backlog(context.Background(), "CNEW", nil); n != 0 {
		t.Fatalf("new channel backlog = %d", n)
	}
}

// TestMigrateRound1Store opens a file written by the round-1 bot (schema 1, committed as
// testdata): its requests and audit chain are kept, active cards become due (round 1 kept
// what it owed Slack in memory), the never-posted card included, and the audit channel starts
// at the head.
func TestMigrateRound1Store(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "round1.db"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "round1.db")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	s := mustOpenStoreAt(t, path, Options{})
	if err := s.Verify(context.Background()); err != nil {
		t.Fatalf("chain after migration: %v", err)
	}
	act, err := s.Active(context.Background())
	if err != nil || len(act) != 3 {
		t.Fatalf("active after migration = %d, %v; want 3", len(act), err)
	}
	cards, err := s.DueCards(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, c := range cards {
		ids = append(ids, c.Request.ID+"/"+c.Request.MessageTS)
	}
	if want := []string{"FO-2/", "FO-1/1700000000.000001", "FO-3/1700000000.000003"}; !slices.Equal(ids, want) {
		t.Fatalf("due cards = %q, want %q", ids, want)
	}
	if r, _ := s.Get(context.Background(), "FO-4"); r.State != Succeeded {
		t.Fatalf("FO-4 is %s", r.State)
	}
	// Version 3: the migrated active requests hold their targets.
	for _, r := range act {
		nr := validNewRequest()
		nr.Kind, nr.Target = r.Kind, r.Items[0].Target
		if nr.Kind == KindVApp {
			nr.Target.ReplicaID, nr.Target.ReplicaName = "", ""
		}
		var ce *ConflictError
		if _, err := s.Create(context.Background(), nr); !errors.As(err, &ce) || ce.Reason != ReasonTargetBusy || ce.Holder != r.ID {
			t.Errorf("a new request for %s's target: %v, want target-busy naming it", r.ID, err)
		}
	}
	var head uint64
	s.Events(context.Background(), 0, time.Time{}, func(e Event) error { head = e.Seq; return nil })
	if c, _ := s.AuditCursor(context.Background(), "CAUDIT"); c != head {
		t.Fatalf("audit cursor %d, want head %d", c, head)
	}
	s.Close()
	// Reopening a migrated file is a no-op.
	s2 := mustOpenStoreAt(t, path, Options{})
	if cards, _ := s2.DueCards(context.Background()); len(cards) != 3 {
		t.Fatalf("due cards after reopen = %d", len(cards))
	}
}
