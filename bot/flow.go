package bot

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/failover-bot/failover-bot/bot/core"
	"github.com/failover-bot/failover-bot/store"
)

// HandleInteraction answers a click or a modal submission. The returned value (nil for none) is
// the body of the acknowledgement: only a modal with a validation error needs one. All other work
// runs after the acknowledgement. Every payload is checked before it is acted on: its shape, its
// workspace, that it was not already received, and that a button belongs to the card it is on.
func (b *Bot) HandleInteraction(ctx context.Context, cb slack.InteractionCallback) any {
	if !b.teamAllowed(cb.Team.ID, cb.Enterprise.ID) {
		b.met.Refusals.WithLabelValues("team").Inc()
		b.log.Warn("interaction from another workspace refused", "team", cb.Team.ID, "user", cb.User.ID)
		return nil
	}
	// Before the use cases run: the audit event this click writes records the name.
	b.names.FromPayload(cb.User.ID, cb.User.Name)
	switch cb.Type {
	case slack.InteractionTypeBlockActions:
		return b.blockAction(ctx, cb)
	case slack.InteractionTypeViewSubmission:
		return b.viewSubmission(ctx, cb)
	}
	b.log.Info("ignoring an interaction of an unhandled type", "type", cb.Type)
	return nil
}

func (b *Bot) blockAction(ctx context.Context, cb slack.InteractionCallback) any {
	if len(cb.ActionCallback.BlockActions) != 1 || cb.ActionCallback.BlockActions[0] == nil || cb.User.ID == "" {
		b.log.Warn("ignoring block_actions with an unexpected shape", "actions", len(cb.ActionCallback.BlockActions), "user", cb.User.ID)
		return nil
	}
	act := *cb.ActionCallback.BlockActions[0]
	user := cb.User.ID
	channel := firstNonEmpty(cb.Container.ChannelID, cb.Channel.ID)
	msgTS := firstNonEmpty(cb.Container.MessageTs, cb.Message.Timestamp)
	var id, digest string
	group := 0
	switch act.ActionID {
	case actionApprove:
		var ok bool
		id, digest, ok = strings.Cut(act.Value, "|")
		if !ok || id == "" || digest == "" {
			b.log.Warn("ignoring an approve click with a malformed value", "user", user)
			return nil
		}
	case actionReject, actionStop, actionRetry:
		id = act.Value
	case actionContinue:
		// The value names the halt the button was shown for: a button left from an earlier
		// halt must not continue a later one.
		var g string
		var ok bool
		var err error
		id, g, ok = strings.Cut(act.Value, "|")
		if group, err = strconv.Atoi(g); !ok || err != nil || group < 0 {
			b.log.Warn("ignoring a continue click with a malformed value", "user", user)
			return nil
		}
	default:
		b.log.Warn("ignoring an unknown action", "action", act.ActionID, "user", user)
		return nil
	}
	if id == "" || channel == "" || msgTS == "" {
		b.log.Warn("ignoring a click without its request or card", "action", act.ActionID, "user", user)
		return nil
	}
	if err := b.st.Remember(ctx, interactionReplayKey(cb, act), core.ReplayWindow); err != nil {
		if errors.Is(err, store.ErrReplay) {
			b.met.Refusals.WithLabelValues("replay").Inc()
			b.log.Warn("replayed click ignored", "user", user, "request", id)
			b.out.Ephemeral(channel, user, core.ReplayText)
			return nil
		}
		b.log.Error("recording a click failed", "error", err)
		b.out.Ephemeral(channel, user, "I could not record your click ("+core.Describe(err)+"). Nothing was done; click again.")
		return nil
	}
	trigger := cb.TriggerID
	b.goBackground(func(ctx context.Context) {
		if !b.clickOnItsCard(ctx, id, channel, msgTS, user) {
			return
		}
		switch act.ActionID {
		case actionApprove:
			b.core.Approve(ctx, id, digest, user, channel)
		case actionStop:
			b.core.OpenStop(ctx, id, user, channel, trigger)
		case actionRetry:
			b.core.Retry(ctx, id, user, channel)
		case actionContinue:
			b.core.Continue(ctx, id, group, user, channel)
		default:
			b.core.OpenReject(ctx, id, user, channel, trigger)
		}
	})
	return nil
}

// clickOnItsCard checks that a button was clicked on the card of the request it names. A
// button on another request's card is refused; a button on a message the store does not know
// (a card whose post answer was lost in a crash, then posted again) is superseded: the message
// is replaced by a link to the current card and nothing changes.
func (b *Bot) clickOnItsCard(ctx context.Context, id, channel, ts, user string) bool {
	log := b.log.With("request", id).With("user", user, "channel", channel, "ts", ts)
	owner, err := b.st.ByMessage(ctx, channel, ts)
	if errors.Is(err, store.ErrNotFound) {
		// A click can arrive between Slack showing the card and the bot recording its ts (on
		// this instance or another): wait for the record rather than call the live card out
		// of date.
		owner, err = b.awaitCard(ctx, id, channel, ts)
	}
	switch {
	case err == nil && strings.EqualFold(owner.ID, id):
		return true
	case err == nil:
		b.met.Refusals.WithLabelValues("wrong-card").Inc()
		log.Warn("click refused: the button names another request than its card", "card_of", owner.ID)
		b.out.Ephemeral(channel, user, fmt.Sprintf("That button does not belong to this card (it names %s; this is the card of %s). Nothing was changed.", core.Esc(id), owner.ID))
		return false
	case !errors.Is(err, store.ErrNotFound):
		log.Error("click: looking up the card failed", "error", err)
		b.out.Ephemeral(channel, user, "I could not check which request this card belongs to ("+core.Describe(err)+"). Nothing was changed; click again.")
		return false
	}
	r, gerr := b.st.Get(ctx, id)
	if gerr == nil && r.MessageTS == "" {
		// The request's card is not recorded yet, so this may well be it: never mark it.
		b.met.Refusals.WithLabelValues("card-unrecorded").Inc()
		log.Warn("click on a card not recorded yet: nothing changed")
		b.out.Ephemeral(channel, user, "I have not finished recording this card of "+r.ID+" yet, so nothing was changed. Click again in a few seconds.")
		return false
	}
	b.met.Refusals.WithLabelValues("superseded").Inc()
	where := "the current card"
	if gerr == nil {
		if link := core.Permalink(b.opt.WorkspaceURL, r.Channel, r.MessageTS); link != "" {
			where = "<" + link + "|the current card of " + r.ID + ">"
		} else if r.Channel != "" {
			where = "the current card of " + r.ID + " in <#" + r.Channel + ">"
		}
	}
	log.Warn("click on an orphan card: superseded, nothing changed")
	text := "Superseded — see " + where + "."
	b.out.Update(channel, ts, text, []slack.Block{slack.NewContextBlock("fo_superseded",
		slack.NewTextBlockObject(slack.MarkdownType, ":no_entry_sign: This card is out of date. "+text, false, false))})
	b.out.Ephemeral(channel, user, "That card was out of date and nothing was changed. "+text)
	return false
}

// cardWait bounds how long a click waits for its card's ts to be recorded; cardPoll is how
// often it looks. The store is read rather than an in-process signal awaited, because the
// instance that posted the card need not be the one that took the click.
var cardWait, cardPoll = 5 * time.Second, 50 * time.Millisecond

// awaitCard waits, while request id's card is not recorded yet, for (channel, ts) to be
// recorded, and returns its owner. It returns ErrNotFound at once when the request already
// has another card (the clicked one is out of date), and when cardWait passes.
func (b *Bot) awaitCard(ctx context.Context, id, channel, ts string) (*store.Request, error) {
	// The wait has its own deadline; the store calls keep the caller's context, so a wait that
	// ends is a plain "not recorded", never a failed lookup.
	deadline := time.NewTimer(cardWait)
	defer deadline.Stop()
	tick := time.NewTicker(cardPoll)
	defer tick.Stop()
	for {
		r, err := b.st.Get(ctx, id)
		if err != nil || r.MessageTS != "" {
			// Recorded meanwhile (as this card or another), or nothing to wait for.
			return b.st.ByMessage(ctx, channel, ts)
		}
		select {
		case <-ctx.Done():
			return nil, store.ErrNotFound
		case <-deadline.C:
			return nil, store.ErrNotFound
		case <-tick.C:
		}
	}
}

func (b *Bot) viewSubmission(ctx context.Context, cb slack.InteractionCallback) any {
	if cb.View.CallbackID == callbackStop {
		return b.stopSubmission(ctx, cb)
	}
	if cb.View.CallbackID != callbackReject {
		b.log.Info("ignoring a view submission of an unknown dialog", "callback", cb.View.CallbackID)
		return nil
	}
	id, user := cb.View.PrivateMetadata, cb.User.ID
	var reason string
	if cb.View.State != nil {
		if v, ok := cb.View.State.Values[blockRejectWhy][actionRejectWhy]; ok {
			reason = strings.TrimSpace(v.Value)
		}
	}
	if id == "" || user == "" {
		b.log.Warn("ignoring a reject dialog without its request or user")
		return nil
	}
	if reason == "" {
		return slack.NewErrorsViewSubmissionResponse(map[string]string{blockRejectWhy: "Say why, so the requester knows what to change."})
	}
	if err := b.st.Remember(ctx, viewReplayKey(cb), core.ReplayWindow); err != nil {
		b.log.Warn("reject dialog not acted on", "reason", err, "user", user, "request", id)
		return nil
	}
	b.goBackground(func(ctx context.Context) { b.core.Reject(ctx, id, user, reason) })
	return nil
}

// interactionReplayKey identifies one click: Slack's trigger_id, else the click's own
// action_ts (a replay carries the same one).
func interactionReplayKey(cb slack.InteractionCallback, act slack.BlockAction) string {
	if cb.TriggerID != "" {
		return "click:" + cb.TriggerID
	}
	return "click:" + hashKey(cb.User.ID, act.ActionID, act.Value, act.ActionTs, cb.Container.MessageTs)
}

func viewReplayKey(cb slack.InteractionCallback) string {
	if cb.TriggerID != "" {
		return "view:" + cb.TriggerID
	}
	return "view:" + hashKey(cb.User.ID, cb.View.ID, cb.View.Hash, cb.View.PrivateMetadata)
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
