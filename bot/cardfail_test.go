package bot_test

import (
	"testing"

	"github.com/failover-bot/failover-bot/store"
)

// TestCardCannotBePosted: when Slack refuses the card (the bot is not in the channel), nobody
// could approve the request, so it is withdrawn, the requester hears why through the slash
// command's response_url (which works where the bot is not a member), and EM receives nothing.
func TestCardCannotBePosted(t *testing.T) {
	h := newHarness(t)
	h.slack.FailChannel(Channel, "not_in_channel")
	ack := h.command(Requester, `vm CDP-Finance fin-db01 --reason "site down"`)
	mustContain(t, "ack", ack, "Recorded *FO-1*")
	h.idle()
	h.wantState("FO-1", store.Withdrawn)
	var told string
	for _, c := range h.slack.Calls() {
		if c.Method == "response_url:cmd" {
			told += c.JSON["text"].(string)
		}
	}
	mustContain(t, "response_url message", told, "could not post the approval card for FO-1", "not_in_channel", "withdrawn", "/invite")
	mustContain(t, "audit channel", h.auditText(), "FO-1 withdrawn: its approval card could not be posted")
	if h.failoverPOSTs() != 0 {
		t.Fatal("EM received a failover")
	}
}
