package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/failover-bot/failover-bot/store"
)

// finished lists what Finished returns as "FO-n@minutes after T0", newest first, and the count
// of the rest.
func (e *env) finished(since time.Time, limit int) ([]string, int) {
	e.t.Helper()
	reqs, more, err := e.s.Finished(context.Background(), since, limit)
	if err != nil {
		e.t.Fatalf("Finished(%s, %d): %v", since.Format(time.RFC3339), limit, err)
	}
	var out []string
	for _, r := range reqs {
		if !r.State.Terminal() {
			e.t.Fatalf("Finished returned %s in %s, not a finished state", r.ID, r.State)
		}
		if ft := store.FinishTime(r); ft.IsZero() || !ft.Equal(r.FinishedAt) {
			e.t.Fatalf("Finished returned %s with finish time %s, FinishedAt %s", r.ID, ft, r.FinishedAt)
		}
		out = append(out, fmt.Sprintf("%s@%d", r.ID, int(store.FinishTime(r).Sub(T0)/time.Minute)))
	}
	return out, more
}

// step moves the one item of request id to state to, as the bot does after approval.
func (e *env) step(id string, to store.State) *store.Request {
	e.t.Helper()
	r, err := e.s.Transition(context.Background(), store.Change{ID: id, To: to, Actor: "bot"})
	if err != nil {
		e.t.Fatalf("Transition %s to %s: %v", id, to, err)
	}
	return r
}

// testFinished: Finished lists the requests that finished in a period, newest first, whichever
// way they finished (rejected, withdrawn, expired, an outcome from EM, the last item of many), and
// never one still active; since is inclusive; limit bounds the list and the rest are counted;
// the index is written with the change that finishes a request, so it survives a reopen.
func testFinished(t *testing.T, open Opener) {
	e := newEnv(t, open, 1)
	ctx := context.Background()
	if got, more := e.finished(time.Time{}, 50); len(got) != 0 || more != 0 {
		t.Fatalf("Finished on an empty store = %v, %d more", got, more)
	}

	// Minute 0: FO-1 stays pending and FO-2 is approved and left running.
	pending := e.create()
	running := e.approved()
	e.step(running.ID, store.Submitting)
	e.step(running.ID, store.Running)
	// Minute 1: FO-3 is rejected and FO-4 withdrawn, at the same instant.
	e.clock.Advance(time.Minute)
	rejected := e.create()
	withdrawn := e.create()
	if _, err := e.s.Reject(ctx, rejected.ID, "U200", "not now"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.Withdraw(ctx, withdrawn.ID, withdrawn.Requester); err != nil {
		t.Fatal(err)
	}
	// Minute 2: FO-5 succeeds. Minute 3: FO-6 fails before it ever ran.
	e.clock.Advance(time.Minute)
	ok := e.approved()
	e.step(ok.ID, store.Submitting)
	e.step(ok.ID, store.Running)
	e.step(ok.ID, store.Succeeded)
	e.clock.Advance(time.Minute)
	failed := e.approved()
	e.step(failed.ID, store.Submitting)
	e.step(failed.ID, store.Failed)
	// FO-7, of two items: one succeeds at minute 4 (the request still runs), the other fails at
	// minute 6, which finishes the request then.
	nr := e.newRequest(store.Target{})
	nr.Items = []store.Item{{Target: e.target()}, {Target: e.target()}}
	many, err := e.s.Create(ctx, nr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.Approve(ctx, many.ID, "U200", many.Digest); err != nil {
		t.Fatal(err)
	}
	move := func(item int, to store.State) {
		t.Helper()
		if _, err := e.s.Transition(ctx, store.Change{ID: many.ID, Item: many.Items[item].Target.ID, To: to, Actor: "bot"}); err != nil {
			t.Fatalf("%s item %d to %s: %v", many.ID, item, to, err)
		}
	}
	e.clock.Advance(time.Minute)
	for _, to := range []store.State{store.Submitting, store.Running, store.Succeeded} {
		move(0, to)
	}
	if got, _ := e.finished(time.Time{}, 50); slices.ContainsFunc(got, func(s string) bool { return strings.HasPrefix(s, many.ID+"@") }) {
		t.Fatalf("%s is listed finished while its second item waits: %v", many.ID, got)
	}
	e.clock.Advance(2 * time.Minute)
	for _, to := range []store.State{store.Submitting, store.Failed} {
		move(1, to)
	}
	if got := e.get(many.ID); got.State != store.PartlyFailed {
		t.Fatalf("%s is %s, want partly-failed", many.ID, got.State)
	}
	// Minute 66: FO-8, asked at minute 6, expires after its hour.
	expired := e.create()
	e.clock.Advance(time.Hour)
	if _, err := e.s.Expire(ctx, expired.ID); err != nil {
		t.Fatal(err)
	}

	all := []string{expired.ID + "@66", many.ID + "@6", failed.ID + "@3", ok.ID + "@2", withdrawn.ID + "@1", rejected.ID + "@1"}
	check := func(step string) {
		t.Helper()
		cases := []struct {
			name  string
			since time.Time
			limit int
			want  []string
			more  int
		}{
			{"everything", time.Time{}, 50, all, 0},
			{"since is inclusive", T0.Add(2 * time.Minute), 50, all[:4], 0},
			{"just after an instant", T0.Add(2*time.Minute + time.Nanosecond), 50, all[:3], 0},
			{"limit, the rest counted", time.Time{}, 2, all[:2], 4},
			{"limit zero only counts", T0.Add(time.Minute), 0, nil, 6},
			{"ties: the higher ID first", T0.Add(time.Minute), 6, all, 0},
			{"nothing since", T0.Add(67 * time.Minute), 50, nil, 0},
		}
		for _, tc := range cases {
			got, more := e.finished(tc.since, tc.limit)
			if !slices.Equal(got, tc.want) || more != tc.more {
				t.Errorf("%s, %s: Finished = %v and %d more, want %v and %d more", step, tc.name, got, more, tc.want, tc.more)
			}
		}
		if got := e.get(pending.ID); got.State != store.Pending {
			t.Fatalf("%s: %s is %s", step, pending.ID, got.State)
		}
	}
	check("before reopen")
	e.reopen()
	check("after reopen")

	if _, _, err := e.s.Finished(ctx, time.Time{}, -1); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("Finished with a negative limit: %v, want ErrInvalid", err)
	}
	done, cancel := context.WithCancel(ctx)
	cancel()
	if _, _, err := e.s.Finished(done, time.Time{}, 50); !errors.Is(err, context.Canceled) {
		t.Errorf("Finished with a cancelled context: %v, want context.Canceled", err)
	}
}
