package failover

import (
	"errors"
	"fmt"
	"go/build"
	"strings"
	"testing"
	"time"
)

func pending(t *testing.T) *Request {
	t.Helper()
	now := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	r := &Request{Seq: 7, ID: FormatID(7), Kind: KindVM, Items: []Item{{Target: Target{ReplicaID: "r", ID: "vm", Name: "fin-db01"}, State: Pending}},
		Intent: IntentLatest, DigestV: DigestVersion, Reason: "site down", Requester: "U1", ApprovalsRequired: 2, State: Pending,
		StateBy: "U1", StateAt: now, CreatedAt: now, ExpiresAt: now.Add(time.Hour), Version: 1}
	r.Digest = r.ComputeDigest()
	return r
}

// TestApproveRules: the two-person rule and the digest, as plain functions on a request.
func TestApproveRules(t *testing.T) {
	at := time.Date(2026, 12, 2, 10, 5, 0, 0, time.UTC)
	cases := []struct {
		name   string
		prior  []string
		user   string
		digest func(*Request) string
		reason string
		state  State
		action string
	}{
		{name: "first of two", user: "U2", state: Pending, action: "approval"},
		{name: "second of two", prior: []string{"U2"}, user: "U3", state: Approved, action: "approved"},
		{name: "requester", user: "U1", reason: ReasonSelfApproval},
		{name: "twice", prior: []string{"U2"}, user: "U2", reason: ReasonDuplicateApproval},
		{name: "other content", user: "U2", digest: func(*Request) string { return "x" }, reason: ReasonDigest},
		{name: "edited on disk", user: "U2", digest: func(r *Request) string { d := r.Digest; r.Reason = "changed"; return d }, reason: ReasonDigest},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := pending(t)
			for _, u := range tc.prior {
				if _, err := Approve(r, u, r.Digest, at); err != nil {
					t.Fatal(err)
				}
			}
			d := r.Digest
			if tc.digest != nil {
				d = tc.digest(r)
			}
			e, err := Approve(r, tc.user, d, at)
			if tc.reason != "" {
				var ce *ConflictError
				if !errors.As(err, &ce) || ce.Reason != tc.reason {
					t.Fatalf("got %v, want a %s conflict", err, tc.reason)
				}
				return
			}
			if err != nil || r.State != tc.state || e.Action != tc.action || e.Actor != tc.user {
				t.Fatalf("got %+v %v, state %s; want %s by %s, state %s", e, err, r.State, tc.action, tc.user, tc.state)
			}
		})
	}
}

// TestTransitionLeavesPendingAlone: only the pending rules (approve, reject, withdraw, expire)
// move a pending request; Transition refuses, whatever it is asked.
func TestTransitionLeavesPendingAlone(t *testing.T) {
	for _, to := range []State{Approved, Submitting, Running, Failed, Unknown} {
		r := pending(t)
		_, err := Transition(r, Change{ID: r.ID, To: to, Actor: "bot"}, time.Now())
		var ce *ConflictError
		if !errors.As(err, &ce) || ce.Reason != ReasonState || r.State != Pending {
			t.Errorf("pending -> %s: %v, state %s", to, err, r.State)
		}
	}
	if _, err := Transition(pending(t), Change{To: "nowhere", Actor: "bot"}, time.Now()); !errors.Is(err, ErrInvalid) {
		t.Errorf("unknown state: %v", err)
	}
}

// TestIDFormat: "FO-" and a positive number, in any case.
func TestIDFormat(t *testing.T) {
	for in, want := range map[string]uint64{"FO-42": 42, "fo-7": 7, "FO-0": 0, "FO-": 0, "42": 0, "FO-x": 0} {
		got, ok := ParseID(in)
		if got != want || ok != (want != 0) {
			t.Errorf("ParseID(%q) = %d, %v", in, got, ok)
		}
	}
	if FormatID(42) != "FO-42" {
		t.Errorf("FormatID(42) = %s", FormatID(42))
	}
}

// TestLeafPackage: the model imports nothing of this module, and no storage, Slack or HTTP.
func TestLeafPackage(t *testing.T) {
	p, err := build.ImportDir(".", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, imp := range p.Imports {
		if strings.Contains(imp, ".") || strings.HasPrefix(imp, "net") || strings.Contains(imp, "bbolt") {
			t.Errorf("package failover imports %s; it must stay a leaf of the standard library", imp)
		}
	}
}

// many returns an approved request of n VMs.
func many(t *testing.T, n int) *Request {
	t.Helper()
	now := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	r := &Request{Seq: 9, ID: FormatID(9), Kind: KindVM, Intent: IntentLatest, DigestV: DigestVersion, Reason: "site down",
		Requester: "U1", ApprovalsRequired: 1, State: Pending, StateBy: "U1", StateAt: now, CreatedAt: now,
		ExpiresAt: now.Add(time.Hour), Version: 1}
	for i := range n {
		r.Items = append(r.Items, Item{Target: Target{ReplicaID: "r", ID: fmt.Sprintf("vm-%d", i), Name: fmt.Sprintf("web%02d", i)},
			Point: now.Add(-15 * time.Second), RPO: 15, State: Pending})
	}
	r.Digest = r.ComputeDigest()
	if _, err := Approve(r, "U2", r.Digest, now); err != nil {
		t.Fatal(err)
	}
	return r
}

// TestDerive: the request's state follows from its items' states.
func TestDerive(t *testing.T) {
	cases := []struct {
		items []State
		want  State
	}{
		{[]State{Approved, Approved}, Approved},
		{[]State{Submitting, Approved}, Submitting},
		{[]State{Running, Approved}, Running},
		{[]State{Failed, Approved}, Running},
		{[]State{Running, Stopping}, Stopping},
		{[]State{Succeeded, Succeeded}, Succeeded},
		{[]State{Succeeded, Warning}, Warning},
		{[]State{Succeeded, Failed}, PartlyFailed},
		{[]State{Warning, Unknown}, PartlyFailed},
		{[]State{Succeeded, Stopped}, PartlyFailed},
		{[]State{Failed, Failed}, Failed},
		{[]State{Failed, Unknown}, Unknown},
		{[]State{Stopped, Stopped}, Stopped},
		{[]State{Stopped, Failed}, Failed},
		{[]State{Unknown}, Unknown},
	}
	for _, tc := range cases {
		r := many(t, len(tc.items))
		for i, st := range tc.items {
			r.Items[i].State = st
		}
		if got := Derive(r); got != tc.want {
			t.Errorf("items %v: request %s, want %s", tc.items, got, tc.want)
		}
	}
	p := pending(t)
	if Derive(p) != Pending {
		t.Errorf("a pending request derived %s", Derive(p))
	}
}

// TestItemTransitions: items move on their own, guarded by their own versions, and the request
// follows; a refusal names the item.
func TestItemTransitions(t *testing.T) {
	r := many(t, 3)
	now := r.DecidedAt.Add(time.Second)
	step := func(item string, version uint64, from []State, to State) error {
		_, err := Transition(r, Change{ID: r.ID, Item: item, Version: version, From: from, To: to, Actor: "bot"}, now)
		return err
	}
	v0 := r.Items[0].Version
	if err := step("vm-0", v0, []State{Approved}, Submitting); err != nil || r.State != Submitting {
		t.Fatalf("vm-0 submitting: %v, request %s", err, r.State)
	}
	// Another item's change does not make vm-1's version stale.
	if err := step("vm-1", r.Items[1].Version, nil, Submitting); err != nil {
		t.Fatalf("vm-1 submitting: %v", err)
	}
	var ce *ConflictError
	if err := step("vm-0", v0, nil, Running); !errors.As(err, &ce) || ce.Reason != ReasonStale || !strings.Contains(ce.ID, "web00") {
		t.Fatalf("stale change of vm-0: %v", err)
	}
	if err := step("vm-0", 0, nil, Running); err != nil || r.State != Running || r.StartedAt.IsZero() {
		t.Fatalf("vm-0 running: %v, request %s", err, r.State)
	}
	if err := step("vm-0", 0, nil, Succeeded); err != nil || r.State != Running {
		t.Fatalf("vm-0 succeeded while others run: %v, request %s", err, r.State)
	}
	if err := step("vm-0", 0, nil, Running); !errors.As(err, &ce) || ce.Reason != ReasonState {
		t.Fatalf("a finished item moved again: %v", err)
	}
	if err := step("vm-9", 0, nil, Running); !errors.Is(err, ErrInvalid) {
		t.Fatalf("unknown item: %v", err)
	}
	if err := step("", 0, nil, Running); !errors.Is(err, ErrInvalid) {
		t.Fatalf("unnamed item of a 3-item request: %v", err)
	}
	_ = step("vm-1", 0, nil, Failed)
	if err := step("vm-2", 0, nil, Submitting); err != nil {
		t.Fatal(err)
	}
	_ = step("vm-2", 0, nil, Unknown)
	if r.State != PartlyFailed || r.FinishedAt.IsZero() {
		t.Fatalf("request %s after succeeded/failed/unknown", r.State)
	}
	if err := step("vm-2", 0, nil, Running); !errors.As(err, &ce) || ce.Reason != ReasonState {
		t.Fatalf("a change of a finished request: %v", err)
	}
	_, err := Transition(many(t, 1), Change{To: Submitting, Actor: "bot", Apply: func(it *Item) { it.Point = time.Time{} }}, now)
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("an Apply that rewrites the approved restore point: %v", err)
	}
}

// TestDigestCoversItems: the digest changes with any item, its restore point or RPO, and the
// single-target v1 digest of older requests never stretches over several items.
func TestDigestCoversItems(t *testing.T) {
	base := many(t, 2)
	d := base.ComputeDigest()
	mods := map[string]func(*Request){
		"restore point": func(r *Request) { r.Items[1].Point = r.Items[1].Point.Add(time.Second) },
		"rpo":           func(r *Request) { r.Items[0].RPO = 30 },
		"target":        func(r *Request) { r.Items[0].Target.ID = "vm-x" },
		"one fewer":     func(r *Request) { r.Items = r.Items[:1] },
		"order":         func(r *Request) { r.Items[0], r.Items[1] = r.Items[1], r.Items[0] },
		"retry of":      func(r *Request) { r.RetryOf = "FO-1" },
		"reason":        func(r *Request) { r.Reason = "other" },
		"scope":         func(r *Request) { r.Scope = "replica CDP-Web" },
	}
	for name, mod := range mods {
		r := base.Clone()
		mod(r)
		if r.ComputeDigest() == d {
			t.Errorf("%s: digest unchanged", name)
		}
	}
	if c := base.Clone(); c.ComputeDigest() != d {
		t.Error("a clone hashes differently")
	}
	// A v1 digest covers exactly one target: over two it can never match what was stored.
	v1 := base.Clone()
	v1.DigestV = 0
	one := v1.Clone()
	one.Items = one.Items[:1]
	if v1.ComputeDigest() == one.ComputeDigest() {
		t.Error("a v1 digest of two items equals the digest of the first alone")
	}
}
