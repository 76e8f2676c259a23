package bot_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/failover-bot/failover-bot/emapi"
	"github.com/failover-bot/failover-bot/emapi/emsim"
	"github.com/failover-bot/failover-bot/store"
)

// approveInStore approves a request straight in the store, as the process did just before it
// died: the bot in memory knows nothing of it.
func (h *harness) approveInStore(id, approver string) *store.Request {
	h.t.Helper()
	r, err := h.st.Approve(context.Background(), id, approver, h.get(id).Digest)
	if err != nil {
		h.t.Fatalf("approve %s in the store: %v", id, err)
	}
	if r.State != store.Approved {
		h.t.Fatalf("%s is %s after approval, want approved", id, r.State)
	}
	return r
}

// submittingInStore leaves a request as a crash between "submitting" and the failover POST's
// answer does: approved, then recorded as submitting, with no task ID.
func (h *harness) submittingInStore(id string) *store.Request {
	h.t.Helper()
	h.approveInStore(id, Approver1)
	r, err := h.st.Transition(context.Background(), store.Change{ID: id, From: []store.State{store.Approved}, To: store.Submitting,
		Actor: "bot", Action: "submitting", Details: "sending the failover to Enterprise Manager"})
	if err != nil {
		h.t.Fatalf("submitting %s in the store: %v", id, err)
	}
	return r
}

// emRequestsSince returns the EM requests received after the first n.
func (h *harness) emRequestsSince(n int) []emsim.Recorded {
	all := h.em.Requests()
	if n > len(all) {
		return nil
	}
	return all[n:]
}

func countRequests(rs []emsim.Recorded, method, pathPart string, status int) int {
	n := 0
	for _, r := range rs {
		if r.Method == method && strings.Contains(r.Path, pathPart) && (status == 0 || r.Status == status) {
			n++
		}
	}
	return n
}

// TestRestartWhileSubmitting: a request found "submitting" after a restart may or may not have
// reached EM. It is never sent again: if EM has a restore session for the target since the
// submission, the bot follows it to the outcome; if not, after SubmitGrace the outcome is unknown
// and an operator is told to check EM.
func TestRestartWhileSubmitting(t *testing.T) {
	for _, emHasIt := range []bool{true, false} {
		name := "EM never received it"
		if emHasIt {
			name = "EM started it"
		}
		t.Run(name, func(t *testing.T) {
			h := newHarness(t)
			h.em.SetScript(finDB01, emsim.Script{Running: 5 * time.Minute})
			id := h.requestDB01()
			r := h.submittingInStore(id)
			want := 0
			if emHasIt {
				// The POST the dead process sent, through another logon session.
				task, err := h.newEMClient().StartVMFailover(context.Background(), r.Items[0].Target.ReplicaID, r.Items[0].Target.ID, emapi.RestoreIntent{Kind: emapi.IntentLatest})
				if err != nil {
					t.Fatalf("failover through a second client: %v", err)
				}
				if task.ID == "" {
					t.Fatal("no task from the second client")
				}
				want = 1
			}
			h.restart()
			h.clock.Advance(time.Second)
			h.poll()
			if n := h.failoverPOSTs(); n != want {
				t.Fatalf("failover POSTs after restart = %d, want %d", n, want)
			}
			if emHasIt {
				got := h.wantState(id, store.Running)
				if got.Items[0].RestoreSessionID != h.em.Failovers()[0].RestoreSessionID {
					t.Fatalf("following restore session %q, want %q", got.Items[0].RestoreSessionID, h.em.Failovers()[0].RestoreSessionID)
				}
				mustContain(t, "thread", h.threadText(id), "the failover did start")
				h.clock.Advance(6 * time.Minute)
				h.poll()
				h.wantState(id, store.Succeeded)
			} else {
				h.wantState(id, store.Submitting)
				h.clock.Advance(2 * time.Minute)
				h.poll()
				h.wantState(id, store.Unknown)
				mustContain(t, "thread", h.threadText(id), "An operator must check Enterprise Manager", "I will not send it again")
			}
			h.restart()
			h.poll()
			if n := h.failoverPOSTs(); n != want {
				t.Fatalf("failover POSTs at the end = %d, want %d", n, want)
			}
		})
	}
}

// TestRestartWhileRunning: after a restart the bot logs on to EM again and resumes following
// active failovers. A task ID means something only in the logon session that created it, so the
// old task is never read again, whether or not EM would still show it: the bot follows the
// restore session (by its stored ID, or found by query when none was stored yet). An EM restart
// (tasks forgotten) is handled the same way. Nothing is ever sent again.
func TestRestartWhileRunning(t *testing.T) {
	cases := []struct {
		name           string
		taskScoped     bool
		pollFirst      bool // a poll before the restart stored the restore session's ID
		emRestart      bool // EM itself restarted as well
		wantFindByName bool
	}{
		{"task-scoped EM, session ID stored", true, true, false, false},
		{"task-scoped EM, no session ID yet", true, false, false, true},
		{"tasks readable across sessions", false, true, false, false},
		{"EM restarted too", false, true, true, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, func(c *harnessConfig) { c.emCfg.TasksAcrossSessions = !tc.taskScoped })
			h.em.SetScript(finDB01, emsim.Script{Running: 10 * time.Minute, Collect: time.Minute})
			r := h.runningDB01()
			rsID := h.em.Failovers()[0].RestoreSessionID
			if tc.pollFirst {
				h.clock.Advance(2 * time.Minute)
				h.poll()
				if got := h.wantState(r.ID, store.Running); got.Items[0].RestoreSessionID != rsID {
					t.Fatalf("stored restore session %q, want %q", got.Items[0].RestoreSessionID, rsID)
				}
			}
			logons := h.em.Logons()
			h.restart()
			if tc.emRestart {
				h.em.Forget()
			}
			mark := len(h.em.Requests())

			h.clock.Advance(3 * time.Minute)
			h.poll()
			got := h.wantState(r.ID, store.Running)
			if got.Items[0].RestoreSessionID != rsID || got.Items[0].EMProgress == 0 {
				t.Fatalf("after restart: session %q progress %d, want %q and progress", got.Items[0].RestoreSessionID, got.Items[0].EMProgress, rsID)
			}
			if h.em.Logons() != logons+1 {
				t.Errorf("logons = %d, want one more than %d", h.em.Logons(), logons)
			}
			h.clock.Advance(10 * time.Minute)
			h.poll()
			h.wantState(r.ID, store.Succeeded)

			since := h.emRequestsSince(mark)
			// The task belongs to the logon session before the restart: in the new one task-1 is
			// some other failover (or nothing), so it is never read again.
			for _, status := range []int{http.StatusOK, http.StatusNotFound} {
				if n := countRequests(since, http.MethodGet, "/tasks/"+r.Items[0].TaskID, status); n != 0 {
					t.Errorf("GET of the old session's task answered %d %d times after restart; want it never sent", status, n)
				}
			}
			if n := countRequests(since, http.MethodGet, "/restoreSessions/"+rsID, http.StatusOK); n == 0 {
				t.Error("the restore session was never read after restart")
			}
			if found := countRequests(since, http.MethodGet, "/query", http.StatusOK) > 0; found != tc.wantFindByName {
				t.Errorf("queried restore sessions: %v, want %v", found, tc.wantFindByName)
			}
			mustContain(t, "thread", h.threadText(r.ID), "Failover succeeded")
			if n := h.failoverPOSTs(); n != 1 {
				t.Fatalf("failover POSTs = %d, want 1", n)
			}
		})
	}
}

// TestRestartApprovedNotSubmitted: a request approved just before the process died is submitted
// by the next poll, exactly once, however many polls follow.
func TestRestartApprovedNotSubmitted(t *testing.T) {
	h := newHarness(t)
	id := h.requestDB01()
	h.approveInStore(id, Approver1)
	h.restart()
	if n := h.failoverPOSTs(); n != 0 {
		t.Fatalf("failover POSTs before the poll = %d, want 0", n)
	}
	h.poll()
	h.poll()
	r := h.wantState(id, store.Running)
	if r.Items[0].TaskID == "" {
		t.Fatal("no task ID stored")
	}
	h.restart()
	h.poll()
	if n := h.failoverPOSTs(); n != 1 {
		t.Fatalf("failover POSTs = %d, want 1", n)
	}
	mustContain(t, "thread", h.threadText(id), "Enterprise Manager accepted the failover: task "+r.Items[0].TaskID)
	h.wantNoButtons(id)
}

// TestRestartPending: a pending request survives a restart; its card's button still works.
func TestRestartPending(t *testing.T) {
	h := newHarness(t)
	id := h.requestDB01()
	h.restart()
	h.poll()
	h.wantState(id, store.Pending)
	h.approve(Approver1, id)
	h.idle()
	h.wantState(id, store.Running)
	if n := h.failoverPOSTs(); n != 1 {
		t.Fatalf("failover POSTs = %d, want 1", n)
	}
}
