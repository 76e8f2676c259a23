package core

import (
	"fmt"
	"strings"
	"time"

	"github.com/failover-bot/failover-bot/store"
)

// Audit actions that are bookkeeping or progress, not decisions or state changes: the audit
// log keeps them, the audit channel does not show them.
const (
	actionProgress   = "em-progress" // EM progress within the same state
	actionCardPosted = "card-posted"
)

// ThreadLine is the projection of a change onto the request's card thread: the line the
// change owes the thread, or "" for none. The store runs it inside the transaction that makes
// the change (store.Options.Thread), so the line is queued atomically with the change and
// survives any crash. Changes made through store.Transition carry their own line instead.
func ThreadLine(r *store.Request, e *store.Event) string {
	switch e.Action {
	case "approval":
		return fmt.Sprintf(":ballot_box_with_check: <@%s> approved (%d of %d); %d more needed.",
			e.Actor, len(r.Approvals), r.ApprovalsRequired, r.ApprovalsRequired-len(r.Approvals))
	case "approved":
		if r.IsPlan() {
			return fmt.Sprintf(":white_check_mark: %s. Running plan *%s*: %s in order, each after the one before has an outcome for every item; a critical failure halts the run for a second person's decision. This thread gets each group's milestones and every failure.",
				approvedBy(r), esc(r.Plan), plural(len(r.Groups), "group")) + prefix(planMilestones(r))
		}
		if len(r.Items) > 1 {
			return fmt.Sprintf(":white_check_mark: %s. Sending %d failovers to Enterprise Manager; this thread gets the milestones and every failure, the card shows each item.", approvedBy(r), len(r.Items))
		}
		return ":white_check_mark: " + approvedBy(r) + ". Sending the failover to Enterprise Manager."
	case "rejected":
		reason := ""
		if r.Rejection != nil {
			reason = r.Rejection.Reason
		}
		return fmt.Sprintf(":no_entry: Rejected by <@%s>: %s", e.Actor, esc(reason))
	case "withdrawn":
		return fmt.Sprintf(":leftwards_arrow_with_hook: Withdrawn by <@%s>. Nothing was sent to Enterprise Manager.", e.Actor)
	case "expired":
		return fmt.Sprintf(":alarm_clock: %s expired at %s with %d of %d approvals. Nothing was sent to Enterprise Manager; ask again if it is still needed.",
			r.ID, r.StateAt.UTC().Format(clockFormat), len(r.Approvals), r.ApprovalsRequired)
	}
	if r.IsPlan() {
		return planMilestone(r, e)
	}
	if len(r.Items) > 1 {
		return milestone(r, e)
	}
	return ""
}

// planMilestone is what a change of a plan request owes its thread: the run's milestones of
// this write, then the summary once the last item has an outcome.
func planMilestone(r *store.Request, e *store.Event) string {
	s := planMilestones(r)
	if e.From != e.To && e.To.Terminal() {
		s += prefix(summaryLine(r))
	}
	return strings.TrimPrefix(s, "\n")
}

func prefix(s string) string {
	if s == "" {
		return ""
	}
	return "\n" + s
}

// milestone is the line a change of one item owes the thread of a request of many: all items
// submitted, or the request's summary once the last one finished. Everything else shows on the
// card only, so 200 VMs do not mean 800 thread messages.
func milestone(r *store.Request, e *store.Event) string {
	if e.From != e.To && e.To.Terminal() {
		return summaryLine(r)
	}
	switch e.Action {
	case "submitted", "reconciled", "error", "not-sent":
		n := store.Counts(r)
		if n[store.Approved]+n[store.Submitting] == 0 && r.State.Active() {
			return fmt.Sprintf(":rocket: All %d failovers have been sent to Enterprise Manager: %s. The card shows each one; I post failures here.", len(r.Items), counts(r))
		}
	}
	return ""
}

// maxSummaryFailures is how many failed items a summary names; the rest are counted.
const maxSummaryFailures = 20

// summaryLine tells a tired person where a finished request of many stands: the outcome and
// counts, how long it took, what failed with EM's words, and what to do next.
func summaryLine(r *store.Request) string {
	var b strings.Builder
	fmt.Fprintf(&b, "*%s finished: %s* — %s (%s, to the %s)", r.ID, stateWords(r.State), counts(r), esc(targetName(r)), restoreText(r.Intent, r.RestoreTime))
	if !r.DecidedAt.IsZero() && !r.FinishedAt.IsZero() {
		fmt.Fprintf(&b, ", in %s (approved %s, finished %s)", r.FinishedAt.Sub(r.DecidedAt).Round(time.Second),
			r.DecidedAt.UTC().Format(clockFormat), r.FinishedAt.UTC().Format(clockFormat))
	}
	b.WriteString(".")
	if r.IsPlan() {
		b.WriteString(planSummary(r))
	}
	var bad []string
	for _, l := range legs(r) {
		switch l.Item.State {
		case store.Failed, store.Unknown, store.Stopped:
			bad = append(bad, fmt.Sprintf("• %s: %s — %s", esc(l.name()), itemWords(l.Item.State), emText(l)))
		}
	}
	if len(bad) > 0 {
		shown := bad
		if len(shown) > maxSummaryFailures {
			shown = shown[:maxSummaryFailures]
		}
		b.WriteString("\n" + strings.Join(shown, "\n"))
		if len(bad) > len(shown) {
			fmt.Fprintf(&b, "\n…and %d more: `/failover status %s` lists them all.", len(bad)-len(shown), r.ID)
		}
		fmt.Fprintf(&b, "\nNext: check those VMs and their restore sessions in the Veeam console (a half-done failover stays as it is). To try them again, ask for a new request with just them (`/failover vm &lt;replica&gt; &lt;vm&gt; …`); it needs its own approval.")
	} else {
		b.WriteString("\n" + NextStepConsole)
	}
	return b.String()
}

// showInAuditChannel says whether an audit event is a decision or a state change, which the
// audit channel shows, rather than progress or bookkeeping, which only the log keeps.
func showInAuditChannel(e store.Event) bool {
	if e.Action == "item-"+string(store.Running) {
		return false // an item starting to run is progress; its submission was already shown
	}
	switch e.Action {
	case actionProgress, actionCardPosted, "reminder":
		return false
	}
	return true
}

// auditLine renders one audit event for the audit channel: time, request, who, what, and the
// details the log recorded. cardLink links the request's card when known.
func auditLine(e store.Event, cardLink string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "`%s` %s %s by %s", e.Time.UTC().Format("15:04:05 UTC"), e.RequestID, auditVerb(e), actorText(e.Actor))
	if e.From != e.To && e.From != "" {
		fmt.Fprintf(&b, " (%s → %s)", e.From, e.To)
	}
	if e.Details != "" {
		b.WriteString(": ")
		b.WriteString(esc(truncate(e.Details, 400)))
	}
	if cardLink != "" {
		b.WriteString(" — <" + cardLink + "|card>")
	}
	return b.String()
}

func auditVerb(e store.Event) string {
	switch e.Action {
	case "em-state":
		return "EM reported " + string(e.To)
	case "withdrawn-undeliverable":
		return "withdrawn: its approval card could not be posted"
	case "error":
		return "failed to start"
	case "unknown":
		return "outcome unknown"
	case "stop":
		return "stop requested"
	case "card-undeliverable":
		return "card undeliverable"
	}
	return strings.ReplaceAll(e.Action, "-", " ")
}

// actorText shows a Slack user ID as a mention and the bot's own actors as words.
func actorText(actor string) string {
	if isUserID(actor) {
		return "<@" + actor + ">"
	}
	return actor
}

func isUserID(s string) bool {
	if len(s) < 2 || (s[0] != 'U' && s[0] != 'W') {
		return false
	}
	for _, c := range s[1:] {
		if (c < 'A' || c > 'Z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}
