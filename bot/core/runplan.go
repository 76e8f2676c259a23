package core

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/failover-bot/failover-bot/bot/plans"
	"github.com/failover-bot/failover-bot/emapi"
	"github.com/failover-bot/failover-bot/store"
	"github.com/failover-bot/failover-bot/store/failover"
)

// noPlansText answers plan, plans and check plan when no plans file is loaded.
const noPlansText = "No recovery plans are configured: set PLANS_FILE to a plans file (see README, “Recovery plans”) and restart the bot. `failover-bot plans check &lt;file&gt;` validates one offline."

// lookupPlan finds the plan cmd names, or says which plans there are.
func (b *Service) lookupPlan(name string) (*plans.Plan, error) {
	f := b.opt.Plans
	if f == nil || len(f.Plans) == 0 {
		return nil, &refusal{reason: "no-plans", msg: noPlansText}
	}
	if p, ok := f.Plan(name); ok {
		return p, nil
	}
	names, raw := make([]string, len(f.Plans)), make([]string, len(f.Plans))
	for i, p := range f.Plans {
		names[i], raw[i] = "`"+p.Name+"`", p.Name
	}
	return nil, &refusal{reason: "unknown-plan", msg: fmt.Sprintf("There is no recovery plan “%s”.%s Plans: %s. `/failover plans` lists them with their groups.", esc(name), didYouMean(name, raw), strings.Join(names, ", "))}
}

// withPlanDefaults gives a plan command its plan's restore option when none was typed.
func (b *Service) withPlanDefaults(cmd Command) Command {
	if cmd.Sub != SubPlan || cmd.IntentSet {
		return cmd
	}
	if p, err := b.lookupPlan(cmd.Plan); err == nil && p.Restore == string(store.IntentLatestVSS) {
		cmd.Intent = IntentLatestVSS
	}
	return cmd
}

// planEntry is where a resolved item came from in the plans file, for messages.
func (b *Service) planEntry(g plans.Group, t plans.Target) string {
	file := "PLANS_FILE"
	if b.opt.Plans != nil && b.opt.Plans.Path != "" {
		file = filepath.Base(b.opt.Plans.Path)
	}
	return fmt.Sprintf("%s in group %s (%s:%d)", esc(t.String()), esc(g.Name), file, t.Line)
}

// resolvePlan turns a plan's targets into items (each with its kind, group and criticality),
// resolving every name against EM now with the same candidate lists as typed names. Every entry
// that does not resolve is a problem; the first error that is not about a name (EM unreachable)
// ends it. A target named twice (by GUID and by name, say) is kept in its first group.
func (b *Service) resolvePlan(ctx context.Context, p *plans.Plan) ([]store.Item, []string, error) {
	var items []store.Item
	var problems []string
	seen := map[string]bool{}
	add := func(gi int, t plans.Target, kind store.Kind, target store.Target) {
		if seen[target.ID] {
			return
		}
		seen[target.ID] = true
		items = append(items, store.Item{Target: target, Kind: kind, Group: gi, Optional: t.Optional})
	}
	// problem keeps a name error as a problem of its entry and returns true; any other error
	// stops the resolution.
	problem := func(g plans.Group, t plans.Target, err error) (bool, error) {
		var re *emapi.ResolveError
		if errors.As(err, &re) {
			problems = append(problems, "• "+b.planEntry(g, t)+": "+describe(err))
			return true, nil
		}
		return false, err
	}
	for gi, g := range p.Groups {
		for _, t := range g.Targets {
			if t.Replica == "" {
				for _, q := range t.VApps {
					va, err := b.inv.resolveVApp(ctx, q)
					if err != nil {
						if ok, err := problem(g, t, err); !ok {
							return nil, nil, err
						}
						continue
					}
					add(gi, t, store.KindVApp, store.Target{ID: va.ID, Name: va.Name})
				}
				continue
			}
			rep, err := b.inv.resolveReplica(ctx, t.Replica)
			if err != nil {
				if ok, err := problem(g, t, err); !ok {
					return nil, nil, err
				}
				continue
			}
			target := func(vm emapi.Ref) store.Target {
				return store.Target{ReplicaID: rep.ID, ReplicaName: rep.Name, ID: vm.ID, Name: vm.Name}
			}
			if len(t.VMs) > 0 {
				for _, q := range t.VMs {
					vm, err := b.inv.resolveVM(ctx, rep.ID, q)
					if err != nil {
						if ok, err := problem(g, t, err); !ok {
							return nil, nil, err
						}
						continue
					}
					add(gi, t, store.KindVM, target(vm))
				}
				continue
			}
			vms, err := b.em.ReplicaVMs(ctx, rep.ID)
			if err != nil {
				return nil, nil, err
			}
			skip := map[string]bool{}
			bad := false
			for _, q := range t.Except {
				vm, err := matchRef("VM", q, vms)
				if err != nil {
					if ok, err := problem(g, t, err); !ok {
						return nil, nil, err
					}
					bad = true
					continue
				}
				skip[vm.ID] = true
			}
			if bad {
				continue
			}
			n := 0
			for _, vm := range vms {
				if !skip[vm.ID] {
					add(gi, t, store.KindVM, target(vm))
					n++
				}
			}
			if n == 0 {
				problems = append(problems, fmt.Sprintf("• %s: CDP replica *%s* has no VMs to fail over (%d listed, %d excepted).", b.planEntry(g, t), esc(rep.Name), len(vms), len(skip)))
			}
		}
	}
	return items, problems, nil
}

// planGroups is the request's copy of a plan's groups: a group without its own concurrency
// takes EM_MAX_CONCURRENT_FAILOVERS.
func (b *Service) planGroups(p *plans.Plan) []store.Group {
	out := make([]store.Group, len(p.Groups))
	for i, g := range p.Groups {
		c := g.Concurrency
		if c <= 0 {
			c = b.opt.MaxConcurrentFailovers
		}
		out[i] = store.Group{Name: g.Name, Concurrency: c, Delay: g.Delay}
	}
	return out
}

// planRequest resolves and pre-flights a plan for a request: every name must resolve and every
// critical item must be able to fail over (an optional one that cannot is left out and listed).
func (b *Service) planRequest(ctx context.Context, cmd Command) (*plan, Response, bool) {
	p, err := b.lookupPlan(cmd.Plan)
	if err != nil {
		return nil, b.refuse(err), false
	}
	seeds, problems, err := b.resolvePlan(ctx, p)
	if err != nil {
		return nil, b.refuseEM(err), false
	}
	if len(problems) > 0 {
		b.met.Refusals.WithLabelValues("unknown-name").Inc()
		return nil, ephemeral(fmt.Sprintf("Plan *%s* cannot be requested: %s in Enterprise Manager:\n%s\nFix PLANS_FILE (or EM), then `/failover check plan %s`. Nothing was recorded.",
			esc(p.Name), count(len(problems), "entry does not resolve", "entries do not resolve"), strings.Join(problems, "\n"), p.Name)), false
	}
	if max := b.opt.MaxTargets; len(seeds) > max {
		b.met.Refusals.WithLabelValues("too-many").Inc()
		return nil, ephemeral(fmt.Sprintf("Plan *%s* resolves to %d targets; one request holds at most %d (MAX_TARGETS). Nothing was recorded: split the plan in PLANS_FILE, or raise MAX_TARGETS.", esc(p.Name), len(seeds), max)), false
	}
	pf, err := b.preflightItems(ctx, store.KindPlan, "plan "+p.Name, seeds, store.Intent(cmd.Intent), cmd.Time)
	if err != nil {
		return nil, b.refuseEM(err), false
	}
	var critical []string
	for i, it := range pf.dropped {
		if !it.Optional {
			critical = append(critical, fmt.Sprintf("• %s (group %s): %s", esc(it.Target.Name), esc(p.Groups[it.Group].Name), esc(pf.excluded[i].Reason)))
		}
	}
	if len(critical) > 0 {
		b.met.Refusals.WithLabelValues("plan-not-ready").Inc()
		return nil, ephemeral(fmt.Sprintf("Plan *%s* cannot run as written: %s cannot fail over now:\n%s\nNothing was recorded. `/failover check plan %s` shows the whole readiness report; a target that may be left out can be marked `criticality: optional` in PLANS_FILE.",
			esc(p.Name), plural(len(critical), "critical target"), strings.Join(critical, "\n"), p.Name)), false
	}
	pf.planName, pf.groups = p.Name, b.planGroups(p)
	return pf, Response{}, true
}

// planItemsText lists a plan request's groups with their items and previewed restore points,
// for the sender's acknowledgement.
func planItemsText(r *store.Request, n int) string {
	var b strings.Builder
	for gi, g := range r.Groups {
		idx := r.GroupItems(gi)
		fmt.Fprintf(&b, "\n%d. *%s* — %s, concurrency %d", gi+1, esc(g.Name), plural(len(idx), "item"), g.Concurrency)
		if g.Delay > 0 {
			fmt.Fprintf(&b, ", then wait %s", g.Delay)
		}
		shown := 0
		for _, i := range idx {
			if shown == n {
				fmt.Fprintf(&b, "\n   …and %d more", len(idx)-n)
				break
			}
			it := r.Items[i]
			crit := ""
			if it.Optional {
				crit = " (optional)"
			}
			fmt.Fprintf(&b, "\n   • %s%s — %s", esc(it.Target.Name), crit, it.Point.UTC().Format(pointFormat))
			shown++
		}
	}
	return b.String()
}

// plansList answers /failover plans.
func (b *Service) plansList() Response {
	f := b.opt.Plans
	if f == nil || len(f.Plans) == 0 {
		return ephemeral(noPlansText)
	}
	var out strings.Builder
	fmt.Fprintf(&out, "*%s* in %s:", plural(len(f.Plans), "recovery plan"), esc(filepath.Base(f.Path)))
	for _, p := range f.Plans {
		groups, targets := p.Size()
		fmt.Fprintf(&out, "\n• *%s* — %s, %s", esc(p.Name), plural(groups, "group"), count(targets, "target entry", "target entries"))
		if p.Restore == string(store.IntentLatestVSS) {
			out.WriteString(", restores the latest VSS point")
		}
		if p.Description != "" {
			out.WriteString(": " + esc(p.Description))
		}
		for i, g := range p.Groups {
			fmt.Fprintf(&out, "\n   %d. %s: ", i+1, esc(g.Name))
			names := make([]string, len(g.Targets))
			for j, t := range g.Targets {
				names[j] = esc(t.String())
				if t.Optional {
					names[j] += " (optional)"
				}
			}
			out.WriteString(strings.Join(names, "; "))
			if g.Concurrency > 0 {
				fmt.Fprintf(&out, " — concurrency %d", g.Concurrency)
			}
			if g.Delay > 0 {
				fmt.Fprintf(&out, " — then wait %s", g.Delay)
			}
		}
	}
	out.WriteString("\n`/failover check plan &lt;name&gt;` checks one against Enterprise Manager now; `/failover plan &lt;name&gt; --reason \"…\"` requests it.")
	return ephemeral(out.String())
}

// checkPlan answers /failover check plan: the readiness report, nothing stored, nobody asked.
// It says, in order: whether EM answers and the account has the role failovers need, whether
// every name resolves, whether every target has a restore point for the option, and whether
// any target is held by an active request.
func (b *Service) checkPlan(ctx context.Context, cmd Command) Response {
	p, err := b.lookupPlan(cmd.Plan)
	if err != nil {
		return b.refuse(err)
	}
	var out strings.Builder
	ready := true
	mark := func(ok bool) string {
		if ok {
			return ":white_check_mark:"
		}
		ready = false
		return ":x:"
	}
	groups, targets := p.Size()
	fmt.Fprintf(&out, "*Readiness of plan %s* (%s, %s; restore: %s) — check only, nothing was recorded and nobody was asked.\n",
		esc(p.Name), plural(groups, "group"), count(targets, "target entry", "target entries"), restoreText(store.Intent(cmd.Intent), cmd.Time))
	// EM and the role: an uncached read that needs the Portal Administrator role, like every
	// CDP failover.
	if _, err := b.em.Replicas(ctx); err != nil {
		switch emapi.KindOf(err) {
		case emapi.KindForbidden:
			fmt.Fprintf(&out, "%s Enterprise Manager answers, but its account lacks the *Portal Administrator* role that CDP failovers need (%s). Give the bot's EM account that role.\n", mark(false), describe(err))
		default:
			fmt.Fprintf(&out, "%s Enterprise Manager is not reachable: %s\n", mark(false), describe(err))
		}
		out.WriteString("*Not ready.* Nothing else can be checked until EM answers.")
		return ephemeral(out.String())
	}
	fmt.Fprintf(&out, "%s Enterprise Manager answers and its account has the Portal Administrator role.\n", mark(true))
	seeds, problems, err := b.resolvePlan(ctx, p)
	if err != nil {
		fmt.Fprintf(&out, "%s Names could not be resolved: %s\n*Not ready.*", mark(false), describe(err))
		return ephemeral(out.String())
	}
	if len(problems) > 0 {
		fmt.Fprintf(&out, "%s %s:\n%s\n", mark(false), count(len(problems), "entry does not resolve", "entries do not resolve"), strings.Join(problems, "\n"))
	} else {
		fmt.Fprintf(&out, "%s Every name resolves: %s.\n", mark(true), plural(len(seeds), "target"))
	}
	pf, err := b.preflightItems(ctx, store.KindPlan, "plan "+p.Name, seeds, store.Intent(cmd.Intent), cmd.Time)
	if err != nil {
		fmt.Fprintf(&out, "%s Restore points could not be read: %s\n*Not ready.*", mark(false), describe(err))
		return ephemeral(out.String())
	}
	var held, noPoint []string
	for i, it := range pf.dropped {
		line := fmt.Sprintf("• %s (group %s, %s): %s", esc(it.Target.Name), esc(p.Groups[it.Group].Name), criticality(it), esc(pf.excluded[i].Reason))
		if strings.HasPrefix(pf.excluded[i].Reason, "held by") {
			held = append(held, line)
		} else {
			noPoint = append(noPoint, line)
		}
	}
	critical := slices.ContainsFunc(pf.dropped, func(it store.Item) bool { return !it.Optional })
	if len(noPoint) > 0 {
		fmt.Fprintf(&out, "%s %s no restore point for this option:\n%s\n", mark(false), count(len(noPoint), "target has", "targets have"), strings.Join(noPoint, "\n"))
	} else {
		fmt.Fprintf(&out, "%s Every target that resolves has a restore point for this option.\n", mark(true))
	}
	if len(held) > 0 {
		fmt.Fprintf(&out, "%s %s held by an active request:\n%s\n", mark(false), count(len(held), "target is", "targets are"), strings.Join(held, "\n"))
	} else {
		fmt.Fprintf(&out, "%s No target is held by an active request.\n", mark(true))
	}
	if len(pf.items) > 0 {
		r := &store.Request{Kind: store.KindPlan, Plan: p.Name, Items: pf.items, Groups: b.planGroups(p), Intent: store.Intent(cmd.Intent), RestoreTime: cmd.Time}
		out.WriteString("Would run:" + planItemsText(r, 10) + "\n")
	}
	switch {
	case ready:
		fmt.Fprintf(&out, "*Ready.* `/failover plan %s --reason \"…\"` requests it.", p.Name)
	case len(problems) == 0 && !critical:
		fmt.Fprintf(&out, "*Ready without the optional targets above*: a request now would leave them out.")
	default:
		out.WriteString("*Not ready:* a request now would be refused. Fix what is marked :x: and check again.")
	}
	return ephemeral(strings.TrimSpace(out.String()))
}

// count is "1 entry" or "3 entries".
func count(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

func criticality(it store.Item) string {
	if it.Optional {
		return "optional"
	}
	return "critical"
}

// continueRun records a second person's decision to go on with a halted plan, then starts its
// next group. The requester cannot continue their own plan: the decision to go on despite a
// failed critical item is a second decision, made by an approver.
func (b *Service) continueRun(ctx context.Context, id string, group int, user, channel string) {
	log := b.reqLog(id).With("user", user)
	r, err := b.st.Get(ctx, id)
	if err != nil {
		b.notify.Ephemeral(channel, user, describe(err))
		return
	}
	if r.Halt == nil || r.Halt.Group != group {
		b.met.Refusals.WithLabelValues(store.ReasonNotHalted).Inc()
		b.notify.Ephemeral(channel, user, notHaltedText(r))
		return
	}
	if user == r.Requester {
		b.met.Refusals.WithLabelValues(store.ReasonSelfContinue).Inc()
		log.Info("continue refused: the requester")
		b.notify.Ephemeral(channel, user, fmt.Sprintf("You requested %s, so you cannot continue it past a failed critical item: a second person must decide that (two-person rule). %s can continue it; you can end the run with *Stop run*.", r.ID, capitalise(b.auth.describeApprovers())))
		return
	}
	if err := b.auth.canApprove(ctx, user); err != nil {
		b.clickRefused(err, channel, user, log)
		return
	}
	n, err := b.st.Continue(ctx, id, user, group)
	if err != nil {
		var ce *store.ConflictError
		if errors.As(err, &ce) && ce.Reason == store.ReasonNotHalted {
			if cur, gerr := b.st.Get(ctx, id); gerr == nil {
				b.notify.Ephemeral(channel, user, notHaltedText(cur))
				return
			}
		}
		b.clickRefused(err, channel, user, log)
		return
	}
	b.met.Requests.WithLabelValues("continued").Inc()
	log.Info("plan continued", "after_group", group+1, "next_group", n.Current+1)
	b.dispatch(n)
}

// notHaltedText answers a Continue or Stop-run click that no longer applies.
func notHaltedText(r *store.Request) string {
	if r.Halt != nil {
		return fmt.Sprintf("That button was for an earlier halt of %s; it is now halted after group %d (%s). Use the buttons on the current card.", r.ID, r.Halt.Group+1, esc(r.Groups[r.Halt.Group].Name))
	}
	if n := len(r.Continues); n > 0 {
		c := r.Continues[n-1]
		return fmt.Sprintf("%s is not halted: <@%s> continued it at %s; it is now %s.", r.ID, c.User, c.At.UTC().Format(clockFormat), stateWords(r.State))
	}
	return fmt.Sprintf("%s is not halted; it is %s. Nothing was changed.", r.ID, stateWords(r.State))
}

func capitalise(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// endRun records a confirmed Stop of a halted plan: what was not sent is skipped, what failed
// over stays as it is.
func (b *Service) endRun(ctx context.Context, r *store.Request, user, reason string, tell func(string)) {
	log := b.reqLog(r.ID).With("user", user)
	n, err := b.st.EndRun(ctx, r.ID, user, reason, r.Halt.Group)
	if err != nil {
		var ce *store.ConflictError
		if errors.As(err, &ce) && ce.Reason == store.ReasonNotHalted {
			if cur, gerr := b.st.Get(ctx, r.ID); gerr == nil {
				tell(notHaltedText(cur))
				return
			}
		}
		log.Info("end of run not recorded", "reason", err)
		tell(fmt.Sprintf("I could not record the stop (%s). Nothing was changed; try again.", describe(err)))
		return
	}
	b.met.Requests.WithLabelValues("run-stopped").Inc()
	log.Info("halted plan ended", "state", n.State)
}

// dispatch starts what a plan request may start now: the eligible items of its current group
// (each claimed, so a poll cycle or another dispatch never sends it twice), or a timer for its
// current group's start when a delay holds it. A request of one group of items, or none, is
// left to submit and the poller.
func (b *Service) dispatch(r *store.Request) {
	if r == nil || !r.IsPlan() {
		return
	}
	if !b.leads() {
		b.handOver(b.sctx, Job{Kind: JobPoll, ID: r.ID}, nil) // the leader runs the plan
		return
	}
	now := b.now()
	if at, later := failover.NextStart(r, now); later {
		b.wakeAt(r.ID, at)
		return
	}
	var ls []leg
	for _, i := range failover.Eligible(r, now) {
		l := leg{r, &r.Items[i]}
		if !b.claimed(l.key()) {
			ls = append(ls, l)
		}
	}
	if len(ls) == 0 {
		return
	}
	b.Go(func(ctx context.Context) { b.submitLegs(ctx, ls) })
}

// wakeAt arranges for request id to be dispatched at at (its next group's delay ends), once per
// request and time: the poller would start it too, but up to a poll interval late.
func (b *Service) wakeAt(id string, at time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	if t, ok := b.wakes[id]; ok {
		if t.at.Equal(at) {
			return
		}
		t.timer.Stop()
	}
	d := at.Sub(b.now())
	b.wakes[id] = wake{at: at, timer: time.AfterFunc(d, func() {
		b.mu.Lock()
		if b.closed {
			b.mu.Unlock()
			return
		}
		delete(b.wakes, id)
		b.work.add() // under mu, so a wake-up after Close began starts nothing
		b.mu.Unlock()
		go func() {
			defer b.work.done()
			if r, err := b.st.Get(b.ctx, id); err == nil {
				b.dispatch(r)
			}
		}()
	})}
}

// wake is a pending dispatch of a plan request after a group's delay.
type wake struct {
	at    time.Time
	timer *time.Timer
}

// stopWakes cancels pending dispatches at shutdown: the next start's poll cycle re-arms them
// from the store.
func (b *Service) stopWakes() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	for id, w := range b.wakes {
		w.timer.Stop()
		delete(b.wakes, id)
	}
}
