package failover

import (
	"errors"
	"go/build"
	"strings"
	"testing"
	"time"
)

func pending(t *testing.T) *Request {
	t.Helper()
	now := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	r := &Request{Seq: 7, ID: FormatID(7), Kind: KindVM, Target: Target{ReplicaID: "r", ID: "vm", Name: "fin-db01"},
		Intent: IntentLatest, Reason: "site down", Requester: "U1", ApprovalsRequired: 2, State: Pending,
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
