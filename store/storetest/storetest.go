// Package storetest is the conformance suite of store.Store: the behaviour failover-bot relies on
// from any backend (bbolt today, etcd next). A backend's tests call Run with a way to open it:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T, name string, cfg storetest.Config) store.Store { … })
//	}
//
// The suite uses only the store.Store interface, so a backend passes it exactly when it keeps
// the contract: sequential IDs, one compare-and-swap write per change, the two-person and
// one-active-request-per-target rules inside that write, a hash-chained audit log, an outbox
// that loses nothing across a reopen, finished requests listed by finish time from an index
// kept in the write that finishes them, and contexts honoured before anything is written.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/failover-bot/failover-bot/store"
	"github.com/failover-bot/failover-bot/store/failover"
	"github.com/failover-bot/failover-bot/store/failover/fakeclock"
)

// Config is what the suite asks of a backend it opens.
type Config struct {
	Now               func() time.Time
	ApprovalsRequired int
	Thread            func(r *store.Request, e *store.Event) string
}

// Opener opens the backend's store called name (a file, a key prefix) with cfg, and closes it
// at the test's cleanup. Opening the same name again after Close must show the same data.
type Opener func(t *testing.T, name string, cfg Config) store.Store

// T0 is the suite's clock start.
var T0 = time.Date(2025, 3, 14, 14, 2, 0, 0, time.UTC)

type env struct {
	t     *testing.T
	open  Opener
	name  string
	clock *fakeclock.Clock
	cfg   Config
	s     store.Store
	n     int // targets handed out
}

func newEnv(t *testing.T, open Opener, required int) *env {
	t.Helper()
	e := &env{t: t, open: open, name: t.Name(), clock: fakeclock.New(T0)}
	e.cfg = Config{Now: e.clock.Now, ApprovalsRequired: required, Thread: thread}
	e.s = open(t, e.name, e.cfg)
	return e
}

// thread is the suite's projection: every change of state after creation owes the thread a line.
func thread(r *store.Request, e *store.Event) string {
	if e.From == e.To || e.From == "" {
		return ""
	}
	return fmt.Sprintf("%s: %s -> %s", r.ID, e.From, e.To)
}

func (e *env) reopen() {
	e.t.Helper()
	if err := e.s.Close(); err != nil {
		e.t.Fatalf("Close: %v", err)
	}
	e.s = e.open(e.t, e.name, e.cfg)
}

// target returns a target no other request of this test uses.
func (e *env) target() store.Target {
	e.n++
	return store.Target{ReplicaID: "rep-1", ReplicaName: "CDP-Web", ID: fmt.Sprintf("vm-%d", e.n), Name: fmt.Sprintf("web-%02d", e.n)}
}

func (e *env) newRequest(t store.Target) store.NewRequest {
	return store.NewRequest{Kind: store.KindVM, Target: t, Intent: store.IntentLatest, Reason: "DC1 lost power",
		Requester: "U100", Channel: "C1", TTL: 15 * time.Minute}
}

func (e *env) create(mods ...func(*store.NewRequest)) *store.Request {
	e.t.Helper()
	nr := e.newRequest(e.target())
	for _, m := range mods {
		m(&nr)
	}
	r, err := e.s.Create(context.Background(), nr)
	if err != nil {
		e.t.Fatalf("Create: %v", err)
	}
	return r
}

func (e *env) approved() *store.Request {
	e.t.Helper()
	r := e.create()
	a, err := e.s.Approve(context.Background(), r.ID, "U200", r.Digest)
	if err != nil || a.State != store.Approved {
		e.t.Fatalf("Approve %s: %v, %v", r.ID, a, err)
	}
	return a
}

func (e *env) get(id string) *store.Request {
	e.t.Helper()
	r, err := e.s.Get(context.Background(), id)
	if err != nil {
		e.t.Fatalf("Get %s: %v", id, err)
	}
	return r
}

func (e *env) events() []store.Event {
	e.t.Helper()
	var out []store.Event
	if err := e.s.Events(context.Background(), 0, time.Time{}, func(ev store.Event) error { out = append(out, ev); return nil }); err != nil {
		e.t.Fatalf("Events: %v", err)
	}
	return out
}

func conflict(t *testing.T, err error, reason string) {
	t.Helper()
	var ce *store.ConflictError
	if !errors.As(err, &ce) || ce.Reason != reason {
		t.Fatalf("err = %v, want a ConflictError with reason %q", err, reason)
	}
}

// Run runs the whole suite against the backend open opens.
func Run(t *testing.T, open Opener) {
	tests := []struct {
		name string
		fn   func(t *testing.T, open Opener)
	}{
		{"CreateGetAndIDs", testCreateGet},
		{"InvalidRequestsAreRefused", testInvalid},
		{"TwoPersonRule", testTwoPerson},
		{"UpdateIsCompareAndSwap", testUpdateCAS},
		{"FailedMutationWritesNothing", testFailedMutation},
		{"OneActiveRequestPerTarget", testOneActivePerTarget},
		{"ActiveIndexFollowsState", testActive},
		{"FinishedIndexByFinishTime", testFinished},
		{"StateMachine", testStateMachine},
		{"ManyItems", testManyItems},
		{"ReplayKeys", testReplay},
		{"CardsAndMessages", testCards},
		{"OutboxSurvivesReopen", testOutboxReopen},
		{"AuditChain", testAuditChain},
		{"DoneContextWritesNothing", testDoneContext},
		{"TransitionAllIsOneWrite", testTransitionAll},
		{"PlansRunInOrder", testPlans},
		{"HoldersFromTheTargetIndex", testHolders},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open) })
	}
}

func testCreateGet(t *testing.T, open Opener) {
	e := newEnv(t, open, 1)
	a, b := e.create(), e.create()
	if a.ID != "FO-1" || b.ID != "FO-2" || a.State != store.Pending || a.Version != 1 {
		t.Fatalf("created %s v%d %s and %s, want FO-1 v1 pending and FO-2", a.ID, a.Version, a.State, b.ID)
	}
	if a.Digest == "" || a.Digest != a.ComputeDigest() {
		t.Fatalf("digest %q does not match the request", a.Digest)
	}
	if !a.ExpiresAt.Equal(T0.Add(15 * time.Minute)) {
		t.Fatalf("ExpiresAt = %s", a.ExpiresAt)
	}
	for _, id := range []string{"fo-1", "FO-1"} {
		if got := e.get(id); got.ID != "FO-1" || len(got.Items) != 1 || got.Items[0].Target != a.Items[0].Target {
			t.Fatalf("Get(%s) = %+v", id, got)
		}
	}
	for _, id := range []string{"FO-3", "FO-0", "42", ""} {
		if _, err := e.s.Get(context.Background(), id); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Get(%q) err = %v, want ErrNotFound", id, err)
		}
	}
	e.reopen()
	if c := e.create(); c.ID != "FO-3" {
		t.Fatalf("after reopen the next ID is %s, want FO-3", c.ID)
	}
	if got := e.get("FO-2"); got.Digest != b.Digest || got.Version != b.Version {
		t.Fatalf("after reopen FO-2 = %+v, want %+v", got, b)
	}
}

func testInvalid(t *testing.T, open Opener) {
	e := newEnv(t, open, 1)
	cases := map[string]func(*store.NewRequest){
		"no reason":      func(nr *store.NewRequest) { nr.Reason = "  " },
		"no requester":   func(nr *store.NewRequest) { nr.Requester = "" },
		"no target":      func(nr *store.NewRequest) { nr.Target.ID = "" },
		"unknown intent": func(nr *store.NewRequest) { nr.Intent = "yesterday" },
		"pit no time":    func(nr *store.NewRequest) { nr.Intent = store.IntentPointInTime },
		"no ttl":         func(nr *store.NewRequest) { nr.TTL = 0 },
	}
	for name, mod := range cases {
		nr := e.newRequest(e.target())
		mod(&nr)
		if _, err := e.s.Create(context.Background(), nr); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", name, err)
		}
	}
	if got := len(e.events()); got != 0 {
		t.Fatalf("refused requests wrote %d audit events", got)
	}
}

func testTwoPerson(t *testing.T, open Opener) {
	e := newEnv(t, open, 2)
	r := e.create()
	ctx := context.Background()
	_, err := e.s.Approve(ctx, r.ID, r.Requester, r.Digest)
	conflict(t, err, store.ReasonSelfApproval)
	_, err = e.s.Approve(ctx, r.ID, "U200", "0000")
	conflict(t, err, store.ReasonDigest)
	a, err := e.s.Approve(ctx, r.ID, "U200", r.Digest)
	if err != nil || a.State != store.Pending || len(a.Approvals) != 1 {
		t.Fatalf("first of two approvals: %v, %v", a, err)
	}
	_, err = e.s.Approve(ctx, r.ID, "U200", r.Digest)
	conflict(t, err, store.ReasonDuplicateApproval)
	a, err = e.s.Approve(ctx, r.ID, "U300", r.Digest)
	if err != nil || a.State != store.Approved || a.StateBy != "U300" {
		t.Fatalf("second approval: %v, %v", a, err)
	}
	_, err = e.s.Reject(ctx, r.ID, "U400", "too late")
	conflict(t, err, store.ReasonState)
	w := e.create()
	_, err = e.s.Withdraw(ctx, w.ID, "U200")
	conflict(t, err, store.ReasonNotRequester)
	if got, err := e.s.Withdraw(ctx, w.ID, w.Requester); err != nil || got.State != store.Withdrawn {
		t.Fatalf("withdraw: %v, %v", got, err)
	}
}

// testUpdateCAS races many writers on one request: every change must land exactly once, each
// on the version the one before it wrote, whatever the backend's concurrency control.
func testUpdateCAS(t *testing.T, open Opener) {
	const writers = 24
	e := newEnv(t, open, writers)
	r := e.create()
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := e.s.Approve(context.Background(), r.ID, fmt.Sprintf("U9%02d", i), r.Digest)
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent approval: %v", err)
		}
	}
	got := e.get(r.ID)
	if got.State != store.Approved || len(got.Approvals) != writers || got.Version != r.Version+writers {
		t.Fatalf("after %d concurrent approvals: %s, %d approvals, version %d (want approved, %d, %d)",
			writers, got.State, len(got.Approvals), got.Version, writers, r.Version+writers)
	}
	seen := map[string]bool{}
	for _, a := range got.Approvals {
		if seen[a.User] {
			t.Fatalf("approval by %s recorded twice", a.User)
		}
		seen[a.User] = true
	}
	if n := len(e.events()); n != 1+writers {
		t.Fatalf("%d audit events, want %d", n, 1+writers)
	}

	// Update's own contract: the mutation sees the stored request, an empty action writes nothing.
	u, err := e.s.Update(context.Background(), r.ID, func(cur *store.Request, _ store.View, _ time.Time) (failover.Effect, error) {
		if cur.Version != got.Version {
			return failover.Effect{}, fmt.Errorf("mutation saw version %d, stored %d", cur.Version, got.Version)
		}
		return failover.Effect{}, nil
	})
	if err != nil || u.Version != got.Version {
		t.Fatalf("no-op Update: %v, %v", u, err)
	}
}

func testFailedMutation(t *testing.T, open Opener) {
	e := newEnv(t, open, 1)
	r := e.create()
	boom := errors.New("refused")
	_, err := e.s.Update(context.Background(), r.ID, func(cur *store.Request, _ store.View, _ time.Time) (failover.Effect, error) {
		cur.Reason = "rewritten"
		return failover.Effect{}, boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want the mutation's", err)
	}
	if got := e.get(r.ID); got.Reason != r.Reason || got.Version != r.Version {
		t.Fatalf("a failed mutation changed the request: %+v", got)
	}
	if _, err := e.s.Update(context.Background(), "FO-99", func(*store.Request, store.View, time.Time) (failover.Effect, error) {
		return failover.Effect{Actor: "bot", Action: "x"}, nil
	}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Update of a missing request: %v", err)
	}
	if n := len(e.events()); n != 1 {
		t.Fatalf("%d audit events, want 1", n)
	}
}

func testOneActivePerTarget(t *testing.T, open Opener) {
	e := newEnv(t, open, 1)
	ctx := context.Background()
	held := e.target()
	first, err := e.s.Create(ctx, e.newRequest(held))
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.s.Create(ctx, e.newRequest(held))
	conflict(t, err, store.ReasonTargetBusy)
	var ce *store.ConflictError
	errors.As(err, &ce)
	if ce.Holder != first.ID || ce.Target != held.Name {
		t.Fatalf("conflict names %s/%s, want %s/%s", ce.Holder, ce.Target, first.ID, held.Name)
	}
	// Still held after a reopen, and released when the holder ends.
	e.reopen()
	_, err = e.s.Create(ctx, e.newRequest(held))
	conflict(t, err, store.ReasonTargetBusy)
	if _, err := e.s.Reject(ctx, first.ID, "U200", "wrong VM"); err != nil {
		t.Fatal(err)
	}
	second, err := e.s.Create(ctx, e.newRequest(held))
	if err != nil {
		t.Fatalf("the target was not released when its request ended: %v", err)
	}
	if a, err := e.s.Approve(ctx, second.ID, "U200", second.Digest); err != nil || a.State != store.Approved {
		t.Fatalf("approve the new holder: %v, %v", a, err)
	}
}

func testActive(t *testing.T, open Opener) {
	e := newEnv(t, open, 1)
	ctx := context.Background()
	a, b, c := e.create(), e.create(), e.create()
	if _, err := e.s.Withdraw(ctx, b.ID, b.Requester); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Hour)
	if _, err := e.s.Expire(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	d := e.create()
	ids := func() (out []string) {
		reqs, err := e.s.Active(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range reqs {
			out = append(out, r.ID)
		}
		return out
	}
	if got := fmt.Sprint(ids()); got != fmt.Sprint([]string{a.ID, d.ID}) {
		t.Fatalf("Active = %s, want [%s %s]", got, a.ID, d.ID)
	}
	e.reopen()
	if got := fmt.Sprint(ids()); got != fmt.Sprint([]string{a.ID, d.ID}) {
		t.Fatalf("after reopen Active = %s", got)
	}
}

func testStateMachine(t *testing.T, open Opener) {
	e := newEnv(t, open, 1)
	ctx := context.Background()
	r := e.approved()
	steps := []struct {
		c      store.Change
		reason string // "" for success
	}{
		{store.Change{To: store.Running, Actor: "bot"}, store.ReasonState},
		{store.Change{To: store.Submitting, Actor: "bot"}, ""},
		{store.Change{To: store.Running, Actor: "bot", Apply: func(x *store.Item) { x.TaskID = "task-1" }}, ""},
		{store.Change{To: store.Running, Actor: "poller", Version: 1}, store.ReasonStale},
		{store.Change{To: store.Running, Actor: "poller", Apply: func(x *store.Item) { x.EMProgress = 40 }}, ""},
		{store.Change{To: store.Succeeded, Actor: "poller", From: []store.State{store.Submitting}}, store.ReasonState},
		{store.Change{To: store.Succeeded, Actor: "poller"}, ""},
		{store.Change{To: store.Running, Actor: "poller"}, store.ReasonState},
	}
	for i, st := range steps {
		st.c.ID = r.ID
		got, err := e.s.Transition(ctx, st.c)
		if st.reason != "" {
			conflict(t, err, st.reason)
			continue
		}
		if err != nil || got.State != st.c.To {
			t.Fatalf("step %d (%s): %v, %v", i, st.c.To, got, err)
		}
	}
	got := e.get(r.ID)
	if got.Items[0].TaskID != "task-1" || got.Items[0].EMProgress != 40 || got.FinishedAt.IsZero() || got.Items[0].FinishedAt.IsZero() {
		t.Fatalf("final request %+v", got)
	}
	if _, err := e.s.Transition(ctx, store.Change{ID: r.ID, To: store.Running, Actor: "bot",
		Apply: func(x *store.Item) { x.Target.Name = "x" }}); err == nil {
		t.Fatal("an Apply that rewrites the target was accepted")
	}
}

// testManyItems: a request of several VMs holds each of them, is approved as a whole, lets its
// items move on their own (concurrent changes of different items, each guarded by the item's own
// version, never refuse each other), derives its state from them, and releases every target
// when it ends.
func testManyItems(t *testing.T, open Opener) {
	e := newEnv(t, open, 1)
	ctx := context.Background()
	vms := []store.Target{e.target(), e.target(), e.target()}
	point := T0.Add(-time.Minute)
	nr := e.newRequest(store.Target{})
	for i, vm := range vms {
		nr.Items = append(nr.Items, store.Item{Target: vm, Point: point.Add(time.Duration(i) * time.Second), RPO: 15 * (i + 1)})
	}
	r, err := e.s.Create(ctx, nr)
	if err != nil {
		t.Fatalf("Create of %d items: %v", len(vms), err)
	}
	checkItems := func(step string, r *store.Request, want store.State) {
		t.Helper()
		if len(r.Items) != len(vms) {
			t.Fatalf("%s: %d items, want %d", step, len(r.Items), len(vms))
		}
		for i, it := range r.Items {
			if it.Target != vms[i] || !it.Point.Equal(nr.Items[i].Point) || it.RPO != nr.Items[i].RPO || it.State != want {
				t.Fatalf("%s: item %d = %+v, want %s %s at %s rpo %d", step, i, it, vms[i].ID, want, nr.Items[i].Point, nr.Items[i].RPO)
			}
			if r.Item(vms[i].ID) == nil {
				t.Fatalf("%s: Item(%s) not found", step, vms[i].ID)
			}
		}
	}
	if r.State != store.Pending || r.Digest == "" || r.Digest != r.ComputeDigest() {
		t.Fatalf("created %s with digest %q", r.State, r.Digest)
	}
	checkItems("created", r, store.Pending)
	e.reopen()
	checkItems("after reopen", e.get(r.ID), store.Pending)

	busy := func(step string, holder *store.Request) {
		t.Helper()
		for _, vm := range vms {
			_, err := e.s.Create(ctx, e.newRequest(vm))
			conflict(t, err, store.ReasonTargetBusy)
			var ce *store.ConflictError
			errors.As(err, &ce)
			if ce.Holder != holder.ID || ce.Target != vm.Name {
				t.Fatalf("%s: a new request for %s names %s/%s, want %s/%s", step, vm.ID, ce.Holder, ce.Target, holder.ID, vm.Name)
			}
		}
	}
	busy("pending", r)

	a, err := e.s.Approve(ctx, r.ID, "U200", r.Digest)
	if err != nil || a.State != store.Approved {
		t.Fatalf("Approve: %v, %v", a, err)
	}
	checkItems("approved", a, store.Approved)
	busy("approved", a)

	// One writer per item, each with the item's version from what it last read.
	var wg sync.WaitGroup
	errs := make(chan error, len(vms))
	for i, vm := range vms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			version := a.Items[i].Version
			for _, to := range []store.State{store.Submitting, store.Running} {
				got, err := e.s.Transition(ctx, store.Change{ID: r.ID, Item: vm.ID, Version: version, To: to, Actor: "bot",
					Apply: func(x *store.Item) {
						if to == store.Running {
							x.TaskID = "task-" + vm.ID
						}
					}})
				if err != nil {
					errs <- fmt.Errorf("%s -> %s at item version %d: %w", vm.ID, to, version, err)
					return
				}
				it := got.Item(vm.ID)
				if it == nil || it.State != to || it.Version <= version {
					errs <- fmt.Errorf("%s -> %s: item after the change %+v", vm.ID, to, it)
					return
				}
				version = it.Version
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		t.FailNow()
	}
	got := e.get(r.ID)
	if got.State != store.Running || got.Version != a.Version+2*uint64(len(vms)) || got.StartedAt.IsZero() {
		t.Fatalf("after every item runs: request %s v%d started %s, want running v%d", got.State, got.Version, got.StartedAt, a.Version+2*uint64(len(vms)))
	}
	checkItems("running", got, store.Running)
	for _, it := range got.Items {
		if it.TaskID != "task-"+it.Target.ID {
			t.Fatalf("item %s has task %q", it.Target.ID, it.TaskID)
		}
	}
	// A change with an item's older version is still stale.
	_, err = e.s.Transition(ctx, store.Change{ID: r.ID, Item: vms[0].ID, Version: a.Items[0].Version, To: store.Failed, Actor: "poller"})
	conflict(t, err, store.ReasonStale)
	busy("running", got)

	outcomes := []store.State{store.Succeeded, store.Failed, store.Succeeded}
	for i, vm := range vms {
		cur := e.get(r.ID)
		got, err = e.s.Transition(ctx, store.Change{ID: r.ID, Item: vm.ID, Version: cur.Item(vm.ID).Version, To: outcomes[i], Actor: "poller"})
		if err != nil {
			t.Fatalf("%s -> %s: %v", vm.ID, outcomes[i], err)
		}
		if it := got.Item(vm.ID); it.State != outcomes[i] || it.FinishedAt.IsZero() {
			t.Fatalf("%s after %s: %+v", vm.ID, outcomes[i], it)
		}
		if last := i == len(vms)-1; !last && got.State != store.Running {
			t.Fatalf("with %d of %d items finished the request is %s, want running", i+1, len(vms), got.State)
		}
	}
	if got.State != store.PartlyFailed || got.FinishedAt.IsZero() || got.State.Active() {
		t.Fatalf("after succeeded/failed/succeeded the request is %s (finished %s), want %s", got.State, got.FinishedAt, store.PartlyFailed)
	}
	if act, err := e.s.Active(ctx); err != nil || len(act) != 0 {
		t.Fatalf("Active after the request ended = %v, %v", act, err)
	}
	for _, vm := range vms {
		if _, err := e.s.Create(ctx, e.newRequest(vm)); err != nil {
			t.Fatalf("%s was not released when its request ended: %v", vm.ID, err)
		}
	}

	// A target listed twice, or a Target besides Items, is refused before anything is written.
	before := len(e.events())
	dup := e.newRequest(store.Target{})
	twice := e.target()
	dup.Items = []store.Item{{Target: twice}, {Target: e.target()}, {Target: twice}}
	if _, err := e.s.Create(ctx, dup); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("a request listing %s twice: %v, want ErrInvalid", twice.ID, err)
	}
	both := e.newRequest(e.target())
	both.Items = []store.Item{{Target: e.target()}}
	if _, err := e.s.Create(ctx, both); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("a request with both Target and Items: %v, want ErrInvalid", err)
	}
	if n := len(e.events()); n != before {
		t.Fatalf("refused requests wrote %d audit events", n-before)
	}
	if _, err := e.s.Create(ctx, e.newRequest(twice)); err != nil {
		t.Fatalf("a refused request held %s: %v", twice.ID, err)
	}
}

func testReplay(t *testing.T, open Opener) {
	e := newEnv(t, open, 1)
	ctx := context.Background()
	key := func(nr *store.NewRequest) { nr.ReplayKey, nr.ReplayTTL = "trigger-1", time.Minute }
	e.create(key)
	nr := e.newRequest(e.target())
	key(&nr)
	if _, err := e.s.Create(ctx, nr); !errors.Is(err, store.ErrReplay) {
		t.Fatalf("replayed Create: %v", err)
	}
	if err := e.s.Remember(ctx, "click-1", time.Minute); err != nil {
		t.Fatal(err)
	}
	e.reopen()
	if err := e.s.Remember(ctx, "click-1", time.Minute); !errors.Is(err, store.ErrReplay) {
		t.Fatalf("replayed click after reopen: %v", err)
	}
	e.clock.Advance(2 * time.Minute)
	if err := e.s.Remember(ctx, "click-1", time.Minute); err != nil {
		t.Fatalf("a key past its TTL is refused: %v", err)
	}
}

func testCards(t *testing.T, open Opener) {
	e := newEnv(t, open, 1)
	ctx := context.Background()
	r := e.create()
	cards, err := e.s.UnpostedCards(ctx, "C1", 10)
	if err != nil || len(cards) != 1 || cards[0].Request.ID != r.ID {
		t.Fatalf("UnpostedCards = %v, %v", cards, err)
	}
	if _, err := e.s.SetMessage(ctx, r.ID, "C1", "1700000000.000100", r.Version); err != nil {
		t.Fatal(err)
	}
	if got, err := e.s.ByMessage(ctx, "C1", "1700000000.000100"); err != nil || got.ID != r.ID {
		t.Fatalf("ByMessage = %v, %v", got, err)
	}
	if _, err := e.s.ByMessage(ctx, "C1", "1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("ByMessage of an unknown message: %v", err)
	}
	if stale, _ := e.s.StaleCards(ctx, 10); len(stale) != 0 {
		t.Fatalf("a freshly posted card is stale: %v", stale)
	}
	a, err := e.s.Approve(ctx, r.ID, "U200", r.Digest)
	if err != nil {
		t.Fatal(err)
	}
	stale, err := e.s.StaleCards(ctx, 10)
	if err != nil || len(stale) != 1 || stale[0].Request.Version != a.Version {
		t.Fatalf("after approval StaleCards = %v, %v", stale, err)
	}
	if err := e.s.CardRendered(ctx, r.ID, a.Version); err != nil {
		t.Fatal(err)
	}
	if stale, _ := e.s.StaleCards(ctx, 10); len(stale) != 0 {
		t.Fatalf("a rendered card is still stale: %v", stale)
	}
}

func testOutboxReopen(t *testing.T, open Opener) {
	e := newEnv(t, open, 1)
	ctx := context.Background()
	r := e.create()
	if _, err := e.s.SetMessage(ctx, r.ID, "C1", "1.1", r.Version); err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.Approve(ctx, r.ID, "U200", r.Digest); err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.Note(ctx, r.ID, "poller", "em-unreachable", "timeout", "EM is not answering"); err != nil {
		t.Fatal(err)
	}
	if err := e.s.Enqueue(ctx, "C2", "hello"); err != nil {
		t.Fatal(err)
	}
	e.reopen()
	chans, err := e.s.OutboxChannels(ctx)
	if err != nil || fmt.Sprint(chans) != "[C1 C2]" {
		t.Fatalf("OutboxChannels = %v, %v", chans, err)
	}
	msgs, err := e.s.Outbox(ctx, "C1", 10)
	if err != nil || len(msgs) != 2 {
		t.Fatalf("Outbox(C1) = %v, %v", msgs, err)
	}
	if msgs[0].Text != "FO-1: pending -> approved" || msgs[1].Text != "EM is not answering" || msgs[0].RequestID != r.ID {
		t.Fatalf("thread lines out of order or wrong: %q, %q", msgs[0].Text, msgs[1].Text)
	}
	if err := e.s.Delivered(ctx, "C1", msgs[0].Seq); err != nil {
		t.Fatal(err)
	}
	if msgs, _ = e.s.Outbox(ctx, "C1", 10); len(msgs) != 1 || msgs[0].Text != "EM is not answering" {
		t.Fatalf("after Delivered, Outbox(C1) = %v", msgs)
	}
}

func testAuditChain(t *testing.T, open Opener) {
	e := newEnv(t, open, 1)
	ctx := context.Background()
	r := e.approved()
	if _, err := e.s.Transition(ctx, store.Change{ID: r.ID, To: store.Submitting, Actor: "bot"}); err != nil {
		t.Fatal(err)
	}
	evs := e.events()
	if len(evs) != 3 {
		t.Fatalf("%d events, want 3", len(evs))
	}
	for i, ev := range evs {
		if ev.Seq != uint64(i+1) || ev.RequestID != r.ID || ev.Hash == "" {
			t.Fatalf("event %d = %+v", i, ev)
		}
		if i > 0 && ev.Prev != evs[i-1].Hash {
			t.Fatalf("event %d does not chain to the one before it", ev.Seq)
		}
	}
	if evs[1].Action != "approved" || evs[1].From != store.Pending || evs[1].To != store.Approved || evs[1].Actor != "U200" {
		t.Fatalf("approval event = %+v", evs[1])
	}
	if err := e.s.Verify(ctx); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	var since []store.Event
	_ = e.s.Events(ctx, 2, time.Time{}, func(ev store.Event) error { since = append(since, ev); return nil })
	if len(since) != 1 || since[0].Seq != 3 {
		t.Fatalf("Events after seq 2 = %v", since)
	}
}

func testDoneContext(t *testing.T, open Opener) {
	e := newEnv(t, open, 1)
	r := e.create()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := e.s.Create(ctx, e.newRequest(e.target())); !errors.Is(err, context.Canceled) {
		t.Errorf("Create with a cancelled context: %v", err)
	}
	if _, err := e.s.Approve(ctx, r.ID, "U200", r.Digest); !errors.Is(err, context.Canceled) {
		t.Errorf("Approve with a cancelled context: %v", err)
	}
	if _, err := e.s.Get(ctx, r.ID); !errors.Is(err, context.Canceled) {
		t.Errorf("Get with a cancelled context: %v", err)
	}
	if got := e.get(r.ID); got.State != store.Pending || got.Version != r.Version {
		t.Fatalf("a cancelled call changed the request: %+v", got)
	}
	if n := len(e.events()); n != 1 {
		t.Fatalf("%d audit events, want 1", n)
	}
}

// testTransitionAll: many item changes of one request in one write and one audit event; a stale
// change is skipped, the others applied.
func testTransitionAll(t *testing.T, open Opener) {
	e := newEnv(t, open, 1)
	ctx := context.Background()
	nr := e.newRequest(e.target())
	nr.Target = store.Target{}
	for range 3 {
		nr.Items = append(nr.Items, store.Item{Target: e.target()})
	}
	r, err := e.s.Create(ctx, nr)
	if err != nil {
		t.Fatal(err)
	}
	if r, err = e.s.Approve(ctx, r.ID, "U200", r.Digest); err != nil {
		t.Fatal(err)
	}
	for _, it := range r.Items {
		for _, to := range []store.State{store.Submitting, store.Running} {
			if r, err = e.s.Transition(ctx, store.Change{ID: r.ID, Item: it.Target.ID, To: to, Actor: "bot"}); err != nil {
				t.Fatal(err)
			}
		}
	}
	before, events := r.Version, len(e.events())
	var cs []store.Change
	for i, it := range r.Items {
		v := it.Version
		if i == 2 {
			v-- // stale
		}
		pct := 10 * (i + 1)
		cs = append(cs, store.Change{Item: it.Target.ID, Version: v, To: store.Running, Actor: "em",
			Apply: func(x *store.Item) { x.EMProgress = pct }})
	}
	got, n, err := e.s.TransitionAll(ctx, r.ID, cs, "em", "em-progress", "EM progress")
	if err != nil || n != 2 {
		t.Fatalf("TransitionAll applied %d, err %v; want 2", n, err)
	}
	if got.Version != before+1 || len(e.events()) != events+1 {
		t.Fatalf("version %d -> %d and %d new events, want one write and one event", before, got.Version, len(e.events())-events)
	}
	if p := []int{got.Items[0].EMProgress, got.Items[1].EMProgress, got.Items[2].EMProgress}; p[0] != 10 || p[1] != 20 || p[2] != 0 {
		t.Fatalf("progress %v, want [10 20 0] (the stale change skipped)", p)
	}
	if _, n, err := e.s.TransitionAll(ctx, r.ID, cs[2:], "em", "em-progress", "x"); err != nil || n != 0 || len(e.events()) != events+1 {
		t.Fatalf("a batch of only stale changes wrote something: n %d, err %v", n, err)
	}
}

// testPlans: a plan request keeps its groups and each item's kind, group and criticality across a
// reopen; the store refuses a group's item before its turn, halts on a failed critical item,
// continues only at a second person's word, and holds vApp and VM targets by their own kind.
func testPlans(t *testing.T, open Opener) {
	e := newEnv(t, open, 1)
	ctx := context.Background()
	db, web := e.target(), e.target()
	app := store.Target{ID: "vapp-1", Name: "Finance-App"}
	nr := e.newRequest(store.Target{})
	nr.Kind, nr.Plan = store.KindPlan, "site-b"
	nr.Groups = []store.Group{{Name: "db", Concurrency: 1, Delay: time.Minute}, {Name: "apps", Concurrency: 4}}
	nr.Items = []store.Item{{Target: db, Kind: store.KindVM}, {Target: web, Kind: store.KindVM, Group: 1, Optional: true},
		{Target: app, Kind: store.KindVApp, Group: 1}}
	r, err := e.s.Create(ctx, nr)
	if err != nil {
		t.Fatalf("Create a plan: %v", err)
	}
	bad := nr
	bad.Items = append([]store.Item(nil), nr.Items...)
	bad.Items[2].Group = 5
	if _, err := e.s.Create(ctx, bad); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("Create with an item of group 5 of 2: %v, want ErrInvalid", err)
	}
	e.reopen()
	r = e.get(r.ID)
	if r.Plan != "site-b" || len(r.Groups) != 2 || r.Groups[0].Delay != time.Minute || r.Items[2].Kind != store.KindVApp || !r.Items[1].Optional || r.Items[1].Group != 1 {
		t.Fatalf("plan after reopen: %+v", r)
	}
	vapp := store.NewRequest{Kind: store.KindVApp, Target: app, Intent: store.IntentLatest, Reason: "x", Requester: "U100", TTL: time.Minute}
	_, err = e.s.Create(ctx, vapp)
	conflict(t, err, store.ReasonTargetBusy)

	if r, err = e.s.Approve(ctx, r.ID, "U200", r.Digest); err != nil || r.State != store.Approved {
		t.Fatalf("Approve: %v %v", r, err)
	}
	_, err = e.s.Transition(ctx, store.Change{ID: r.ID, Item: app.ID, To: store.Submitting, Actor: "bot"})
	conflict(t, err, failover.ReasonNotYet)
	step := func(id string, to store.State) {
		t.Helper()
		if _, err := e.s.Transition(ctx, store.Change{ID: r.ID, Item: id, To: to, Actor: "bot",
			Apply: func(it *store.Item) { it.TaskID = "task-" + id }}); err != nil {
			t.Fatalf("%s -> %s: %v", id, to, err)
		}
	}
	step(db.ID, store.Submitting)
	step(db.ID, store.Running)
	step(db.ID, store.Failed)
	r = e.get(r.ID)
	if r.State != store.Halted || r.Halt == nil || r.Halt.Group != 0 {
		t.Fatalf("after the critical db failed: %s, halt %+v", r.State, r.Halt)
	}
	want := []failover.PlanEvent{{Kind: failover.NewsDone, Group: 0}, {Kind: failover.NewsHalted, Group: 0}}
	if got := r.Milestones(); !slices.Equal(got, want) {
		t.Fatalf("milestones of the write that halted = %+v, want %+v", got, want)
	}

	if a, err := e.s.Active(ctx); err != nil || len(a) != 1 {
		t.Fatalf("a halted plan is not active: %d, %v", len(a), err)
	}
	e.reopen()
	_, err = e.s.Continue(ctx, r.ID, "U100", 0)
	conflict(t, err, failover.ReasonSelfContinue)
	if r, err = e.s.Continue(ctx, r.ID, "U200", 0); err != nil || r.Halt != nil || r.Current != 1 {
		t.Fatalf("Continue: %+v, %v", r, err)
	}
	if got, want := r.Milestones(), []failover.PlanEvent{{Kind: failover.NewsContinued, Group: 0}}; !slices.Equal(got, want) {
		t.Fatalf("milestones of Continue = %+v, want only %+v (news of an earlier write is never told again)", got, want)
	}
	_, err = e.s.EndRun(ctx, r.ID, "U200", "too late", 0)
	conflict(t, err, failover.ReasonNotHalted)
	evs := e.events()
	if last := evs[len(evs)-1]; last.Action != "continued" || last.Actor != "U200" {
		t.Fatalf("last event = %+v, want U200 continued", last)
	}
}

// testHolders: Holders names the active request holding each key asked, omits keys nobody holds,
// and forgets a target when its request finishes.
func testHolders(t *testing.T, open Opener) {
	e := newEnv(t, open, 1)
	ctx := context.Background()
	a, b := e.create(), e.create()
	ka := failover.TargetKey(store.KindVM, a.Items[0].Target)
	kb := failover.TargetKey(store.KindVM, b.Items[0].Target)
	free := failover.TargetKey(store.KindVM, e.target())
	got, err := e.s.Holders(ctx, []string{ka, kb, free, ka})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[ka] == nil || got[ka].ID != a.ID || got[kb] == nil || got[kb].ID != b.ID {
		t.Fatalf("Holders = %v, want %s and %s only", got, a.ID, b.ID)
	}
	if _, err := e.s.Reject(ctx, a.ID, "U200", "not now"); err != nil {
		t.Fatal(err)
	}
	got, err = e.s.Holders(ctx, []string{ka, kb})
	if err != nil {
		t.Fatal(err)
	}
	if _, held := got[ka]; held || got[kb] == nil {
		t.Fatalf("after %s was rejected: Holders = %v, want only %s", a.ID, got, b.ID)
	}
}
