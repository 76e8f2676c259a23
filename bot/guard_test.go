package bot_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/failover-bot/failover-bot/bot"
	"github.com/failover-bot/failover-bot/bot/slackfake"
	"github.com/failover-bot/failover-bot/store"
)

func commandForm(h *harness, team, user, text, trigger string) url.Values {
	return url.Values{
		"team_id": {team}, "channel_id": {Channel}, "user_id": {user}, "command": {"/failover"},
		"text": {text}, "response_url": {h.slack.ResponseURL("cmd")}, "trigger_id": {trigger},
	}
}

func answerText(t *testing.T, body string) string {
	t.Helper()
	var resp bot.Response
	if err := json.Unmarshal([]byte(body), &resp); err != nil {
		t.Fatalf("answer is not JSON: %v: %s", err, body)
	}
	return resp.Text
}

// TestReplayedCommandCreatesOneRequest: the same validly signed slash-command body sent twice
// (a replay inside the signature window, or a redelivery) is acted on once; the second gets
// "already received". Approving the one request sends one failover.
func TestReplayedCommandCreatesOneRequest(t *testing.T) {
	h := newHarness(t)
	form := commandForm(h, slackfake.TeamID, Requester, `vm CDP-Finance fin-db01 --reason "site down"`, "trig-replayed")
	code, first := h.post("/slack/commands", form)
	if code != http.StatusOK {
		t.Fatalf("first: status %d", code)
	}
	mustContain(t, "first answer", answerText(t, first), "Recorded *FO-1*")
	code, second := h.post("/slack/commands", form)
	if code != http.StatusOK {
		t.Fatalf("replay: status %d", code)
	}
	mustContain(t, "replay answer", answerText(t, second), "Already received", "Nothing more was done")
	h.idle()
	if _, err := h.st.Get(context.Background(), "FO-2"); err == nil {
		t.Fatal("the replay created FO-2")
	}
	h.approve(Approver1, "FO-1")
	h.idle()
	h.wantState("FO-1", store.Running)
	if n := h.failoverPOSTs(); n != 1 {
		t.Fatalf("failover POSTs = %d, want 1", n)
	}
}

// TestReplayedClickActsOnce: the same approve click delivered twice acts once; the replay is
// answered "already received".
func TestReplayedClickActsOnce(t *testing.T) {
	h := newHarness(t, withRequired(2))
	id := h.requestDB01()
	payload := h.clickJSON(Approver1, "fo_approve", h.buttonValue(id, "fo_approve"), "")
	for range 2 {
		if code, body := h.post("/slack/interactions", url.Values{"payload": {payload}}); code != http.StatusOK {
			t.Fatalf("click: status %d, %s", code, body)
		}
	}
	h.idle()
	r := h.wantState(id, store.Pending)
	if len(r.Approvals) != 1 {
		t.Fatalf("%d approvals recorded, want 1", len(r.Approvals))
	}
	h.wantEphemeral(Approver1, "Already received")
	mustNotContain(t, "ephemerals", h.ephemerals(Approver1), "already approved")
}

// TestForeignWorkspaceRefused: a signed command or click from another workspace than the bot
// token's is refused and stores nothing.
func TestForeignWorkspaceRefused(t *testing.T) {
	h := newHarness(t, withOptions(func(o *bot.Options) { o.Teams = []string{slackfake.TeamID} }))
	code, body := h.post("/slack/commands", commandForm(h, "T0OTHER", Requester, `vm CDP-Finance fin-db01 --reason "x"`, "trig-foreign"))
	if code != http.StatusOK {
		t.Fatalf("status %d", code)
	}
	mustContain(t, "answer", answerText(t, body), "serves another Slack workspace", "nothing was recorded")
	h.wantNothingStored()

	// A click from another workspace on a real card changes nothing.
	id := h.requestDB01()
	var p map[string]any
	json.Unmarshal([]byte(h.clickJSON(Approver1, "fo_approve", h.buttonValue(id, "fo_approve"), "")), &p)
	p["team"] = map[string]any{"id": "T0OTHER"}
	b, _ := json.Marshal(p)
	if code, _ := h.post("/slack/interactions", url.Values{"payload": {string(b)}}); code != http.StatusOK {
		t.Fatalf("click: status %d", code)
	}
	h.idle()
	h.wantState(id, store.Pending)
	if n := h.failoverPOSTs(); n != 0 {
		t.Fatalf("failover POSTs = %d, want 0", n)
	}
}

// TestClickTiedToItsCard: FO-2's Approve value clicked on FO-1's card is refused and changes
// neither request.
func TestClickTiedToItsCard(t *testing.T) {
	h := newHarness(t)
	first := h.requestDB01()
	second := h.request(Requester, `vm CDP-Finance fin-app01 --reason "app too"`)
	h.click(Approver1, "fo_approve", h.buttonValue(second, "fo_approve")) // sanity: the harness ties by value
	h.idle()
	h.wantState(second, store.Running)

	third := h.request(Requester, `vm CDP-Finance fin-web01 --reason "web too"`)
	wrong := h.clickJSON(Approver1, "fo_approve", h.buttonValue(third, "fo_approve"), h.get(first).MessageTS)
	if code, _ := h.post("/slack/interactions", url.Values{"payload": {wrong}}); code != http.StatusOK {
		t.Fatalf("status %d", code)
	}
	h.idle()
	h.wantState(first, store.Pending)
	h.wantState(third, store.Pending)
	h.wantEphemeral(Approver1, "does not belong to this card", "Nothing was changed")
	if n := h.failoverPOSTs(); n != 1 {
		t.Fatalf("failover POSTs = %d, want 1 (the sanity approval only)", n)
	}
}

// TestOrphanCardSuperseded: a card Slack holds but the store does not know (its post answer
// was lost, then the card was posted again) is replaced, when clicked, by a link to the current
// card; nothing changes.
func TestOrphanCardSuperseded(t *testing.T) {
	h := newHarness(t)
	id := h.requestDB01()
	value := h.buttonValue(id, "fo_approve")
	api := slack.New("xoxb-test-token-never-logged", slack.OptionAPIURL(h.slack.APIURL()))
	_, orphanTS, err := api.PostMessage(Channel, slack.MsgOptionText("Failover request "+id+" (orphan)", false),
		slack.MsgOptionBlocks(slack.NewActionBlock("fo_actions",
			slack.NewButtonBlockElement("fo_approve", value, slack.NewTextBlockObject(slack.PlainTextType, "Approve", false, false)))))
	if err != nil {
		t.Fatal(err)
	}
	if code, _ := h.post("/slack/interactions", url.Values{"payload": {h.clickJSON(Approver1, "fo_approve", value, orphanTS)}}); code != http.StatusOK {
		t.Fatalf("status %d", code)
	}
	h.idle()
	h.wantState(id, store.Pending)
	var orphan slackfake.Message
	for _, m := range h.slack.Messages(Channel) {
		if m.TS == orphanTS {
			orphan = m
		}
	}
	mustContain(t, "orphan card", orphan.Text, "Superseded", "current card of "+id, h.get(id).MessageTS[:10])
	mustNotContain(t, "orphan card", string(orphan.Blocks), "fo_approve")
	h.wantEphemeral(Approver1, "out of date", "nothing was changed")
	if n := h.failoverPOSTs(); n != 0 {
		t.Fatalf("failover POSTs = %d, want 0", n)
	}
}

// TestMalformedInteractionsAreHarmless: signed payloads of every wrong shape get a harmless
// answer and change nothing; none panics.
func TestMalformedInteractionsAreHarmless(t *testing.T) {
	h := newHarness(t)
	id := h.requestDB01()
	card := h.get(id).MessageTS
	for name, payload := range map[string]string{
		"view_submission without state":  `{"type":"view_submission","user":{"id":"` + Approver1 + `"},"view":{"callback_id":"fo_reject_modal","private_metadata":"` + id + `"}}`,
		"view_submission without values": `{"type":"view_submission","user":{"id":"` + Approver1 + `"},"view":{"callback_id":"fo_reject_modal","private_metadata":"` + id + `","state":{}}}`,
		"block_actions without actions":  `{"type":"block_actions","user":{"id":"` + Approver1 + `"},"container":{"channel_id":"` + Channel + `","message_ts":"` + card + `"}}`,
		"block_actions with null action": `{"type":"block_actions","user":{"id":"` + Approver1 + `"},"actions":[null]}`,
		"approve without a card":         `{"type":"block_actions","user":{"id":"` + Approver1 + `"},"actions":[{"action_id":"fo_approve","value":"` + h.buttonValue(id, "fo_approve") + `"}]}`,
		"approve without a user":         `{"type":"block_actions","container":{"channel_id":"` + Channel + `","message_ts":"` + card + `"},"actions":[{"action_id":"fo_approve","value":"` + h.buttonValue(id, "fo_approve") + `"}]}`,
		"wrong types":                    `{"type":"block_actions","user":{"id":7},"actions":"approve"}`,
		"unknown type":                   `{"type":"shortcut"}`,
		"not JSON":                       `{{{`,
		"empty":                          ``,
	} {
		code, _ := h.post("/slack/interactions", url.Values{"payload": {payload}})
		if code != http.StatusOK && code != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 200 or 400", name, code)
		}
	}
	h.idle()
	h.wantState(id, store.Pending)
	if strings.Contains(h.logs.String(), "panicked") {
		t.Fatalf("a payload panicked the bot:\n%s", h.logs.String())
	}
}

// FuzzInteractionPayload: no signed interaction payload panics the bot or changes the pending
// request it may name.
func FuzzInteractionPayload(f *testing.F) {
	h := newHarness(f)
	id := h.requestDB01()
	card := h.get(id).MessageTS
	value := h.buttonValue(id, "fo_approve")
	for _, seed := range []string{
		h.clickJSON(Requester, "fo_approve", value, ""),
		h.clickJSON(Outsider, "fo_reject", id, card),
		`{"type":"view_submission","user":{"id":"U1"},"view":{"callback_id":"fo_reject_modal","private_metadata":"FO-1"}}`,
		`{"type":"view_submission","user":{"id":"U1"},"view":{"callback_id":"fo_reject_modal","state":{"values":{"fo_reject_reason":{}}}}}`,
		`{"type":"block_actions","actions":[{}]}`,
		`[]`, `null`, `{"type":7}`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, payload string) {
		h.t = t // the harness's helpers report to this input's test
		defer func() { h.t = f }()
		code, _ := h.post("/slack/interactions", url.Values{"payload": {payload}})
		if code != http.StatusOK && code != http.StatusBadRequest {
			t.Fatalf("status %d for %q", code, payload)
		}
		h.idle()
		if strings.Contains(h.logs.String(), "panicked") {
			t.Fatalf("payload %q panicked the bot", payload)
		}
		if n := h.failoverPOSTs(); n > 1 {
			t.Fatalf("%d failover POSTs after %q, want at most 1", n, payload)
		}
	})
}

// postedCard waits until Slack holds the card of the request the command recorded, whether or
// not the bot has had Slack's answer yet, and returns it with the request's ID.
func (h *harness) postedCard(ack string) (string, slackfake.Message) {
	h.t.Helper()
	m := recordedID.FindStringSubmatch(ack)
	if m == nil {
		h.t.Fatalf("not recorded; answer:\n%s", ack)
	}
	var card slackfake.Message
	h.slack.WaitFor(h.t, 10*time.Second, func(s *slackfake.Server) bool {
		for _, msg := range s.Messages(Channel) {
			if msg.ThreadTS == "" && strings.Contains(string(msg.Blocks), m[1]) && strings.Contains(string(msg.Blocks), "fo_approve") {
				card = msg
				return true
			}
		}
		return false
	})
	return m[1], card
}

// approveValue is the value of the card's approve button.
func approveValue(t *testing.T, card slackfake.Message) string {
	t.Helper()
	var blocks []struct {
		Elements []struct {
			ActionID string `json:"action_id"`
			Value    string `json:"value"`
		} `json:"elements"`
	}
	if err := json.Unmarshal(card.Blocks, &blocks); err != nil {
		t.Fatal(err)
	}
	for _, b := range blocks {
		for _, e := range b.Elements {
			if e.ActionID == "fo_approve" {
				return e.Value
			}
		}
	}
	t.Fatal("the card has no approve button")
	return ""
}

// TestClickBeforeCardRecorded: an approval clicked on the live card before the bot has
// recorded its ts (Slack's answer to the post is late) waits for the record and lands; the
// card is never called out of date.
func TestClickBeforeCardRecorded(t *testing.T) {
	for _, tc := range []struct {
		name     string
		late     time.Duration // how late Slack's answer to the card post is
		wait     time.Duration // how long the click waits for the card's record
		approved bool
	}{
		{"recorded while the click waits", 300 * time.Millisecond, 10 * time.Second, true},
		{"not recorded in time", 3 * time.Second, 100 * time.Millisecond, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bot.SetCardWait(t, tc.wait)
			h := newHarness(t)
			h.slack.DelayAnswer("chat.postMessage:"+Channel, 1, tc.late)
			id, card := h.postedCard(h.command(Requester, `vm CDP-Finance fin-db01 --reason "primary DC down"`))
			if ts := h.get(id).MessageTS; ts != "" {
				t.Fatalf("the card's ts %s is recorded already: the test needs the click first", ts)
			}
			if code, _ := h.post("/slack/interactions", url.Values{"payload": {h.clickJSON(Approver1, "fo_approve", approveValue(t, card), card.TS)}}); code != http.StatusOK {
				t.Fatalf("status %d", code)
			}
			h.idle()
			if got := h.get(id).MessageTS; got != card.TS {
				t.Fatalf("card ts %q, want %q (no second card)", got, card.TS)
			}
			for _, m := range h.slack.Messages(Channel) {
				if m.TS == card.TS {
					mustNotContain(t, "the live card", m.Text+string(m.Blocks), "Superseded", "out of date")
				}
			}
			if tc.approved {
				h.wantState(id, store.Running)
				if n := h.failoverPOSTs(); n != 1 {
					t.Fatalf("failover POSTs = %d, want 1", n)
				}
				return
			}
			h.wantState(id, store.Pending)
			h.wantEphemeral(Approver1, "not finished recording this card of "+id, "nothing was changed", "Click again")
			if n := h.failoverPOSTs(); n != 0 {
				t.Fatalf("failover POSTs = %d, want 0", n)
			}
			// Once recorded, the same card approves.
			h.approve(Approver1, id)
			h.idle()
			h.wantState(id, store.Running)
		})
	}
}
