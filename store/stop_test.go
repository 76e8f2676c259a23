package store

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestStopRules: a stop request is recorded only on a running failover with a task, by its
// actor; it cannot be rewritten or taken back; and its confirmation comes from a second person.
func TestStopRules(t *testing.T) {
	s := mustOpenStore(t, Options{})
	at := s.clock.Now()
	running := func(t *testing.T, task string) *Request {
		t.Helper()
		r := reach(t, s, Running)
		if task != "" {
			r = mustTransition(t, s, Change{ID: r.ID, To: Running, Apply: func(it *Item) { it.TaskID, it.EMSession = task, "sess-1" }})
		}
		return r
	}
	ask := func(user string) func(*StopRequest) *StopRequest {
		return func(*StopRequest) *StopRequest { return &StopRequest{User: user, Reason: "wrong point", At: at} }
	}
	confirm := func(user string) func(*StopRequest) *StopRequest {
		return func(q *StopRequest) *StopRequest { q.ConfirmedBy, q.ConfirmedAt = user, at; return q }
	}
	takeBack := func(*StopRequest) *StopRequest { return nil }
	cases := []struct {
		name  string
		task  string
		first *Change // applied before the change under test
		c     Change
		ok    bool
	}{
		{name: "one person stops", task: "task-1", c: Change{To: Stopping, Actor: "U1", Stop: ask("U1")}, ok: true},
		{name: "first of two stays running", task: "task-1", c: Change{To: Running, Actor: "U1", Stop: ask("U1")}, ok: true},
		{name: "no task", c: Change{To: Stopping, Actor: "U1", Stop: ask("U1")}},
		{name: "on behalf of someone else", task: "task-1", c: Change{To: Stopping, Actor: "U2", Stop: ask("U1")}},
		{name: "second person confirms", task: "task-1", first: &Change{To: Running, Actor: "U1", Stop: ask("U1")},
			c: Change{To: Stopping, Actor: "U2", Stop: confirm("U2")}, ok: true},
		{name: "same person confirms", task: "task-1", first: &Change{To: Running, Actor: "U1", Stop: ask("U1")},
			c: Change{To: Stopping, Actor: "U1", Stop: confirm("U1")}},
		{name: "rewritten reason", task: "task-1", first: &Change{To: Running, Actor: "U1", Stop: ask("U1")},
			c: Change{To: Stopping, Actor: "U2", Stop: func(q *StopRequest) *StopRequest { q.Reason, q.ConfirmedBy = "other", "U2"; return q }}},
		{name: "taken back", task: "task-1", first: &Change{To: Running, Actor: "U1", Stop: ask("U1")},
			c: Change{To: Running, Actor: "U2", Stop: takeBack}},
		{name: "recorded while finishing", task: "task-1", c: Change{To: Succeeded, Actor: "U1", Stop: ask("U1")}},
		{name: "withdrawn when the stop was never sent", task: "task-1", first: &Change{To: Stopping, Actor: "U1", Stop: ask("U1")},
			c: Change{To: Running, Actor: "bot", Stop: takeBack}, ok: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := running(t, tc.task)
			if tc.first != nil {
				f := *tc.first
				f.ID = r.ID
				r = mustTransition(t, s, f)
			}
			c := tc.c
			c.ID = r.ID
			s.clock.Advance(time.Second)
			got, err := s.Transition(context.Background(), c)
			if tc.ok {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if (got.Stop == nil) != (tc.name == "withdrawn when the stop was never sent") || got.State != c.To {
					t.Errorf("got %s with stop %+v", got.State, got.Stop)
				}
				return
			}
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("got %v, want ErrInvalid", err)
			}
			if after, _ := s.Get(context.Background(), r.ID); after.Version != r.Version {
				t.Errorf("a refused stop changed the request")
			}
		})
	}
}

// TestOneActiveRequestPerTarget: a second request for a target held by an active request is
// refused, naming the holder, until the holder ends; another target is never affected.
func TestOneActiveRequestPerTarget(t *testing.T) {
	s := mustOpenStore(t, Options{})
	db01 := func(nr *NewRequest) { nr.Target.ID, nr.Target.Name = "vm-db01", "fin-db01" }
	first := mustCreate(t, s, db01)
	busy := func(step string) {
		t.Helper()
		_, err := s.Create(context.Background(), func() NewRequest { nr := validNewRequest(); db01(&nr); return nr }())
		var ce *ConflictError
		if !errors.As(err, &ce) || ce.Reason != ReasonTargetBusy || ce.Holder != first.ID {
			t.Fatalf("%s: second request = %v, want target-busy naming %s", step, err, first.ID)
		}
		if !strings.Contains(err.Error(), "fin-db01 already has an active request, "+first.ID) {
			t.Errorf("%s: message %q", step, err)
		}
	}
	busy("pending")
	mustCreate(t, s) // another VM
	r, err := s.Approve(context.Background(), first.ID, "U200", first.Digest)
	if err != nil {
		t.Fatal(err)
	}
	busy("approved")
	r = mustTransition(t, s, Change{ID: r.ID, To: Submitting})
	r = mustTransition(t, s, Change{ID: r.ID, To: Running, Apply: func(it *Item) { it.TaskID = "task-1" }})
	busy("running")
	mustTransition(t, s, Change{ID: r.ID, To: Succeeded, Actor: "em"})
	second := mustCreate(t, s, db01)
	if second.Items[0].Target.ID != "vm-db01" {
		t.Fatal("second request for the freed target not created")
	}
	if act, _ := s.Active(context.Background()); len(act) != 2 {
		t.Errorf("%d active, want 2 (the other VM and the second fin-db01)", len(act))
	}
}
