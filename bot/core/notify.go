package core

import (
	"fmt"

	"github.com/failover-bot/failover-bot/store"
)

// How the requester hears of decisions on their request and of its outcome (NOTIFY_REQUESTER).
const (
	NotifyThread = "thread" // a mention in the card's thread (default)
	NotifyDM     = "dm"     // a direct message from the app
)

// RequesterNotes is the store's projection of a change onto what its requester is told
// (store.Options.Requester): every decision someone else made on their request (an approval,
// the approval, a rejection, the expiry, a plan's Continue or Stop run, a stop) and its outcome,
// as a mention in the thread or, with mode NotifyDM, a direct message that stands on its own.
// Their own acts (withdrawing, stopping) tell them nothing they do not know. When the change
// already tells the thread (told), the mention is short: the line above it says what happened.
func RequesterNotes(mode string) func(r *store.Request, e *store.Event, told bool) (mention, direct string) {
	return func(r *store.Request, e *store.Event, told bool) (string, string) {
		what := requesterNews(r, e)
		if what == "" || r.Requester == "" {
			return "", ""
		}
		if mode == NotifyDM {
			return "", fmt.Sprintf("*%s* (fail over %s, restoring the %s, in <#%s>): %s",
				r.ID, targetText(r), restoreText(r.Intent, r.RestoreTime), r.Channel, what)
		}
		if told {
			return fmt.Sprintf("cc <@%s> (requester of %s)", r.Requester, r.ID), ""
		}
		return fmt.Sprintf("<@%s> (requester): %s %s", r.Requester, r.ID, what), ""
	}
}

// requesterNews says in a few words what e did to r that its requester must hear, or "".
func requesterNews(r *store.Request, e *store.Event) string {
	if e.Actor == r.Requester {
		return ""
	}
	switch e.Action {
	case "approval":
		return fmt.Sprintf("<@%s> approved; %d of %d approvals so far.", e.Actor, len(r.Approvals), r.ApprovalsRequired)
	case "approved":
		return fmt.Sprintf("approved by %s; the failover is being sent to Enterprise Manager.", mentionAll(approvers(r), "<@%s>"))
	case "rejected":
		reason := ""
		if r.Rejection != nil {
			reason = ": " + esc(truncate(r.Rejection.Reason, 300))
		}
		return fmt.Sprintf("rejected by <@%s>%s. Nothing was sent to Enterprise Manager.", e.Actor, reason)
	case "expired":
		return fmt.Sprintf("expired with %d of %d approvals. Nothing was sent to Enterprise Manager; ask again if it is still needed.", len(r.Approvals), r.ApprovalsRequired)
	case "continued":
		return fmt.Sprintf("<@%s> chose to continue the run past the failure.", e.Actor)
	case "run-stopped":
		return fmt.Sprintf("<@%s> stopped the run; the items not yet sent are skipped.", e.Actor)
	case "stop-requested":
		return fmt.Sprintf("<@%s> asks to stop the failover; a second person must confirm.", e.Actor)
	case "stop":
		if e.From != e.To {
			return fmt.Sprintf("<@%s> stopped the failover; Enterprise Manager is stopping it.", e.Actor)
		}
		return ""
	}
	if e.From != e.To && e.To.Terminal() {
		switch e.To {
		case store.Rejected, store.Expired, store.Withdrawn:
			return ""
		}
		return fmt.Sprintf("finished: *%s* (%s). %s `/failover status %s` has the details.", stateWords(e.To), counts(r), outcomeNext(e.To), r.ID)
	}
	return ""
}

func approvers(r *store.Request) []string {
	out := make([]string, len(r.Approvals))
	for i, a := range r.Approvals {
		out[i] = a.User
	}
	return out
}
