package main

import (
	"context"
	"errors"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/failover-bot/failover-bot/bot/core"
	"github.com/failover-bot/failover-bot/store"
)

// High availability (STORE=etcd), through real bot processes sharing one real etcd: the leader
// killed with SIGKILL mid-run, a leader paused past its lease and resumed, etcd down for 30 s,
// and one signed command delivered to two instances at once.

// TestHAKill9Leader runs a 50-VM replica request on two and on three instances and kills the
// leader with SIGKILL while it submits them, four at a time: twelve failovers are running,
// EM has started four more whose answers the leader dies waiting for, thirty-four are not sent.
// A standby takes over within LEADER_TTL + one poll interval, reconciles the four through
// their restore sessions (never sending them again) and sends the rest. With three instances
// the second leader is killed too, while the failovers run. Afterwards EM has had exactly one
// failover POST per VM, the card, the thread and the audit channel tell the whole story with
// at most one repeated message per crash, and the audit chain in etcd verifies.
func TestHAKill9Leader(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd and bot processes")
	}
	for _, tc := range []struct {
		name      string
		instances int
		kills     int // of the leader; the first while submitting, the second while running
	}{
		{"two instances", 2, 1},
		{"three instances", 3, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const vms, slots, running = 50, 4, 12
			r := newHARig(t, "EM_MAX_CONCURRENT_FAILOVERS=4")
			for range tc.instances {
				r.start()
			}
			leader := r.waitLeader(30 * time.Second)
			var standby *haBot
			for _, b := range r.live() {
				if b != leader {
					standby = b
				}
			}

			// Any instance records what people ask: the command goes to a standby.
			id := r.recorded(standby.send(r.slashCommand(`replica CDP-Big --reason "site A down"`, "kill9")), "kill9")
			if id != "FO-1" {
				t.Fatalf("recorded %s, want FO-1", id)
			}
			waitUntil(t, "FO-1's card", 30*time.Second, func() bool { return len(r.sl.LiveCards(id)) == 1 }, r.logs)

			// The answers of failover POSTs 13 to 16 are held: the leader is mid-submission.
			r.gate.Hold(failoverPOST, running, slots)
			standby.approve(r.sl, id)
			r.gate.WaitHeld(t, slots, 60*time.Second, r.logs)
			if n := r.sim.Count(http.MethodPost, "action=failover"); n != running+slots {
				t.Fatalf("EM received %d failover POSTs before the kill, want %d (%d answered, %d held)", n, running+slots, running, slots)
			}

			killed := time.Now()
			leader.kill()
			r.gate.Release()
			next, took := r.takeover(killed, 60*time.Second)
			t.Logf("kill -9 of %s: %s leads after %v (LEADER_TTL %v, poll every %v)", leader.name, next.name, took.Round(time.Millisecond), haTTL, haPoll)
			if bound := haTTL + haPoll + haSlack; took > bound {
				t.Errorf("the takeover took %v, want at most LEADER_TTL + one poll interval (%v) plus %v for a loaded machine", took, haTTL+haPoll, haSlack)
			}
			waitUntil(t, "the new leader to send the next failover", 30*time.Second, func() bool {
				return r.sim.Count(http.MethodPost, "action=failover") > running+slots
			}, r.logs)
			t.Logf("the next failover POST came %v after the kill", time.Since(killed).Round(time.Millisecond))
			waitUntil(t, "all 50 failovers sent", 90*time.Second, func() bool {
				return r.sim.Count(http.MethodPost, "action=failover") >= vms
			}, r.logs)

			if tc.kills > 1 {
				// The second leader dies while the failovers run, after it has polled them.
				r.clock.Advance(3 * time.Minute)
				polls := r.sim.Count(http.MethodGet, "")
				waitUntil(t, "progress polled", 30*time.Second, func() bool { return r.sim.Count(http.MethodGet, "") > polls+vms }, r.logs)
				killed = time.Now()
				next.kill()
				third, took := r.takeover(killed, 60*time.Second)
				t.Logf("kill -9 of %s: %s leads after %v", next.name, third.name, took.Round(time.Millisecond))
				if bound := haTTL + haPoll + haSlack; took > bound {
					t.Errorf("the second takeover took %v, want at most %v plus %v", took, haTTL+haPoll, haSlack)
				}
			}

			r.clock.Advance(time.Hour)
			waitUntil(t, "FO-1's summary in its thread", 120*time.Second, func() bool { return r.finished(id) }, r.logs)
			final := r.waitLeader(30 * time.Second)

			r.checkOnePOSTPerVM(vms)
			req := r.request(id)
			if req.State != store.Succeeded || len(req.Items) != vms {
				t.Errorf("%s is %s with %d items, want succeeded with %d", id, req.State, len(req.Items), vms)
			}
			reconciled := 0
			if err := r.store().Events(context.Background(), 0, time.Time{}, func(e store.Event) error {
				if e.Action == "reconciled" {
					reconciled++
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if reconciled != slots {
				t.Errorf("%d items reconciled through their restore sessions, want the %d whose answers died with the leader", reconciled, slots)
			}
			r.checkDelivered(id, tc.kills)
			var card string
			for _, m := range r.sl.Posted(crashChannel) {
				if m.TS == req.MessageTS {
					card = m.Text
				}
			}
			mustContain(t, "card", card, "All 50 failovers succeeded")
			mustContain(t, "thread", threadOf(r.sl, req.MessageTS), "Approved by", "Sending 50 failovers", id+" finished: succeeded", "50 succeeded")
			r.verifyChain()
			for _, secret := range []string{"xoxb-crash-token", crashSecret, "EM_PASSWORD=pw"} {
				if strings.Contains(r.logs(), secret) {
					t.Errorf("a secret appears in the logs: %q", secret)
				}
			}
			for _, b := range r.live() {
				if b != final {
					b.term(30 * time.Second)
				}
			}
			final.term(30 * time.Second)
		})
	}
}

// TestHAFencingSIGSTOP pauses the leader with SIGSTOP while EM holds the answers of its first two
// failover POSTs, until the standby has taken over, reconciled those two and sent the other four,
// and the store is quiet. Then it resumes the old leader, whose first act is to record the answers
// it was waiting for: the store refuses every such write (the election key of its term is gone),
// so etcd holds no change from it, it says it no longer leads, its /healthz says standby, and each
// item has exactly one start in the audit log. Later work recorded through it completes once.
func TestHAFencingSIGSTOP(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd and bot processes")
	}
	r := newHARig(t, "EM_MAX_CONCURRENT_FAILOVERS=2")
	r.start()
	r.start()
	old := r.waitLeader(30 * time.Second)
	var standby *haBot
	for _, b := range r.live() {
		if b != old {
			standby = b
		}
	}
	id := r.recorded(old.send(r.slashCommand(`replica CDP-Small --reason "site A down"`, "fence1")), "fence1")
	waitUntil(t, id+"'s card", 30*time.Second, func() bool { return len(r.sl.LiveCards(id)) == 1 }, r.logs)
	r.gate.Hold(failoverPOST, 0, 2)
	old.approve(r.sl, id)
	r.gate.WaitHeld(t, 2, 60*time.Second, r.logs)

	paused := time.Now()
	old.pause()
	next, took := r.takeover(paused, 60*time.Second)
	if next != standby {
		t.Fatalf("%s leads, want %s", next.name, standby.name)
	}
	t.Logf("SIGSTOP of %s: %s leads after %v", old.name, next.name, took.Round(time.Millisecond))
	if bound := haTTL + haPoll + haSlack; took > bound {
		t.Errorf("the takeover took %v, want at most %v plus %v", took, haTTL+haPoll, haSlack)
	}
	// The held answers reach the paused process's sockets and wait there for it.
	r.gate.Release()
	waitUntil(t, "the new leader to run all six", 60*time.Second, func() bool {
		req := r.request(id)
		for _, it := range req.Items {
			if it.State != store.Running {
				return false
			}
		}
		return req.State == store.Running && len(req.Items) == 6
	}, r.logs)
	before := r.quiet(3*haPoll, 60*time.Second)

	old.resume()
	waitUntil(t, "the resumed instance to refuse its own writes", 30*time.Second, func() bool {
		return strings.Contains(old.stderr.String(), store.ErrFenced.Error())
	}, r.logs)
	waitUntil(t, "the resumed instance to step down", 30*time.Second, func() bool {
		s := old.stderr.String()
		return strings.Contains(s, "no longer leads") || strings.Contains(s, "stepped down")
	}, r.logs)
	if got := r.waitLeader(30 * time.Second); got != next {
		t.Fatalf("%s leads after the resume, want %s", got.name, next.name)
	}
	if changes := r.changesSince(before); len(changes) > 0 {
		t.Errorf("etcd changed after the deposed leader resumed (the new leader was quiet), want no change:\n%s\n%s", strings.Join(changes, "\n"), r.logs())
	}
	starts := map[string][]string{}
	if err := r.store().Events(context.Background(), 0, time.Time{}, func(e store.Event) error {
		if e.RequestID == id && (e.Action == "submitted" || e.Action == "reconciled") {
			vm, _, _ := strings.Cut(e.Details, ":")
			starts[vm] = append(starts[vm], e.Action)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	reconciled := 0
	for vm, s := range starts {
		if len(s) != 1 {
			t.Errorf("%s has starts %v in the audit log, want exactly one", vm, s)
		}
		if s[0] == "reconciled" {
			reconciled++
		}
	}
	if len(starts) != 6 || reconciled != 2 {
		t.Errorf("%d items started (%d reconciled), want 6 with the 2 whose answers the paused leader held reconciled: %v", len(starts), reconciled, starts)
	}

	// Later work, asked and approved through the deposed instance, is done once by the leader.
	id2 := r.recorded(old.send(r.slashCommand(`replica CDP-Late --reason "site A down"`, "fence2")), "fence2")
	waitUntil(t, id2+"'s card", 30*time.Second, func() bool { return len(r.sl.LiveCards(id2)) == 1 }, r.logs)
	old.approve(r.sl, id2)
	waitUntil(t, "the four later failovers sent", 30*time.Second, func() bool {
		return r.sim.Count(http.MethodPost, "action=failover") >= 10
	}, r.logs)
	r.clock.Advance(time.Hour)
	waitUntil(t, "both summaries", 90*time.Second, func() bool { return r.finished(id) && r.finished(id2) }, r.logs)
	r.checkOnePOSTPerVM(10)
	for _, x := range []string{id, id2} {
		if req := r.request(x); req.State != store.Succeeded {
			t.Errorf("%s is %s, want succeeded", x, req.State)
		}
		r.checkDelivered(x, 1)
	}
	r.verifyChain()
	if !strings.Contains(old.stderr.String(), "handed to the leading instance") {
		t.Errorf("the approval on the standby was not handed to the leader\n%s", old.stderr.String())
	}
	old.term(30 * time.Second)
	next.term(30 * time.Second)
}

// TestHAReplayToTwoInstances delivers one signed /failover command — the same body and the same
// signature headers — to two instances at the same moment, as a retrying proxy or an attacker
// replaying a captured request might: exactly one request is recorded, the other delivery is
// answered as a replay, and one card is posted.
func TestHAReplayToTwoInstances(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd and bot processes")
	}
	r := newHARig(t)
	a, b := r.start(), r.start()
	r.waitLeader(30 * time.Second)
	c := r.slashCommand(`vm CDP-Small small-vm00 --reason "site A down"`, "replay")
	// Both deliveries get past the early replay check: EM answers neither pre-flight until both
	// have asked, so the store's compare-and-swap of the replay key decides between them.
	r.gate.Hold(restorePoints, 0, 2)

	type answer struct {
		who    string
		status int
		text   string
		err    error
	}
	answers := make(chan answer, 2)
	start := make(chan struct{})
	for _, p := range []*haBot{a, b} {
		go func() {
			<-start
			status, text, err := p.trySend(c)
			answers <- answer{p.name, status, text, err}
		}()
	}
	close(start)
	r.gate.WaitHeld(t, 2, 30*time.Second, r.logs)
	r.gate.Release()
	var texts []string
	for range 2 {
		an := <-answers
		if an.err != nil || an.status != http.StatusOK {
			t.Fatalf("%s answered %d %q (%v), want 200", an.who, an.status, an.text, an.err)
		}
		t.Logf("%s answered %q", an.who, an.text)
		texts = append(texts, an.text)
	}
	// A pre-flight slower than the acknowledgement answers at the response_url instead.
	outcomes := func() (recorded, replays int) {
		for _, text := range append(slices.Clone(texts), r.responses("replay")...) {
			switch {
			case strings.Contains(text, "Recorded *FO-"):
				recorded++
			case text == core.ReplayText:
				replays++
			}
		}
		return recorded, replays
	}
	waitUntil(t, "both deliveries answered", 60*time.Second, func() bool {
		recorded, replays := outcomes()
		return recorded+replays >= 2
	}, r.logs)
	if recorded, replays := outcomes(); recorded != 1 || replays != 1 {
		t.Errorf("%d deliveries recorded a request and %d were answered as replays, want 1 and 1: %q %q", recorded, replays, texts, r.responses("replay"))
	}

	waitUntil(t, "FO-1's card and its audit line", 30*time.Second, func() bool {
		return len(r.sl.LiveCards("FO-1")) == 1 && strings.Contains(auditText(r.sl), "FO-1 requested by")
	}, r.logs)
	ctx := context.Background()
	if _, err := r.store().Get(ctx, "FO-2"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("FO-2: %v, want no such request", err)
	}
	requested := 0
	if err := r.store().Events(ctx, 0, time.Time{}, func(e store.Event) error {
		if e.Action == "requested" {
			requested++
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if requested != 1 {
		t.Errorf("%d requests in the audit log, want 1", requested)
	}
	cards := 0
	for _, m := range r.sl.Posted(crashChannel) {
		if m.Metadata != nil && m.Metadata.EventType == "failover_card" {
			cards++
		}
	}
	if cards != 1 {
		t.Errorf("%d cards posted, want 1", cards)
	}
	if strings.Contains(auditText(r.sl), "FO-2") {
		t.Errorf("the audit channel names FO-2:\n%s", auditText(r.sl))
	}
	r.verifyChain()
	a.term(30 * time.Second)
	b.term(30 * time.Second)
}

// TestHATakeoverTimes measures the takeover after kill -9 of the leader ten times (two
// instances; after each kill a new standby starts) and logs the median and the worst, from the
// kill to the standby's /healthz saying it leads. Set FAILOVER_BOT_HA_FIGURES=1 to run it.
func TestHATakeoverTimes(t *testing.T) {
	if os.Getenv("FAILOVER_BOT_HA_FIGURES") != "1" {
		t.Skip("set FAILOVER_BOT_HA_FIGURES=1 to measure takeover times")
	}
	const rounds = 10
	r := newHARig(t)
	r.start()
	r.start()
	var took []time.Duration
	for i := range rounds {
		leader := r.waitLeader(30 * time.Second)
		killed := time.Now()
		leader.kill()
		next, d := r.takeover(killed, 60*time.Second)
		t.Logf("round %d: kill -9 of %s, %s leads after %v", i+1, leader.name, next.name, d.Round(time.Millisecond))
		took = append(took, d)
		r.start()
	}
	slices.Sort(took)
	median := (took[rounds/2-1] + took[rounds/2]) / 2
	t.Logf("takeover after kill -9 of the leader, LEADER_TTL %v, %d rounds: median %v, worst %v, best %v",
		haTTL, rounds, median.Round(time.Millisecond), took[rounds-1].Round(time.Millisecond), took[0].Round(time.Millisecond))
	if worst := took[rounds-1]; worst > haTTL+haPoll+haSlack {
		t.Errorf("the worst takeover took %v, want at most LEADER_TTL + one poll interval (%v) plus %v", worst, haTTL+haPoll, haSlack)
	}
}

// TestHAEtcdUnavailable stops the whole etcd cluster for 30 s under one instance that has a
// failover running. A /failover sent during the outage is answered within Slack's 3 seconds that
// the request cannot be recorded right now, and nothing of it is stored: afterwards the next
// request gets the next ID and the same VM is not held. The instance stops leading while it
// cannot renew its lease, leads again once etcd is back, and the work resumes: the running
// failover finishes, and a new request is recorded and runs.
func TestHAEtcdUnavailable(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd and bot processes")
	}
	const outage = 30 * time.Second
	r := newHARig(t)
	b := r.start()
	r.waitLeader(30 * time.Second)
	id := r.recorded(b.send(r.slashCommand(`vm CDP-Small small-vm00 --reason "site A down"`, "down1")), "down1")
	waitUntil(t, id+"'s card", 30*time.Second, func() bool { return len(r.sl.LiveCards(id)) == 1 }, r.logs)
	b.approve(r.sl, id)
	waitUntil(t, id+" running", 30*time.Second, func() bool { return r.request(id).State == store.Running }, r.logs)
	waitUntil(t, id+"'s audit lines delivered", 30*time.Second, func() bool {
		missing, _, _ := r.auditDelivery()
		return len(missing) == 0
	}, r.logs)

	r.etcd.StopAll()
	down := time.Now()
	sent := time.Now()
	ack := b.send(r.slashCommand(`vm CDP-Small small-vm01 --reason "site A down"`, "down2"))
	t.Logf("answered %v into the outage: %q", time.Since(sent).Round(time.Millisecond), ack)
	if d := time.Since(sent); d > 3*time.Second {
		t.Errorf("the command was answered after %v, want within Slack's 3 s", d)
	}
	mustContain(t, "the answer during the outage", ack, "cannot record the request right now", "Nothing was recorded")
	waitUntil(t, "the instance to stop leading without its lease", haTTL+haSlack, func() bool { return b.role() == "standby" }, r.logs)
	time.Sleep(time.Until(down.Add(outage))) // the outage's length is the point of the test: nothing to wait for

	r.etcd.StartAll()
	back := time.Now()
	waitUntil(t, "the instance to lead again", 60*time.Second, func() bool { return b.role() == "leader" }, r.logs)
	t.Logf("the instance leads again %v after etcd returned", time.Since(back).Round(time.Millisecond))
	if d, bound := time.Since(back), 2*haTTL+haSlack; d > bound {
		t.Errorf("the instance led again %v after etcd returned, want within %v (a reconnection and the lease etcd kept for the old term)", d, bound)
	}

	for _, text := range r.responses("down2") {
		if strings.Contains(text, "Recorded") {
			t.Errorf("the command refused during the outage was recorded after all: %q", text)
		}
	}
	id2 := r.recorded(b.send(r.slashCommand(`vm CDP-Small small-vm01 --reason "site A down"`, "down3")), "down3")
	if id2 != "FO-2" {
		t.Errorf("the request after the outage is %s, want FO-2 (the refused one must not have taken an ID)", id2)
	}
	waitUntil(t, id2+"'s card", 30*time.Second, func() bool { return len(r.sl.LiveCards(id2)) == 1 }, r.logs)
	b.approve(r.sl, id2)
	waitUntil(t, "the second failover sent", 30*time.Second, func() bool { return r.sim.Count(http.MethodPost, "action=failover") >= 2 }, r.logs)
	r.clock.Advance(time.Hour)
	waitUntil(t, "both summaries", 60*time.Second, func() bool { return r.finished(id) && r.finished(id2) }, r.logs)

	r.checkOnePOSTPerVM(2)
	requested := 0
	if err := r.store().Events(context.Background(), 0, time.Time{}, func(e store.Event) error {
		if e.Action == "requested" {
			requested++
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if requested != 2 {
		t.Errorf("%d requests in the audit log, want 2 (none from the outage)", requested)
	}
	for _, x := range []string{id, id2} {
		if req := r.request(x); req.State != store.Succeeded {
			t.Errorf("%s is %s, want succeeded", x, req.State)
		}
		r.checkDelivered(x, 1)
	}
	r.verifyChain()
	b.term(30 * time.Second)
}
