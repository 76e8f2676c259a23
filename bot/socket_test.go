package bot_test

import (
	"context"
	"encoding/json"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"

	"github.com/failover-bot/failover-bot/bot"
	"github.com/failover-bot/failover-bot/store"
)

// ack is one Socket Mode acknowledgement, with what the world looked like when it was sent.
type ack struct {
	envelope string
	payload  []any
	// State at ack time: the ack must not wait for the background work.
	cardsPosted   int
	failoversDone int
}

// fakeSocket is a bot.SocketClient that records acks and hands them to the test.
type fakeSocket struct {
	h    *harness
	mu   sync.Mutex
	acks []ack
	got  chan ack
}

func (f *fakeSocket) Ack(req socketmode.Request, payload ...any) error {
	a := ack{envelope: req.EnvelopeID, payload: payload, failoversDone: len(f.h.em.Failovers())}
	for _, c := range f.h.slack.CallsTo("chat.postMessage") {
		if c.Status == 200 && c.Values.Get("blocks") != "" {
			a.cardsPosted++
		}
	}
	f.mu.Lock()
	f.acks = append(f.acks, a)
	f.mu.Unlock()
	f.got <- a
	return nil
}

// socketMode runs the bot's Socket Mode loop over a fake connection until the test ends.
func socketMode(t *testing.T, h *harness) (send func(socketmode.Event) ack, sock *fakeSocket) {
	t.Helper()
	sock = &fakeSocket{h: h, got: make(chan ack, 16)}
	events := make(chan socketmode.Event)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.bot.ServeSocketMode(ctx, sock, events) }()
	t.Cleanup(func() {
		close(events)
		if err := <-done; err != nil {
			t.Errorf("ServeSocketMode: %v", err)
		}
		cancel()
	})
	send = func(e socketmode.Event) ack {
		t.Helper()
		select {
		case events <- e:
		case <-time.After(5 * time.Second):
			t.Fatal("the Socket Mode loop does not take events")
		}
		if e.Request == nil {
			return ack{}
		}
		select {
		case a := <-sock.got:
			if a.envelope != e.Request.EnvelopeID {
				t.Fatalf("acked envelope %q, want %q", a.envelope, e.Request.EnvelopeID)
			}
			return a
		case <-time.After(5 * time.Second):
			t.Fatalf("envelope %s was not acknowledged", e.Request.EnvelopeID)
			return ack{}
		}
	}
	return send, sock
}

func slashEvent(envelope, user, text string) socketmode.Event {
	return socketmode.Event{
		Type:    socketmode.EventTypeSlashCommand,
		Data:    slack.SlashCommand{TeamID: "T0FAKE", ChannelID: Channel, UserID: user, Command: "/failover", Text: text, TriggerID: "trig-" + envelope},
		Request: &socketmode.Request{Type: "slash_commands", EnvelopeID: envelope},
	}
}

// clickEvent is a button click on the card of the request value names, as Socket Mode
// delivers it.
func (h *harness) clickEvent(envelope, user, actionID, value string) socketmode.Event {
	cb := slack.InteractionCallback{Type: slack.InteractionTypeBlockActions, TriggerID: "trig-" + envelope}
	cb.User.ID = user
	cb.Team.ID = "T0FAKE"
	cb.Channel.ID = Channel
	id, _, _ := strings.Cut(value, "|")
	if r, err := h.st.Get(context.Background(), id); err == nil {
		cb.Container.ChannelID, cb.Container.MessageTs = r.Channel, r.MessageTS
	}
	cb.ActionCallback.BlockActions = []*slack.BlockAction{{ActionID: actionID, BlockID: "fo_actions", Value: value}}
	return socketmode.Event{Type: socketmode.EventTypeInteractive, Data: cb, Request: &socketmode.Request{Type: "interactive", EnvelopeID: envelope}}
}

func rejectSubmissionEvent(envelope, user, id, reason string) socketmode.Event {
	cb := slack.InteractionCallback{Type: slack.InteractionTypeViewSubmission, TriggerID: "trig-" + envelope}
	cb.User.ID = user
	cb.View.CallbackID = "fo_reject_modal"
	cb.View.PrivateMetadata = id
	cb.View.State = &slack.ViewState{Values: map[string]map[string]slack.BlockAction{
		"fo_reject_reason": {"fo_reject_reason_input": {Type: "plain_text_input", Value: reason}},
	}}
	return socketmode.Event{Type: socketmode.EventTypeInteractive, Data: cb, Request: &socketmode.Request{Type: "interactive", EnvelopeID: envelope}}
}

// wire is how Slack would see an ack payload: its JSON.
func wire(t *testing.T, payload []any) string {
	t.Helper()
	if len(payload) == 0 {
		return ""
	}
	if len(payload) != 1 {
		t.Fatalf("ack with %d payloads, want at most one", len(payload))
	}
	b, err := json.Marshal(payload[0])
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestSocketModeFlow: the same dispatcher as HTTP mode, driven through slack-go's socketmode
// types. Each envelope is acked with the answer the HTTP endpoint gives, before the slow work
// (card post, EM failover) is done, and the approval flow completes.
func TestSocketModeFlow(t *testing.T) {
	h := newHarness(t)
	send, _ := socketMode(t, h)

	// Help: the ack carries exactly the HTTP answer.
	a := send(slashEvent("env-help", Requester, "help"))
	_, httpHelp := h.post("/slack/commands", url.Values{"user_id": {Requester}, "channel_id": {Channel}, "command": {"/failover"}, "text": {"help"}})
	var httpResp bot.Response
	if err := json.Unmarshal([]byte(httpHelp), &httpResp); err != nil {
		t.Fatal(err)
	}
	if got, want := wire(t, a.payload), wire(t, []any{httpResp}); got != want {
		t.Errorf("Socket Mode help ack %s, want the HTTP answer %s", got, want)
	}

	// A request: acked with the "Recorded" answer before the card is posted (Slack makes the card
	// wait a second).
	h.slack.RateLimit("chat.postMessage", 1, time.Second)
	a = send(slashEvent("env-vm", Requester, `vm CDP-Finance fin-db01 --reason "socket mode"`))
	var resp bot.Response
	if err := json.Unmarshal([]byte(wire(t, a.payload)), &resp); err != nil {
		t.Fatal(err)
	}
	if resp.ResponseType != "ephemeral" {
		t.Errorf("ack response_type %q, want ephemeral", resp.ResponseType)
	}
	mustContain(t, "ack", resp.Text, "Recorded *FO-1*")
	if a.cardsPosted != 0 {
		t.Errorf("the ack came after the card was posted; it must not wait for it")
	}
	h.idle()
	h.wantState("FO-1", store.Pending)

	// Self-approval over Socket Mode is refused just the same.
	a = send(h.clickEvent("env-self", Requester, "fo_approve", h.buttonValue("FO-1", "fo_approve")))
	if len(a.payload) != 0 {
		t.Errorf("a click's ack carries %s, want an empty ack", wire(t, a.payload))
	}
	h.idle()
	h.wantState("FO-1", store.Pending)
	h.wantEphemeral(Requester, "not an authorised approver")

	// Approval: acked before EM has the failover (EM answers slowly here), then it completes.
	h.em.SetLatency(300 * time.Millisecond)
	a = send(h.clickEvent("env-approve", Approver1, "fo_approve", h.buttonValue("FO-1", "fo_approve")))
	if len(a.payload) != 0 {
		t.Errorf("approve ack carries %s, want an empty ack", wire(t, a.payload))
	}
	if a.failoversDone != 0 {
		t.Errorf("the approve ack waited for EM's failover; it must come first")
	}
	h.idle()
	h.em.SetLatency(0)
	r := h.wantState("FO-1", store.Running)
	if n := h.failoverPOSTs(); n != 1 {
		t.Fatalf("failover POSTs = %d, want 1", n)
	}
	mustContain(t, "thread", h.threadText("FO-1"), "Approved by <@"+Approver1+">", "task "+r.Items[0].TaskID)

	// Events the bot does not handle are acked so Slack stops resending them; lifecycle events
	// carry no envelope.
	send(socketmode.Event{Type: socketmode.EventTypeHello})
	if a := send(socketmode.Event{Type: socketmode.EventTypeEventsAPI, Request: &socketmode.Request{Type: "events_api", EnvelopeID: "env-event"}}); len(a.payload) != 0 {
		t.Errorf("events_api ack carries %s, want an empty ack", wire(t, a.payload))
	}
}

// TestSocketModeReject: the reject modal's validation error travels in the ack, as in HTTP mode.
func TestSocketModeReject(t *testing.T) {
	h := newHarness(t)
	send, _ := socketMode(t, h)
	a := send(slashEvent("env-vm", Requester, `vm CDP-Finance fin-db01 --reason "socket mode"`))
	mustContain(t, "ack", wire(t, a.payload), "Recorded *FO-1*")
	h.idle()

	a = send(h.clickEvent("env-reject", Approver2, "fo_reject", h.buttonValue("FO-1", "fo_reject")))
	if len(a.payload) != 0 {
		t.Errorf("reject click ack carries %s, want an empty ack", wire(t, a.payload))
	}
	h.idle()
	if n := len(h.slack.CallsTo("views.open")); n != 1 {
		t.Fatalf("views.open called %d times, want 1", n)
	}

	a = send(rejectSubmissionEvent("env-empty", Approver2, "FO-1", "  "))
	httpBody := h.submitReject(Approver2, "FO-1", "  ")
	if got, want := jsonCompact(t, wire(t, a.payload)), jsonCompact(t, httpBody); got != want {
		t.Errorf("empty-reason ack %s, want the HTTP answer %s", got, want)
	}
	mustContain(t, "empty-reason ack", wire(t, a.payload), `"response_action":"errors"`, `"fo_reject_reason"`)
	h.idle()
	h.wantState("FO-1", store.Pending)

	a = send(rejectSubmissionEvent("env-reason", Approver2, "FO-1", "not needed"))
	if len(a.payload) != 0 {
		t.Errorf("valid reject ack carries %s, want an empty ack", wire(t, a.payload))
	}
	h.idle()
	h.wantState("FO-1", store.Rejected)
	if n := h.failoverPOSTs(); n != 0 {
		t.Fatalf("failover POSTs = %d, want 0", n)
	}
}

func jsonCompact(t *testing.T, s string) string {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("%q is not JSON: %v", s, err)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// TestSocketModeForeignWorkspaceAndReplay: Socket Mode applies the same checks as HTTP mode: a
// command from another workspace is refused and stores nothing, and an envelope Slack delivers
// twice (a late ack) creates one request.
func TestSocketModeForeignWorkspaceAndReplay(t *testing.T) {
	h := newHarness(t, withOptions(func(o *bot.Options) { o.Teams = []string{"T0FAKE"} }))
	send, _ := socketMode(t, h)
	foreign := slashEvent("env-foreign", Requester, `vm CDP-Finance fin-db01 --reason "x"`)
	sc := foreign.Data.(slack.SlashCommand)
	sc.TeamID = "T0OTHER"
	foreign.Data = sc
	mustContain(t, "foreign ack", wire(t, send(foreign).payload), "serves another Slack workspace")
	h.wantNothingStored()

	twice := slashEvent("env-twice", Requester, `vm CDP-Finance fin-db01 --reason "socket mode"`)
	mustContain(t, "first ack", wire(t, send(twice).payload), "Recorded *FO-1*")
	mustContain(t, "redelivery ack", wire(t, send(twice).payload), "Already received")
	h.idle()
	if _, err := h.st.Get(context.Background(), "FO-2"); err == nil {
		t.Fatal("the redelivered envelope created FO-2")
	}
}
