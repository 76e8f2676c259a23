package bot_test

import (
	"strings"
	"testing"
	"time"

	"github.com/failover-bot/failover-bot/bot/slackfake"
)

// TestEphemeralNotBehindRateLimitedPosts: while the channel's posts wait out a 429 (Retry-After
// 3 s), a refused click's explanation still reaches the person first.
func TestEphemeralNotBehindRateLimitedPosts(t *testing.T) {
	h := newHarness(t)
	h.command(Requester, `vm CDP-Finance fin-db01 --reason "site down"`)
	h.idle()
	h.slack.RateLimit("chat.postMessage", 1, 3*time.Second)
	h.command(Requester, `vm CDP-Finance fin-app01 --reason "site down too"`) // FO-2's card now waits
	h.approve(Requester, "FO-1")                                              // refused: not an approver
	h.slack.WaitFor(t, 10*time.Second, func(*slackfake.Server) bool {
		return strings.Contains(h.ephemerals(Requester), "not an authorised approver")
	})
	if r := h.get("FO-2"); r.MessageTS != "" {
		t.Fatal("the explanation waited behind the rate-limited card")
	}
	h.idle()
	if r := h.get("FO-2"); r.MessageTS == "" {
		t.Fatal("FO-2's card was not posted after the 429")
	}
}
