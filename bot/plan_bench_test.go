package bot_test

// The recovery-plan benchmark. Run it once, without -race:
//
//	go test -run '^$' -bench 'Plan4x50' -benchtime 1x ./bot/

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/failover-bot/failover-bot/bot"
	"github.com/failover-bot/failover-bot/bot/plans"
	"github.com/failover-bot/failover-bot/emapi/emsim"
	"github.com/failover-bot/failover-bot/store"
)

// BenchmarkPlan4x50 runs a plan of 4 groups × 50 VMs end to end, EM answering each call in 20 ms,
// at most 8 failover POSTs in flight (each group allows all 50 of its items at once, so the POST
// cap is what paces it), delivery paced at Slack's real limits against a fake that enforces them.
// One critical VM of group 1 fails, so the run halts and an approver continues it. Measured:
//
//   - approval click → group 1's 50th POST; Continue click → group 2's 50th POST; for groups 3
//     and 4, the start of the poll cycle that sees the previous group finished → the group's
//     50th POST (EM's failover time itself is the fake clock's and not part of it). Goal ≤ 2 s
//     each; floor 50/8 × 20 ms = 0.13 s;
//   - Slack calls in the request channel for the whole run: goal ≤ 80; 429s: goal 0.
func BenchmarkPlan4x50(b *testing.B) {
	const groups, n = 4, 50
	var (
		toLast  [groups][]time.Duration
		calls   []int
		limited []int
	)
	for range b.N {
		b.StopTimer()
		f := runPlan4x50(b, groups, n)
		for g := range groups {
			toLast[g] = append(toLast[g], f.toLast[g])
		}
		calls = append(calls, f.calls)
		limited = append(limited, f.limited)
		b.Logf("run: group→last POST %v (goal ≤2s each, floor %s); Slack calls in channel %d %v (goal ≤80), 429s %d (goal 0); thread %d replies; %d WARN/ERROR lines %q",
			f.toLast, time.Duration(n/manyCap)*manyLatency, f.calls, f.byMethod, f.limited, f.thread, f.warnings, f.firstWarnings)
	}
	mean := func(ds []time.Duration) float64 {
		var s time.Duration
		for _, d := range ds {
			s += d
		}
		return (s / time.Duration(len(ds))).Seconds()
	}
	b.ReportMetric(mean(toLast[0]), "s/approval-to-g1-last-POST")
	b.ReportMetric(mean(toLast[1]), "s/continue-to-g2-last-POST")
	b.ReportMetric(mean(toLast[2]), "s/poll-to-g3-last-POST")
	b.ReportMetric(mean(toLast[3]), "s/poll-to-g4-last-POST")
	var c, l float64
	for i := range calls {
		c += float64(calls[i])
		l += float64(limited[i])
	}
	b.ReportMetric(c/float64(len(calls)), "slack-calls-in-channel")
	b.ReportMetric(l/float64(len(calls)), "429s")
}

type plan4x50 struct {
	toLast         [4]time.Duration
	calls, limited int
	byMethod       map[string]int
	thread         int
	warnings       int
	firstWarnings  []string
}

func runPlan4x50(b *testing.B, groups, n int) plan4x50 {
	b.Helper()
	var f plan4x50
	inv := manyInventory(groups, n)
	var y strings.Builder
	y.WriteString("plans:\n  site:\n    groups:\n")
	for g := range groups {
		fmt.Fprintf(&y, "      - name: g%d\n        concurrency: %d\n        targets:\n          - replica: CDP-Big%d\n", g+1, n, g)
	}
	pf, err := plans.Parse("bench.yaml", []byte(y.String()))
	if err != nil {
		b.Fatal(err)
	}
	h := newHarness(b, withOptions(func(o *bot.Options) {
		o.MaxConcurrentFailovers, o.PostRate, o.UpdateRate, o.Plans = manyCap, 0, 0, pf
	}), func(c *harnessConfig) { c.inventory = &inv })
	defer h.stop()
	h.slack.EnforceLimits(manySlackLimits)
	h.em.SetLatency(manyLatency)
	h.em.SetScript(inv.Replicas[0].VMs[7].ID, emsim.Script{Running: 30 * time.Second, Result: emsim.ResultFailed, Message: "Datastore full"})

	ack := h.command(Requester, `plan site --reason "bench"`)
	if !strings.Contains(ack, "Recorded *FO-1*") && !manyWait(time.Minute, func() bool { _, err := h.st.Get(context.Background(), "FO-1"); return err == nil }) {
		b.Fatalf("plan command answered:\n%s", ack)
	}
	h.idle()
	r := h.wantState("FO-1", store.Pending)
	if len(r.Items) != groups*n {
		b.Fatalf("FO-1 has %d items", len(r.Items))
	}
	// timeTo runs act (the click or the poll cycle) and returns how long until EM has seen want
	// failover POSTs, polled every millisecond on the wall clock.
	timeTo := func(want int, act func()) time.Duration {
		reached := make(chan time.Time, 1)
		go func() {
			manyWait(2*time.Minute, func() bool { return h.failoverPOSTs() >= want })
			reached <- time.Now()
		}()
		b.StartTimer()
		start := time.Now()
		act()
		at := <-reached
		b.StopTimer()
		if got := h.failoverPOSTs(); got != want {
			b.Fatalf("%d failover POSTs, want %d", got, want)
		}
		return at.Sub(start)
	}
	finish := func() {
		h.clock.Advance(time.Minute)
		h.bot.Poll(context.Background())
	}
	f.toLast[0] = timeTo(n, func() { h.approve(Approver1, "FO-1") })
	h.idle()
	finish()
	h.idle()
	if r = h.get("FO-1"); r.State != store.Halted || h.failoverPOSTs() != n {
		b.Fatalf("after group 1: %s, %d POSTs", r.State, h.failoverPOSTs())
	}
	f.toLast[1] = timeTo(2*n, func() { h.click(Approver2, "fo_continue", "FO-1|0") })
	h.idle()
	f.toLast[2] = timeTo(3*n, finish)
	h.idle()
	f.toLast[3] = timeTo(4*n, finish)
	h.idle()
	finish()
	h.idle()
	r = h.wantState("FO-1", store.PartlyFailed)
	if c := store.Counts(r); c[store.Succeeded] != groups*n-1 {
		b.Fatalf("counts %v", c)
	}
	if h.em.MaxConcurrentFailovers() > manyCap {
		b.Fatalf("%d POSTs in flight, cap %d", h.em.MaxConcurrentFailovers(), manyCap)
	}
	f.calls = h.slack.CallsIn(Channel)
	f.byMethod = h.slack.CallsInByMethod(Channel)
	for _, v := range h.slack.RateLimited() {
		f.limited += v
	}
	f.thread = len(h.slack.Thread(r.Channel, r.MessageTS))
	f.warnings, f.firstWarnings = manyLogProblems(h, 5)
	return f
}
