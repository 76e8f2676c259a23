package bot_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/failover-bot/failover-bot/bot"
	"github.com/failover-bot/failover-bot/store"
)

// TestApprovalRefused: only an authorised, active human other than the requester approves.
// Every refusal is an ephemeral explanation to the clicker and changes nothing: the request stays
// pending, no approval is recorded and EM receives nothing.
func TestApprovalRefused(t *testing.T) {
	cases := []struct {
		name      string
		requester string // who asked
		clicker   string
		want      string // in the clicker's ephemeral message
	}{
		{"self-approval by an approver who requested", Approver1, Approver1, "two-person rule"},
		{"requester who is not an approver", Requester, Requester, "not an authorised approver"},
		{"non-approver", Requester, Outsider, "not an authorised approver"},
		{"guest account on APPROVERS", Requester, Guest, "guest accounts cannot approve"},
		{"bot account on APPROVERS", Requester, Robot, "bots cannot approve"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			id := h.request(tc.requester, `vm CDP-Finance fin-db01 --reason "primary DC down"`)
			h.approve(tc.clicker, id)
			h.idle()

			h.wantEphemeral(tc.clicker, tc.want)
			r := h.wantState(id, store.Pending)
			if len(r.Approvals) != 0 {
				t.Errorf("approvals = %+v, want none", r.Approvals)
			}
			if n := h.failoverPOSTs(); n != 0 {
				t.Errorf("failover POSTs = %d, want 0", n)
			}
			if got := h.cardButtons(id); len(got) != 2 {
				t.Errorf("card buttons = %v, want Approve and Reject still there", got)
			}
			mustNotContain(t, "audit channel", h.auditText(), "approved by")
		})
	}
}

// TestApprovalLateClick: once a request is decided, a second click (by anyone, the approver
// included) says who decided it and when, and sends nothing more.
func TestApprovalLateClick(t *testing.T) {
	for _, second := range []string{Approver2, Approver1} {
		t.Run(second, func(t *testing.T) {
			h := newHarness(t)
			id := h.requestDB01()
			value := h.buttonValue(id, "fo_approve")
			h.approve(Approver1, id)
			h.idle()
			h.wantState(id, store.Running)

			// The second click comes from a stale card that still shows the button.
			h.click(second, "fo_approve", value)
			h.idle()
			h.wantEphemeral(second, "already approved by <@"+Approver1+"> at 14:00 UTC")
			if n := h.failoverPOSTs(); n != 1 {
				t.Errorf("failover POSTs = %d, want 1", n)
			}
			if r := h.get(id); len(r.Approvals) != 1 {
				t.Errorf("approvals = %+v, want one", r.Approvals)
			}
		})
	}
}

// TestApprovalConcurrentClicks: 20 approve clicks at once from two approvers produce exactly the
// approvals required and one failover POST; every other click is told why it changed nothing.
func TestApprovalConcurrentClicks(t *testing.T) {
	for _, required := range []int{1, 2} {
		t.Run(fmt.Sprintf("%d required", required), func(t *testing.T) {
			h := newHarness(t, withRequired(required))
			id := h.requestDB01()
			value := h.buttonValue(id, "fo_approve")

			const clicks = 20
			var wg sync.WaitGroup
			errs := make(chan error, clicks)
			start := make(chan struct{})
			for i := range clicks {
				user := Approver1
				if i%2 == 1 {
					user = Approver2
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					errs <- h.clickErr(user, "fo_approve", value)
				}()
			}
			close(start)
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Error(err)
				}
			}
			h.idle()
			h.poll() // a poll right after must not submit again either

			if n := h.failoverPOSTs(); n != 1 {
				t.Fatalf("failover POSTs = %d, want exactly 1", n)
			}
			r := h.wantState(id, store.Running)
			if len(r.Approvals) != required || (required == 2 && r.Approvals[0].User == r.Approvals[1].User) {
				t.Fatalf("approvals = %+v, want %d from different people", r.Approvals, required)
			}
			refused := 0
			for _, c := range h.slack.CallsTo("chat.postEphemeral") {
				text := c.Values.Get("text")
				if strings.Contains(text, "is recorded; it needs 1 more") {
					continue // the first of two approvals
				}
				if !strings.Contains(text, "already") {
					t.Errorf("a refused click was told %q, want a late-click explanation", text)
				}
				refused++
			}
			if refused != clicks-required {
				t.Errorf("%d clicks were told why they changed nothing, want %d", refused, clicks-required)
			}
			approvals := 0
			for _, a := range h.auditActions() {
				if strings.HasSuffix(a, ":approved") || strings.Contains(a, ":approval:") {
					approvals++
				}
			}
			if approvals != required {
				t.Errorf("audit log has %d approvals, want %d: %v", approvals, required, h.auditActions())
			}
		})
	}
}

// TestApprovalTwoRequired: with APPROVALS_REQUIRED=2 one approval leaves the request pending
// and EM untouched; the same approver cannot count twice; a second, different approver
// completes it and the failover is sent once.
func TestApprovalTwoRequired(t *testing.T) {
	h := newHarness(t, withRequired(2))
	id := h.requestDB01()
	mustContain(t, "card", h.cardJSON(id), "0 of 2 approvals")

	h.approve(Approver1, id)
	h.idle()
	r := h.wantState(id, store.Pending)
	if len(r.Approvals) != 1 || r.Approvals[0].User != Approver1 {
		t.Fatalf("approvals = %+v, want Approver1's", r.Approvals)
	}
	h.wantEphemeral(Approver1, "needs 1 more")
	mustContain(t, "card after one approval", h.cardJSON(id), "(1 of 2; approved by <@"+Approver1+">", "fo_approve")
	if n := h.failoverPOSTs(); n != 0 {
		t.Fatalf("failover POSTs after one approval = %d, want 0", n)
	}

	h.approve(Approver1, id)
	h.idle()
	h.wantEphemeral(Approver1, "You have already approved "+id)
	if r := h.wantState(id, store.Pending); len(r.Approvals) != 1 {
		t.Fatalf("approvals after a repeated click = %+v, want one", r.Approvals)
	}

	h.approve(Approver2, id)
	h.idle()
	h.wantState(id, store.Running)
	if n := h.failoverPOSTs(); n != 1 {
		t.Fatalf("failover POSTs = %d, want 1", n)
	}
	mustContain(t, "card after two approvals", h.cardJSON(id), "<@"+Approver1+">", "<@"+Approver2+">")
	h.wantNoButtons(id)
}

// TestApprovalGroup: with APPROVER_GROUP, membership is checked with Slack at click time.
func TestApprovalGroup(t *testing.T) {
	const group = "S0DRLEADS"
	cases := []struct {
		name      string
		members   []string // nil: the group does not exist in Slack
		approvers []string
		clicker   string
		approved  bool
		want      string // in the clicker's ephemeral message when refused
	}{
		{"group member approves", []string{Approver2, Outsider}, nil, Approver2, true, ""},
		{"member although not on APPROVERS", []string{Outsider}, []string{Approver1}, Outsider, true, ""},
		{"non-member refused", []string{Approver2}, nil, Outsider, false, "not an authorised approver"},
		{"guest member refused", []string{Guest}, nil, Guest, false, "guest accounts cannot approve"},
		{"group lookup fails", nil, nil, Approver2, false, "could not check the approver group"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, withOptions(func(o *bot.Options) { o.Approvers, o.ApproverGroup = tc.approvers, group }))
			if tc.members != nil {
				h.slack.SetGroup(group, tc.members)
			}
			id := h.requestDB01()
			h.approve(tc.clicker, id)
			h.idle()
			if tc.approved {
				h.wantState(id, store.Running)
				if n := h.failoverPOSTs(); n != 1 {
					t.Fatalf("failover POSTs = %d, want 1", n)
				}
				return
			}
			h.wantState(id, store.Pending)
			h.wantEphemeral(tc.clicker, tc.want)
			if n := h.failoverPOSTs(); n != 0 {
				t.Fatalf("failover POSTs = %d, want 0", n)
			}
		})
	}
}
