package core

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/failover-bot/failover-bot/emapi"
	"github.com/failover-bot/failover-bot/store"
	"github.com/failover-bot/failover-bot/store/failover"
)

// DefaultMaxTargets is how many targets one request may hold unless Options.MaxTargets says
// otherwise.
const DefaultMaxTargets = 500

// preflightConcurrency bounds the intervals reads of one pre-flight: 200 VMs at 20 ms each take
// about 0.25 s, well inside Slack's 3 seconds, without a burst of 200 calls at EM.
const preflightConcurrency = 16

// recentWindow is how far back a finished failover of a target is flagged on a new card.
const recentWindow = 24 * time.Hour

// plan is what a pre-flight found: the items a request would hold (each with the restore point
// it would fail over to) and the targets left out, with the reason.
type plan struct {
	kind     store.Kind
	scope    string
	items    []store.Item // each with Recent set when failed over in the last 24 h
	excluded []store.Exclusion
	dropped  []store.Item // the items excluded, as they would have been (a plan's keep group and criticality)

	// A plan request's: the plan's name and its groups (items name theirs by index).
	planName string
	groups   []store.Group
}

// resolveTargets turns the names of a command into targets: every one must resolve, or the
// command is refused naming those that do not.
func (b *Service) resolveTargets(ctx context.Context, cmd Command) (store.Kind, string, []store.Target, error) {
	switch cmd.Sub {
	case SubVApp:
		var out []store.Target
		for _, q := range cmd.VApps {
			va, err := b.inv.resolveVApp(ctx, q)
			if err != nil {
				return "", "", nil, err
			}
			out = append(out, store.Target{ID: va.ID, Name: va.Name})
		}
		return store.KindVApp, "", dedupe(out), nil
	}
	rep, err := b.inv.resolveReplica(ctx, cmd.Replica)
	if err != nil {
		return "", "", nil, err
	}
	target := func(vm emapi.Ref) store.Target {
		return store.Target{ReplicaID: rep.ID, ReplicaName: rep.Name, ID: vm.ID, Name: vm.Name}
	}
	var out []store.Target
	if cmd.Sub == SubVM {
		for _, q := range cmd.VMs {
			vm, err := b.inv.resolveVM(ctx, rep.ID, q)
			if isUnknownName(err) {
				if where := b.inv.vmElsewhere(ctx, rep.ID, q); len(where) > 0 {
					return "", "", nil, wrongReplica(rep, q, where)
				}
			}
			if err != nil {
				return "", "", nil, err
			}
			out = append(out, target(vm))
		}
		return store.KindVM, "", dedupe(out), nil
	}
	// replica: every VM EM lists for it now, less --except (each of which must be one of them).
	vms, err := b.em.ReplicaVMs(ctx, rep.ID)
	if err != nil {
		return "", "", nil, err
	}
	skip := map[string]bool{}
	var skipped []string
	for _, q := range cmd.Except {
		vm, err := matchRef("VM", q, vms)
		if err != nil {
			return "", "", nil, err
		}
		skip[vm.ID] = true
		skipped = append(skipped, vm.Name)
	}
	for _, vm := range vms {
		if !skip[vm.ID] {
			out = append(out, target(vm))
		}
	}
	scope := "replica " + rep.Name
	if len(skipped) > 0 {
		scope += " except " + strings.Join(skipped, ", ")
	}
	if len(out) == 0 {
		return "", "", nil, &refusal{reason: "empty", msg: fmt.Sprintf("CDP replica *%s* has no VMs left to fail over (%d listed, %d excepted). Nothing was recorded.", esc(rep.Name), len(vms), len(skipped))}
	}
	return store.KindVM, scope, out, nil
}

func dedupe(ts []store.Target) []store.Target {
	var out []store.Target
	for _, t := range ts {
		if !slices.ContainsFunc(out, func(o store.Target) bool { return o.ID == t.ID }) {
			out = append(out, t)
		}
	}
	return out
}

// preflight reads, for every target, the restore points EM has (?action=intervals) and works
// out what the failover would use; a target with none for the chosen option, or held by another
// active request, is excluded with the reason. Targets failed over by a request in the last 24 h
// are noted for the card.
func (b *Service) preflight(ctx context.Context, kind store.Kind, scope string, targets []store.Target, intent store.Intent, at time.Time) (*plan, error) {
	seeds := make([]store.Item, len(targets))
	for i, t := range targets {
		seeds[i] = store.Item{Target: t}
	}
	return b.preflightItems(ctx, kind, scope, seeds, intent, at)
}

// preflightItems is preflight over items that may carry their own kind, group and criticality
// (a plan's); each item of the result keeps them, with the restore point it would use.
func (b *Service) preflightItems(ctx context.Context, kind store.Kind, scope string, seeds []store.Item, intent store.Intent, at time.Time) (*plan, error) {
	p := &plan{kind: kind, scope: scope}
	keys := make([]string, len(seeds))
	for i, seed := range seeds {
		k := seed.Kind
		if k == "" {
			k = kind
		}
		keys[i] = failover.TargetKey(k, seed.Target)
	}
	heldBy, recent, err := b.targetHistory(ctx, keys)
	if err != nil {
		return nil, err
	}
	held := make(map[string]*store.Request, len(heldBy))
	for i, seed := range seeds {
		if h, ok := heldBy[keys[i]]; ok {
			held[seed.Target.ID] = h
		}
	}
	now := b.now().UTC()
	items := make([]store.Item, len(seeds))
	why := make([]string, len(seeds))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(preflightConcurrency)
	for i, seed := range seeds {
		t := seed.Target
		if h, ok := held[t.ID]; ok {
			if len(seeds) == 1 && kind != store.KindPlan {
				// One target, held: the refusal names the holder and what to do.
				return nil, failover.TargetBusy(&store.Request{}, h, t, "request")
			}
			why[i] = "held by the active request " + h.ID
			continue
		}
		k := seed.Kind
		if k == "" {
			k = kind
		}
		g.Go(func() error {
			var in *emapi.Intervals
			var err error
			if k == store.KindVApp {
				in, err = b.em.VAppIntervals(gctx, t.ID, now.Add(-recentWindow), now)
			} else {
				in, err = b.em.VMIntervals(gctx, t.ReplicaID, t.ID, now.Add(-recentWindow), now)
			}
			if err != nil {
				if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
					return err
				}
				why[i] = "its restore points could not be read: " + describe(err)
				return nil
			}
			point, rpo, reason := restorePoint(in, intent, at)
			if reason != "" {
				why[i] = reason
				return nil
			}
			it := seed
			it.Point, it.RPO = point, rpo
			items[i] = it
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	for i, seed := range seeds {
		if why[i] != "" {
			p.excluded = append(p.excluded, store.Exclusion{Target: seed.Target, Reason: why[i]})
			p.dropped = append(p.dropped, seed)
			continue
		}
		items[i].Recent = recent[seed.Target.ID]
		p.items = append(p.items, items[i])
	}
	return p, nil
}

// restorePoint is what a failover with intent would restore from in: the point, the RPO in
// seconds, or why there is none.
func restorePoint(in *emapi.Intervals, intent store.Intent, at time.Time) (time.Time, int, string) {
	var newest *emapi.Interval
	for i := range in.Intervals {
		iv := &in.Intervals[i]
		if iv.Type != "" && iv.Type != "RestoreAvailable" {
			continue
		}
		if newest == nil || iv.End.After(newest.End) {
			newest = iv
		}
	}
	rpo := func(iv *emapi.Interval) int {
		var n int
		fmt.Sscanf(iv.RPO, "%d", &n)
		return n
	}
	switch intent {
	case store.IntentLatestVSS:
		var best *emapi.RestorePoint
		for i := range in.RestorePoints {
			rp := &in.RestorePoints[i]
			if rp.ApplicationConsistent && (best == nil || rp.Date.After(best.Date)) {
				best = rp
			}
		}
		if best == nil {
			return time.Time{}, 0, "no application-consistent (VSS) restore point in the last 24 h"
		}
		return best.Date.UTC(), 0, ""
	case store.IntentPointInTime, store.IntentInterval:
		for i := range in.Intervals {
			iv := &in.Intervals[i]
			if !at.Before(iv.Start) && !at.After(iv.End) {
				if intent == store.IntentInterval {
					return iv.End.UTC(), rpo(iv), ""
				}
				return at.UTC(), rpo(iv), ""
			}
		}
		return time.Time{}, 0, "no replicated state at " + at.UTC().Format(pointFormat)
	}
	if newest == nil {
		return time.Time{}, 0, "no restore point: Enterprise Manager lists no restorable interval"
	}
	return newest.End.UTC(), rpo(newest), ""
}

// targetHistory returns the targets held by active requests (target ID -> the request) and those
// failed over by a request that finished in the last 24 h (target ID -> "FO-3, succeeded at …").
// VM and vApp IDs never collide, so one map serves every kind (a plan holds both).
// It reads the target index for keys (the request's own targets) and the finished index for the
// last 24 h, so its cost follows the request and the requests that finished, not how many others
// are pending or running.
func (b *Service) targetHistory(ctx context.Context, keys []string) (map[string]*store.Request, map[string]string, error) {
	// Both reads are bounded by what they are about, not by how many requests exist: a burst
	// of 500 requests in a DR event must not make each acknowledgement read the other 499.
	held, err := b.st.Holders(ctx, keys)
	if err != nil {
		return nil, nil, err
	}
	recent := map[string]string{}
	finished, _, err := b.st.Finished(ctx, b.now().Add(-recentWindow), historyLimit)
	if err != nil {
		return nil, nil, err
	}
	for _, r := range finished { // newest first: the latest failover of a target is named
		for _, it := range r.Items {
			if it.StartedAt.IsZero() && it.TaskID == "" && it.RestoreSessionID == "" {
				continue // never reached EM
			}
			if _, ok := recent[it.Target.ID]; !ok {
				recent[it.Target.ID] = fmt.Sprintf("%s (%s at %s)", r.ID, itemWords(it.State), it.FinishedAt.UTC().Format(clockFormat))
			}
		}
	}
	return held, recent, nil
}

// historyLimit bounds the finished requests a pre-flight reads for "already failed over in the
// last 24 hours": the newest this many (a DR event's worth).
const historyLimit = 500
