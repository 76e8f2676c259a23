package bot_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/failover-bot/failover-bot/emapi/emsim"
	"github.com/failover-bot/failover-bot/store"
)

// TestHappyPath drives a request from the slash command to the outcome for a VM with each restore
// intent and for a vApp: card, approval, exactly one failover POST with the right intent, thread
// updates while EM works, the final card, the audit channel and the store's audit log.
func TestHappyPath(t *testing.T) {
	cases := []struct {
		name       string
		text       string
		wantIntent emsim.IntentKind
		wantTime   time.Time
		wantTarget string
		restore    string
	}{
		{"vm latest by default", `vm CDP-Finance fin-db01 --reason "primary DC down"`, emsim.IntentLatest, time.Time{}, "fin-db01", "latest crash-consistent state"},
		{"vm latest vss", `vm cdp-finance FIN-DB01 --latest-vss --reason “app consistent please”`, emsim.IntentLatestVSS, time.Time{}, "fin-db01", "latest application-consistent (VSS) restore point"},
		{"vm point in time with offset", `vm CDP-Finance fin-app01 --point-in-time 2026-11-23T14:30:00+01:00 --reason "before the corruption"`,
			emsim.IntentPointInTime, time.Date(2026, 11, 23, 13, 30, 0, 0, time.UTC), "fin-app01", "newest replicated state before 2026-11-23 13:30:00 UTC"},
		{"vm interval without offset is UTC", `vm 7665222c-2e99-4a3f-b892-1827ba8d1eee e809a086-2562-4a0f-a9a8-9c115ff8f0ba --interval 2026-11-23T12:00:00 --reason 'ransomware at 12:05'`,
			emsim.IntentInterval, time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC), "fin-db01", "newest restore point of the interval containing 2026-11-23 12:00:00 UTC"},
		{"vapp latest", `vapp erp-vapp --latest --reason "ERP site lost"`, emsim.IntentLatest, time.Time{}, "erp-vapp", "latest crash-consistent state"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.em.SetDefaultScript(emsim.Script{Running: 4 * time.Minute, Collect: 30 * time.Second, Result: emsim.ResultSuccess})

			ack := h.command(Requester, tc.text)
			mustContain(t, "ack", ack, "Recorded *FO-1*", tc.restore)
			h.idle()

			r := h.wantState("FO-1", store.Pending)
			if r.Items[0].Target.Name != tc.wantTarget {
				t.Fatalf("target %q, want %q", r.Items[0].Target.Name, tc.wantTarget)
			}
			mustContain(t, "card", h.cardJSON("FO-1"), "Failover request FO-1", tc.wantTarget, tc.restore, "fo_approve", "fo_reject", "primary", "confirm")
			if h.failoverPOSTs() != 0 {
				t.Fatal("EM received a failover before approval")
			}

			h.approve(Approver1, "FO-1")
			h.idle()
			if n := h.failoverPOSTs(); n != 1 {
				t.Fatalf("failover POSTs = %d, want 1", n)
			}
			fo := h.em.Failovers()[0]
			if fo.Intent.Kind != tc.wantIntent || !fo.Intent.Time.Equal(tc.wantTime) || fo.TargetName != tc.wantTarget {
				t.Fatalf("EM got %+v, want intent %s %v on %s", fo, tc.wantIntent, tc.wantTime, tc.wantTarget)
			}
			r = h.wantState("FO-1", store.Running)
			if r.Items[0].TaskID == "" {
				t.Fatal("no task ID stored")
			}
			mustNotContain(t, "card after approval", h.cardJSON("FO-1"), "fo_approve")
			mustContain(t, "card after approval", h.cardJSON("FO-1"), "<@"+Approver1+">", "14:00 UTC")

			h.clock.Advance(2 * time.Minute)
			h.poll()
			h.wantState("FO-1", store.Running)
			h.clock.Advance(3 * time.Minute)
			h.poll()
			r = h.wantState("FO-1", store.Succeeded)
			if r.Items[0].EMResult != "Success" || r.Items[0].RestoreSessionID == "" {
				t.Fatalf("outcome not recorded: %+v", r)
			}
			mustContain(t, "thread", h.threadText("FO-1"), "Approved by <@"+Approver1+">", "task "+r.Items[0].TaskID, "Working", "succeeded")
			mustContain(t, "card", h.cardJSON("FO-1"), "Failover succeeded")
			mustContain(t, "audit channel", h.auditText(), "FO-1 requested by <@"+Requester+">", "FO-1 approved by <@"+Approver1+">",
				"FO-1 submitted", "succeeded", "https://acme.slack.com/archives/"+Channel+"/p")

			var actions []string
			if err := h.st.Events(context.Background(), 0, time.Time{}, func(e store.Event) error {
				actions = append(actions, fmt.Sprintf("%s:%s", e.RequestID, e.To))
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			mustContain(t, "audit log", fmt.Sprint(actions), "FO-1:pending", "FO-1:approved", "FO-1:submitting", "FO-1:running", "FO-1:succeeded")
			if err := h.st.Verify(context.Background()); err != nil {
				t.Fatalf("audit chain: %v", err)
			}
		})
	}
}
