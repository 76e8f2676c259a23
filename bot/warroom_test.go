package bot_test

import (
	"strings"
	"testing"
	"time"

	"github.com/failover-bot/failover-bot/bot/core"
	"github.com/failover-bot/failover-bot/emapi/emsim"
	"github.com/failover-bot/failover-bot/store"
)

// approversField is the card's field naming who can approve.
func (h *harness) approversField(id string) string {
	h.t.Helper()
	card := h.cardJSON(id)
	i := strings.Index(card, "*Approvers*")
	if i < 0 {
		h.t.Fatalf("card of %s has no Approvers field:\n%s", id, card)
	}
	field := card[i:]
	if j := strings.Index(field, `"}`); j >= 0 {
		field = field[:j]
	}
	return field
}

// TestCardCallsApprovers: the card mentions who can approve (the approvers other than the
// requester, or the approver group's handle), never the requester; the acknowledgement names the
// same people; with two approvals required the card lists who approved so far and calls only
// those who have not.
func TestCardCallsApprovers(t *testing.T) {
	cases := []struct {
		name      string
		requester string
		group     bool
		want      []string
		not       []string
	}{
		{"a requester who is not an approver", Requester, false, []string{"<@" + Approver1 + ">", "<@" + Approver2 + ">"}, []string{"<@" + Requester + ">"}},
		{"an approver's own request", Approver1, false, []string{"<@" + Approver2 + ">"}, []string{"<@" + Approver1 + ">"}},
		{"an approver group", Requester, true, []string{"<!subteam^S0APPROVE>"}, []string{"<@" + Requester + ">"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, func(c *harnessConfig) {
				if tc.group {
					c.opt.Approvers, c.opt.ApproverGroup = nil, "S0APPROVE"
				}
			})
			if tc.group {
				h.slack.SetGroup("S0APPROVE", []string{Approver1, Approver2})
			}
			ack := h.command(tc.requester, `vm CDP-Finance fin-db01 --reason "primary DC down"`)
			id := recordedID.FindStringSubmatch(ack)[1]
			h.idle()
			field := h.approversField(id)
			mustContain(t, "card's approvers", field, tc.want...)
			mustNotContain(t, "card's approvers", field, tc.not...)
			ackCalls := ack[strings.Index(ack, "calling"):]
			mustContain(t, "acknowledgement", ackCalls, tc.want...)
			mustNotContain(t, "acknowledgement", ackCalls, tc.not...)
		})
	}

	t.Run("two approvals required", func(t *testing.T) {
		h := newHarness(t, func(c *harnessConfig) { c.required = 2; c.opt.ApprovalsRequired = 2 })
		id := h.requestDB01()
		mustContain(t, "card before", h.approversField(id), "0 of 2 approvals")
		h.approve(Approver1, id)
		h.idle()
		h.wantState(id, store.Pending)
		field := h.approversField(id)
		mustContain(t, "card after one approval", field, "1 of 2 approvals", "Approved by <@"+Approver1+"> at 14:00 UTC", "<@"+Approver2+">")
		if strings.Count(field, "<@"+Approver1+">") != 1 {
			t.Errorf("the approver who approved is still called to approve: %s", field)
		}
		mustContain(t, "card status", h.cardJSON(id), "Waiting for approval (1 of 2; approved by <@"+Approver1+"> at 14:00 UTC)")
	})
}

// TestRemindersAndExpiry: with REMINDERS 50% and 90% of a one-hour window, the thread reminds
// the approvers (never the requester as one) at 30 and 54 minutes, each once, also across a
// restart; a reminder missed while the bot was down is posted late rather than never, but only
// the latest one; the expiry mentions the requester.
func TestRemindersAndExpiry(t *testing.T) {
	ms, err := core.ParseReminders([]string{"50%", "90%"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, func(c *harnessConfig) { c.opt.Reminders = ms })
	id := h.requestDB01()
	reminders := func() int {
		return strings.Count(h.threadText(id), ":bell:")
	}

	h.clock.Advance(29*time.Minute + 59*time.Second)
	h.poll()
	if n := reminders(); n != 0 {
		t.Fatalf("reminders before 50%% of the window = %d, want 0", n)
	}
	h.clock.Advance(time.Second)
	h.poll()
	h.poll()
	if n := reminders(); n != 1 {
		t.Fatalf("reminders at 50%% after two polls = %d, want 1:\n%s", n, h.threadText(id))
	}
	thread := h.threadText(id)
	first := thread[strings.Index(thread, ":bell:"):]
	mustContain(t, "first reminder", first, "<@"+Approver1+">", "<@"+Approver2+">", "still needs 1 approval",
		"fin-db01", "latest", "expires at 2026-11-23 15:00 UTC (in 30m0s)", "requested by <@"+Requester+">")
	if strings.Contains(strings.SplitN(first, "still needs", 2)[0], Requester) {
		t.Errorf("the requester is called as an approver: %s", first)
	}
	mustNotContain(t, "audit channel", h.auditText(), "reminder")

	h.restart()
	h.poll()
	if n := reminders(); n != 1 {
		t.Fatalf("reminders after a restart = %d, want still 1", n)
	}

	h.clock.Advance(24 * time.Minute) // 54 minutes: 90%
	h.poll()
	if n := reminders(); n != 2 {
		t.Fatalf("reminders at 90%% = %d, want 2", n)
	}
	mustContain(t, "second reminder", h.threadText(id), "(in 6m0s)")

	h.clock.Advance(6 * time.Minute)
	h.poll()
	h.wantState(id, store.Expired)
	thread = h.threadText(id)
	expiry := thread[strings.Index(thread, ":alarm_clock:"):]
	mustContain(t, "expiry", expiry, "expired", "Nothing was sent to Enterprise Manager", "<@"+Requester+">")
	if n := reminders(); n != 2 {
		t.Fatalf("reminders in all = %d, want 2", n)
	}

	t.Run("missed while down", func(t *testing.T) {
		h := newHarness(t, func(c *harnessConfig) { c.opt.Reminders = ms })
		id := h.requestDB01()
		h.clock.Advance(55 * time.Minute) // both points passed before any poll
		h.poll()
		thread := h.threadText(id)
		if n := strings.Count(thread, ":bell:"); n != 1 {
			t.Fatalf("reminders after both points passed = %d, want 1 (the latest):\n%s", n, thread)
		}
		mustContain(t, "late reminder", thread, "(in 5m0s)")
		h.clock.Advance(time.Minute)
		h.poll()
		if n := strings.Count(h.threadText(id), ":bell:"); n != 1 {
			t.Fatalf("reminders a minute later = %d, want still 1", n)
		}
	})
}

// TestParseReminders covers REMINDERS' syntax and its answers.
func TestParseReminders(t *testing.T) {
	cases := []struct {
		in      []string
		want    string // the reminders, joined
		wantErr string
	}{
		{[]string{"50%", "90%"}, "50% 90%", ""},
		{[]string{" 30m", "5m "}, "30m0s before expiry 5m0s before expiry", ""},
		{[]string{"none"}, "", ""},
		{nil, "", ""},
		{[]string{"0%"}, "", "between 0% and 100%"},
		{[]string{"100%"}, "", "between 0% and 100%"},
		{[]string{"half"}, "", "neither a percentage"},
		{[]string{"2h"}, "", "not shorter than REQUEST_TTL"},
	}
	for _, tc := range cases {
		got, err := core.ParseReminders(tc.in, time.Hour)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ParseReminders(%q) error = %v, want %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		var parts []string
		for _, m := range got {
			parts = append(parts, m.String())
		}
		if err != nil || strings.Join(parts, " ") != tc.want {
			t.Errorf("ParseReminders(%q) = %q, %v; want %q", tc.in, strings.Join(parts, " "), err, tc.want)
		}
	}
}

// TestRequesterTold: the requester hears of every decision someone else makes and of the
// outcome: by a mention in the thread by default, by a direct message with NOTIFY_REQUESTER=dm.
// Success names the target and the restore point and ends with the next step in the Veeam
// console, which EM's REST API cannot take.
func TestRequesterTold(t *testing.T) {
	t.Run("thread", func(t *testing.T) {
		h := newHarness(t, func(c *harnessConfig) { c.required = 2; c.opt.ApprovalsRequired = 2 })
		h.em.SetDefaultScript(emsim.Script{Running: time.Minute, Collect: time.Minute})
		id := h.requestDB01()
		h.approve(Approver1, id)
		h.idle()
		h.approve(Approver2, id)
		h.idle()
		h.wantState(id, store.Running)
		h.clock.Advance(3 * time.Minute)
		h.poll()
		h.wantState(id, store.Succeeded)
		thread := h.threadText(id)
		if n := strings.Count(thread, "cc <@"+Requester+"> (requester of "+id+")"); n != 3 {
			t.Errorf("requester mentioned %d times in the thread, want 3 (two approvals, the outcome):\n%s", n, thread)
		}
		outcome := thread[strings.Index(thread, "*Failover succeeded*"):]
		mustContain(t, "outcome", outcome, "VM *fin-db01* of *CDP-Finance*", "latest", "Permanent Failover", "Undo Failover",
			"REST API cannot do either")
		if dms := h.slack.Messages(Requester); len(dms) != 0 {
			t.Errorf("direct messages in thread mode: %+v", dms)
		}
	})
	t.Run("dm", func(t *testing.T) {
		h := newHarness(t, func(c *harnessConfig) { c.notify = core.NotifyDM })
		id := h.requestDB01()
		h.click(Approver2, "fo_reject", h.buttonValue(id, "fo_reject"))
		h.idle()
		h.submitReject(Approver2, id, "DC is back")
		h.idle()
		h.wantState(id, store.Rejected)
		var dms []string
		for _, m := range h.slack.Messages(Requester) {
			dms = append(dms, m.Text)
		}
		if len(dms) != 1 {
			t.Fatalf("direct messages = %q, want 1", dms)
		}
		mustContain(t, "DM", dms[0], "*"+id+"*", "fin-db01", "latest", "<#"+Channel+">", "rejected by <@"+Approver2+">", "DC is back",
			"Nothing was sent to Enterprise Manager")
		mustNotContain(t, "thread", h.threadText(id), "<@"+Requester+"> (requester")
	})
	t.Run("not of their own acts", func(t *testing.T) {
		h := newHarness(t)
		id := h.requestDB01()
		h.command(Requester, "cancel "+id)
		h.idle()
		h.wantState(id, store.Withdrawn)
		mustNotContain(t, "thread", h.threadText(id), "(requester of")
	})
}

// TestMessagesThatHelp: near-miss subcommands and names get "did you mean", a VM typed with the
// wrong replica is found in its own, and nothing is recorded for any of them.
func TestMessagesThatHelp(t *testing.T) {
	cases := []struct {
		name, text string
		want       []string
	}{
		{"subcommand", "lsit", []string{"Unknown subcommand", "Did you mean `list`?"}},
		{"subcommand by prefix", "stat FO-1", []string{"Did you mean `status`?"}},
		{"check what", "check vmm CDP-Finance fin-db01", []string{"Did you mean `vm`?"}},
		{"VM name", `vm CDP-Finance fin-db1 --reason "x"`, []string{"No VM is named “fin-db1”.", "Did you mean `fin-db01`?", "Nothing was recorded"}},
		{"replica name", `vm CDP-Finanse fin-db01 --reason "x"`, []string{"Did you mean `CDP-Finance`?"}},
		{"vApp name", `vapp erp-vap --reason "x"`, []string{"Did you mean `erp-vapp`?"}},
		{"VM in another replica", `vm CDP-Web fin-db01 --reason "x"`, []string{"VM “fin-db01” is not in CDP replica *CDP-Web*: fin-db01 is in *CDP-Finance*",
			"`/failover vm CDP-Finance fin-db01 --reason", "Nothing was recorded"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			mustContain(t, "answer", h.command(Requester, tc.text), tc.want...)
			h.wantNothingStored()
		})
	}
	t.Run("no guess when nothing is near", func(t *testing.T) {
		h := newHarness(t)
		mustNotContain(t, "answer", h.command(Requester, `vm CDP-Finance zzzzzzzz --reason "x"`), "Did you mean")
		mustNotContain(t, "answer", h.command(Requester, "frobnicate"), "Did you mean")
	})
}
