package core

import (
	"fmt"
	"strings"
	"time"

	"github.com/failover-bot/failover-bot/store"
)

// groupCounts says how many items of group g are in each state, in itemOrder.
func groupCounts(r *store.Request, g int) string {
	n := map[store.State]int{}
	for _, i := range r.GroupItems(g) {
		n[r.Items[i].State]++
	}
	var parts []string
	for _, st := range itemOrder {
		if n[st] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n[st], itemWords(st)))
		}
	}
	if len(parts) == 0 {
		return "no items"
	}
	return strings.Join(parts, ", ")
}

// groupName is "group 2 of 3 (apps)".
func groupName(r *store.Request, g int) string {
	return fmt.Sprintf("group %d of %d (%s)", g+1, len(r.Groups), esc(r.Groups[g].Name))
}

// groupTitle is a group's heading on the card: its number and name, counts, concurrency and
// delay, and a marker on the current group while the run goes on.
func groupTitle(r *store.Request, g int) string {
	gr := r.Groups[g]
	mark := ""
	switch {
	case r.State == store.Halted && r.Halt != nil && r.Halt.Group == g:
		mark = ":double_vertical_bar: "
	case r.State.Active() && r.State != store.Pending && r.Current == g:
		mark = ":arrow_forward: "
	}
	s := fmt.Sprintf("%s*%d. %s* — %s", mark, g+1, esc(gr.Name), groupCounts(r, g))
	var notes []string
	if gr.Concurrency > 0 {
		notes = append(notes, fmt.Sprintf("up to %d at once", gr.Concurrency))
	}
	if gr.Delay > 0 {
		notes = append(notes, "then wait "+gr.Delay.String())
	}
	switch {
	case !gr.DoneAt.IsZero() && !gr.StartedAt.IsZero():
		notes = append(notes, "took "+gr.DoneAt.Sub(gr.StartedAt).Round(time.Second).String())
	case r.Current == g && r.State.Active() && r.State != store.Pending && gr.StartedAt.IsZero() && !gr.StartAt.IsZero():
		notes = append(notes, "starts "+gr.StartAt.UTC().Format(clockFormat))
	}
	if len(notes) > 0 {
		s += " (" + strings.Join(notes, ", ") + ")"
	}
	return s
}

// planStatusLine is the card's one-line summary of a plan request once approved.
func planStatusLine(r *store.Request) string {
	c := counts(r)
	switch r.State {
	case store.Halted:
		return haltText(r)
	case store.Approved, store.Submitting, store.Running:
		if r.Current < len(r.Groups) {
			g := r.Groups[r.Current]
			if r.Stop != nil && r.Stop.ConfirmedBy == "" {
				return fmt.Sprintf(":arrows_counterclockwise: Running %s: %s — <@%s> asked to stop it at %s; waiting for a second person to confirm", groupName(r, r.Current), c, r.Stop.User, r.Stop.At.UTC().Format(clockFormat))
			}
			if g.StartedAt.IsZero() && r.Current > 0 {
				return fmt.Sprintf(":hourglass: %s done; %s starts %s — %s", groupName(r, r.Current-1), groupName(r, r.Current), g.StartAt.UTC().Format(clockFormat), c)
			}
			return fmt.Sprintf(":arrows_counterclockwise: Running %s: %s", groupName(r, r.Current), c)
		}
	}
	return manyStatusLine(r)
}

// haltText says why a plan halted and what can be done, for the card.
func haltText(r *store.Request) string {
	if r.Halt == nil {
		return ":double_vertical_bar: Halted"
	}
	h := r.Halt
	return fmt.Sprintf(":double_vertical_bar: *Halted after %s* at %s: critical %s did not succeed (%s). Nothing more is sent: an approver other than <@%s> can *Continue* with %s, or the requester or an approver can *Stop run* (what already failed over stays as it is).",
		groupName(r, h.Group), h.At.UTC().Format(clockFormat), failedNames(r, h), groupCounts(r, h.Group), r.Requester, groupName(r, h.Group+1))
}

// failedNames lists a halt's critical items with their state: "fin-db01 (failed), fin-db02 (unknown)".
func failedNames(r *store.Request, h *store.Halt) string {
	var parts []string
	for _, name := range h.Items {
		st := ""
		for _, i := range r.GroupItems(h.Group) {
			if r.Items[i].Target.Name == name {
				st = " (" + itemWords(r.Items[i].State) + ")"
				break
			}
		}
		parts = append(parts, "*"+esc(name)+"*"+st)
	}
	return strings.Join(parts, ", ")
}

// planMilestones is what the write that stored r owes the thread about the plan's run: each
// group started, done, halted, continued or ended, in the order it happened.
func planMilestones(r *store.Request) string {
	var lines []string
	for _, ev := range r.Milestones() {
		if ev.Group < 0 || ev.Group >= len(r.Groups) {
			continue
		}
		g := r.Groups[ev.Group]
		switch ev.Kind {
		case store.NewsStarted:
			n := len(r.GroupItems(ev.Group))
			lines = append(lines, fmt.Sprintf(":arrow_forward: Started %s: %s, up to %d at once.", groupName(r, ev.Group), plural(n, "item"), max(g.Concurrency, 1)))
		case store.NewsDone:
			took := ""
			if !g.StartedAt.IsZero() {
				took = " in " + g.DoneAt.Sub(g.StartedAt).Round(time.Second).String()
			}
			// Each failure was told when it happened (record, markUnknown): the milestone counts.
			line := fmt.Sprintf(":checkered_flag: Done: %s%s — %s.", groupName(r, ev.Group), took, groupCounts(r, ev.Group))
			if ev.Group+1 < len(r.Groups) && r.Halt == nil && !r.State.Terminal() {
				next := r.Groups[ev.Group+1]
				if g.Delay > 0 {
					line += fmt.Sprintf(" Next: %s at %s, after the %s delay.", groupName(r, ev.Group+1), next.StartAt.UTC().Format(clockFormat), g.Delay)
				} else {
					line += fmt.Sprintf(" Next: %s.", groupName(r, ev.Group+1))
				}
			}
			lines = append(lines, line)
		case store.NewsHalted:
			rest := 0
			for _, it := range r.Items {
				if it.Group > ev.Group {
					rest++
				}
			}
			lines = append(lines, fmt.Sprintf(":double_vertical_bar: *Halted after %s*: critical %s did not succeed. %s in the later groups were *not started*. An approver other than <@%s> decides: *Continue* on the card starts %s; *Stop run* ends the run, leaving what already failed over as it is.",
				groupName(r, ev.Group), failedNames(r, r.Halt), plural(rest, "item"), r.Requester, groupName(r, ev.Group+1)))
		case store.NewsContinued:
			if n := len(r.Continues); n > 0 {
				c := r.Continues[n-1]
				when := "now"
				if next := ev.Group + 1; next < len(r.Groups) && r.Groups[next].StartAt.After(c.At) {
					when = "at " + r.Groups[next].StartAt.UTC().Format(clockFormat)
				}
				lines = append(lines, fmt.Sprintf(":arrow_forward: <@%s> continued the run despite %s; %s starts %s.", c.User, esc(strings.Join(c.Items, ", ")), groupName(r, ev.Group+1), when))
			}
		case store.NewsEnded:
			who, why := r.StateBy, ""
			if r.Stop != nil {
				who, why = r.Stop.User, r.Stop.Reason
			}
			skipped := store.Counts(r)[store.Skipped]
			lines = append(lines, fmt.Sprintf(":black_square_for_stop: <@%s> stopped the run after %s: “%s”. %s not sent (skipped); what already failed over stays as it is.",
				who, groupName(r, ev.Group), esc(truncate(why, 300)), plural(skipped, "item")))
		}
	}
	return strings.Join(lines, "\n")
}

// planSummary is the per-group part of a finished plan's summary: counts and how long each
// group took, or why it never started.
func planSummary(r *store.Request) string {
	var b strings.Builder
	for gi, g := range r.Groups {
		fmt.Fprintf(&b, "\n• %d. %s: %s", gi+1, esc(g.Name), groupCounts(r, gi))
		switch {
		case !g.StartedAt.IsZero() && !g.DoneAt.IsZero():
			fmt.Fprintf(&b, " — %s (%s–%s)", g.DoneAt.Sub(g.StartedAt).Round(time.Second), g.StartedAt.UTC().Format("15:04"), g.DoneAt.UTC().Format(clockFormat))
		case g.StartedAt.IsZero():
			b.WriteString(" — not started")
		}
	}
	for _, c := range r.Continues {
		fmt.Fprintf(&b, "\nContinued after group %d by <@%s> at %s despite %s.", c.Group+1, c.User, c.At.UTC().Format(clockFormat), esc(strings.Join(c.Items, ", ")))
	}
	return b.String()
}
