package failover

import (
	"errors"
	"slices"
	"testing"
	"time"
)

var planT0 = time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)

// planReq is an approved three-group plan: db (2 critical, concurrency 1, 2m delay), app (web01
// critical, web02 optional, concurrency 2) and edge (one vApp).
func planReq(t *testing.T) *Request {
	t.Helper()
	vm := func(id string, g int, opt bool) Item {
		return Item{Target: Target{ReplicaID: "r", ID: id, Name: id}, Kind: KindVM, Group: g, Optional: opt, State: Pending}
	}
	r := &Request{Seq: 9, ID: FormatID(9), Kind: KindPlan, Plan: "site-b",
		Groups: []Group{{Name: "db", Concurrency: 1, Delay: 2 * time.Minute}, {Name: "app", Concurrency: 2}, {Name: "edge", Concurrency: 4}},
		Items: []Item{vm("db1", 0, false), vm("db2", 0, false), vm("web01", 1, false), vm("web02", 1, true),
			{Target: Target{ID: "va", Name: "Edge-App"}, Kind: KindVApp, Group: 2, State: Pending}},
		Intent: IntentLatest, DigestV: DigestVersion, Reason: "site A down", Requester: "U1", ApprovalsRequired: 1,
		State: Pending, StateBy: "U1", StateAt: planT0, CreatedAt: planT0, ExpiresAt: planT0.Add(time.Hour), Version: 1}
	r.Digest = r.ComputeDigest()
	if _, err := Approve(r, "U2", r.Digest, planT0); err != nil {
		t.Fatal(err)
	}
	return r
}

// move runs one item change and fails the test when the rules refuse it.
func move(t *testing.T, r *Request, id string, to State, at time.Time) {
	t.Helper()
	if _, err := Transition(r, Change{ID: r.ID, Item: id, To: to, Actor: "bot", Apply: func(it *Item) {
		if to == Running {
			it.TaskID = "task-" + id
		}
	}}, at); err != nil {
		t.Fatalf("%s -> %s: %v", id, to, err)
	}
}

// finish takes an item from approved through running to the outcome.
func finish(t *testing.T, r *Request, id string, out State, at time.Time) {
	t.Helper()
	move(t, r, id, Submitting, at)
	move(t, r, id, Running, at)
	move(t, r, id, out, at)
}

func refusedNotYet(t *testing.T, r *Request, id string, at time.Time) {
	t.Helper()
	_, err := Transition(r, Change{ID: r.ID, Item: id, To: Submitting, Actor: "bot"}, at)
	var ce *ConflictError
	if !errors.As(err, &ce) || ce.Reason != ReasonNotYet {
		t.Fatalf("submitting %s: got %v, want a not-yet refusal", id, err)
	}
}

func eligibleNames(r *Request, at time.Time) []string {
	var out []string
	for _, i := range Eligible(r, at) {
		out = append(out, r.Items[i].Target.ID)
	}
	return out
}

// TestPlanRunsInOrder: a group's items start only in its turn, within its concurrency, after the
// previous group's delay; optional failures do not halt.
func TestPlanRunsInOrder(t *testing.T) {
	r := planReq(t)
	if r.State != Approved || r.Current != 0 || !r.Groups[0].StartAt.Equal(planT0) {
		t.Fatalf("after approval: state %s, current %d, start %v", r.State, r.Current, r.Groups[0].StartAt)
	}
	if got := eligibleNames(r, planT0); !slices.Equal(got, []string{"db1"}) {
		t.Fatalf("eligible at approval = %v, want [db1] (concurrency 1)", got)
	}
	refusedNotYet(t, r, "web01", planT0)
	move(t, r, "db1", Submitting, planT0)
	refusedNotYet(t, r, "db2", planT0) // concurrency 1: db1 is in flight
	move(t, r, "db1", Running, planT0)
	move(t, r, "db1", Succeeded, planT0.Add(time.Minute))
	finish(t, r, "db2", Succeeded, planT0.Add(3*time.Minute))
	if r.Current != 1 || !r.Groups[0].DoneAt.Equal(planT0.Add(3*time.Minute)) || !r.Groups[1].StartAt.Equal(planT0.Add(5*time.Minute)) {
		t.Fatalf("after db: current %d, db done %v, app starts %v", r.Current, r.Groups[0].DoneAt, r.Groups[1].StartAt)
	}
	refusedNotYet(t, r, "web01", planT0.Add(4*time.Minute)) // the 2m delay after db
	if got := eligibleNames(r, planT0.Add(4*time.Minute)); got != nil {
		t.Fatalf("eligible during the delay = %v", got)
	}
	if at, ok := NextStart(r, planT0.Add(4*time.Minute)); !ok || !at.Equal(planT0.Add(5*time.Minute)) {
		t.Fatalf("NextStart = %v %v", at, ok)
	}
	at := planT0.Add(5 * time.Minute)
	if got := eligibleNames(r, at); !slices.Equal(got, []string{"web01", "web02"}) {
		t.Fatalf("eligible after the delay = %v", got)
	}
	finish(t, r, "web01", Succeeded, at)
	finish(t, r, "web02", Failed, at) // optional
	if r.Halt != nil || r.Current != 2 || r.State != Running {
		t.Fatalf("an optional failure halted: halt %+v current %d state %s", r.Halt, r.Current, r.State)
	}
	finish(t, r, "va", Succeeded, at)
	if r.State != PartlyFailed || !r.Groups[2].DoneAt.Equal(at) {
		t.Fatalf("final state %s, edge done %v", r.State, r.Groups[2].DoneAt)
	}
}

// TestPlanHalt: a failed or unknown critical item halts before the next group; Continue needs a
// second person and the current halt; EndRun skips what was not sent.
func TestPlanHalt(t *testing.T) {
	halted := func(t *testing.T, out State) *Request {
		t.Helper()
		r := planReq(t)
		finish(t, r, "db1", out, planT0)
		if r.Halt != nil {
			t.Fatalf("halted before the group had an outcome for every item")
		}
		finish(t, r, "db2", Succeeded, planT0)
		if r.Halt == nil || r.State != Halted || r.Current != 0 || !slices.Equal(r.Halt.Items, []string{"db1"}) {
			t.Fatalf("after a %s critical item: halt %+v, state %s, current %d", out, r.Halt, r.State, r.Current)
		}
		if !r.State.Active() {
			t.Fatal("a halted plan is not active")
		}
		refusedNotYet(t, r, "web01", planT0.Add(time.Hour))
		if Eligible(r, planT0.Add(time.Hour)) != nil {
			t.Fatal("items eligible while halted")
		}
		return r
	}
	for _, out := range []State{Failed, Unknown} {
		t.Run(string(out)+" then continue", func(t *testing.T) {
			r := halted(t, out)
			at := planT0.Add(10 * time.Minute)
			for _, tc := range []struct {
				user   string
				group  int
				reason string
			}{{"U1", 0, ReasonSelfContinue}, {"U2", 1, ReasonNotHalted}} {
				var ce *ConflictError
				if _, err := Continue(r, tc.user, tc.group, at); !errors.As(err, &ce) || ce.Reason != tc.reason {
					t.Fatalf("continue by %s after group %d: %v, want %s", tc.user, tc.group, err, tc.reason)
				}
			}
			e, err := Continue(r, "U3", 0, at)
			if err != nil {
				t.Fatal(err)
			}
			if e.Action != "continued" || r.Halt != nil || r.Current != 1 || r.State != Running || !r.Groups[1].StartAt.Equal(at) {
				t.Fatalf("after continue: %+v halt %+v current %d state %s start %v", e, r.Halt, r.Current, r.State, r.Groups[1].StartAt)
			}
			if len(r.Continues) != 1 || r.Continues[0].User != "U3" || r.Continues[0].Group != 0 {
				t.Fatalf("continues = %+v", r.Continues)
			}
			if got := eligibleNames(r, at); !slices.Equal(got, []string{"web01", "web02"}) {
				t.Fatalf("eligible after continue = %v", got)
			}
		})
	}
	t.Run("end run", func(t *testing.T) {
		r := halted(t, Failed)
		if _, err := EndRun(r, "U1", "", 0, planT0); !errors.Is(err, ErrInvalid) {
			t.Fatalf("end run without a reason: %v", err)
		}
		if _, err := EndRun(r, "U1", "db1 is gone", 0, planT0.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		n := Counts(r)
		if r.State != PartlyFailed || n[Skipped] != 3 || r.Halt != nil || r.FinishedAt.IsZero() || r.Stop == nil || r.Stop.User != "U1" {
			t.Fatalf("after end run: state %s counts %v halt %+v stop %+v", r.State, n, r.Halt, r.Stop)
		}
		if _, err := Continue(r, "U3", 0, planT0); err == nil {
			t.Fatal("continued an ended run")
		}
	})
	t.Run("last group fails: no halt", func(t *testing.T) {
		r := planReq(t)
		finish(t, r, "db1", Succeeded, planT0)
		finish(t, r, "db2", Succeeded, planT0)
		at := planT0.Add(2 * time.Minute)
		finish(t, r, "web01", Succeeded, at)
		finish(t, r, "web02", Succeeded, at)
		finish(t, r, "va", Failed, at)
		if r.Halt != nil || r.State != PartlyFailed {
			t.Fatalf("halt %+v state %s", r.Halt, r.State)
		}
	})
}

// TestStopSkipsQueued: once a stop of a request is in effect, nothing more is sent: items still
// waiting for their turn are skipped, in plans and in plain requests of many.
func TestStopSkipsQueued(t *testing.T) {
	r := planReq(t)
	move(t, r, "db1", Submitting, planT0)
	move(t, r, "db1", Running, planT0)
	now := planT0.Add(time.Minute)
	if _, err := Transition(r, Change{ID: r.ID, Item: "db1", From: []State{Running}, To: Stopping, Actor: "U2", Action: "stop",
		Stop: func(*StopRequest) *StopRequest { return &StopRequest{User: "U2", Reason: "wrong site", At: now} }}, now); err != nil {
		t.Fatal(err)
	}
	if n := Counts(r); n[Skipped] != 4 || n[Stopping] != 1 {
		t.Fatalf("counts after the stop: %v", n)
	}
	move(t, r, "db1", Stopped, now)
	if r.State != Stopped || r.Current != 0 {
		t.Fatalf("state %s current %d", r.State, r.Current)
	}
}

// TestPlanDigest: the approval covers the order, the concurrency, the delays and criticality.
func TestPlanDigest(t *testing.T) {
	base := planReq(t)
	for name, edit := range map[string]func(*Request){
		"group order": func(r *Request) { r.Items[2].Group, r.Items[0].Group = 0, 1 },
		"concurrency": func(r *Request) { r.Groups[0].Concurrency = 8 },
		"delay":       func(r *Request) { r.Groups[0].Delay = 0 },
		"optional":    func(r *Request) { r.Items[0].Optional = true },
		"group name":  func(r *Request) { r.Groups[1].Name = "apps" },
		"plan name":   func(r *Request) { r.Plan = "site-c" },
	} {
		r := base.Clone()
		edit(r)
		if r.ComputeDigest() == base.Digest {
			t.Errorf("%s: the digest does not cover it", name)
		}
	}
	r := base.Clone()
	r.Groups[0].StartAt, r.Groups[0].DoneAt, r.Current = planT0.Add(time.Hour), planT0, 2
	if r.ComputeDigest() != base.Digest {
		t.Error("the digest covers run state")
	}
}
