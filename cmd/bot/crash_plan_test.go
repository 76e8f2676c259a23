package main

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/failover-bot/failover-bot/emapi/emsim"
)

const crashPlans = `plans:
  site:
    groups:
      - name: db
        concurrency: 1
        targets:
          - replica: CDP-Crm
            vms: [crm-db01, crm-app01]
      - name: web
        concurrency: 2
        targets:
          - replica: CDP-Web
      - name: mail
        targets:
          - replica: CDP-Mail
`

// failoverPOSTs returns the VM names EM accepted failover POSTs for, in arrival order.
func failoverPOSTs(sim *emsim.Server, site emsim.Inventory) []string {
	names := map[string]string{}
	for _, r := range site.Replicas {
		for _, vm := range r.VMs {
			names[strings.ToLower(vm.ID)] = vm.Name
		}
	}
	var out []string
	for _, rq := range sim.Requests() {
		// Only POSTs EM accepted: one refused with 401 (the logon session expired while the
		// simulator's clock jumped an hour) is sent again after a new logon, as it must be.
		if rq.Method != http.MethodPost || !strings.Contains(rq.RawQuery, "action=failover") || rq.Status != http.StatusAccepted {
			continue
		}
		name := rq.Path
		for id, n := range names {
			if strings.Contains(strings.ToLower(rq.Path), id) {
				name = n
			}
		}
		out = append(out, name)
	}
	return out
}

// TestKill9PlanHaltedAndMidGroup kills the real bot with SIGKILL twice during a three-group plan:
// once while it is halted on a failed critical VM, once while its second group runs. After each
// restart the run goes on from where the store says: the halted plan stays halted (no POST) until
// an approver continues it from the card, the running group goes on within its concurrency, the
// third group starts only after the second has an outcome for every VM, and every VM gets exactly
// one failover POST.
func TestKill9PlanHaltedAndMidGroup(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	site := emsim.DemoSite()
	clock, sim, emURL := crashEM(t, site)
	for _, vm := range site.Replicas[2].VMs {
		if vm.Name == "crm-db01" {
			sim.SetScript(vm.ID, emsim.Script{Running: 10 * time.Minute, Result: emsim.ResultFailed, Message: "Replica disk missing"})
		}
	}
	plansFile := filepath.Join(t.TempDir(), "plans.yaml")
	if err := os.WriteFile(plansFile, []byte(crashPlans), 0o600); err != nil {
		t.Fatal(err)
	}
	sl, _, env := crashSetup(t, emURL, "PLANS_FILE="+plansFile)
	p := startBot(t, env)
	var logs strings.Builder
	logsOf := func() string { return logs.String() + p.stderr.String() }
	posts := func() []string { return failoverPOSTs(sim, site) }
	// finishAll lets every running failover end (the simulator's clock) until cond holds.
	finishUntil := func(what string, cond func() bool) {
		t.Helper()
		waitUntil(t, what, 60*time.Second, func() bool {
			if cond() {
				return true
			}
			clock.Advance(time.Hour)
			time.Sleep(300 * time.Millisecond)
			return cond()
		}, logsOf)
	}

	mustContain(t, "ack", p.command(sl, `plan site --reason "site A down"`), "Recorded *FO-1*", "plan site (10 items in 3 groups)")
	waitUntil(t, "FO-1's card", 20*time.Second, func() bool { return len(sl.LiveCards("FO-1")) == 1 }, logsOf)
	p.approve(sl, "FO-1")
	finishUntil("the halt", func() bool { return strings.Contains(threadsText(sl), "Halted after group 1 of 3 (db)") })
	if got := posts(); len(got) != 2 || got[0] != "crm-db01" || got[1] != "crm-app01" {
		t.Fatalf("POSTs before the halt: %v", got)
	}

	// kill -9 while halted: after the restart nothing is sent, and the card still offers Continue.
	p.kill()
	logs.WriteString(p.stderr.String())
	p = startBot(t, env)
	waitUntil(t, "the restarted bot", 20*time.Second, func() bool { return strings.Contains(p.stderr.String(), "failover-bot running") }, logsOf)
	clock.Advance(time.Hour)
	time.Sleep(3 * time.Second) // three poll cycles of the restarted bot: none may send anything
	if got := posts(); len(got) != 2 {
		t.Fatalf("a halted plan sent POSTs after a restart: %v", got)
	}
	cards := sl.LiveCards("FO-1")
	if len(cards) != 1 || !strings.Contains(string(cards[0].Blocks), `"FO-1|0"`) {
		t.Fatalf("the halted card lost its Continue button: %v", cards)
	}
	p.click(sl, crashUser, "FO-1", "fo_continue", "FO-1|0") // the requester: refused
	time.Sleep(time.Second)
	if got := posts(); len(got) != 2 {
		t.Fatalf("the requester's Continue sent POSTs: %v", got)
	}
	p.click(sl, crashApprove, "FO-1", "fo_continue", "FO-1|0")
	waitUntil(t, "group web's first two POSTs", 20*time.Second, func() bool { return len(posts()) == 4 }, logsOf)

	// kill -9 while group 2 runs (two of its six VMs running).
	p.kill()
	logs.WriteString(p.stderr.String())
	p = startBot(t, env)
	finishUntil("the summary", func() bool { return strings.Contains(threadsText(sl), "FO-1 finished: partly failed") })
	p.term(30 * time.Second)

	got := posts()
	per := map[string]int{}
	for _, n := range got {
		per[n]++
	}
	if len(got) != 10 || len(per) != 10 {
		t.Fatalf("POSTs %v: want one for each of the 10 VMs", got)
	}
	group := func(name string) int {
		switch {
		case strings.HasPrefix(name, "crm-"):
			return 0
		case strings.HasPrefix(name, "web"):
			return 1
		}
		return 2
	}
	for i := 1; i < len(got); i++ {
		if group(got[i]) < group(got[i-1]) {
			t.Fatalf("POSTs out of group order: %v", got)
		}
	}
	thread := threadsText(sl)
	mustContain(t, "thread", thread, "continued the run despite crm-db01", "Started group 2 of 3 (web)", "Started group 3 of 3 (mail)",
		"• 1. db: 1 failed, 1 succeeded", "• 2. web: 6 succeeded", "• 3. mail: 2 succeeded")
	if strings.Count(thread, "Halted after group 1 of 3 (db)") > 2 {
		t.Errorf("the halt was told %d times (at most once per crash is a duplicate delivery)", strings.Count(thread, "Halted after"))
	}
	mustContain(t, "requester refused", logsOf(), "continue refused: the requester")
}
