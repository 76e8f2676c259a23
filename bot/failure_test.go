package bot_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/failover-bot/failover-bot/emapi/emsim"
	"github.com/failover-bot/failover-bot/store"
)

// fin-db01's ID in the demo inventory.
const finDB01 = "e809a086-2562-4a0f-a9a8-9c115ff8f0ba"

// TestFailoverRefusedByEM: when EM answers the failover POST with an error, the failover did not
// start: the request fails, and the thread, card and audit channel carry one human sentence
// (with EM's message). The POST is never repeated.
func TestFailoverRefusedByEM(t *testing.T) {
	cases := []struct {
		name   string
		script emsim.Script
		want   []string
	}{
		{"403 no Portal Administrator role", emsim.Script{RejectStart: 403, RejectMessage: "Access denied"},
			[]string{"lacks the Portal Administrator role"}},
		{"404 replica gone", emsim.Script{RejectStart: 404, RejectMessage: "CDP replica VM was not found"},
			[]string{"does not know that object (404)", "CDP replica VM was not found"}},
		{"400 bad request", emsim.Script{RejectStart: 400, RejectMessage: "Replica is not in the Ready state"},
			[]string{"Replica is not in the Ready state"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.em.SetScript(finDB01, tc.script)
			id := h.requestDB01()
			h.approve(Approver1, id)
			h.idle()

			r := h.wantState(id, store.Failed)
			if r.Items[0].TaskID != "" {
				t.Errorf("task ID %q stored for a failover EM refused", r.Items[0].TaskID)
			}
			mustContain(t, "thread", h.threadText(id), append([]string{"The failover was not started."}, tc.want...)...)
			mustContain(t, "card", h.cardJSON(id), "Failover failed")
			h.wantNoButtons(id)
			mustContain(t, "audit channel", h.auditText(), id+" failed to start")
			mustContain(t, "audit log", strings.Join(h.auditActions(), " "), id+":error:failed")

			h.poll()
			h.wantState(id, store.Failed)
			if n := h.failoverPOSTs(); n != 1 {
				t.Fatalf("failover POSTs = %d, want 1", n)
			}
		})
	}
}

// TestNonAdminAccount: without the Portal Administrator role EM refuses the name lookups, so
// the slash command itself says so and nothing is stored.
func TestNonAdminAccount(t *testing.T) {
	h := newHarness(t, func(c *harnessConfig) { c.emCfg.Role = emsim.RolePortalUser })
	for _, text := range []string{`vm CDP-Finance fin-db01 --reason "primary DC down"`, `vapp erp-vapp --reason "site lost"`} {
		mustContain(t, "answer to "+text, h.command(Requester, text), "Portal Administrator role", "Nothing was recorded")
	}
	h.wantNothingStored()
}

// TestUnknownOrAmbiguousNames: a name EM does not know, or knows twice, is the sender's mistake:
// the answer lists the candidates and nothing is stored or sent.
func TestUnknownOrAmbiguousNames(t *testing.T) {
	inv := emsim.DemoInventory()
	inv.Replicas[1].VMs = append(inv.Replicas[1].VMs, emsim.VM{ID: "11111111-2222-4333-8444-555555555555", Name: "WEB01"})
	inv.VApps = append(inv.VApps, emsim.VApp{ID: "66666666-7777-4888-9999-000000000000", Name: "erp-vapp"})
	cases := []struct {
		name string
		text string
		want []string
	}{
		{"unknown replica", `vm CDP-Nope fin-db01 --reason "x"`,
			[]string{"No CDP replica is named “CDP-Nope”", "`CDP-Finance` (`7665222c-2e99-4a3f-b892-1827ba8d1eee`)", "`CDP-Web`"}},
		{"unknown VM", `vm CDP-Finance fin-db99 --reason "x"`,
			[]string{"No VM is named “fin-db99”", "`fin-db01`", "`fin-app01`", "`fin-web01`"}},
		{"VM of another replica", `vm CDP-Finance web02 --reason "x"`,
			[]string{"VM “web02” is not in CDP replica *CDP-Finance*: web02 is in *CDP-Web*", "`/failover vm CDP-Web web02 --reason"}},
		{"unknown vApp", `vapp crm-vapp --reason "x"`,
			[]string{"No vApp is named “crm-vapp”", "`erp-vapp`"}},
		{"ambiguous VM (names differ only in case)", `vm CDP-Web web01 --reason "x"`,
			[]string{"“web01” matches 2 VMs", "`web01` (`fc2d6425-e96d-44e7-9d96-b7af5991adb3`)", "`WEB01` (`11111111-2222-4333-8444-555555555555`)", "Use the ID"}},
		{"ambiguous vApp", `vapp erp-vapp --reason "x"`,
			[]string{"“erp-vapp” matches 2 vApps", "5c4b3a29-1807-4f6e-9d5c-4b3a29180f7e", "66666666-7777-4888-9999-000000000000"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, func(c *harnessConfig) { c.inventory = &inv })
			ack := h.command(Requester, tc.text)
			mustContain(t, "answer", ack, append(tc.want, "Nothing was recorded")...)
			h.wantNothingStored()
		})
	}
	t.Run("the ID of an ambiguous name works", func(t *testing.T) {
		h := newHarness(t, func(c *harnessConfig) { c.inventory = &inv })
		id := h.request(Requester, `vm CDP-Web 11111111-2222-4333-8444-555555555555 --reason "x"`)
		if r := h.get(id); r.Items[0].Target.Name != "WEB01" {
			t.Fatalf("target = %+v, want WEB01", r.Items[0].Target)
		}
	})
}

// TestTaskOutcomes: EM's verdict on a failover that did start reaches the request, the thread
// (with EM's message) and the card.
func TestTaskOutcomes(t *testing.T) {
	cases := []struct {
		name   string
		script emsim.Script
		want   store.State
		thread []string
		card   string
	}{
		{"failed", emsim.Script{Running: 2 * time.Minute, Result: emsim.ResultFailed, Message: "Replica VM disk is missing on datastore ds-02"},
			store.Failed, []string{"Failover failed", "Replica VM disk is missing on datastore ds-02"}, "Failover failed"},
		{"warning", emsim.Script{Running: 2 * time.Minute, Result: emsim.ResultWarning, Message: "Network mapping skipped for NIC 2"},
			store.Warning, []string{"finished with warnings", "Network mapping skipped for NIC 2"}, "Failover finished with warnings"},
		{"success", emsim.Script{Running: 2 * time.Minute, Result: emsim.ResultSuccess},
			store.Succeeded, []string{"Failover succeeded"}, "Failover succeeded"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.em.SetScript(finDB01, tc.script)
			r := h.runningDB01()
			h.clock.Advance(time.Minute)
			h.poll()
			h.wantState(r.ID, store.Running)
			h.clock.Advance(2 * time.Minute)
			h.poll()
			got := h.wantState(r.ID, tc.want)
			if got.FinishedAt.IsZero() {
				t.Error("FinishedAt not set")
			}
			mustContain(t, "thread", h.threadText(r.ID), tc.thread...)
			mustContain(t, "card", h.cardJSON(r.ID), tc.card)
			mustContain(t, "audit channel", h.auditText(), r.ID+" EM reported ")
			h.poll() // nothing more to follow
			if n := h.failoverPOSTs(); n != 1 {
				t.Fatalf("failover POSTs = %d, want 1", n)
			}
		})
	}
}

// TestFailoverAnswerLost: when the failover POST gets no answer (timeout, dropped connection or
// an answer lost after EM did the work), EM may or may not have started it. The request stays
// submitting and is never sent again; the poller follows the restore session if EM created one,
// and otherwise, after SubmitGrace, declares the outcome unknown and tells an operator to check.
func TestFailoverAnswerLost(t *testing.T) {
	cases := []struct {
		name      string
		fault     func(h *harness)
		started   bool // EM did create the failover
		afterPost func(h *harness)
	}{
		{"timeout", func(h *harness) { h.em.SetLatency(time.Minute) }, false, func(h *harness) { h.em.SetLatency(0) }},
		{"dropped connection", func(h *harness) { h.em.DropConnections(1) }, false, nil},
		{"answer lost after EM started it", func(h *harness) { h.em.DropResponses(1) }, true, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, func(c *harnessConfig) {
				c.emClientTimeout = 200 * time.Millisecond
				c.opt.SubmitGrace = 2 * time.Minute
			})
			h.em.SetScript(finDB01, emsim.Script{Running: 5 * time.Minute})
			id := h.requestDB01()
			tc.fault(h)
			h.approve(Approver1, id)
			h.idle()
			if tc.afterPost != nil {
				tc.afterPost(h)
			}
			wantPOSTs := func() {
				t.Helper()
				if n := h.failoverPOSTs(); n != 1 {
					t.Fatalf("failover POSTs = %d, want exactly 1", n)
				}
			}
			wantPOSTs()
			h.wantState(id, store.Submitting)
			mustContain(t, "thread", h.threadText(id), "got no answer from Enterprise Manager", "I will not send it again")

			h.poll()
			wantPOSTs()
			if tc.started {
				r := h.wantState(id, store.Running)
				if r.Items[0].RestoreSessionID != h.em.Failovers()[0].RestoreSessionID {
					t.Fatalf("restore session %q, want EM's %q", r.Items[0].RestoreSessionID, h.em.Failovers()[0].RestoreSessionID)
				}
				mustContain(t, "thread", h.threadText(id), "the failover did start")
				h.clock.Advance(6 * time.Minute)
				h.poll()
				h.wantState(id, store.Succeeded)
				wantPOSTs()
				return
			}
			h.wantState(id, store.Submitting) // within SubmitGrace: EM may still show it
			h.clock.Advance(time.Minute)
			h.poll()
			h.wantState(id, store.Submitting)
			h.clock.Advance(time.Minute)
			h.poll()
			h.wantState(id, store.Unknown)
			mustContain(t, "thread", h.threadText(id), "An operator must check Enterprise Manager", "I will not send it again")
			mustContain(t, "card", h.cardJSON(id), "Outcome unknown")
			mustContain(t, "audit channel", h.auditText(), id+" outcome unknown")
			h.clock.Advance(time.Hour)
			h.poll()
			h.wantState(id, store.Unknown)
			wantPOSTs()
		})
	}
}

// TestReconcileDoesNotAdoptAnotherRequestsSession: fin-db01 was failed over once (it failed at
// once, or is still running), the requester asked again, and the second POST's connection dropped
// before EM saw it. EM's only restore session for fin-db01 is the first request's: the second must
// not adopt it and report its outcome as its own; it stays unresolved and ends unknown after
// SubmitGrace. (A poll may handle both requests in the same cycle, before the first request's
// session ID is recorded.)
func TestReconcileDoesNotAdoptAnotherRequestsSession(t *testing.T) {
	cases := []struct {
		name        string
		firstFailed bool // the first failover failed and was polled to its outcome before the retry
		restart     bool
	}{
		{"retry after a failed failover", true, false},
		{"retry after a failed failover, with a restart", true, true},
		// A second request while the first runs is refused outright (one active request per
		// target): TestOneActiveRequestPerTarget.
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, func(c *harnessConfig) { c.emClientTimeout = 200 * time.Millisecond })
			script := emsim.Script{Running: 10 * time.Minute}
			if tc.firstFailed {
				script = emsim.Script{Running: 20 * time.Second, Result: emsim.ResultFailed, Message: "Replica VM is locked"}
			}
			h.em.SetScript(finDB01, script)
			first := h.runningDB01()
			if tc.firstFailed {
				h.clock.Advance(30 * time.Second)
				h.poll()
				h.wantState(first.ID, store.Failed)
			}

			second := h.request(Requester, `vm CDP-Finance fin-db01 --reason "try again"`)
			h.em.DropConnections(1)
			h.approve(Approver1, second)
			h.idle()
			h.wantState(second, store.Submitting)
			if tc.restart {
				h.restart()
			}
			for range 2 {
				h.clock.Advance(30 * time.Second)
				h.poll()
				r := h.wantState(second, store.Submitting)
				if r.Items[0].RestoreSessionID != "" {
					t.Fatalf("%s adopted restore session %s of %s", second, r.Items[0].RestoreSessionID, first.ID)
				}
			}
			if !tc.firstFailed {
				if got := h.wantState(first.ID, store.Running); got.Items[0].RestoreSessionID != h.em.Failovers()[0].RestoreSessionID {
					t.Fatalf("%s follows session %q, want its own %q", first.ID, got.Items[0].RestoreSessionID, h.em.Failovers()[0].RestoreSessionID)
				}
			}
			h.clock.Advance(2 * time.Minute)
			h.poll()
			h.wantState(second, store.Unknown)
			mustNotContain(t, "thread of "+second, h.threadText(second), "the failover did start", "Replica VM is locked")
			if n := h.failoverPOSTs(); n != 2 {
				t.Fatalf("failover POSTs = %d, want 2 (one per request)", n)
			}
		})
	}
}

// TestOneActiveRequestPerTarget: a second request for a VM that an active request holds is
// refused with the holder named and nothing recorded, whether the first waits for approval or
// runs; once the first has finished, the VM can be asked for again.
func TestOneActiveRequestPerTarget(t *testing.T) {
	h := newHarness(t)
	h.em.SetScript(finDB01, emsim.Script{Running: time.Minute, Result: emsim.ResultFailed, Message: "datastore full"})
	id := h.requestDB01()
	again := func(what string) {
		t.Helper()
		ack := h.command(Approver2, `vm CDP-Finance fin-db01 --reason "also asking"`)
		mustContain(t, what, ack, "fin-db01 already has an active request: *"+id+"*", "/failover status "+id, "Nothing was recorded")
		mustNotContain(t, what, ack, "Recorded *FO-2*")
	}
	again("while pending")
	h.approve(Approver1, id)
	h.idle()
	h.wantState(id, store.Running)
	again("while running")
	if _, err := h.st.Get(context.Background(), "FO-2"); err == nil {
		t.Fatal("FO-2 exists: a second request for fin-db01 was recorded")
	}
	h.clock.Advance(2 * time.Minute)
	h.poll()
	h.wantState(id, store.Failed)
	second := h.request(Requester, `vm CDP-Finance fin-db01 --reason "retry after datastore full"`)
	if second != "FO-2" {
		t.Fatalf("retry after the end recorded as %s", second)
	}
	if n := h.failoverPOSTs(); n != 1 {
		t.Fatalf("failover POSTs = %d, want 1", n)
	}
}
