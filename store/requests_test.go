package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/failover-bot/failover-bot/store/failover"
)

var allStates = []State{Pending, Approved, Submitting, Running, Stopping, Succeeded, Warning,
	Failed, Stopped, Rejected, Expired, Withdrawn, Unknown}

func TestStateClassification(t *testing.T) {
	active := []State{Pending, Approved, Submitting, Running, Stopping}
	for _, s := range allStates {
		wantActive := slices.Contains(active, s)
		if s.Active() != wantActive || s.Terminal() == wantActive {
			t.Errorf("%s: Active=%v Terminal=%v, want Active=%v Terminal=%v", s, s.Active(), s.Terminal(), wantActive, !wantActive)
		}
	}
	// partly-failed is a request's state only (never an item's, so no test reaches it here).
	if PartlyFailed.Active() || !PartlyFailed.Terminal() || !PartlyFailed.Known() {
		t.Errorf("%s: Active=%v Terminal=%v, want a known terminal state", PartlyFailed, PartlyFailed.Active(), PartlyFailed.Terminal())
	}
	if State("paused").Active() || State("paused").Terminal() {
		t.Error("an unknown state is neither active nor terminal")
	}
}

func TestCreate(t *testing.T) {
	s := mustOpenStore(t, Options{ApprovalsRequired: 2})
	r := mustCreate(t, s, func(nr *NewRequest) { nr.Target.ID = "vm-1" })
	want := Request{
		Seq: 1, ID: "FO-1", Kind: KindVM,
		Items: []Item{{Target: Target{ReplicaID: "5a1c", ReplicaName: "cdp-web", ID: "vm-1", Name: "web-01"},
			State: Pending, StateAt: t0, Version: 1}},
		Intent:            IntentLatest,
		Reason:            "DC1 lost power",
		Requester:         "U100",
		Channel:           "C1",
		State:             Pending,
		StateBy:           "U100",
		StateAt:           t0,
		Version:           1,
		CreatedAt:         t0,
		ExpiresAt:         t0.Add(15 * time.Minute),
		UpdatedAt:         t0,
		Digest:            r.Digest,
		DigestV:           failover.DigestVersion,
		ApprovalsRequired: 2,
	}
	if fmt.Sprintf("%+v", *r) != fmt.Sprintf("%+v", want) {
		t.Errorf("Create returned\n%+v\nwant\n%+v", *r, want)
	}
	if len(r.Digest) != 64 {
		t.Errorf("digest %q is not hex SHA-256", r.Digest)
	}
	got, err := s.Get(context.Background(), "fo-1")
	if err != nil {
		t.Fatalf("Get(fo-1): %v", err)
	}
	if fmt.Sprintf("%+v", *got) != fmt.Sprintf("%+v", *r) {
		t.Errorf("Get returned\n%+v\nwant\n%+v", *got, *r)
	}
	if r2 := mustCreate(t, s); r2.ID != "FO-2" {
		t.Errorf("second ID = %s, want FO-2", r2.ID)
	}
	evs := allEvents(t, s)
	if len(evs) != 2 || evs[0].Action != "requested" || evs[0].To != Pending || evs[0].From != "" ||
		evs[0].Actor != "U100" || evs[0].RequestID != "FO-1" || !strings.Contains(evs[0].Details, "DC1 lost power") {
		t.Errorf("events after two creates: %+v", evs)
	}
}

func TestCreateDigestCoversApprovedContent(t *testing.T) {
	s := mustOpenStore(t, Options{})
	// One target for all, each request withdrawn before the next (one active request per
	// target), so only the field each case changes differs.
	same := func(nr *NewRequest) { nr.Target.ID = "vm-d" }
	create := func(mods ...func(*NewRequest)) string {
		t.Helper()
		r := mustCreate(t, s, append([]func(*NewRequest){same}, mods...)...)
		if _, err := s.Withdraw(context.Background(), r.ID, r.Requester); err != nil {
			t.Fatal(err)
		}
		return r.Digest
	}
	base := create()
	pit := time.Date(2025, 3, 14, 13, 0, 0, 0, time.UTC)
	mods := map[string]func(*NewRequest){
		"kind":         func(nr *NewRequest) { nr.Kind, nr.Target.ReplicaID, nr.Target.ReplicaName = KindVApp, "", "" },
		"replica":      func(nr *NewRequest) { nr.Target.ReplicaID = "other" },
		"target ID":    func(nr *NewRequest) { nr.Target.ID = "vm-2" },
		"target name":  func(nr *NewRequest) { nr.Target.Name = "web-02" },
		"intent":       func(nr *NewRequest) { nr.Intent = IntentLatestVSS },
		"restore time": func(nr *NewRequest) { nr.Intent, nr.RestoreTime = IntentPointInTime, pit },
		"requester":    func(nr *NewRequest) { nr.Requester = "U101" },
		"reason":       func(nr *NewRequest) { nr.Reason = "DC1 lost power!" },
	}
	for name, m := range mods {
		if d := create(m); d == base {
			t.Errorf("changing %s does not change the digest", name)
		}
	}
	// Channel and TTL are not what approvers approve.
	if d := create(func(nr *NewRequest) { nr.Channel, nr.TTL = "C2", time.Hour }); d != base {
		t.Error("channel or TTL changed the digest")
	}
}

func TestCreateRejectsInvalidRequests(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*NewRequest)
		want string
	}{
		{"unknown kind", func(nr *NewRequest) { nr.Kind = "host" }, `unknown kind "host"`},
		{"VM without replica", func(nr *NewRequest) { nr.Target.ReplicaID = "" }, "needs its replica ID"},
		{"vApp with replica", func(nr *NewRequest) { nr.Kind = KindVApp }, "has no replica ID"},
		{"no target ID", func(nr *NewRequest) { nr.Target.ID = "" }, "target ID is required"},
		{"unknown intent", func(nr *NewRequest) { nr.Intent = "yesterday" }, `unknown intent "yesterday"`},
		{"latest with time", func(nr *NewRequest) { nr.RestoreTime = t0 }, "takes no restore time"},
		{"point in time without time", func(nr *NewRequest) { nr.Intent = IntentPointInTime }, "needs a restore time"},
		{"blank reason", func(nr *NewRequest) { nr.Reason = "  " }, "reason is required"},
		{"no requester", func(nr *NewRequest) { nr.Requester = "" }, "requester is required"},
		{"no TTL", func(nr *NewRequest) { nr.TTL = 0 }, "TTL must be positive"},
		{"target listed twice", func(nr *NewRequest) {
			t := nr.Target
			nr.Target, nr.Items = Target{}, []Item{{Target: t}, {Target: t}}
		}, "is listed twice"},
		{"target and items", func(nr *NewRequest) { nr.Items = []Item{{Target: Target{ReplicaID: "5a1c", ID: "vm-x"}}} }, "give Target or Items, not both"},
		{"no targets", func(nr *NewRequest) { nr.Target = Target{} }, "at least one target is required"},
	}
	s := mustOpenStore(t, Options{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nr := validNewRequest()
			tt.mod(&nr)
			_, err := s.Create(context.Background(), nr)
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want ErrInvalid mentioning %q", err, tt.want)
			}
		})
	}
	if n := len(allEvents(t, s)); n != 0 {
		t.Errorf("%d events after only invalid creates, want 0", n)
	}
}

func TestGetUnknownIDs(t *testing.T) {
	s := mustOpenStore(t, Options{})
	mustCreate(t, s)
	for _, id := range []string{"FO-2", "FO-0", "FO-", "FO-x", "42", "", "FO-18446744073709551616"} {
		if _, err := s.Get(context.Background(), id); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get(%q) = %v, want ErrNotFound", id, err)
		}
	}
}

// legalTransitions is the state machine written out independently of the code's table:
// every move Transition may make. Leaving pending goes through the dedicated methods.
var legalTransitions = map[[2]State]bool{
	{Approved, Submitting}: true, {Approved, Failed}: true, {Approved, Unknown}: true,
	{Submitting, Running}: true, {Submitting, Failed}: true, {Submitting, Unknown}: true, {Submitting, Approved}: true,
	{Running, Running}: true, {Running, Stopping}: true, {Running, Succeeded}: true,
	{Running, Warning}: true, {Running, Failed}: true, {Running, Unknown}: true,
	{Stopping, Stopping}: true, {Stopping, Stopped}: true, {Stopping, Succeeded}: true,
	{Stopping, Warning}: true, {Stopping, Failed}: true, {Stopping, Unknown}: true, {Stopping, Running}: true,
}

func TestTransitionTable(t *testing.T) {
	s := mustOpenStore(t, Options{})
	for _, from := range allStates {
		for _, to := range allStates {
			t.Run(fmt.Sprintf("%s->%s", from, to), func(t *testing.T) {
				before := reach(t, s, from)
				s.clock.Advance(time.Minute)
				got, err := s.Transition(context.Background(), Change{ID: before.ID, Version: before.Items[0].Version, To: to,
					Actor: "poller", Action: "test", Details: "table"})
				if legalTransitions[[2]State{from, to}] {
					if err != nil {
						t.Fatalf("got %v, want success", err)
					}
					if got.State != to || got.Version != before.Version+1 {
						t.Errorf("got state %s version %d, want %s version %d", got.State, got.Version, to, before.Version+1)
					}
					wantBy, wantAt := "poller", s.clock.Now()
					if from == to { // an in-place update does not change who put it there
						wantBy, wantAt = before.StateBy, before.StateAt
					}
					if got.StateBy != wantBy || !got.StateAt.Equal(wantAt) {
						t.Errorf("StateBy/At = %s/%v, want %s/%v", got.StateBy, got.StateAt, wantBy, wantAt)
					}
					ev := lastEvent(t, s)
					if ev.From != from || ev.To != to || ev.Actor != "poller" || ev.Action != "test" || ev.RequestID != before.ID {
						t.Errorf("audit event %+v, want %s->%s by poller", ev, from, to)
					}
					return
				}
				ce := asConflict(t, err)
				if ce.Reason != ReasonState || ce.State != from || ce.By != before.StateBy || !ce.At.Equal(before.StateAt) || ce.ID != before.ID {
					t.Errorf("conflict %+v, want reason state naming %s by %s", ce, from, before.StateBy)
				}
				after, err := s.Get(context.Background(), before.ID)
				if err != nil {
					t.Fatal(err)
				}
				if after.Version != before.Version || after.State != from {
					t.Errorf("refused transition changed the request: version %d->%d", before.Version, after.Version)
				}
			})
		}
	}
	if err := s.Verify(context.Background()); err != nil {
		t.Errorf("Verify after the table: %v", err)
	}
}

// TestDecisionMethodsOnlyFromPending runs Approve, Reject, Withdraw and Expire against a
// request in every state: each is legal only while pending.
func TestDecisionMethodsOnlyFromPending(t *testing.T) {
	methods := []struct {
		name string
		to   State
		do   func(s *testStore, r *Request) (*Request, error)
	}{
		{"approve", Approved, func(s *testStore, r *Request) (*Request, error) {
			return s.Approve(context.Background(), r.ID, "U201", r.Digest)
		}},
		{"reject", Rejected, func(s *testStore, r *Request) (*Request, error) {
			return s.Reject(context.Background(), r.ID, "U301", "no")
		}},
		{"withdraw", Withdrawn, func(s *testStore, r *Request) (*Request, error) {
			return s.Withdraw(context.Background(), r.ID, r.Requester)
		}},
		{"expire", Expired, func(s *testStore, r *Request) (*Request, error) {
			s.clock.Advance(time.Hour)
			return s.Expire(context.Background(), r.ID)
		}},
	}
	s := mustOpenStore(t, Options{})
	for _, m := range methods {
		for _, from := range allStates {
			t.Run(fmt.Sprintf("%s from %s", m.name, from), func(t *testing.T) {
				before := reach(t, s, from)
				got, err := m.do(s, before)
				if from == Pending {
					if err != nil {
						t.Fatalf("got %v, want success", err)
					}
					if got.State != m.to || got.Version != before.Version+1 {
						t.Errorf("got %s v%d, want %s v%d", got.State, got.Version, m.to, before.Version+1)
					}
					if ev := lastEvent(t, s); ev.From != Pending || ev.To != m.to {
						t.Errorf("audit event %s->%s, want pending->%s", ev.From, ev.To, m.to)
					}
					return
				}
				ce := asConflict(t, err)
				if ce.Reason != ReasonState || ce.State != from || ce.By != before.StateBy || ce.Op != m.name {
					t.Errorf("conflict %+v, want state conflict naming %s by %s", ce, from, before.StateBy)
				}
			})
		}
	}
}

func TestTransitionCannotLeavePending(t *testing.T) {
	s := mustOpenStore(t, Options{})
	r := mustCreate(t, s)
	for _, to := range allStates {
		if _, err := s.Transition(context.Background(), Change{ID: r.ID, To: to, Actor: "bot"}); err == nil {
			t.Errorf("Transition pending->%s succeeded; only the dedicated methods may leave pending", to)
		}
	}
}

func TestTransitionArguments(t *testing.T) {
	s := mustOpenStore(t, Options{})
	r := reach(t, s, Approved)
	tests := []struct {
		name string
		c    Change
		want error
	}{
		{"unknown state", Change{ID: r.ID, To: "paused", Actor: "bot"}, ErrInvalid},
		{"empty state", Change{ID: r.ID, Actor: "bot"}, ErrInvalid},
		{"no actor", Change{ID: r.ID, To: Submitting}, ErrInvalid},
		{"unknown request", Change{ID: "FO-99", To: Submitting, Actor: "bot"}, ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := s.Transition(context.Background(), tt.c); !errors.Is(err, tt.want) {
				t.Errorf("got %v, want %v", err, tt.want)
			}
		})
	}
}

func TestTransitionFromRestriction(t *testing.T) {
	s := mustOpenStore(t, Options{})
	r := reach(t, s, Submitting)
	// submitting -> failed is legal, but the caller only meant to fail a running request.
	_, err := s.Transition(context.Background(), Change{ID: r.ID, From: []State{Running}, To: Failed, Actor: "poller"})
	if ce := asConflict(t, err); ce.Reason != ReasonState || ce.State != Submitting {
		t.Errorf("got %+v, want state conflict naming submitting", ce)
	}
	got := mustTransition(t, s, Change{ID: r.ID, From: []State{Running, Submitting}, To: Failed})
	if got.State != Failed {
		t.Errorf("state = %s, want failed", got.State)
	}
}

func TestTransitionStaleVersion(t *testing.T) {
	tests := []struct {
		name    string
		version func(r *Request) uint64
		wantErr bool
	}{
		{"current version", func(r *Request) uint64 { return r.Items[0].Version }, false},
		{"any version", func(r *Request) uint64 { return 0 }, false},
		{"older version", func(r *Request) uint64 { return r.Items[0].Version - 1 }, true},
		{"future version", func(r *Request) uint64 { return r.Items[0].Version + 1 }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustOpenStore(t, Options{})
			r := reach(t, s, Running)
			got, err := s.Transition(context.Background(), Change{ID: r.ID, Version: tt.version(r), To: Stopping, Actor: "U200", Action: "stop"})
			if !tt.wantErr {
				if err != nil || got.State != Stopping {
					t.Fatalf("got %v, %v; want stopping", got, err)
				}
				return
			}
			ce := asConflict(t, err)
			if ce.Reason != ReasonStale || ce.State != Running || ce.By != "bot" || ce.Op != "stop" {
				t.Errorf("got %+v, want stale conflict naming running by bot", ce)
			}
		})
	}
}

func TestProgressUpdatesInPlace(t *testing.T) {
	s := mustOpenStore(t, Options{})
	r := reach(t, s, Submitting)
	r = mustTransition(t, s, Change{ID: r.ID, Version: r.Items[0].Version, To: Running, Actor: "bot", Action: "submitted",
		Apply: func(it *Item) { it.TaskID, it.EMState = "task-1", "Running" }})
	startedAt := r.StartedAt
	for p := 10; p <= 30; p += 10 {
		s.clock.Advance(time.Second)
		r = mustTransition(t, s, Change{ID: r.ID, Version: r.Items[0].Version, To: Running, Actor: "poller", Action: "em-state",
			Details: fmt.Sprintf("%d%%", p), Apply: func(it *Item) { it.EMProgress = p; it.RestoreSessionID = "rs-1" }})
	}
	if r.Items[0].EMProgress != 30 || r.Items[0].TaskID != "task-1" || r.Items[0].RestoreSessionID != "rs-1" || r.StateBy != "bot" || !r.StartedAt.Equal(startedAt) {
		t.Errorf("after progress: %+v", r)
	}
	if !r.UpdatedAt.Equal(s.clock.Now()) {
		t.Errorf("UpdatedAt = %v, want %v", r.UpdatedAt, s.clock.Now())
	}
	ev := lastEvent(t, s)
	if ev.From != Running || ev.To != Running || ev.Action != "em-state" || ev.Details != "30%" {
		t.Errorf("last event %+v", ev)
	}
	r = mustTransition(t, s, Change{ID: r.ID, To: Succeeded, Actor: "poller",
		Apply: func(it *Item) { it.EMResult, it.EMMessage = "Success", "done" }})
	if r.FinishedAt.IsZero() || r.Items[0].EMResult != "Success" || r.Items[0].EMMessage != "done" || r.Items[0].FinishedAt.IsZero() {
		t.Errorf("outcome not recorded: %+v", r)
	}
}

func TestApplyMayOnlyTouchEMFields(t *testing.T) {
	tests := []struct {
		name  string
		apply func(*Item)
	}{
		// Apply sees only the item, so the request's reason and approvals are out of its reach
		// by construction; what it can reach besides the EM fields must be refused.
		{"state", func(it *Item) { it.State = Succeeded }},
		{"state at", func(it *Item) { it.StateAt = t0.Add(time.Hour) }},
		{"version", func(it *Item) { it.Version = 99 }},
		{"target", func(it *Item) { it.Target.ID = "vm-2" }},
		{"target name", func(it *Item) { it.Target.Name = "something else" }},
		{"restore point", func(it *Item) { it.Point = t0 }},
		{"rpo", func(it *Item) { it.RPO = 60 }},
		{"submitted at", func(it *Item) { it.SubmittedAt = t0.Add(time.Hour) }},
		{"started at", func(it *Item) { it.StartedAt = t0 }},
		{"finished at", func(it *Item) { it.FinishedAt = t0 }},
	}
	s := mustOpenStore(t, Options{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := reach(t, s, Submitting)
			_, err := s.Transition(context.Background(), Change{ID: r.ID, To: Running, Actor: "bot", Apply: tt.apply})
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("got %v, want ErrInvalid", err)
			}
			after, err := s.Get(context.Background(), r.ID)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprintf("%+v", *after) != fmt.Sprintf("%+v", *r) {
				t.Errorf("refused Apply changed the stored request")
			}
		})
	}
}

func TestTwoPersonRule(t *testing.T) {
	tests := []struct {
		name      string
		required  int
		prior     []string // approvals that succeed first
		reject    bool     // reject (by U300) after prior approvals
		user      string
		digest    func(r *Request) string
		wantErr   string // ConflictError.Reason, "" for success
		wantState State
		wantBy    string
		wantMsg   string
	}{
		{name: "another person approves", required: 1, user: "U200",
			wantState: Approved, wantBy: "U200"},
		{name: "requester approves own request", required: 1, user: "U100",
			wantErr: ReasonSelfApproval, wantState: Pending, wantBy: "U100",
			wantMsg: "FO-1 cannot be approved by its requester; another person must approve"},
		{name: "digest of other content", required: 1, user: "U200", digest: func(*Request) string { return strings.Repeat("0", 64) },
			wantErr: ReasonDigest, wantState: Pending, wantBy: "U100"},
		{name: "empty digest", required: 1, user: "U200", digest: func(*Request) string { return "" },
			wantErr: ReasonDigest, wantState: Pending, wantBy: "U100"},
		{name: "approve after approval", required: 1, prior: []string{"U200"}, user: "U201",
			wantErr: ReasonState, wantState: Approved, wantBy: "U200",
			wantMsg: "FO-1 is already approved (by U200 at 14:02 UTC)"},
		{name: "same approver after approval", required: 1, prior: []string{"U200"}, user: "U200",
			wantErr: ReasonState, wantState: Approved, wantBy: "U200"},
		{name: "approve after rejection", required: 1, reject: true, user: "U200",
			wantErr: ReasonState, wantState: Rejected, wantBy: "U300",
			wantMsg: "FO-1 is already rejected (by U300 at 14:02 UTC)"},
		{name: "two required: first approval keeps it pending", required: 2, user: "U200",
			wantState: Pending, wantBy: "U100"},
		{name: "two required: duplicate approval", required: 2, prior: []string{"U200"}, user: "U200",
			wantErr: ReasonDuplicateApproval, wantState: Pending, wantBy: "U200",
			wantMsg: "FO-1 was already approved (by U200 at 14:02 UTC); a different approver is needed"},
		{name: "two required: requester as second approver", required: 2, prior: []string{"U200"}, user: "U100",
			wantErr: ReasonSelfApproval, wantState: Pending, wantBy: "U100"},
		{name: "two required: second person approves", required: 2, prior: []string{"U200"}, user: "U201",
			wantState: Approved, wantBy: "U201"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustOpenStore(t, Options{ApprovalsRequired: tt.required})
			r := mustCreate(t, s)
			for _, u := range tt.prior {
				var err error
				if r, err = s.Approve(context.Background(), r.ID, u, r.Digest); err != nil {
					t.Fatalf("prior approval by %s: %v", u, err)
				}
			}
			if tt.reject {
				var err error
				if r, err = s.Reject(context.Background(), r.ID, "U300", "wrong target"); err != nil {
					t.Fatal(err)
				}
			}
			digest := r.Digest
			if tt.digest != nil {
				digest = tt.digest(r)
			}
			got, err := s.Approve(context.Background(), r.ID, tt.user, digest)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("got %v, want success", err)
				}
				if got.State != tt.wantState || got.StateBy != tt.wantBy {
					t.Errorf("got %s by %s, want %s by %s", got.State, got.StateBy, tt.wantState, tt.wantBy)
				}
				if n := len(got.Approvals); n != len(tt.prior)+1 || got.Approvals[n-1].User != tt.user {
					t.Errorf("approvals %+v", got.Approvals)
				}
				return
			}
			ce := asConflict(t, err)
			if ce.Reason != tt.wantErr || ce.State != tt.wantState || ce.By != tt.wantBy || ce.Op != "approve" {
				t.Errorf("got %+v, want reason %s, state %s, by %s", ce, tt.wantErr, tt.wantState, tt.wantBy)
			}
			if tt.wantMsg != "" && ce.Error() != tt.wantMsg {
				t.Errorf("message %q, want %q", ce.Error(), tt.wantMsg)
			}
			after, _ := s.Get(context.Background(), r.ID)
			if after.Version != r.Version {
				t.Errorf("refused approval wrote: version %d -> %d", r.Version, after.Version)
			}
		})
	}
}

func TestApproveRefusesTamperedRecord(t *testing.T) {
	s := mustOpenStore(t, Options{})
	r := mustCreate(t, s)
	// Someone with the file changes the target but keeps the digest the approver saw.
	err := s.db.Update(func(tx *bolt.Tx) error {
		stored, err := findRequest(boltTx{tx}, r.ID)
		if err != nil {
			return err
		}
		stored.Items[0].Target.ID = "vm-evil"
		data, _ := encodeRequest(stored)
		return tx.Bucket(bucketRequests).Put(seqKey(stored.Seq), data)
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Approve(context.Background(), r.ID, "U200", r.Digest)
	if ce := asConflict(t, err); ce.Reason != ReasonDigest {
		t.Errorf("got %+v, want digest conflict", ce)
	}
}

func TestApprovalsRequiredIsCapturedAtCreate(t *testing.T) {
	s := mustOpenStore(t, Options{ApprovalsRequired: 2})
	r := mustCreate(t, s)
	s.Close()
	s2 := mustOpenStoreAt(t, s.path, Options{ApprovalsRequired: 1})
	got, err := s2.Approve(context.Background(), r.ID, "U200", r.Digest)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != Pending || got.ApprovalsRequired != 2 {
		t.Errorf("got %s with %d required, want pending with 2", got.State, got.ApprovalsRequired)
	}
}

func TestExpire(t *testing.T) {
	tests := []struct {
		name    string
		advance time.Duration
		wantErr bool
	}{
		{"before ExpiresAt", 15*time.Minute - time.Nanosecond, true},
		{"at ExpiresAt", 15 * time.Minute, false},
		{"after ExpiresAt", 16 * time.Minute, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustOpenStore(t, Options{})
			r := mustCreate(t, s) // TTL 15m
			s.clock.Advance(tt.advance)
			got, err := s.Expire(context.Background(), r.ID)
			if tt.wantErr {
				ce := asConflict(t, err)
				if ce.Reason != ReasonNotExpired || !ce.At.Equal(r.ExpiresAt) || ce.State != Pending {
					t.Errorf("got %+v, want not-expired at %v", ce, r.ExpiresAt)
				}
				if want := "FO-1 does not expire until 14:17 UTC"; ce.Error() != want {
					t.Errorf("message %q, want %q", ce.Error(), want)
				}
				return
			}
			if err != nil {
				t.Fatalf("got %v, want success", err)
			}
			if got.State != Expired || got.StateBy != ExpiryActor || !got.FinishedAt.Equal(s.clock.Now()) {
				t.Errorf("got %+v", got)
			}
			if _, err := s.Approve(context.Background(), r.ID, "U200", r.Digest); asConflict(t, err).State != Expired {
				t.Errorf("approving an expired request: %v", err)
			}
		})
	}
}

func TestWithdraw(t *testing.T) {
	s := mustOpenStore(t, Options{})
	r := mustCreate(t, s)
	_, err := s.Withdraw(context.Background(), r.ID, "U200")
	ce := asConflict(t, err)
	if ce.Reason != ReasonNotRequester || ce.By != "U100" {
		t.Errorf("got %+v, want not-requester naming U100", ce)
	}
	if want := "FO-1 can only be withdrawn by its requester U100"; ce.Error() != want {
		t.Errorf("message %q, want %q", ce.Error(), want)
	}
	got, err := s.Withdraw(context.Background(), r.ID, "U100")
	if err != nil || got.State != Withdrawn || got.StateBy != "U100" {
		t.Fatalf("got %+v, %v", got, err)
	}
}

func TestReject(t *testing.T) {
	s := mustOpenStore(t, Options{})
	r := mustCreate(t, s)
	for _, args := range [][2]string{{"", "why"}, {"U300", ""}, {"U300", "   "}} {
		if _, err := s.Reject(context.Background(), r.ID, args[0], args[1]); !errors.Is(err, ErrInvalid) {
			t.Errorf("Reject(%q, %q) = %v, want ErrInvalid", args[0], args[1], err)
		}
	}
	s.clock.Advance(time.Minute)
	got, err := s.Reject(context.Background(), r.ID, "U300", "wrong VM")
	if err != nil {
		t.Fatal(err)
	}
	want := &Rejection{User: "U300", Reason: "wrong VM", At: t0.Add(time.Minute)}
	if got.State != Rejected || *got.Rejection != *want || !got.DecidedAt.Equal(want.At) {
		t.Errorf("got %s %+v, want rejected %+v", got.State, got.Rejection, want)
	}
	if ev := lastEvent(t, s); ev.Action != "rejected" || ev.Details != "reason: wrong VM" {
		t.Errorf("audit event %+v", ev)
	}
}

func TestConflictErrorMessages(t *testing.T) {
	at := t0
	tests := []struct {
		err  ConflictError
		want string
	}{
		{ConflictError{ID: "FO-3", State: Approved, By: "U123", At: at, Reason: ReasonState}, "FO-3 is already approved (by U123 at 14:02 UTC)"},
		{ConflictError{ID: "FO-3", State: Pending, By: "U1", At: at, Reason: ReasonState}, "FO-3 is still pending (requested by U1 at 14:02 UTC)"},
		{ConflictError{ID: "FO-3", State: Running, By: "bot", At: at, Reason: ReasonStale}, "FO-3 changed since it was read; it is now running (by bot at 14:02 UTC)"},
		{ConflictError{ID: "FO-3", State: Succeeded, Reason: ReasonState}, "FO-3 is already succeeded"},
		{ConflictError{ID: "FO-3", State: Pending, At: at.In(time.FixedZone("CET", 3600)), Reason: ReasonNotExpired}, "FO-3 does not expire until 14:02 UTC"},
		{ConflictError{ID: "FO-3", State: Pending, Op: "dance", Reason: "odd"}, "FO-3: cannot dance: odd (pending)"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("got %q, want %q", got, tt.want)
		}
	}
}

func TestActiveListsOnlyActiveRequests(t *testing.T) {
	s := mustOpenStore(t, Options{})
	var want []string
	for _, st := range allStates {
		r := reach(t, s, st)
		if st.Active() {
			want = append(want, r.ID+"/"+string(st))
		}
	}
	check := func(s *Bolt) {
		t.Helper()
		active, err := s.Active(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range active {
			got = append(got, r.ID+"/"+string(r.State))
		}
		if !slices.Equal(got, want) {
			t.Errorf("Active = %v, want %v", got, want)
		}
	}
	check(s.Bolt)
	s.Close()
	check(mustOpenStoreAt(t, s.path, Options{}).Bolt)
}

func TestMessageIndex(t *testing.T) {
	s := mustOpenStore(t, Options{})
	r1, r2 := mustCreate(t, s), mustCreate(t, s)
	if _, err := s.ByMessage(context.Background(), "C1", "1.1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("ByMessage before SetMessage: %v, want ErrNotFound", err)
	}
	got, err := s.SetMessage(context.Background(), r1.ID, "C1", "1.1", 0)
	if err != nil || got.MessageTS != "1.1" || got.Version != 2 {
		t.Fatalf("SetMessage: %+v, %v", got, err)
	}
	if again, err := s.SetMessage(context.Background(), r1.ID, "C1", "1.1", 0); err != nil || again.Version != 2 {
		t.Errorf("repeating SetMessage wrote: %+v, %v", again, err)
	}
	if _, err := s.SetMessage(context.Background(), r2.ID, "C1", "1.1", 0); !errors.Is(err, ErrInvalid) {
		t.Errorf("second request on the same message: %v, want ErrInvalid", err)
	}
	if _, err := s.SetMessage(context.Background(), r2.ID, "", "1.2", 0); !errors.Is(err, ErrInvalid) {
		t.Errorf("empty channel: %v, want ErrInvalid", err)
	}
	if got, err := s.ByMessage(context.Background(), "C1", "1.1"); err != nil || got.ID != r1.ID {
		t.Errorf("ByMessage = %v, %v; want %s", got, err, r1.ID)
	}
	// The card was reposted elsewhere: the old message no longer leads to the request.
	if _, err := s.SetMessage(context.Background(), r1.ID, "C2", "2.2", 0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ByMessage(context.Background(), "C1", "1.1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("old message after move: %v, want ErrNotFound", err)
	}
	if got, err := s.ByMessage(context.Background(), "C2", "2.2"); err != nil || got.ID != r1.ID {
		t.Errorf("ByMessage(new) = %v, %v", got, err)
	}
	if _, err := s.SetMessage(context.Background(), "FO-9", "C1", "3.3", 0); !errors.Is(err, ErrNotFound) {
		t.Errorf("SetMessage on unknown request: %v", err)
	}
}

func TestConcurrentApprovalsExactlyOneWins(t *testing.T) {
	s := mustOpenStore(t, Options{ApprovalsRequired: 1})
	r := mustCreate(t, s)
	const n = 50
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
		errs  = make([]error, n)
		wins  = make([]*Request, n)
	)
	for i := range n {
		wg.Go(func() {
			<-start
			wins[i], errs[i] = s.Approve(context.Background(), r.ID, fmt.Sprintf("U%03d", 200+i), r.Digest)
		})
	}
	close(start)
	wg.Wait()
	var winner string
	for i, err := range errs {
		if err == nil {
			if winner != "" {
				t.Fatalf("two approvals succeeded: %s and %s", winner, wins[i].StateBy)
			}
			winner = wins[i].StateBy
		}
	}
	if winner == "" {
		t.Fatal("no approval succeeded")
	}
	for _, err := range errs {
		if err == nil {
			continue
		}
		ce := asConflict(t, err)
		if ce.Reason != ReasonState || ce.State != Approved || ce.By != winner {
			t.Errorf("loser got %+v, want already approved by %s", ce, winner)
		}
	}
	got, _ := s.Get(context.Background(), r.ID)
	if got.Version != 2 || len(got.Approvals) != 1 || got.Approvals[0].User != winner {
		t.Errorf("stored %+v, want one approval by %s", got, winner)
	}
	if err := s.Verify(context.Background()); err != nil {
		t.Error(err)
	}
}

// TestCreateGroupRetryIsIdempotent puts failing writes into the same group commit as
// concurrent Creates, after all of them. Each failure rolls the shared transaction back and
// the Creates run again; IDs must stay contiguous and each request must be created and
// audited exactly once.
func TestCreateGroupRetryIsIdempotent(t *testing.T) {
	s := mustOpenStore(t, Options{})
	const creates, failers = 30, 5
	entered, release := make(chan struct{}), make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { // holds a commit open so that everything below queues into one group
		_ = s.group.update(func(*bolt.Tx) error { close(entered); <-release; return nil })
	})
	<-entered
	ids := make(chan string, creates)
	for i := range creates {
		wg.Go(func() {
			nr := validNewRequest()
			nr.Reason = fmt.Sprint("r", i)
			r, err := s.Create(context.Background(), nr)
			if err != nil {
				t.Errorf("Create: %v", err)
				return
			}
			ids <- r.ID
		})
	}
	for s.group.queued() < creates {
		runtime.Gosched()
	}
	var mu sync.Mutex
	rolledBack := 0 // creates undone by failures
	errBoom := errors.New("boom")
	for range failers {
		wg.Go(func() {
			runs := 0
			err := s.group.update(func(tx *bolt.Tx) error {
				runs++
				if runs > 1 {
					return nil // alone, it succeeds
				}
				mu.Lock()
				rolledBack += int(tx.Bucket(bucketRequests).Sequence())
				mu.Unlock()
				return errBoom
			})
			if err != nil {
				t.Errorf("failing write run alone: %v", err)
			}
		})
	}
	for s.group.queued() < creates+failers {
		runtime.Gosched()
	}
	close(release)
	wg.Wait()
	close(ids)
	var got []string
	for id := range ids {
		got = append(got, id)
	}
	slices.SortFunc(got, func(a, b string) int { x, _ := parseID(a); y, _ := parseID(b); return cmp.Compare(x, y) })
	if len(got) != creates {
		t.Fatalf("got %d IDs, want %d", len(got), creates)
	}
	for i, id := range got {
		if want := formatID(uint64(i + 1)); id != want {
			t.Fatalf("IDs %v are not FO-1..FO-%d", got, creates)
		}
	}
	if n := len(allEvents(t, s)); n != creates {
		t.Errorf("%d audit events, want %d", n, creates)
	}
	for i := range creates {
		r, err := s.Get(context.Background(), formatID(uint64(i+1)))
		if err != nil || r.Version != 1 {
			t.Errorf("FO-%d: %+v, %v", i+1, r, err)
		}
	}
	if err := s.Verify(context.Background()); err != nil {
		t.Error(err)
	}
	if rolledBack < creates {
		t.Errorf("failures undid %d creates, want at least %d: the retry path was not exercised", rolledBack, creates)
	}
}
