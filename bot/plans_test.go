package bot_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/failover-bot/failover-bot/bot"
	"github.com/failover-bot/failover-bot/bot/plans"
	"github.com/failover-bot/failover-bot/emapi/emsim"
	"github.com/failover-bot/failover-bot/store"
)

// planSite is the inventory of the plan tests: databases, apps and web servers in three
// replicas, and one vApp.
func planSite() emsim.Inventory {
	rep := func(name string, vms ...string) emsim.Replica {
		r := emsim.Replica{ID: fmt.Sprintf("5e1f0000-0000-4000-8000-%012x", len(name)*7919+int(name[len(name)-1])), Name: name, PolicyName: name}
		for i, v := range vms {
			r.VMs = append(r.VMs, emsim.VM{ID: fmt.Sprintf("%s-%02d-0000-4000-8000-000000000000", r.ID[:8], i), Name: v})
		}
		return r
	}
	inv := emsim.Inventory{Replicas: []emsim.Replica{
		rep("CDP-DB", "db01", "db02", "db03"),
		rep("CDP-App", "app01", "app02", "app03", "app04"),
		rep("CDP-Web", "web01", "web02", "web03"),
	}, VApps: []emsim.VApp{{ID: "7a11e000-0000-4000-8000-000000000001", Name: "web-vapp"}}}
	// Distinct VM IDs across replicas.
	for ri := range inv.Replicas {
		for vi := range inv.Replicas[ri].VMs {
			inv.Replicas[ri].VMs[vi].ID = fmt.Sprintf("00000000-0000-4000-8%03d-%012d", ri, vi)
		}
	}
	return inv
}

const planYAML = `plans:
  site-b:
    description: Site B, databases first
    groups:
      - name: databases
        concurrency: 2
        targets:
          - replica: CDP-DB
      - name: apps
        concurrency: 2
        targets:
          - replica: CDP-App
            except: [app04]
          - replica: CDP-App
            vms: [app04]
            criticality: optional
      - name: web
        targets:
          - replica: CDP-Web
          - vapp: web-vapp
            criticality: optional
`

func withPlans(t testing.TB, yaml string) func(*harnessConfig) {
	t.Helper()
	f, err := plans.Parse("plans.yaml", []byte(yaml))
	if err != nil {
		t.Fatalf("plans: %v", err)
	}
	return withOptions(func(o *bot.Options) { o.Plans = f; o.MaxConcurrentFailovers = 8 })
}

func planHarness(t *testing.T, mods ...func(*harnessConfig)) *harness {
	t.Helper()
	inv := planSite()
	return newHarness(t, append([]func(*harnessConfig){withPlans(t, planYAML), func(c *harnessConfig) { c.inventory = &inv }}, mods...)...)
}

// groupOf maps each target name of the plan site to its group in site-b.
var planGroupOf = map[string]int{"db01": 0, "db02": 0, "db03": 0, "app01": 1, "app02": 1, "app03": 1, "app04": 1,
	"web01": 2, "web02": 2, "web03": 2, "web-vapp": 2}

// postedTargets returns, in arrival order, the names of the targets EM received a failover POST
// for.
func (h *harness) postedTargets() []string {
	h.t.Helper()
	byID := map[string]string{}
	inv := planSite()
	for _, r := range inv.Replicas {
		for _, vm := range r.VMs {
			byID[vm.ID] = vm.Name
		}
	}
	for _, va := range inv.VApps {
		byID[va.ID] = va.Name
	}
	var out []string
	for _, rec := range h.em.Requests() {
		if rec.Method != http.MethodPost || !strings.Contains(rec.RawQuery, "action=failover") {
			continue
		}
		name := "?" + rec.Path
		for id, n := range byID {
			if strings.Contains(strings.ToLower(rec.Path), strings.ToLower(id)) {
				name = n
			}
		}
		out = append(out, name)
	}
	return out
}

// checkPlanInvariants checks, at a moment of the run, that no group has more items in flight
// than its concurrency and that no item of a later group was sent while an earlier group had an
// item without an outcome.
func (h *harness) checkPlanInvariants(id string) *store.Request {
	h.t.Helper()
	r := h.get(id)
	for gi, g := range r.Groups {
		n := 0
		for _, i := range r.GroupItems(gi) {
			switch r.Items[i].State {
			case store.Submitting, store.Running, store.Stopping:
				n++
			}
		}
		if n > g.Concurrency {
			h.t.Fatalf("group %s has %d items in flight, concurrency %d", g.Name, n, g.Concurrency)
		}
	}
	for _, it := range r.Items {
		if it.SubmittedAt.IsZero() {
			continue
		}
		for _, earlier := range r.Items {
			if earlier.Group < it.Group && (!earlier.State.Terminal() || earlier.FinishedAt.After(it.SubmittedAt)) {
				h.t.Fatalf("%s (group %d) was sent at %s while %s (group %d) was %s (finished %s)", it.Target.Name, it.Group+1,
					it.SubmittedAt, earlier.Target.Name, earlier.Group+1, earlier.State, earlier.FinishedAt)
			}
		}
	}
	// EM's own record: the POSTs arrive group after group.
	last := -1
	for _, name := range h.postedTargets() {
		g, ok := planGroupOf[name]
		if !ok {
			h.t.Fatalf("EM got a failover POST for %s, not in the plan", name)
		}
		if g < last {
			h.t.Fatalf("EM got %s (group %d) after a POST of group %d: %v", name, g+1, last+1, h.postedTargets())
		}
		last = g
	}
	return r
}

// step lets EM's failovers finish (2 minutes of the fake clock) and runs a poll cycle.
func (h *harness) step(id string) *store.Request {
	h.t.Helper()
	h.clock.Advance(2 * time.Minute)
	h.poll()
	return h.checkPlanInvariants(id)
}

// TestPlanRunsInOrderHaltsAndContinues: a three-group plan end to end over HTTP. Group 1 runs two
// at a time; its critical db02 fails, so the run halts before group 2 with Continue and Stop run
// on the card. Continue is refused to the requester and to a non-approver and accepted from an
// approver; group 2's optional app04 fails without halting; group 3 (a vApp among VMs) runs and
// the summary tells each group's outcome and duration.
func TestPlanRunsInOrderHaltsAndContinues(t *testing.T) {
	h := planHarness(t)
	inv := planSite()
	h.em.SetScript(inv.Replicas[0].VMs[1].ID, emsim.Script{Running: time.Minute, Result: emsim.ResultFailed, Message: "Replica disk missing on ds-db"})
	h.em.SetScript(inv.Replicas[1].VMs[3].ID, emsim.Script{Running: time.Minute, Result: emsim.ResultFailed, Message: "Network mapping failed"})

	mustContain(t, "plans", h.command(Requester, "plans"), "site-b", "3 groups", "databases", "app04 (optional)", "concurrency 2")
	ack := h.command(Requester, `plan site-b --reason "site A is down"`)
	mustContain(t, "ack", ack, "Recorded *FO-1*", "plan site-b (11 items in 3 groups)", "1. *databases* — 3 items, concurrency 2", "3. *web*", "web-vapp (optional)")
	h.idle()
	r := h.wantState("FO-1", store.Pending)
	if r.Kind != store.KindPlan || len(r.Groups) != 3 || len(r.Items) != 11 || r.Groups[2].Concurrency != 8 {
		t.Fatalf("plan request %+v", r)
	}
	for _, it := range r.Items {
		if it.Point.IsZero() || it.Group != planGroupOf[it.Target.Name] {
			t.Fatalf("item %s: group %d, point %s", it.Target.Name, it.Group, it.Point)
		}
		if want := it.Target.Name == "app04" || it.Target.Name == "web-vapp"; it.Optional != want {
			t.Fatalf("item %s optional %v", it.Target.Name, it.Optional)
		}
	}
	mustContain(t, "pending card", h.cardJSON("FO-1"), "Plan site-b* — 3 groups, 11 items: 11 pending", "*1. databases* — 3 pending (up to 2 at once)", "2. apps", "3. web", "app04 (opt)")
	if h.failoverPOSTs() != 0 {
		t.Fatal("a POST before the approval")
	}

	h.approve(Approver1, "FO-1")
	h.idle()
	h.checkPlanInvariants("FO-1")
	if got := h.postedTargets(); len(got) != 2 {
		t.Fatalf("after approval EM got %v; want the first 2 of group databases (concurrency 2)", got)
	}
	mustContain(t, "running card", h.cardJSON("FO-1"), ":arrow_forward: *1. databases*", "Running group 1 of 3 (databases)")
	r = h.step("FO-1") // db01 succeeds, db02 fails: db03 starts
	if got := h.postedTargets(); len(got) != 3 || planGroupOf[got[2]] != 0 {
		t.Fatalf("EM got %v; want db03 third", got)
	}
	r = h.step("FO-1") // db03 succeeds: group 1 done, halted on db02
	if r.State != store.Halted || r.Halt == nil || r.Halt.Group != 0 || fmt.Sprint(r.Halt.Items) != "[db02]" {
		t.Fatalf("state %s halt %+v", r.State, r.Halt)
	}
	if got := h.failoverPOSTs(); got != 3 {
		t.Fatalf("%d POSTs while halted, want 3", got)
	}
	card := h.cardJSON("FO-1")
	mustContain(t, "halted card", card, "Halted after group 1 of 3 (databases)", "*db02* (failed)", "fo_continue", "FO-1|0", "Stop run")
	mustContain(t, "thread", h.threadText("FO-1"), "Started group 1 of 3 (databases): 3 items, up to 2 at once",
		"Done: group 1 of 3 (databases) in 4m0s — 1 failed, 2 succeeded", "*db02* (critical: the run halts after its group) failed", "Replica disk missing on ds-db", "Halted after group 1 of 3 (databases)", "*not started*")

	// A poll cycle while halted sends nothing.
	h.step("FO-1")
	if got := h.failoverPOSTs(); got != 3 {
		t.Fatalf("a poll cycle while halted sent a POST: %d", got)
	}
	// Continue: the requester is refused, a non-approver is refused, an approver goes on.
	h.click(Requester, "fo_continue", "FO-1|0")
	h.idle()
	h.wantEphemeral(Requester, "You requested FO-1", "second person")
	h.click(Outsider, "fo_continue", "FO-1|0")
	h.idle()
	h.wantEphemeral(Outsider, "not an authorised approver")
	h.wantState("FO-1", store.Halted)
	h.click(Approver2, "fo_continue", "FO-1|0")
	h.idle()
	r = h.checkPlanInvariants("FO-1")
	if len(r.Continues) != 1 || r.Continues[0].User != Approver2 || r.Current != 1 {
		t.Fatalf("continues %+v current %d", r.Continues, r.Current)
	}
	if got := h.postedTargets(); len(got) != 5 {
		t.Fatalf("after Continue EM got %v; want 2 of group apps", got)
	}
	mustContain(t, "audit", strings.Join(h.auditActions(), " "), "continued")
	mustContain(t, "continued thread", h.threadText("FO-1"), "<@"+Approver2+"> continued the run despite db02", "group 2 of 3 (apps) starts now")
	// A stale Continue (the halt is over) changes nothing.
	h.click(Approver1, "fo_continue", "FO-1|0")
	h.idle()
	h.wantEphemeral(Approver1, "is not halted", "continued it at")

	for range 6 {
		if r = h.step("FO-1"); r.State.Terminal() {
			break
		}
	}
	if r.State != store.PartlyFailed {
		t.Fatalf("final state %s: %v", r.State, store.Counts(r))
	}
	if n := store.Counts(r); n[store.Succeeded] != 9 || n[store.Failed] != 2 {
		t.Fatalf("counts %v", n)
	}
	if got := h.failoverPOSTs(); got != 11 {
		t.Fatalf("%d POSTs, want 11 (one per item)", got)
	}
	thread := h.threadText("FO-1")
	mustContain(t, "final thread", thread, "*app04* (optional: the run goes on) failed", "Network mapping failed", "Started group 3 of 3 (web)",
		"FO-1 finished: partly failed", "• 1. databases: 1 failed, 2 succeeded —", "• 3. web: 4 succeeded —", "Continued after group 1 by <@"+Approver2+">")
	mustNotContain(t, "no halt for optional", thread, "Halted after group 2")
	if limited := h.slack.RateLimited(); len(limited) > 0 {
		t.Fatalf("Slack answered 429: %v", limited)
	}
}

// TestPlanStopRun: Stop run on a halted plan ends it: the items not sent are skipped, what
// failed over stays, nothing more reaches EM, and a stale Continue is refused.
func TestPlanStopRun(t *testing.T) {
	h := planHarness(t)
	inv := planSite()
	h.em.SetScript(inv.Replicas[0].VMs[0].ID, emsim.Script{Running: time.Minute, Result: emsim.ResultFailed, Message: "boot failed"})
	h.command(Requester, `plan site-b --reason "site A is down"`)
	h.idle()
	h.approve(Approver1, "FO-1")
	h.idle()
	h.step("FO-1")
	r := h.step("FO-1")
	if r.State != store.Halted {
		t.Fatalf("state %s", r.State)
	}
	h.click(Requester, "fo_stop", "FO-1")
	h.idle()
	meta, dialog := h.stopDialog()
	if meta != "FO-1|halt:0" {
		t.Fatalf("stop dialog metadata %q", meta)
	}
	mustContain(t, "dialog", dialog, "End the run of FO-1", "8 items not sent yet are *skipped*", "Keep it halted")
	h.submitStop(Requester, meta, "db01 is needed first; fixing it in the console")
	h.idle()
	r = h.get("FO-1")
	if r.State != store.PartlyFailed || store.Counts(r)[store.Skipped] != 8 || store.Counts(r)[store.Succeeded] != 2 {
		t.Fatalf("after stop: %s %v", r.State, store.Counts(r))
	}
	h.step("FO-1")
	if got := h.failoverPOSTs(); got != 3 {
		t.Fatalf("%d POSTs after Stop run, want 3", got)
	}
	mustContain(t, "thread", h.threadText("FO-1"), "<@"+Requester+"> stopped the run after group 1 of 3 (databases)", "8 items not sent (skipped)",
		"• 2. apps: 4 skipped — not started")
	mustContain(t, "audit", strings.Join(h.auditActions(), " "), "run-stopped")
	h.click(Approver1, "fo_continue", "FO-1|0")
	h.idle()
	h.wantEphemeral(Approver1, "is not halted")
	// The finished card offers a retry of what did not succeed (the skipped items included).
	mustContain(t, "card", h.cardJSON("FO-1"), "Retry failed items (9)")
	h.click(Requester, "fo_retry", "FO-1")
	h.idle()
	retry := h.wantState("FO-2", store.Pending)
	if !retry.IsPlan() || retry.RetryOf != "FO-1" || len(retry.Items) != 9 || len(retry.Groups) != 3 || len(retry.GroupItems(0)) != 1 {
		t.Fatalf("retry of a plan: %+v", retry)
	}
	h.approve(Approver1, "FO-2")
	h.idle()
	if got := h.failoverPOSTs(); got != 4 {
		t.Fatalf("the retry's first group: %d POSTs in all, want 4 (db01 only)", got)
	}
}

// TestPlanCheck: the readiness report, nothing stored and nobody asked — with a target held by
// an active request, a target without a restore point, EM unreachable, and the role missing.
func TestPlanCheck(t *testing.T) {
	t.Run("ready", func(t *testing.T) {
		h := planHarness(t)
		mustContain(t, "ready", h.command(Requester, "check plan site-b"), "Readiness of plan site-b", "Every name resolves: 11 targets",
			"No target is held", "*Ready.*")
		h.wantNothingStored()
	})
	t.Run("held and no restore point", func(t *testing.T) {
		h := planHarness(t)
		inv := planSite()
		mustContain(t, "holder", h.command(Requester, `vm CDP-DB db02 --reason "test"`), "Recorded *FO-1*")
		h.em.SetNoHistory(inv.Replicas[2].VMs[1].ID, true)
		got := h.command(Requester, "check plan site-b")
		mustContain(t, "report", got, "1 target is held by an active request", "db02 (group databases, critical): held by the active request FO-1",
			"1 target has no restore point", "web02 (group web, critical)", "*Not ready:*")
		// Requesting it now is refused for the same reasons, and stores nothing.
		mustContain(t, "refused", h.command(Requester, `plan site-b --reason "x"`), "cannot run as written", "db02", "web02", "check plan site-b", "Nothing was recorded")
		if _, err := h.st.Get(t.Context(), "FO-2"); err == nil {
			t.Fatal("a refused plan was stored")
		}
	})
	t.Run("EM unreachable", func(t *testing.T) {
		h := planHarness(t)
		h.emSrv.Close()
		mustContain(t, "report", h.command(Requester, "check plan site-b"), ":x: Enterprise Manager is not reachable", "*Not ready.*")
		h.wantNothingStored()
	})
	t.Run("role missing", func(t *testing.T) {
		h := planHarness(t, func(c *harnessConfig) { c.emCfg.Role = emsim.RoleRestoreOperator })
		mustContain(t, "report", h.command(Requester, "check plan site-b"), "lacks the *Portal Administrator* role", "*Not ready.*")
	})
	t.Run("unknown names", func(t *testing.T) {
		h := newHarness(t, withPlans(t, "plans:\n  p:\n    groups:\n      - name: g\n        targets:\n          - replica: CDP-Nope\n          - vapp: nope-vapp\n"))
		got := h.command(Requester, "check plan p")
		mustContain(t, "report", got, "2 entries do not resolve", "replica CDP-Nope in group g (plans.yaml:6)", "Known:", "vApp nope-vapp in group g (plans.yaml:7)")
		mustContain(t, "request", h.command(Requester, `plan p --reason "x"`), "do not resolve", "Nothing was recorded")
		h.wantNothingStored()
	})
	t.Run("the plan's restore option, and a typed one", func(t *testing.T) {
		h := planHarness(t, withPlans(t, strings.Replace(planYAML, "    description: Site B, databases first\n", "    description: Site B, databases first\n    restore: latest-vss\n", 1)))
		mustContain(t, "plan default", h.command(Requester, "check plan site-b"), "restore: latest application-consistent (VSS) restore point")
		mustContain(t, "typed", h.command(Requester, "check plan site-b --latest"), "restore: latest crash-consistent state")
	})
	t.Run("no such plan, no plans", func(t *testing.T) {
		h := planHarness(t)
		mustContain(t, "unknown", h.command(Requester, `plan site-c --reason "x"`), "no recovery plan “site-c”", "`site-b`")
		h2 := newHarness(t)
		mustContain(t, "none", h2.command(Requester, "plans"), "No recovery plans are configured", "PLANS_FILE")
		mustContain(t, "none", h2.command(Requester, `plan site-b --reason "x"`), "No recovery plans are configured")
	})
}
