package bot_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/failover-bot/failover-bot/bot/slackfake"
	"github.com/failover-bot/failover-bot/emapi/emsim"
	"github.com/failover-bot/failover-bot/store"
)

// runningFO1 requests fin-db01, has it approved and returns once it runs in EM.
func runningFO1(t *testing.T, h *harness) {
	t.Helper()
	mustContain(t, "ack", h.command(Requester, `vm CDP-Finance fin-db01 --reason "primary DC down"`), "Recorded *FO-1*")
	h.idle()
	h.approve(Approver1, "FO-1")
	h.idle()
	h.wantState("FO-1", store.Running)
}

// TestNextCycleTellsTheThread: whatever EM reports (progress past a step, an outcome), the very
// next poll cycle posts it in the card's thread — not a later one.
func TestNextCycleTellsTheThread(t *testing.T) {
	cases := []struct {
		name    string
		script  emsim.Script
		advance time.Duration
		want    store.State
		line    string
	}{
		{"progress", emsim.Script{Running: 100 * time.Minute}, 60 * time.Minute, store.Running, "restore Working 55%"},
		{"succeeded", emsim.Script{Running: 10 * time.Minute}, 11 * time.Minute, store.Succeeded, "Failover succeeded"},
		{"warning", emsim.Script{Running: 10 * time.Minute, Result: emsim.ResultWarning, Message: "2 disks skipped"}, 11 * time.Minute, store.Warning, "2 disks skipped"},
		{"failed", emsim.Script{Running: 10 * time.Minute, Result: emsim.ResultFailed, Message: "no restore point"}, 11 * time.Minute, store.Failed, "no restore point"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.em.SetDefaultScript(tc.script)
			runningFO1(t, h)
			h.poll() // the first look: restore session Starting
			mustNotContain(t, "thread before the change", h.threadText("FO-1"), tc.line)
			h.clock.Advance(tc.advance)
			h.poll()
			h.wantState("FO-1", tc.want)
			mustContain(t, "thread after one cycle", h.threadText("FO-1"), tc.line)
		})
	}
}

// TestStateChangeReachesThreadWithinOnePollInterval runs the real poller on its cron schedule
// ("@every 1s", wall clock) and shows that a change in EM is in the thread after the first
// cycle that starts after the change: EM's reads are stamped with the (fake) EM clock, which
// moves only at the change, so the reads made after it are counted exactly.
func TestStateChangeReachesThreadWithinOnePollInterval(t *testing.T) {
	const interval = time.Second
	h := newHarness(t)
	h.em.SetDefaultScript(emsim.Script{Running: 10 * time.Minute, Collect: time.Minute})
	runningFO1(t, h)
	stop, err := h.bot.StartPoller("@every 1s")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := stop(ctx); err != nil {
			t.Error(err)
		}
	})

	// EM: the failover has finished, successfully (and the logon session, idle for less than
	// EM's 15 minutes, still holds the task).
	h.clock.Advance(11 * time.Minute)
	changedAt, changed := time.Now(), h.clock.Now()
	succeeded := func() bool { return strings.Contains(h.threadText("FO-1"), "Failover succeeded") }
	h.slack.WaitFor(t, 5*interval, func(*slackfake.Server) bool { return succeeded() })
	elapsed := time.Since(changedAt)

	reads := 0 // task reads EM served after the change
	for _, r := range h.em.Requests() {
		if r.Method == http.MethodGet && strings.Contains(r.Path, "/tasks/") && !r.At.Before(changed) {
			reads++
			t.Logf("EM served %s %s with %d", r.Method, r.Path, r.Status)
		}
	}
	t.Logf("change in the thread %v after it happened in EM; %d task read(s) since", elapsed.Round(time.Millisecond), reads)
	if reads != 1 {
		t.Errorf("the thread heard of the change after %d task reads, want the first cycle's", reads)
	}
	// The first cycle starts within one interval of the change; its work (two EM reads, one
	// commit, one Slack post) must be done before the cycle after it would start.
	if elapsed > 2*interval {
		t.Errorf("the change took %v to reach the thread; the poll interval is %v", elapsed, interval)
	}
	h.wantState("FO-1", store.Succeeded)
}
