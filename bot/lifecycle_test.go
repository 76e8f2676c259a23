package bot_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/failover-bot/failover-bot/emapi/emsim"
	"github.com/failover-bot/failover-bot/store"
)

// TestReject: Reject opens a modal asking why; an empty reason is a validation error on the
// reason block; a reason rejects the request, shows it on the card (without buttons), in the
// thread and in the audit channel, and EM receives nothing. A late Approve is told who rejected.
func TestReject(t *testing.T) {
	h := newHarness(t)
	id := h.requestDB01()
	approveValue := h.buttonValue(id, "fo_approve")

	h.click(Approver2, "fo_reject", h.buttonValue(id, "fo_reject"))
	h.idle()
	views := h.slack.CallsTo("views.open")
	if len(views) != 1 {
		t.Fatalf("views.open called %d times, want 1", len(views))
	}
	if got, _ := views[0].JSON["trigger_id"].(string); !strings.HasPrefix(got, "trig-click-") {
		t.Errorf("views.open trigger_id = %v, want the click's", got)
	}
	view, _ := json.Marshal(views[0].JSON["view"])
	mustContain(t, "reject modal", string(view), `"type":"modal"`, `"callback_id":"fo_reject_modal"`,
		`"private_metadata":"`+id+`"`, `"block_id":"fo_reject_reason"`, `"action_id":"fo_reject_reason_input"`, "fin-db01")
	h.wantState(id, store.Pending)

	for _, empty := range []string{"", "   \n "} {
		var ack struct {
			ResponseAction string            `json:"response_action"`
			Errors         map[string]string `json:"errors"`
		}
		body := h.submitReject(Approver2, id, empty)
		if err := json.Unmarshal([]byte(body), &ack); err != nil {
			t.Fatalf("empty reason %q: acknowledgement %q is not JSON: %v", empty, body, err)
		}
		if ack.ResponseAction != "errors" || ack.Errors["fo_reject_reason"] == "" {
			t.Errorf("empty reason %q: acknowledgement %s, want response_action errors keyed by fo_reject_reason", empty, body)
		}
		h.idle()
		h.wantState(id, store.Pending)
	}

	if body := h.submitReject(Approver2, id, "DC is back <soon> & fine"); strings.TrimSpace(body) != "" {
		t.Errorf("valid reject acknowledgement = %q, want an empty 200", body)
	}
	h.idle()
	r := h.wantState(id, store.Rejected)
	if r.Rejection == nil || r.Rejection.User != Approver2 || r.Rejection.Reason != "DC is back <soon> & fine" {
		t.Fatalf("rejection = %+v", r.Rejection)
	}
	h.wantNoButtons(id)
	mustContain(t, "card", h.cardJSON(id), "Rejected by <@"+Approver2+"> at 14:00 UTC", "DC is back &lt;soon&gt; &amp; fine")
	mustContain(t, "thread", h.threadText(id), "Rejected by <@"+Approver2+">", "DC is back &lt;soon&gt; &amp; fine")
	mustContain(t, "audit channel", h.auditText(), id+" rejected by <@"+Approver2+">")
	mustContain(t, "audit log", strings.Join(h.auditActions(), " "), id+":rejected:rejected")

	h.click(Approver1, "fo_approve", approveValue)
	h.idle()
	h.wantEphemeral(Approver1, "already rejected by <@"+Approver2+"> at 14:00 UTC")
	h.wantState(id, store.Rejected)
	if n := h.failoverPOSTs(); n != 0 {
		t.Fatalf("failover POSTs = %d, want 0", n)
	}
}

// TestRejectRefused: only approvers reject, and only pending requests.
func TestRejectRefused(t *testing.T) {
	t.Run("non-approver gets no dialog", func(t *testing.T) {
		h := newHarness(t)
		id := h.requestDB01()
		h.click(Outsider, "fo_reject", id)
		h.idle()
		if n := len(h.slack.CallsTo("views.open")); n != 0 {
			t.Errorf("views.open called %d times, want 0", n)
		}
		h.wantEphemeral(Outsider, "not an authorised approver")
		h.wantState(id, store.Pending)
	})
	t.Run("non-approver's forged submission changes nothing", func(t *testing.T) {
		h := newHarness(t)
		id := h.requestDB01()
		h.submitReject(Outsider, id, "not mine to reject")
		h.idle()
		h.wantState(id, store.Pending)
	})
	t.Run("approved request", func(t *testing.T) {
		h := newHarness(t)
		r := h.runningDB01()
		h.click(Approver2, "fo_reject", r.ID)
		h.idle()
		if n := len(h.slack.CallsTo("views.open")); n != 0 {
			t.Errorf("views.open called %d times, want 0", n)
		}
		h.wantEphemeral(Approver2, "already approved by <@"+Approver1+"> at 14:00 UTC")
		h.submitReject(Approver2, r.ID, "too late")
		h.idle()
		h.wantState(r.ID, store.Running)
	})
}

// TestExpiry: a request nobody approves within REQUEST_TTL expires at the next poll: buttons
// gone, the thread says nothing was sent, and a late approval is refused.
func TestExpiry(t *testing.T) {
	h := newHarness(t)
	id := h.requestDB01()
	value := h.buttonValue(id, "fo_approve")

	h.clock.Advance(59 * time.Minute)
	h.poll()
	h.wantState(id, store.Pending)

	h.clock.Advance(time.Minute)
	h.poll()
	h.wantState(id, store.Expired)
	h.wantNoButtons(id)
	mustContain(t, "card", h.cardJSON(id), "Expired at 15:00 UTC")
	mustContain(t, "thread", h.threadText(id), "expired", "Nothing was sent to Enterprise Manager")
	mustContain(t, "audit channel", h.auditText(), id+" expired")

	h.click(Approver1, "fo_approve", value)
	h.idle()
	h.wantEphemeral(Approver1, id+" is already expired at 15:00 UTC")
	h.wantState(id, store.Expired)
	h.poll()
	if n := h.failoverPOSTs(); n != 0 {
		t.Fatalf("failover POSTs = %d, want 0", n)
	}
}

// TestCancelPending: the requester withdraws a pending request; nobody else can.
func TestCancelPending(t *testing.T) {
	h := newHarness(t)
	id := h.requestDB01()
	value := h.buttonValue(id, "fo_approve")

	for _, other := range []string{Approver1, Outsider} {
		mustContain(t, "cancel by "+other, h.command(other, "cancel "+id), "Only the person who requested "+id)
		h.wantState(id, store.Pending)
	}

	mustContain(t, "cancel by the requester", h.command(Requester, "cancel "+id), id+" is withdrawn", "Nothing was sent")
	h.idle()
	h.wantState(id, store.Withdrawn)
	h.wantNoButtons(id)
	mustContain(t, "card", h.cardJSON(id), "Withdrawn by <@"+Requester+">")
	mustContain(t, "audit channel", h.auditText(), id+" withdrawn by <@"+Requester+">")

	h.click(Approver1, "fo_approve", value)
	h.idle()
	h.wantEphemeral(Approver1, "already withdrawn by <@"+Requester+">")
	mustContain(t, "cancel again", h.command(Requester, "cancel "+id), "nothing to cancel")
	if n := h.failoverPOSTs(); n != 0 {
		t.Fatalf("failover POSTs = %d, want 0", n)
	}
}

// TestStopRunning: the requester or an approver stops a running failover through the stop
// dialog: the request goes stopping, EM receives exactly one DELETE of the task, and the next
// poll records how it ended (which may be success, when EM had already finished). The thread
// says it is a best-effort stop, not an undo.
func TestStopRunning(t *testing.T) {
	cases := []struct {
		name   string
		by     string
		script emsim.Script
		want   store.State
	}{
		{"by the requester while EM works", Requester, emsim.Script{Running: 10 * time.Minute}, store.Stopped},
		{"by an approver while EM works", Approver2, emsim.Script{Running: 10 * time.Minute}, store.Stopped},
		{"after EM already finished", Requester, emsim.Script{Running: time.Minute, Collect: time.Minute}, store.Succeeded},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.em.SetDefaultScript(tc.script)
			r := h.runningDB01()
			h.clock.Advance(2 * time.Minute) // past the short script's run

			mustContain(t, "stop answer", h.command(tc.by, "stop "+r.ID), "Confirm the stop of "+r.ID)
			h.idle()
			meta, _ := h.stopDialog()
			h.submitStop(tc.by, meta, "operator error")
			h.wantState(r.ID, store.Stopping)
			if n := h.em.Count(http.MethodDelete, "/tasks/"+r.Items[0].TaskID); n != 1 {
				t.Fatalf("DELETE /tasks/%s sent %d times, want 1", r.Items[0].TaskID, n)
			}
			mustContain(t, "stop again", h.command(tc.by, "stop "+r.ID), "already being stopped")

			h.poll()
			h.wantState(r.ID, tc.want)
			if n := h.em.Count(http.MethodDelete, "/tasks/"); n != 1 {
				t.Fatalf("DELETEs of tasks = %d, want 1", n)
			}
			mustContain(t, "thread", h.threadText(r.ID), "asked Enterprise Manager to stop task "+r.Items[0].TaskID, "best-effort stop, not an undo")
			mustContain(t, "audit channel", h.auditText(), r.ID, "<@"+tc.by+">", "EM task "+r.Items[0].TaskID)
			mustContain(t, "stop after the end", h.command(tc.by, "stop "+r.ID), "nothing to stop", "REST API cannot undo")
			if n := h.failoverPOSTs(); n != 1 {
				t.Fatalf("failover POSTs = %d, want 1", n)
			}
		})
	}
}

// TestStopRunningRefused: someone who is neither the requester nor an approver cannot stop a
// running failover, and cancel never stops one.
func TestStopRunningRefused(t *testing.T) {
	h := newHarness(t)
	r := h.runningDB01()
	for _, who := range []string{Outsider, Guest} {
		mustContain(t, "stop by "+who, h.command(who, "stop "+r.ID), "Only the requester or an approver can stop "+r.ID)
	}
	mustContain(t, "cancel of a running failover", h.command(Requester, "cancel "+r.ID), "nothing to withdraw", "/failover stop "+r.ID)
	h.idle()
	h.wantState(r.ID, store.Running)
	if n := h.em.Count(http.MethodDelete, "/tasks/"); n != 0 {
		t.Fatalf("DELETEs of tasks = %d, want 0", n)
	}
	if n := len(h.slack.CallsTo("views.open")); n != 0 {
		t.Fatalf("%d dialogs opened for refused stops, want 0", n)
	}
}
