package bot_test

import (
	"context"
	"strings"
	"testing"
)

// TestRequestNoOneCouldApprove: an approver's own request needs other approvers; when too few
// exist it is refused at once (nothing stored) instead of waiting for its expiry.
func TestRequestNoOneCouldApprove(t *testing.T) {
	cases := []struct {
		name      string
		approvers []string
		group     string
		required  int
		requester string
		refused   bool
		hint      string // what the refused requester can actually do
	}{
		{"sole approver requests", []string{Approver1}, "", 1, Approver1, true, "You are the only approver, so ask a teammate to make the request"},
		{"non-approver requests from a sole approver", []string{Approver1}, "", 1, Requester, false, ""},
		{"two approvers, one requests", []string{Approver1, Approver2}, "", 1, Approver1, false, ""},
		{"two approvers, two required, one requests", []string{Approver1, Approver2}, "", 2, Approver1, true, "The other approvers (<@" + Approver2 + ">) are fewer than the 2 needed"},
		{"a group may supply approvers", []string{Approver1}, "S0DRLEADS", 1, Approver1, false, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, func(c *harnessConfig) {
				c.opt.Approvers, c.opt.ApproverGroup, c.required = tc.approvers, tc.group, tc.required
			})
			ack := h.command(tc.requester, `vm CDP-Finance fin-db01 --reason "site down"`)
			h.idle()
			_, err := h.st.Get(context.Background(), "FO-1")
			if tc.refused {
				mustContain(t, "answer", ack, "Nothing was recorded: no one could approve this request", tc.hint)
				mustNotContain(t, "answer", ack, "<@"+tc.requester+">")
				if err == nil {
					t.Fatal("the refused request was stored")
				}
				return
			}
			if err != nil || !strings.Contains(ack, "Recorded *FO-1*") {
				t.Fatalf("request refused: %q (%v)", ack, err)
			}
		})
	}
}
