package core

import (
	"errors"
	"fmt"
	"strings"

	"github.com/failover-bot/failover-bot/emapi"
	"github.com/failover-bot/failover-bot/store"
)

// describe turns any error the flow can meet into one sentence for the person in Slack. It is the
// only place where error kinds become words, so every path says the same thing.
func describe(err error) string {
	if err == nil {
		return ""
	}
	var (
		ref *refusal
		ue  *UsageError
		re  *emapi.ResolveError
		ee  *emapi.Error
		ce  *store.ConflictError
	)
	switch {
	case errors.As(err, &ref):
		return ref.msg
	case errors.As(err, &ue):
		return ue.Msg
	case errors.As(err, &re):
		return describeResolve(re)
	case errors.As(err, &ce):
		return describeConflict(ce)
	case errors.Is(err, store.ErrNotFound):
		return "There is no such request. `/failover list` shows the pending and active ones."
	case errors.Is(err, store.ErrUnavailable):
		return "the bot's store (etcd) does not answer right now, so nothing was recorded; try again in a minute, and tell the bot's operators if it goes on"
	case errors.Is(err, store.ErrFenced):
		return "this instance lost its leadership while acting; another instance carries on"
	case errors.As(err, &ee):
		return describeEM(ee)
	}
	return "Something went wrong: " + err.Error()
}

func describeEM(e *emapi.Error) string {
	msg := ""
	if e.Message != "" {
		msg = ": “" + esc(truncate(e.Message, 300)) + "”"
	}
	switch e.Kind {
	case emapi.KindUnauthorized:
		return "Enterprise Manager rejected the bot's credentials (401). An administrator must check EM_USERNAME and EM_PASSWORD."
	case emapi.KindForbidden:
		return "The bot's Enterprise Manager account lacks the Portal Administrator role, which every CDP call needs (403 Access denied)."
	case emapi.KindNotFound:
		return "Enterprise Manager does not know that object (404)" + msg + ". It may have been removed; check the name with the EM administrator."
	case emapi.KindBadRequest:
		return "Enterprise Manager refused the request as invalid (400)" + msg + ". For point-in-time failovers see Troubleshooting in the README."
	case emapi.KindServer:
		return fmt.Sprintf("Enterprise Manager failed with an internal error (%d)%s.", e.StatusCode, msg)
	case emapi.KindUnavailable:
		return "Enterprise Manager is unavailable (503: overloaded or in maintenance)" + msg + "."
	case emapi.KindTimeout:
		return "Enterprise Manager did not answer in time."
	case emapi.KindTransport:
		return "The bot could not reach Enterprise Manager (network error)."
	}
	return fmt.Sprintf("Enterprise Manager answered %d%s.", e.StatusCode, msg)
}

func describeResolve(e *emapi.ResolveError) string {
	const show = 10
	names := make([]string, 0, show)
	for i, c := range e.Candidates {
		if i == show {
			names = append(names, fmt.Sprintf("and %d more", len(e.Candidates)-show))
			break
		}
		names = append(names, fmt.Sprintf("`%s` (`%s`)", esc(c.Name), c.ID))
	}
	if e.Ambiguous {
		return fmt.Sprintf("“%s” matches %d %ss: %s. Use the ID instead of the name.", esc(e.Query), len(e.Candidates), e.What, strings.Join(names, ", "))
	}
	if len(names) == 0 {
		return fmt.Sprintf("No %s is named “%s”, and Enterprise Manager lists none.", e.What, esc(e.Query))
	}
	return fmt.Sprintf("No %s is named “%s”.%s Known: %s.", e.What, esc(e.Query), didYouMean(e.Query, refNames(e.Candidates)), strings.Join(names, ", "))
}

// describeConflict answers a late or wrong click with what really happened and who did it.
func describeConflict(e *store.ConflictError) string {
	switch e.Reason {
	case "self-approval":
		return "You requested " + e.ID + ", so you cannot approve it: a second person must (two-person rule)."
	case "duplicate-approval":
		return "You have already approved " + e.ID + "; it needs an approval from someone else too."
	case "not-requester":
		return "Only the person who requested " + e.ID + " can withdraw it; approvers can reject it with the Reject button."
	case "digest":
		return e.ID + " changed since this card was shown, so the approval was not recorded. Look at the current card and approve again."
	case store.ReasonTargetBusy:
		who := ""
		if e.By != "" {
			who = " by <@" + e.By + ">"
		}
		return fmt.Sprintf("%s already has an active request: *%s* (%s, requested%s at %s). One failover request per VM or vApp at a time, so the same machine is never failed over twice: follow %s (`/failover status %s`), or withdraw it with `/failover cancel %s` if it should not go ahead. Nothing was recorded.",
			esc(e.Target), e.Holder, stateWords(e.State), who, e.At.UTC().Format(clockFormat), e.Holder, e.Holder, e.Holder)
	}
	who := ""
	if e.By != "" && e.By != "bot" && e.By != "poller" && e.By != "em" {
		who = " by <@" + e.By + ">"
	}
	when := ""
	if !e.At.IsZero() {
		when = " at " + e.At.UTC().Format(clockFormat)
	}
	return fmt.Sprintf("%s is already %s%s%s.", e.ID, stateWords(e.State), who, when)
}

func stateWords(s store.State) string {
	switch s {
	case store.Pending:
		return "waiting for approval"
	case store.Submitting:
		return "being sent to Enterprise Manager"
	case store.Running:
		return "running in Enterprise Manager"
	case store.Stopping:
		return "being stopped"
	case store.Unknown:
		return "in an unknown state (check Enterprise Manager)"
	case store.PartlyFailed:
		return "partly failed"
	case store.Halted:
		return "halted before its next group (waiting for Continue or Stop run)"
	}
	return string(s)
}
