package bot_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/failover-bot/failover-bot/bot/core"
	"github.com/failover-bot/failover-bot/bot/slackfake"
	"github.com/failover-bot/failover-bot/store"
	"github.com/failover-bot/failover-bot/store/etcdtest"
)

// leaderSwitch plays the election for one bot: the test decides when it leads, and sees what it
// hands over while it does not.
type leaderSwitch struct {
	mu   sync.Mutex
	term context.Context
	end  context.CancelFunc
	jobs chan core.Job
}

func newLeaderSwitch() *leaderSwitch { return &leaderSwitch{jobs: make(chan core.Job, 16)} }

func (l *leaderSwitch) current() (context.Context, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.term == nil || l.term.Err() != nil {
		return nil, false
	}
	return l.term, true
}

func (l *leaderSwitch) forward(_ context.Context, j core.Job) error { l.jobs <- j; return nil }

func (l *leaderSwitch) lead() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.term, l.end = context.WithCancel(context.Background())
}

func (l *leaderSwitch) standBy() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.end != nil {
		l.end()
	}
	l.term = nil
}

func (l *leaderSwitch) wantJob(t *testing.T, kind string) core.Job {
	t.Helper()
	select {
	case j := <-l.jobs:
		if j.Kind != kind {
			t.Fatalf("handed over %+v, want a %s job", j, kind)
		}
		return j
	case <-time.After(10 * time.Second):
		t.Fatalf("nothing handed over within 10 s, want a %s job", kind)
		return core.Job{}
	}
}

// TestStandbyRecordsTheLeaderActs: an instance that does not lead records an approval but sends
// nothing to EM and posts nothing to Slack; it hands the leader a poll instead. Its poll cycles
// do nothing (no expiry either). Once the job runs on a leader, the failover is sent exactly once
// and what the standby recorded reaches Slack.
func TestStandbyRecordsTheLeaderActs(t *testing.T) {
	ls := newLeaderSwitch()
	ls.lead()
	h := newHarness(t, func(c *harnessConfig) { c.opt.Leader, c.opt.Forward = ls.current, ls.forward })
	id := h.requestDB01() // posted while leading
	expiring := h.request(Requester, `vm CDP-Web web01 --reason "expiry check"`)

	ls.standBy()
	calls := len(h.slack.Calls())
	h.approve(Approver1, id)
	job := ls.wantJob(t, core.JobPoll)
	h.idle()
	h.wantState(id, store.Approved)
	if n := h.failoverPOSTs(); n != 0 {
		t.Fatalf("a standby sent %d failover POSTs", n)
	}
	for _, c := range h.slack.Calls()[calls:] {
		if c.Method == "chat.postMessage" || c.Method == "chat.update" {
			t.Fatalf("a standby called Slack's %s", c.Method)
		}
	}

	ls.lead()
	h.bot.Kick()
	h.bot.RunJob(context.Background(), job)
	h.idle()
	h.wantState(id, store.Running)
	if n := h.failoverPOSTs(); n != 1 {
		t.Fatalf("failover POSTs = %d, want 1", n)
	}
	mustContain(t, "the thread", h.threadText(id), "Approved by <@"+Approver1+">", "accepted the failover")
	// The job running again (a leader that died before removing it) sends nothing twice.
	h.bot.RunJob(context.Background(), job)
	h.idle()
	if n := h.failoverPOSTs(); n != 1 {
		t.Fatalf("failover POSTs after a repeated job = %d, want 1", n)
	}

	// Expiry is the leader's too.
	ls.standBy()
	h.clock.Advance(2 * time.Hour)
	h.bot.Poll(context.Background())
	h.wantState(expiring, store.Pending)
	ls.lead()
	h.bot.Poll(context.Background())
	h.wantState(expiring, store.Expired)
}

// TestEdgeWhenEtcdIsDown: with the etcd store out of reach, a /failover command is answered at
// once saying nothing could be recorded, and nothing is; when etcd returns, the next command is
// recorded as the first request.
func TestEdgeWhenEtcdIsDown(t *testing.T) {
	c := etcdtest.Start(t)
	h := newHarness(t, func(hc *harnessConfig) {
		hc.etcd, hc.etcdPrefix = c.Endpoints(), "/failover-bot/"
		hc.opt.AckBudget = 2 * time.Second
	})
	c.StopAll()
	start := time.Now()
	ack := h.command(Requester, `vm CDP-Finance fin-db01 --reason "primary DC down"`)
	took := time.Since(start)
	answer := func() string { return ack + strings.Join(h.responseURLTexts(), "\n") }
	h.slack.WaitFor(t, 30*time.Second, func(*slackfake.Server) bool { return strings.Contains(answer(), "cannot record") })
	mustContain(t, "answer with etcd down", answer(), "cannot record the request right now", "Nothing was recorded")
	if took > 3*time.Second {
		t.Fatalf("the answer took %v; Slack gives up after 3 s", took)
	}
	c.StartAll()
	if id := h.request(Requester, `vm CDP-Finance fin-db01 --reason "primary DC down"`); id != "FO-1" {
		t.Fatalf("first request after etcd returned is %s, want FO-1 (nothing recorded before)", id)
	}
}
