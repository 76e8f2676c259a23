package bot_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/failover-bot/failover-bot/bot"
	"github.com/failover-bot/failover-bot/store"
)

// TestConcurrentFailoversAreCapped: 40 approved requests submitted in one poll cycle, with EM
// answering slowly, never have more than MaxConcurrentFailovers POSTs in flight, and each is
// sent exactly once.
func TestConcurrentFailoversAreCapped(t *testing.T) {
	const n, cap = 200, 8
	// 200 requests, one per VM of a big replica (one active request per target).
	inv := bigInventory(n)
	h := newHarness(t, withOptions(func(o *bot.Options) { o.MaxConcurrentFailovers = cap }),
		func(c *harnessConfig) { c.inventory = &inv })
	rep := inv.Replicas[0]
	var ids []string
	for i := range n {
		vm := rep.VMs[i]
		r, err := h.st.Create(context.Background(), store.NewRequest{Kind: store.KindVM,
			Target: store.Target{ReplicaID: rep.ID, ReplicaName: rep.Name, ID: vm.ID, Name: vm.Name},
			Intent: store.IntentLatest, Reason: "site down", Requester: Requester, Channel: Channel, TTL: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := h.st.Approve(context.Background(), r.ID, Approver1, r.Digest); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID)
	}
	h.em.SetLatency(30 * time.Millisecond)
	h.bot.Poll(context.Background())
	h.idle()
	if got := h.em.MaxConcurrentFailovers(); got > cap || got < 2 {
		t.Fatalf("at most %d failover POSTs in flight, want between 2 and the cap %d", got, cap)
	}
	if got := h.failoverPOSTs(); got != n {
		t.Fatalf("%d failover POSTs, want %d; states %v\n%s", got, n, countStates(t, h, ids), lastLines(h.logs.String(), 15))
	}
	for _, id := range ids {
		h.wantState(id, store.Running)
	}
	if c := h.em.Count(http.MethodPost, "action=failover"); c != n {
		t.Fatalf("EM counted %d POSTs", c)
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
