package bot_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/failover-bot/failover-bot/bot"
	"github.com/failover-bot/failover-bot/bot/slackfake"
	"github.com/failover-bot/failover-bot/emapi/emsim"
	"github.com/failover-bot/failover-bot/store"
)

// TestReplicaRequestEndToEnd: /failover replica over 51 VMs with one excepted is one request of
// 50 items, one card and one approval; 50 POSTs follow, never more than the cap at once, against a
// Slack that enforces its rate limits, without a 429 and in at most 60 calls in the request
// channel; one VM that EM fails leaves the
// request partly failed, with the failure and the summary in the thread.
func TestReplicaRequestEndToEnd(t *testing.T) {
	const n, capN = 51, 8
	inv := bigInventory(n)
	// Delivery paces itself as in production (the harness otherwise lifts the limits to keep
	// tests fast), against a fake that answers 429 as Slack does.
	h := newHarness(t, withOptions(func(o *bot.Options) { o.MaxConcurrentFailovers, o.PostRate, o.UpdateRate = capN, 0, 0 }),
		func(c *harnessConfig) { c.inventory = &inv })
	h.slack.EnforceLimits(slackfake.Limits{PostPerSecond: 1, PostBurst: 2, UpdatesPerMinute: 50, UpdateBurst: 2})
	bad := inv.Replicas[0].VMs[7]
	h.em.SetScript(bad.ID, emsim.Script{Running: time.Minute, Result: "Failed", Message: "Datastore ds-07 is full"})
	h.em.SetLatency(5 * time.Millisecond)

	ack := h.command(Requester, `replica CDP-Big --except vm-0003 --reason "site A lost power"`)
	mustContain(t, "ack", ack, "Recorded *FO-1*", "50 VMs of CDP-Big", "Restore points")
	h.idle()
	r := h.wantState("FO-1", store.Pending)
	if len(r.Items) != 50 || r.Scope != "replica CDP-Big except vm-0003" || r.Item(inv.Replicas[0].VMs[3].ID) != nil {
		t.Fatalf("request has %d items, scope %q", len(r.Items), r.Scope)
	}
	for _, it := range r.Items {
		if it.Point.IsZero() || it.RPO != 15 {
			t.Fatalf("item %s has no previewed restore point: %+v", it.Target.Name, it)
		}
	}
	mustContain(t, "card", h.cardJSON("FO-1"), "50 VMs of CDP-Big", "worst RPO 15 s")

	h.approve(Approver1, "FO-1")
	h.idle()
	if got := h.failoverPOSTs(); got != 50 {
		t.Fatalf("%d failover POSTs, want 50", got)
	}
	if got := h.em.MaxConcurrentFailovers(); got > capN {
		t.Fatalf("%d failover POSTs in flight at once, cap %d", got, capN)
	}
	h.wantState("FO-1", store.Running)
	h.clock.Advance(2 * time.Minute)
	h.poll()
	h.idle()
	r = h.wantState("FO-1", store.PartlyFailed)
	if n := store.Counts(r); n[store.Succeeded] != 49 || n[store.Failed] != 1 {
		t.Fatalf("counts %v", n)
	}
	if got := h.em.Count(http.MethodPost, "action=failover"); got != 50 {
		t.Fatalf("after the run EM counted %d POSTs", got)
	}
	cards := 0
	for _, m := range h.slack.Messages(Channel) {
		if m.Metadata != nil && m.Metadata.EventType == "failover_card" {
			cards++
		}
	}
	if cards != 1 {
		t.Fatalf("%d cards for FO-1, want 1", cards)
	}
	thread := h.threadText("FO-1")
	mustContain(t, "thread", thread, "Sending 50 failovers", "All 50 failovers have been sent",
		"vm-0007", "Datastore ds-07 is full", "FO-1 finished: partly failed", "49 succeeded", "ask for a new request with just them")
	// Eight lines of milestones and the summary, and the mention that tells the requester.
	mustContain(t, "thread", thread, "cc <@"+Requester+"> (requester of FO-1)")
	if got := strings.Count(thread, "\n") + 1; got > 9 {
		t.Fatalf("the thread got %d lines for a 50-VM run; want milestones only:\n%s", got, thread)
	}
	if limited := h.slack.RateLimited(); len(limited) > 0 {
		t.Fatalf("Slack answered 429: %v", limited)
	}
	// Retry failed items: a new request with just vm-0007, linked, needing its own approval.
	mustContain(t, "finished card", h.cardJSON("FO-1"), "Retry failed items (1)")
	h.click(Requester, "fo_retry", "FO-1")
	h.idle()
	retry := h.wantState("FO-2", store.Pending)
	if len(retry.Items) != 1 || retry.Items[0].Target.ID != bad.ID || retry.RetryOf != "FO-1" || retry.Requester != Requester {
		t.Fatalf("retry request %+v", retry)
	}
	mustContain(t, "retry card", h.cardJSON("FO-2"), "Retries the items of *FO-1*", "vm-0007")
	if got := h.failoverPOSTs(); got != 50 {
		t.Fatalf("the retry click sent a failover: %d POSTs", got)
	}
	h.approve(Approver1, "FO-2")
	h.idle()
	if got := h.failoverPOSTs(); got != 51 {
		t.Fatalf("after approving the retry, %d POSTs, want 51", got)
	}
	calls := h.slack.CallsIn(Channel)
	if calls > 60 {
		t.Fatalf("%d Slack calls in the request channel for a 50-VM run, want at most 60: %v", calls, h.slack.CallsInByMethod(Channel))
	}
	t.Logf("Slack calls in the request channel: %d %v", calls, h.slack.CallsInByMethod(Channel))
}

// TestManyTargetsRefusals: unknown names and an over-long list are refused with nothing stored;
// a target held by another request is left out of a request of many, with the reason.
func TestManyTargetsRefusals(t *testing.T) {
	inv := bigInventory(6)
	h := newHarness(t, withOptions(func(o *bot.Options) { o.MaxTargets = 4 }), func(c *harnessConfig) { c.inventory = &inv })
	mustContain(t, "unknown", h.command(Requester, `vm CDP-Big vm-0000 vm-9999 --reason x`), "vm-9999", "Nothing was recorded")
	mustContain(t, "too many", h.command(Requester, `replica CDP-Big --reason x`), "6 targets", "at most 4", "Nothing was recorded")
	h.wantNothingStored()
	mustContain(t, "first", h.command(Requester, `vm CDP-Big vm-0001 --reason x`), "Recorded *FO-1*")
	ack := h.command(Requester, `vm CDP-Big vm-0000 vm-0001 vm-0002 --reason y`)
	mustContain(t, "second", ack, "Recorded *FO-2*", "Left out (1", "vm-0001: held by the active request FO-1")
	r := h.get("FO-2")
	if len(r.Items) != 2 || len(r.Excluded) != 1 {
		t.Fatalf("FO-2 has %d items and %d excluded", len(r.Items), len(r.Excluded))
	}
	mustContain(t, "check", h.command(Requester, `check replica CDP-Big --except vm-0004,vm-0005`),
		"Check only", "nothing was recorded", "vm-0000: held by the active request FO-2", "vm-0001: held by the active request FO-1")
	if _, err := h.st.Get(t.Context(), "FO-3"); err == nil {
		t.Fatal("check stored a request")
	}
}

// TestSlowPreflightAnswersFirst: when EM is too slow for the pre-flight to end within the
// acknowledgement budget, the sender is told what is being checked at once, and what was
// recorded follows through the response_url.
func TestSlowPreflightAnswersFirst(t *testing.T) {
	inv := bigInventory(4)
	h := newHarness(t, withOptions(func(o *bot.Options) { o.AckBudget = 20 * time.Millisecond }), func(c *harnessConfig) { c.inventory = &inv })
	h.command(Requester, `check vm CDP-Big vm-0000`) // warm the inventory cache
	h.em.SetLatency(150 * time.Millisecond)
	ack := h.command(Requester, `vm CDP-Big vm-0000 vm-0001 --reason "site A lost power"`)
	mustContain(t, "ack", ack, "Checking 2 VMs of CDP-Big", "approval card follows")
	h.idle()
	h.wantState("FO-1", store.Pending)
	var followUp string
	for _, c := range h.slack.CallsTo("response_url:cmd") {
		followUp += c.Values.Get("text") + fmt.Sprint(c.JSON["text"])
	}
	mustContain(t, "follow-up", followUp, "Recorded *FO-1*", "2 VMs of CDP-Big")

	// Targets all held by another request need no EM call: the answer is at once, and nothing
	// is recorded.
	ack = h.command(Requester, `vm CDP-Big vm-0000 vm-0001 --reason again`)
	mustContain(t, "ack", ack, "Nothing to fail over", "vm-0000: held by the active request FO-1")
	if _, err := h.st.Get(t.Context(), "FO-2"); err == nil {
		t.Fatal("a request for held VMs was recorded")
	}
}
