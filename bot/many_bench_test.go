package bot_test

// Benchmarks for requests of many items (one per VM). Run each once, without -race:
//
//	go test -run '^$' -bench 'Replica200' -benchtime 1x ./bot/
//	go test -run '^$' -bench 'PollCycleFour200' -benchtime 1x ./bot/
//
// Each reports its figures beside the goal it is measured against; a missed goal is reported,
// not failed. A run that does not do what it should (a POST missing, a request not finished) fails.

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/failover-bot/failover-bot/bot"
	"github.com/failover-bot/failover-bot/bot/slackfake"
	"github.com/failover-bot/failover-bot/emapi/emsim"
	"github.com/failover-bot/failover-bot/store"
)

const (
	manyLatency = 20 * time.Millisecond // per EM call
	manyCap     = 8                     // MaxConcurrentFailovers, the production default
	// manyPollInterval is cmd/bot's default POLL_SCHEDULE, "@every 15s".
	manyPollInterval = 15 * time.Second
)

// manySlackLimits are Slack's documented limits: 1 message per second per channel and about 50
// updates per minute per workspace, each with a short burst.
var manySlackLimits = slackfake.Limits{PostPerSecond: 1, PostBurst: 2, UpdatesPerMinute: 50, UpdateBurst: 2}

// replica200 is what one run of BenchmarkReplica200 measured.
type replica200 struct {
	preflightAck    time.Duration // the replica command's answer
	preflight       time.Duration // the replica command until FO-1 is stored (its pre-flight)
	checkWarm       time.Duration // a later `check replica` (inventory cached)
	checkAnswer     string
	toLastPOST      time.Duration // approval click to the 200th failover POST reaching EM
	clickAck        time.Duration // approval click answered
	maxInFlight     int
	finishPoll      time.Duration // the poll cycle that sees every failover finished
	pollEndToCard   time.Duration // end of that cycle to the card's last chat.update
	cardUpdates     int           // chat.update calls of the card after the finishing cycle began
	pollStartToCard time.Duration // start of that cycle to the card's last chat.update
	slackCalls      int
	slackByMethod   map[string]int
	rateLimited     int
	rateLimitedBy   map[string]int
	warnings        int
	firstWarnings   []string
	threadMessages  int
	auditCalls      int // chat.postMessage and chat.update in the audit channel (no goal)
}

// BenchmarkReplica200 runs `/failover replica` over 200 VMs end to end, EM answering each call in
// 20 ms, at most 8 failover POSTs in flight, delivery paced at Slack's real limits against a
// Slack fake that enforces them. Goals, each reported beside its figure:
//
//   - approval click to the 200th failover POST reaching EM: ≤ 2 s (floor 200/8 × 20 ms = 0.5 s);
//   - the replica command's pre-flight (its first command: it also lists the inventory) and a
//     later `check replica` of the same VMs (inventory cached): ≤ 2 s each;
//   - Slack calls in the request channel for the whole run: ≤ 60; 429s: 0;
//   - end of the poll cycle that sees the failovers finished to the card's last update: ≤ 5 s
//     (the poll interval, 15 s by default, comes before the cycle and is not part of it).
func BenchmarkReplica200(b *testing.B) {
	const n = 200
	var runs []replica200
	for range b.N {
		b.StopTimer()
		runs = append(runs, runReplica200(b, n))
		b.StartTimer()
	}
	b.StopTimer()
	mean := func(f func(replica200) float64) float64 {
		var s float64
		for _, r := range runs {
			s += f(r)
		}
		return s / float64(len(runs))
	}
	floor := time.Duration(n/manyCap) * manyLatency
	b.ReportMetric(mean(func(r replica200) float64 { return r.toLastPOST.Seconds() }), "s/approval-to-200th-POST")
	b.ReportMetric(floor.Seconds(), "s/POST-floor")
	b.ReportMetric(mean(func(r replica200) float64 { return r.preflight.Seconds() }), "s/preflight-replica")
	b.ReportMetric(mean(func(r replica200) float64 { return r.checkWarm.Seconds() }), "s/preflight-check-warm")
	b.ReportMetric(mean(func(r replica200) float64 { return float64(r.slackCalls) }), "slack-calls-in-channel")
	b.ReportMetric(mean(func(r replica200) float64 { return float64(r.rateLimited) }), "429s")
	b.ReportMetric(mean(func(r replica200) float64 { return r.finishPoll.Seconds() }), "s/finish-poll")
	b.ReportMetric(mean(func(r replica200) float64 { return r.pollEndToCard.Seconds() }), "s/poll-end-to-last-card-update")
	b.ReportMetric(mean(func(r replica200) float64 { return r.pollStartToCard.Seconds() }), "s/poll-start-to-last-card-update")
	b.ReportMetric(mean(func(r replica200) float64 { return float64(r.maxInFlight) }), "max-POSTs-in-flight")
	b.ReportMetric(mean(func(r replica200) float64 { return float64(r.auditCalls) }), "slack-calls-audit")
	for i, r := range runs {
		b.Logf("run %d: approval→200th POST %.3fs (goal ≤2s, floor %.2fs; click answered in %.3fs, max %d in flight); "+
			"pre-flight replica %.3fs (answer %.3fs) / check warm %.3fs (goal ≤2s each); "+
			"Slack calls in channel %d %v (goal ≤60), 429s %d %v (goal 0), %d thread replies, %d calls in the audit channel; "+
			"finishing poll %.3fs, its end→last card update %.3fs (from its start %.3fs) over %d updates (goal ≤5s + poll interval %s); "+
			"%d WARN/ERROR log lines %q; check answer: %q",
			i, r.toLastPOST.Seconds(), floor.Seconds(), r.clickAck.Seconds(), r.maxInFlight,
			r.preflight.Seconds(), r.preflightAck.Seconds(), r.checkWarm.Seconds(),
			r.slackCalls, r.slackByMethod, r.rateLimited, r.rateLimitedBy, r.threadMessages, r.auditCalls,
			r.finishPoll.Seconds(), r.pollEndToCard.Seconds(), r.pollStartToCard.Seconds(), r.cardUpdates, manyPollInterval,
			r.warnings, r.firstWarnings, r.checkAnswer)
	}
}

// runReplica200 is one run of BenchmarkReplica200 on a fresh harness. The benchmark timer runs
// from just before the approval click until the last POST reached EM.
func runReplica200(b *testing.B, n int) replica200 {
	b.Helper()
	var f replica200
	ctx := context.Background()
	inv := bigInventory(n)
	h := newHarness(b, withOptions(func(o *bot.Options) { o.MaxConcurrentFailovers, o.PostRate, o.UpdateRate = manyCap, 0, 0 }),
		func(c *harnessConfig) { c.inventory = &inv })
	defer h.stop()
	h.slack.EnforceLimits(manySlackLimits)
	h.em.SetLatency(manyLatency)

	// The request: its pre-flight reads every VM's restore points. If it outlasts the answer
	// budget the answer says "Checking …" and the request is stored in the background: the
	// pre-flight is then until FO-1 exists.
	start := time.Now()
	ack := h.command(Requester, "replica CDP-Big --reason x")
	f.preflightAck = time.Since(start)
	if !strings.Contains(ack, "Recorded *FO-1*") {
		if !strings.Contains(ack, "Checking every VM of CDP-Big") {
			b.Fatalf("replica command answered:\n%s", ack)
		}
		if !manyWait(time.Minute, func() bool { _, err := h.st.Get(ctx, "FO-1"); return err == nil }) {
			b.Fatalf("FO-1 not stored a minute after the replica command; answer:\n%s", ack)
		}
	}
	f.preflight = time.Since(start)
	h.idle()
	r := h.wantState("FO-1", store.Pending)
	if len(r.Items) != n || len(r.Excluded) != 0 {
		b.Fatalf("FO-1 holds %d items (%d excluded), want %d", len(r.Items), len(r.Excluded), n)
	}
	if got := h.failoverPOSTs(); got != 0 {
		b.Fatalf("%d failover POSTs before the approval", got)
	}
	value := h.buttonValue("FO-1", "fo_approve")

	// The approval, and the 200th POST seen arriving at EM (its recorded times are EM's fake
	// clock, so the count is polled every millisecond on the wall clock).
	reached := make(chan time.Time, 1)
	quit := make(chan struct{})
	defer close(quit)
	go func() {
		tk := time.NewTicker(time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-quit:
				return
			case <-tk.C:
				if h.failoverPOSTs() >= n {
					reached <- time.Now()
					return
				}
			}
		}
	}()
	b.StartTimer()
	click := time.Now()
	h.click(Approver1, "fo_approve", value)
	f.clickAck = time.Since(click)
	select {
	case at := <-reached:
		f.toLastPOST = at.Sub(click)
	case <-time.After(2 * time.Minute):
		b.Fatalf("%d failover POSTs two minutes after the approval, want %d", h.failoverPOSTs(), n)
	}
	b.StopTimer()
	h.idle()
	if got := h.failoverPOSTs(); got != n {
		b.Fatalf("%d failover POSTs after the approval, want %d", got, n)
	}
	f.maxInFlight = h.em.MaxConcurrentFailovers()
	if f.maxInFlight > manyCap {
		b.Fatalf("%d failover POSTs in flight at once, cap %d", f.maxInFlight, manyCap)
	}
	r = h.wantState("FO-1", store.Running)
	if c := store.Counts(r); c[store.Running] != n {
		b.Fatalf("after the submissions FO-1 counts %v, want %d running", c, n)
	}

	// Every failover finishes (30 s running, 5 s collecting by default); one cycle sees it.
	h.clock.Advance(time.Minute)
	pollStart := time.Now()
	h.bot.Poll(ctx)
	pollEnd := time.Now()
	f.finishPoll = pollEnd.Sub(pollStart)
	h.idle()
	r = h.wantState("FO-1", store.Succeeded)
	if c := store.Counts(r); c[store.Succeeded] != n {
		b.Fatalf("after the finishing cycle FO-1 counts %v, want %d succeeded", c, n)
	}
	if card := h.cardJSON("FO-1"); !strings.Contains(card, fmt.Sprintf("All %d failovers succeeded", n)) {
		b.Fatalf("the card does not show the outcome:\n%s", card)
	}
	var last time.Time
	for _, c := range h.slack.Calls() {
		if c.Method == "chat.update" && c.Status == 200 && c.Values.Get("channel") == r.Channel && c.Values.Get("ts") == r.MessageTS && !c.At.Before(pollStart) {
			last = c.At
			f.cardUpdates++
		}
	}
	if last.IsZero() {
		b.Fatal("the card was not updated after the finishing cycle began")
	}
	f.pollEndToCard = last.Sub(pollEnd)
	f.pollStartToCard = last.Sub(pollStart)

	f.slackCalls = h.slack.CallsIn(Channel)
	f.slackByMethod = h.slack.CallsInByMethod(Channel)
	f.rateLimitedBy = h.slack.RateLimited()
	for _, v := range f.rateLimitedBy {
		f.rateLimited += v
	}
	f.threadMessages = len(h.slack.Thread(r.Channel, r.MessageTS))
	f.auditCalls = h.slack.CallsIn(Audit)

	// A second pre-flight of the same 200 VMs, the inventory cached (the clock moved a minute;
	// the cache keeps 5). FO-1 has finished, so the VMs are not held and every one is read.
	start = time.Now()
	answer := h.command(Requester, "check replica CDP-Big")
	f.checkWarm = time.Since(start)
	f.checkAnswer, _, _ = strings.Cut(answer, "\n")
	if strings.Contains(answer, "Check only") {
		f.checkAnswer, _, _ = strings.Cut(strings.TrimPrefix(answer, f.checkAnswer+"\n"), "\n")
	}

	f.warnings, f.firstWarnings = manyLogProblems(h, 5)
	return f
}

// manyWait polls cond every millisecond until it holds (true) or timeout passes (false).
func manyWait(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(time.Millisecond)
	}
	return true
}

// manyLogProblems counts the bot's WARN and ERROR log lines and returns up to max distinct
// messages among them.
func manyLogProblems(h *harness, max int) (int, []string) {
	n := 0
	seen := map[string]bool{}
	var msgs []string
	for line := range strings.Lines(h.logs.String()) {
		if !strings.Contains(line, "level=WARN") && !strings.Contains(line, "level=ERROR") {
			continue
		}
		n++
		_, msg, _ := strings.Cut(line, "msg=")
		msg, _, _ = strings.Cut(msg, " request=")
		if msg = strings.TrimSpace(msg); !seen[msg] && len(msgs) < max {
			seen[msg] = true
			msgs = append(msgs, msg)
		}
	}
	return n, msgs
}

// manyInventory is replicas CDP-Big0, CDP-Big1, … with n VMs each (big0-vm-0000, …), every
// replica and VM with its own ID.
func manyInventory(replicas, n int) emsim.Inventory {
	var inv emsim.Inventory
	for r := range replicas {
		rep := emsim.Replica{ID: fmt.Sprintf("7665222c-2e99-4a3f-b892-1827ba8d1e%02d", r), Name: fmt.Sprintf("CDP-Big%d", r), PolicyName: fmt.Sprintf("Big%d", r)}
		for i := range n {
			rep.VMs = append(rep.VMs, emsim.VM{ID: fmt.Sprintf("00000000-0000-4000-8%03d-%012d", r, i), Name: fmt.Sprintf("big%d-vm-%04d", r, i)})
		}
		inv.Replicas = append(inv.Replicas, rep)
	}
	return inv
}

// BenchmarkPollCycleFour200 measures one poll cycle over four 200-VM replica requests running at
// once (800 running failovers, none finished) while every EM call takes 20 ms, with the
// production PollConcurrency (64) and MaxConcurrentFailovers (8). Goal: ≤ 1.5 s.
//
// The timed cycle is the first after the submissions (with -benchtime 1x the only one): it is
// the first look at every task and records what it finds. A further, untimed-by-the-framework
// cycle with nothing changed is reported as ms/steady-cycle.
func BenchmarkPollCycleFour200(b *testing.B) {
	const replicas, n = 4, 200
	const total = replicas * n
	ctx := context.Background()
	inv := manyInventory(replicas, n)
	// PollConcurrency and MaxConcurrentFailovers are left at zero: the production defaults.
	h := newHarness(b, func(c *harnessConfig) { c.inventory = &inv })
	if c := h.cfg.opt.PollConcurrency; c != 0 {
		b.Fatalf("the harness sets PollConcurrency %d; want the production default", c)
	}
	h.em.SetDefaultScript(emsim.Script{Running: 1000 * time.Hour, Collect: time.Minute})
	h.em.SetLatency(manyLatency)
	var ids []string
	for _, rep := range inv.Replicas {
		ids = append(ids, h.request(Requester, "replica "+rep.Name+" --reason x"))
	}
	for i, id := range ids {
		if r := h.wantState(id, store.Pending); len(r.Items) != n || r.Items[0].Target.ReplicaID != inv.Replicas[i].ID {
			b.Fatalf("%s holds %d items of replica %s, want %d of %s", id, len(r.Items), r.Items[0].Target.ReplicaID, n, inv.Replicas[i].ID)
		}
	}
	for _, id := range ids {
		h.approve(Approver1, id)
	}
	h.idle()
	if got := h.failoverPOSTs(); got != total {
		b.Fatalf("%d failover POSTs after the approvals, want %d", got, total)
	}
	running := func() (int, map[store.State]int) {
		all := map[store.State]int{}
		for _, id := range ids {
			for st, c := range store.Counts(h.get(id)) {
				all[st] += c
			}
		}
		return all[store.Running], all
	}
	if got, all := running(); got != total {
		b.Fatalf("after the submissions: %v, want %d running", all, total)
	}
	versions := func() int {
		v := 0
		for _, id := range ids {
			v += int(h.get(id).Version)
		}
		return v
	}
	emCalls := func() int { return len(h.em.Requests()) }

	var first time.Duration
	v0, e0 := versions(), emCalls()
	b.ResetTimer()
	for i := range b.N {
		start := time.Now()
		h.bot.Poll(ctx)
		if i == 0 {
			first = time.Since(start)
		}
		b.StopTimer()
		h.idle()
		if got, all := running(); got != total {
			b.Fatalf("after cycle %d: %v, want %d still running", i+1, all, total)
		}
		b.StartTimer()
	}
	b.StopTimer()
	writes, calls := versions()-v0, emCalls()-e0

	// One more cycle: nothing changed since the last.
	v1, e1 := versions(), emCalls()
	start := time.Now()
	h.bot.Poll(ctx)
	steady := time.Since(start)
	h.idle()
	steadyWrites, steadyCalls := versions()-v1, emCalls()-e1
	if got, all := running(); got != total {
		b.Fatalf("after the steady cycle: %v, want %d still running", all, total)
	}

	warnings, firstWarnings := manyLogProblems(h, 5)
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/cycle")
	b.ReportMetric(float64(first.Milliseconds()), "ms/first-cycle")
	b.ReportMetric(float64(steady.Milliseconds()), "ms/steady-cycle")
	b.ReportMetric(float64(calls)/float64(b.N), "EM-calls/cycle")
	b.ReportMetric(float64(writes)/float64(b.N), "writes/cycle")
	b.Logf("%d running failovers in %d requests, EM %s per call: first cycle %v (goal ≤1.5s), %d EM calls, %d store writes "+
		"(over %d cycles); steady cycle %v, %d EM calls, %d writes; %d WARN/ERROR log lines %q",
		total, replicas, manyLatency, first.Round(time.Millisecond), calls, writes, b.N,
		steady.Round(time.Millisecond), steadyCalls, steadyWrites, warnings, firstWarnings)
}
