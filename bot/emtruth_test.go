package bot_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/failover-bot/failover-bot/bot/slackfake"
	"github.com/failover-bot/failover-bot/emapi/emsim"
	"github.com/failover-bot/failover-bot/store"
)

// Tests of issue 9: the thread says what Enterprise Manager really did. Each runs the real bot
// against the EM simulator and the Slack fake over HTTP.

// TestReLogonNeverFollowsAnotherSessionsTask: EM numbers tasks per logon session, so after a
// re-logon "task-1" is another failover. The first request's task is never read (nor stopped) in
// the new session; it is followed through its own restore session, and the two outcomes stay
// apart.
func TestReLogonNeverFollowsAnotherSessionsTask(t *testing.T) {
	h := newHarness(t)
	h.em.SetScript(finDB01, emsim.Script{Running: 10 * time.Minute, Result: emsim.ResultSuccess})
	h.em.SetScript(finApp01ID(t, h), emsim.Script{Running: 10 * time.Minute, Result: emsim.ResultFailed, Message: "datastore full"})
	a := h.runningDB01()
	if a.Items[0].TaskID != "task-1" || a.Items[0].EMSession == "" {
		t.Fatalf("first request: task %q in logon session %q, want task-1 with its session recorded", a.Items[0].TaskID, a.Items[0].EMSession)
	}

	h.em.ExpireSessions() // EM forgets the logon session: the next call logs on again
	id := h.request(Requester, `vm CDP-Finance fin-app01 --reason "primary DC down"`)
	h.approve(Approver1, id)
	h.idle()
	b := h.wantState(id, store.Running)
	if b.Items[0].TaskID != "task-1" || b.Items[0].EMSession == "" || b.Items[0].EMSession == a.Items[0].EMSession {
		t.Fatalf("second request: task %q in session %q (first: %q), want task-1 of a new session", b.Items[0].TaskID, b.Items[0].EMSession, a.Items[0].EMSession)
	}
	fo := h.em.Failovers()
	h.clock.Advance(5 * time.Minute)
	h.poll()
	h.clock.Advance(10 * time.Minute)
	h.poll()

	ra, rb := h.wantState(a.ID, store.Succeeded), h.wantState(b.ID, store.Failed)
	if ra.Items[0].RestoreSessionID != fo[0].RestoreSessionID || rb.Items[0].RestoreSessionID != fo[1].RestoreSessionID {
		t.Errorf("restore sessions %s / %s, want %s / %s", ra.Items[0].RestoreSessionID, rb.Items[0].RestoreSessionID, fo[0].RestoreSessionID, fo[1].RestoreSessionID)
	}
	mustNotContain(t, a.ID+"'s thread", h.threadText(a.ID), "datastore full")
	mustContain(t, b.ID+"'s thread", h.threadText(b.ID), "datastore full")
}

// finApp01ID looks fin-app01 up in the demo inventory.
func finApp01ID(t *testing.T, h *harness) string {
	t.Helper()
	for _, r := range demo.Replicas {
		for _, vm := range r.VMs {
			if vm.Name == "fin-app01" {
				return vm.ID
			}
		}
	}
	t.Fatal("fin-app01 not in the demo inventory")
	return ""
}

// TestStopRefusedForAnotherSessionsTask: a task from an earlier logon session cannot be stopped
// through this one; the bot says so and sends nothing (a DELETE of task-1 here would stop
// someone else's failover).
func TestStopRefusedForAnotherSessionsTask(t *testing.T) {
	h := newHarness(t)
	h.em.SetScript(finDB01, emsim.Script{Running: 10 * time.Minute})
	r := h.runningDB01()
	h.em.ExpireSessions()
	h.poll() // logs on again while following
	mustContain(t, "stop answer", h.command(Requester, "stop "+r.ID), "earlier Enterprise Manager logon session", "Veeam console")
	h.idle()
	if n := h.em.Count(http.MethodDelete, "/tasks/"); n != 0 {
		t.Errorf("%d DELETE /tasks sent, want 0", n)
	}
	h.wantState(r.ID, store.Running)
}

// TestOutcomeCombinations: every way EM can report (or fail to report) how a failover ended.
func TestOutcomeCombinations(t *testing.T) {
	cases := []struct {
		name   string
		script emsim.Script
		// plant, when set, adds another restore session of the same VM after the submission.
		plant *emsim.RestoreSessionSeed
		// steps advance the clock and poll; midState is checked after the first step.
		steps    []time.Duration
		midState store.State
		want     store.State
		thread   []string
	}{
		{name: "no Related link: found by query", script: emsim.Script{Running: 2 * time.Minute, NoRelatedLink: true},
			steps: []time.Duration{time.Minute, 5 * time.Minute}, midState: store.Running, want: store.Succeeded, thread: []string{"Failover succeeded"}},
		{name: "no Related link: a file-level restore of the same VM is not adopted",
			script: emsim.Script{Running: 2 * time.Minute, NoRelatedLink: true, Result: emsim.ResultWarning, Message: "NIC reconfigured"},
			plant:  &emsim.RestoreSessionSeed{VMName: "fin-db01", JobType: "FileLevelRestore", State: "Stopped", Result: "Failed"},
			steps:  []time.Duration{time.Minute, 5 * time.Minute}, midState: store.Running, want: store.Warning, thread: []string{"NIC reconfigured"}},
		{name: "task finishes early while the session works", script: emsim.Script{Running: 10 * time.Minute, TaskFinishesEarly: true},
			steps: []time.Duration{5 * time.Minute, 10 * time.Minute}, midState: store.Running, want: store.Succeeded, thread: []string{"Failover succeeded"}},
		{name: "asynchronous failure: task failed, no session", script: emsim.Script{Running: time.Minute, AsyncFailure: "Replica is not in the Ready state"},
			steps: []time.Duration{30 * time.Second, 2 * time.Minute}, midState: store.Running, want: store.Failed, thread: []string{"Failover failed", "Replica is not in the Ready state"}},
		{name: "OperationFinished is not done", script: emsim.Script{Running: time.Minute, Collect: 10 * time.Minute, NoRelatedLink: true},
			steps: []time.Duration{5 * time.Minute, 10 * time.Minute}, midState: store.Running, want: store.Succeeded, thread: []string{"Failover succeeded"}},
		{name: "session Stopped with Result None: wait, then say so", script: emsim.Script{Running: time.Minute, StoppedNoResult: true},
			steps: []time.Duration{2 * time.Minute, 5 * time.Minute, 11 * time.Minute}, midState: store.Running, want: store.Unknown,
			thread: []string{"stopped without a result (Result None)", "I kept asking for 10m0s", "An operator must check Enterprise Manager"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.em.SetScript(finDB01, tc.script)
			r := h.runningDB01()
			if tc.plant != nil {
				seed := *tc.plant
				seed.Created = h.clock.Now().Add(10 * time.Second)
				h.em.AddRestoreSession(seed)
			}
			for i, d := range tc.steps {
				h.clock.Advance(d)
				h.poll()
				if i == 0 {
					h.wantState(r.ID, tc.midState)
				}
			}
			got := h.wantState(r.ID, tc.want)
			mustContain(t, "thread", h.threadText(r.ID), tc.thread...)
			if tc.script.AsyncFailure == "" {
				if fo := h.em.Failovers(); got.Items[0].RestoreSessionID != fo[0].RestoreSessionID {
					t.Errorf("restore session %q, want the failover's %q", got.Items[0].RestoreSessionID, fo[0].RestoreSessionID)
				}
			}
			if n := h.failoverPOSTs(); n != 1 {
				t.Errorf("failover POSTs = %d, want 1", n)
			}
		})
	}
}

// TestReconcileQueriesOncePerCycle: after lost answers, every submission is reconciled from one
// restore-session query per poll cycle, not one listing (and a read per session) per request.
func TestReconcileQueriesOncePerCycle(t *testing.T) {
	h := newHarness(t, func(c *harnessConfig) { c.emClientTimeout = 200 * time.Millisecond })
	vms := []string{"fin-db01", "fin-app01"}
	var ids []string
	for _, vm := range vms {
		ids = append(ids, h.request(Requester, `vm CDP-Finance `+vm+` --reason "site down"`))
	}
	h.em.DropResponses(len(ids)) // EM starts both failovers; neither answer arrives
	for _, id := range ids {
		h.approve(Approver1, id)
	}
	h.idle()
	for _, id := range ids {
		h.wantState(id, store.Submitting)
	}
	before := h.em.Count(http.MethodGet, "/query")
	h.poll()
	if n := h.em.Count(http.MethodGet, "/query") - before; n != 1 {
		t.Errorf("%d restore-session queries in one cycle for %d requests, want 1", n, len(ids))
	}
	if n := h.em.Count(http.MethodGet, "/restoreSessions?") + h.em.Count(http.MethodGet, "/restoreSessions HTTP"); n != 0 {
		t.Errorf("%d listings of /restoreSessions, want none (the query replaces them)", n)
	}
	for _, id := range ids {
		h.wantState(id, store.Running)
		mustContain(t, id+"'s thread", h.threadText(id), "the failover did start")
	}
	if n := h.failoverPOSTs(); n != len(ids) {
		t.Errorf("failover POSTs = %d, want %d", n, len(ids))
	}
}

// TestSecondFailoverOfFailedOverVM: EM refuses to fail over a VM that is no longer Ready; the
// second request fails with EM's words in its thread, and the first is untouched.
func TestSecondFailoverOfFailedOverVM(t *testing.T) {
	h := newHarness(t)
	h.em.SetScript(finDB01, emsim.Script{Running: time.Minute})
	first := h.runningDB01()
	h.clock.Advance(2 * time.Minute)
	h.poll()
	h.wantState(first.ID, store.Succeeded)

	id := h.requestDB01()
	h.approve(Approver1, id)
	h.idle()
	h.wantState(id, store.Failed)
	mustContain(t, "thread", h.threadText(id), "The failover was not started.", "Failover state")
	h.wantState(first.ID, store.Succeeded)
	if n := h.failoverPOSTs(); n != 2 {
		t.Errorf("failover POSTs = %d, want 2 (the second refused by EM)", n)
	}
}

// stopDialog returns the last stop dialog opened for user's trigger: its private metadata and
// its text.
func (h *harness) stopDialog() (meta, text string) {
	h.t.Helper()
	calls := h.slack.CallsTo("views.open")
	for i := len(calls) - 1; i >= 0; i-- {
		v, _ := calls[i].JSON["view"].(map[string]any)
		if v == nil {
			if raw := calls[i].Values.Get("view"); raw != "" {
				_ = json.Unmarshal([]byte(raw), &v)
			}
		}
		if v != nil && v["callback_id"] == "fo_stop_modal" {
			b, _ := json.Marshal(v)
			meta, _ = v["private_metadata"].(string)
			return meta, string(b)
		}
	}
	h.t.Fatalf("no stop dialog was opened")
	return "", ""
}

// submitStop submits the stop dialog as user.
func (h *harness) submitStop(user, meta, reason string) string {
	h.t.Helper()
	n := h.clicks.Add(1)
	payload := map[string]any{
		"type": "view_submission", "user": map[string]any{"id": user}, "team": map[string]any{"id": slackfake.TeamID},
		"trigger_id": fmt.Sprintf("trig-view-%d", n),
		"view": map[string]any{"callback_id": "fo_stop_modal", "private_metadata": meta,
			"state": map[string]any{"values": map[string]any{"fo_stop_reason": map[string]any{
				"fo_stop_reason_input": map[string]any{"type": "plain_text_input", "value": reason}}}}},
	}
	b, _ := json.Marshal(payload)
	code, body := h.post("/slack/interactions", url.Values{"payload": {string(b)}})
	if code != http.StatusOK {
		h.t.Fatalf("stop submission: status %d", code)
	}
	h.idle()
	return body
}

// TestStopIsDeliberate: cancel never stops a running failover; stop opens a dialog that says
// there is no undo, and only its submission (with a reason) sends DELETE, in the task's session.
// Afterwards the outcome is what EM reports.
func TestStopIsDeliberate(t *testing.T) {
	h := newHarness(t)
	h.em.SetScript(finDB01, emsim.Script{Running: 10 * time.Minute})
	r := h.runningDB01()
	mustContain(t, "cancel of a running failover", h.command(Requester, "cancel "+r.ID), "nothing to withdraw", "/failover stop "+r.ID)
	mustContain(t, "stop by an outsider", h.command(Outsider, "stop "+r.ID), "Only the requester or an approver can stop")
	h.idle()
	if n := h.em.Count(http.MethodDelete, "/tasks/"); n != 0 {
		t.Fatalf("%d DELETEs after cancel and an outsider's stop, want 0", n)
	}
	if got := h.cardButtons(r.ID); !strings.Contains(strings.Join(got, " "), "fo_stop") {
		t.Errorf("running card buttons %v, want a Stop button", got)
	}

	mustContain(t, "stop answer", h.command(Approver2, "stop "+r.ID), "Confirm the stop", "Nothing is stopped until you submit it")
	h.idle()
	meta, text := h.stopDialog()
	mustContain(t, "stop dialog", text, "fin-db01", "no undo", "EM task task-1")
	if n := h.em.Count(http.MethodDelete, "/tasks/"); n != 0 {
		t.Fatalf("%d DELETEs before the dialog was submitted, want 0", n)
	}
	if body := h.submitStop(Approver2, meta, "  "); !strings.Contains(body, "fo_stop_reason") {
		t.Errorf("a stop without a reason was accepted: %s", body)
	}
	h.submitStop(Approver2, meta, "wrong restore point chosen")
	h.wantState(r.ID, store.Stopping)
	if n := h.em.Count(http.MethodDelete, "/tasks/task-1"); n != 1 {
		t.Fatalf("%d DELETE /tasks/task-1, want 1", n)
	}
	h.clock.Advance(time.Minute)
	h.poll()
	h.wantState(r.ID, store.Stopped)
	mustContain(t, "thread", h.threadText(r.ID), "asked Enterprise Manager to stop task task-1", "wrong restore point chosen", "Stopped")
	mustContain(t, "audit channel", h.auditText(), r.ID)
}

// TestStopNeedsASecondPerson: with StopApprovals 2 the first dialog only records the request;
// the same person cannot confirm it; a second authorised person's dialog sends the stop.
func TestStopNeedsASecondPerson(t *testing.T) {
	h := newHarness(t, func(c *harnessConfig) { c.opt.StopApprovals = 2 })
	h.em.SetScript(finDB01, emsim.Script{Running: 10 * time.Minute})
	r := h.runningDB01()
	h.command(Requester, "stop "+r.ID)
	h.idle()
	meta, text := h.stopDialog()
	mustContain(t, "first dialog", text, "A second person")
	h.submitStop(Requester, meta, "site B is back")
	h.wantState(r.ID, store.Running)
	mustContain(t, "thread", h.threadText(r.ID), "asks to stop this failover", "Nothing is stopped yet")
	mustContain(t, "card", h.cardJSON(r.ID), "Confirm stop", "waiting for a second person")
	mustContain(t, "same person again", h.command(Requester, "stop "+r.ID), "a second person")
	h.idle()
	if n := h.em.Count(http.MethodDelete, "/tasks/"); n != 0 {
		t.Fatalf("%d DELETEs with one person, want 0", n)
	}
	h.click(Approver1, "fo_stop", r.ID)
	h.idle()
	meta, text = h.stopDialog()
	mustContain(t, "second dialog", text, "asked to stop it", "site B is back")
	h.submitStop(Approver1, meta, "agreed")
	h.wantState(r.ID, store.Stopping)
	if n := h.em.Count(http.MethodDelete, "/tasks/task-1"); n != 1 {
		t.Fatalf("%d DELETEs after the second person, want 1", n)
	}
	if got := h.get(r.ID).Stop; got == nil || got.User != Requester || got.ConfirmedBy != Approver1 {
		t.Errorf("stored stop %+v, want asked by the requester and confirmed by Approver1", got)
	}
}

// TestStopThatOnlyRemovesTheTask: where DELETE only drops the task handle, EM finishes the
// failover anyway, and the thread reports that, not the stop that was asked for.
func TestStopThatOnlyRemovesTheTask(t *testing.T) {
	h := newHarness(t, func(c *harnessConfig) { c.emCfg.DeleteOnlyRemoves = true })
	h.em.SetScript(finDB01, emsim.Script{Running: 10 * time.Minute})
	r := h.runningDB01()
	h.clock.Advance(time.Minute)
	h.poll() // learns the restore session
	h.command(Approver1, "stop "+r.ID)
	h.idle()
	meta, _ := h.stopDialog()
	h.submitStop(Approver1, meta, "stop it")
	h.wantState(r.ID, store.Stopping)
	h.clock.Advance(20 * time.Minute)
	h.poll()
	h.wantState(r.ID, store.Succeeded)
	mustContain(t, "thread", h.threadText(r.ID), "finished the failover despite the stop request", "Failover succeeded")
}
