package main

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/failover-bot/failover-bot/emapi/emsim"
	"github.com/failover-bot/failover-bot/store"
)

// TestKill9MidRunOfManyItems kills the real bot with SIGKILL while a six-VM replica request is
// being submitted, two failovers at a time: EM has started the first two, but their answers have
// not arrived. After the restart every VM has had exactly one failover POST (the two in flight
// are found through their restore sessions, never sent again; the four still queued are sent),
// and the card and the thread tell the truth: all six succeeded.
func TestKill9MidRunOfManyItems(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	clock, sim, emURL := crashEM(t, emsim.DemoSite())
	sl, path, env := crashSetup(t, emURL, "EM_MAX_CONCURRENT_FAILOVERS=2")
	p := startBot(t, env)
	var logs strings.Builder
	logsOf := func() string { return logs.String() + p.stderr.String() }

	mustContain(t, "ack", p.command(sl, `replica CDP-Web --reason "site A down"`), "Recorded *FO-1*", "6 VMs of CDP-Web")
	waitUntil(t, "FO-1's card", 20*time.Second, func() bool { return len(sl.LiveCards("FO-1")) == 1 }, logsOf)

	// EM starts the first two failovers, but their answers are late: the bot dies waiting.
	sim.DelayResponses(2, 15*time.Second)
	p.approve(sl, "FO-1")
	waitUntil(t, "two failover POSTs", 20*time.Second, func() bool { return sim.Count(http.MethodPost, "action=failover") == 2 }, logsOf)
	p.kill()
	logs.WriteString(p.stderr.String())
	p = startBot(t, env)

	waitUntil(t, "all six failovers started", 30*time.Second, func() bool { return sim.Count(http.MethodPost, "action=failover") >= 6 }, logsOf)
	clock.Advance(time.Hour)
	waitUntil(t, "the summary in the thread", 60*time.Second, func() bool {
		return strings.Contains(threadsText(sl), "FO-1 finished: succeeded")
	}, logsOf)
	p.term(30 * time.Second)

	perVM := map[string]int{}
	for _, rq := range sim.Requests() {
		if rq.Method == http.MethodPost && strings.Contains(rq.RawQuery, "action=failover") {
			perVM[rq.Path]++
		}
	}
	if len(perVM) != 6 {
		t.Errorf("failover POSTs went to %d VMs, want 6: %v", len(perVM), perVM)
	}
	for vm, n := range perVM {
		if n != 1 {
			t.Errorf("%s got %d failover POSTs, want exactly 1", vm, n)
		}
	}
	st, err := store.Open(path, store.Options{LockTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	r, err := st.Get(context.Background(), "FO-1")
	if err != nil {
		t.Fatal(err)
	}
	if r.State != store.Succeeded || len(r.Items) != 6 {
		t.Fatalf("FO-1 is %s with %d items, want succeeded with 6", r.State, len(r.Items))
	}
	reconciled := 0
	if err := st.Events(context.Background(), 0, time.Time{}, func(e store.Event) error {
		if e.Action == "reconciled" {
			reconciled++
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if reconciled != 2 {
		t.Errorf("%d items reconciled through their restore sessions, want the 2 whose answers were lost", reconciled)
	}
	if err := st.Verify(context.Background()); err != nil {
		t.Fatalf("audit chain: %v", err)
	}
	var card string
	for _, m := range sl.Posted(crashChannel) {
		if m.TS == r.MessageTS {
			card = m.Text
		}
	}
	mustContain(t, "card", card, "All 6 failovers succeeded")
	mustContain(t, "thread", threadOf(sl, r.MessageTS), "Sending 6 failovers", "FO-1 finished: succeeded", "6 succeeded")
}
