package bot_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/failover-bot/failover-bot/bot/slackfake"
	"github.com/failover-bot/failover-bot/store"
)

// responseURLTexts is what the requester was told through the command's response_url.
func (h *harness) responseURLTexts() []string {
	var out []string
	for _, c := range h.slack.CallsTo("response_url:cmd") {
		if s, ok := c.JSON["text"].(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// TestSlackOutageNeverWithdraws: Slack fails every call for far longer than any retry budget
// (20+ attempts at the card). The request stays pending, its requester is told once that the
// card is delayed, and when Slack is back the card, the thread and the audit channel get
// everything.
func TestSlackOutageNeverWithdraws(t *testing.T) {
	h := newHarness(t)
	h.slack.Outage(true)
	mustContain(t, "ack", h.command(Requester, `vm CDP-Finance fin-db01 --reason "site down"`), "Recorded *FO-1*")
	h.slack.WaitFor(t, 20*time.Second, func(s *slackfake.Server) bool {
		return len(s.CallsTo("chat.postMessage")) >= 20 && len(s.CallsTo("response_url:cmd")) >= 1
	})
	h.wantState("FO-1", store.Pending)
	told := h.responseURLTexts()
	if len(told) != 1 {
		t.Fatalf("the requester was told %d times, want once: %q", len(told), told)
	}
	mustContain(t, "delay notice", told[0], "FO-1", "delayed", "nothing has been sent to Enterprise Manager", "no need to ask again")

	h.slack.Outage(false)
	h.idle()
	r := h.wantState("FO-1", store.Pending)
	if r.MessageTS == "" {
		t.Fatal("no card after Slack came back")
	}
	mustContain(t, "audit channel", h.auditText(), "FO-1 requested by <@"+Requester+">")
	if n := len(h.slack.LiveCards("FO-1")); n != 1 {
		t.Fatalf("%d live cards, want 1", n)
	}
	if n := len(h.responseURLTexts()); n != 1 {
		t.Fatalf("the requester was told %d times, want once", n)
	}
}

// TestRateLimitStormIsWaitedOut: Slack answers 429 with Retry-After on more attempts than the
// old retry budget (8); nothing is withdrawn and everything arrives afterwards, in order.
func TestRateLimitStormIsWaitedOut(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out Slack's Retry-After")
	}
	h := newHarness(t)
	id := h.requestDB01()
	h.slack.RateLimit("chat.postMessage", 10, time.Second)
	h.approve(Approver1, id)
	h.idle()
	h.wantState(id, store.Running)
	if n := h.slack.RateLimited()["chat.postMessage"]; n != 10 {
		t.Fatalf("%d 429s answered, want 10", n)
	}
	thread := h.threadText(id)
	a, b := strings.Index(thread, "Approved by"), strings.Index(thread, "accepted the failover")
	if a < 0 || b < a {
		t.Fatalf("thread out of order or incomplete:\n%s", thread)
	}
	mustContain(t, "audit channel", h.auditText(), id+" approved by", id+" submitted by em")
}

// TestShutdownKeepsTheBacklog: stopping while Slack is down delivers nothing, withdraws nothing,
// logs how much is left, and the next start delivers it all.
func TestShutdownKeepsTheBacklog(t *testing.T) {
	h := newHarness(t)
	h.slack.Outage(true)
	for _, vm := range []string{"fin-db01", "fin-app01"} {
		mustContain(t, "ack", h.command(Requester, "vm CDP-Finance "+vm+` --reason "site down"`), "Recorded")
	}
	h.srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := h.bot.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	_ = h.client.Close(context.Background())
	if err := h.st.Close(); err != nil {
		t.Fatal(err)
	}
	h.bot = nil
	mustContain(t, "logs", h.logs.String(), "slack delivery stopped with messages still owed", "remaining=")

	h.slack.Outage(false)
	h.start()
	h.idle()
	for _, id := range []string{"FO-1", "FO-2"} {
		r := h.wantState(id, store.Pending)
		if r.MessageTS == "" {
			t.Errorf("%s has no card after the restart", id)
		}
		mustContain(t, "audit channel", h.auditText(), id+" requested by")
	}
}

// TestPermanentSlackErrorWithdraws: a permanent answer (the channel is archived) withdraws the
// pending request with Slack's words in the audit log; a 429 never does.
func TestPermanentSlackErrorWithdraws(t *testing.T) {
	h := newHarness(t)
	h.slack.FailChannel(Channel, "is_archived")
	h.command(Requester, `vm CDP-Finance fin-db01 --reason "site down"`)
	h.idle()
	h.wantState("FO-1", store.Withdrawn)
	var details string
	h.st.Events(context.Background(), 0, time.Time{}, func(e store.Event) error {
		if e.Action == "withdrawn-undeliverable" {
			details = e.Details
		}
		return nil
	})
	if !strings.Contains(details, "is_archived") {
		t.Fatalf("audit details %q do not name Slack's answer", details)
	}
}
