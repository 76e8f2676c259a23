package bot_test

import (
	"testing"

	"github.com/failover-bot/failover-bot/store"
)

// TestCancelDecidedWithoutFailover: cancelling a request that never reached EM says so, without
// the "EM cannot undo" warning that only matters once a failover ran.
func TestCancelDecidedWithoutFailover(t *testing.T) {
	h := newHarness(t)
	h.command(Requester, `vm CDP-Finance fin-db01 --reason "site down"`)
	h.idle()
	h.submitReject(Approver1, "FO-1", "wrong VM")
	h.idle()
	h.wantState("FO-1", store.Rejected)
	got := h.command(Requester, "cancel FO-1")
	mustContain(t, "cancel answer", got, "FO-1 is already rejected", "nothing was sent to Enterprise Manager")
	mustNotContain(t, "cancel answer", got, "cannot undo")
}
