package bot_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack/slackevents"
	"github.com/slack-go/slack/socketmode"

	"github.com/failover-bot/failover-bot/bot"
	"github.com/failover-bot/failover-bot/bot/slackfake"
	"github.com/failover-bot/failover-bot/emapi/emsim"
	"github.com/failover-bot/failover-bot/store"
)

// homeHarness is the harness with the App Home refreshed fast: the production pacing (one
// publish per viewer per 5 s, 100 per minute) is covered by the Home's unit tests.
func homeHarness(t *testing.T) *harness {
	t.Helper()
	return newHarness(t, withOptions(func(o *bot.Options) {
		o.HomeRefresh, o.HomePublishRate = 10*time.Millisecond, 1000
	}))
}

// homeOpenedJSON is the app_home_opened delivery Slack sends when user opens the bot's Home tab.
func homeOpenedJSON(eventID, user string) string {
	b, _ := json.Marshal(map[string]any{
		"token": "deprecated-verification-token", "team_id": slackfake.TeamID, "api_app_id": "A0FAKEAPP",
		"type": "event_callback", "event_id": eventID, "event_time": 1700000000,
		"event": map[string]any{"type": "app_home_opened", "user": user, "channel": "D0HOME" + user, "tab": "home", "event_ts": "1700000000.000100"},
	})
	return string(b)
}

// postEvent sends an Events API body to /slack/events signed as Slack signs it at the
// harness's clock, with extra headers (a retry's X-Slack-Retry-Num, say).
func (h *harness) postEvent(body string, header ...string) (int, string) {
	h.t.Helper()
	ts, sig := bot.Sign(secret, h.clock.Now(), []byte(body))
	return h.postEventSigned(body, ts, sig, header...)
}

func (h *harness) postEventSigned(body, ts, sig string, header ...string) (int, string) {
	h.t.Helper()
	req, err := http.NewRequest(http.MethodPost, h.srv.URL+"/slack/events", strings.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if ts != "" {
		req.Header.Set(bot.HeaderSlackTimestamp, ts)
	}
	if sig != "" {
		req.Header.Set(bot.HeaderSlackSignature, sig)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatalf("POST /slack/events: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// openHome opens user's Home tab over HTTP; the answer must be an empty 200.
func (h *harness) openHome(eventID, user string) {
	h.t.Helper()
	if code, body := h.postEvent(homeOpenedJSON(eventID, user)); code != http.StatusOK || strings.TrimSpace(body) != "" {
		h.t.Fatalf("app_home_opened for %s: status %d body %q, want an empty 200", user, code, body)
	}
}

// homeJSON is user's Home as Slack shows it now (its blocks as JSON, Slack's escapes undone).
func (h *harness) homeJSON(user string) string {
	v, ok := h.slack.Home(user)
	if !ok {
		return ""
	}
	return strings.NewReplacer(`\u003c`, "<", `\u003e`, ">", `\u0026`, "&").Replace(string(v.Blocks))
}

// waitHome waits until user's Home shows every one of wants and returns it.
func (h *harness) waitHome(user string, wants ...string) string {
	h.t.Helper()
	h.slack.WaitFor(h.t, 10*time.Second, func(*slackfake.Server) bool {
		got := h.homeJSON(user)
		for _, w := range wants {
			if !strings.Contains(got, w) {
				return false
			}
		}
		return got != ""
	})
	return h.homeJSON(user)
}

// TestAppHomeOverHTTP: through signed Events API deliveries, each viewer's Home shows what
// waits for their decision (the approver: the request; the requester and an outsider: nothing,
// an outsider told why), everything active and the last day's outcomes, and it follows the
// request through approval to its outcome without being opened again. Someone who never
// opened the Home gets none.
func TestAppHomeOverHTTP(t *testing.T) {
	h := homeHarness(t)
	h.em.SetDefaultScript(emsim.Script{Running: 4 * time.Minute, Collect: 30 * time.Second, Result: emsim.ResultSuccess})
	id := h.requestDB01()
	card := "https://acme.slack.com/archives/" + Channel + "/p" + strings.Replace(h.get(id).MessageTS, ".", "", 1)

	for i, u := range []string{Approver1, Requester, Outsider, Guest} {
		h.openHome(fmt.Sprintf("Ev%d", i), u)
	}
	views := []struct {
		name, user string
		want, not  []string
	}{
		{"approver", Approver1,
			[]string{"Waiting for your decision (1)", `"block_id":"fo_home_waiting_` + id + `"`, "<" + card + "|" + id + ">", "fin-db01", "primary DC down",
				"Approve or reject it on its card", "Active (1)", "Finished in the last 24 hours (0)", "updated 2026-11-23 14:00 UTC"},
			[]string{"not an authorised approver", "Your active requests"}},
		{"requester", Requester,
			[]string{"Waiting for your decision (0)", "Your active requests (1)", "Active (1)", "Waiting for approval (0 of 1)"},
			[]string{"fo_home_waiting_" + id}},
		{"outsider", Outsider,
			[]string{"Waiting for your decision (0)", "not an authorised approver", "Active (1)", id},
			[]string{"fo_home_waiting_" + id, "Your active requests"}},
		{"guest on APPROVERS", Guest,
			[]string{"Waiting for your decision (0)", "not an authorised approver", "Active (1)"},
			[]string{"fo_home_waiting_" + id}},
	}
	for _, v := range views {
		got := h.waitHome(v.user, "Active (1)")
		mustContain(t, v.name+"'s Home", got, v.want...)
		mustNotContain(t, v.name+"'s Home", got, v.not...)
	}

	h.approve(Approver1, id)
	h.idle()
	h.wantState(id, store.Running)
	for _, u := range []string{Approver1, Requester, Outsider} {
		got := h.waitHome(u, "Waiting for your decision (0)", "Failover running")
		mustNotContain(t, "Home after the approval", got, "fo_home_waiting_"+id)
	}
	mustContain(t, "approver's Home after the approval", h.homeJSON(Approver1), "Nothing is waiting for your approval")
	mustContain(t, "requester's Home after the approval", h.homeJSON(Requester), "Your active requests (1)")

	h.clock.Advance(5 * time.Minute)
	h.poll()
	h.wantState(id, store.Succeeded)
	for _, u := range []string{Approver1, Requester, Outsider} {
		got := h.waitHome(u, "Active (0)", "Finished in the last 24 hours (1)", "Failover succeeded", "(finished 14:05 UTC)")
		mustNotContain(t, "Home after the outcome", got, "Your active requests")
	}
	if n := len(h.slack.Homes(Approver2)); n != 0 {
		t.Errorf("%d views published to an approver who never opened the Home, want 0", n)
	}
	for _, c := range h.slack.CallsTo("views.publish") {
		if c.Status != http.StatusOK {
			t.Errorf("views.publish answered %d", c.Status)
		}
	}
}

// TestEventsURLVerification: Slack's url_verification handshake is answered with its challenge
// once signed, and refused unsigned.
func TestEventsURLVerification(t *testing.T) {
	h := homeHarness(t)
	body := `{"token":"Jhj5dZrVaK7ZwHHjRyZWjbDl","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}`
	code, got := h.postEvent(body)
	if code != http.StatusOK {
		t.Fatalf("url_verification: status %d body %q, want 200", code, got)
	}
	var answer struct{ Challenge string }
	if err := json.Unmarshal([]byte(got), &answer); err != nil || answer.Challenge != "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P" {
		t.Fatalf("url_verification answer %q (%v), want the challenge back", got, err)
	}
	if code, got := h.postEventSigned(body, "", ""); code != http.StatusUnauthorized || strings.Contains(got, "3eZbrw") {
		t.Fatalf("unsigned url_verification: status %d body %q, want 401 without the challenge", code, got)
	}
	if code, _ := h.postEvent(`{"type":"url_verification"}`); code != http.StatusBadRequest {
		t.Errorf("url_verification without a challenge: status %d, want 400", code)
	}
}

// TestEventsRefusals: an events delivery with a missing, wrong or stale signature, or a body
// changed after signing, is refused with 401 and nothing else happens (no Home for that user);
// a body too large is refused with 413; a signed body that is not JSON is a 400.
func TestEventsRefusals(t *testing.T) {
	h := homeHarness(t)
	body := homeOpenedJSON("EvBad", Outsider)
	now := h.clock.Now()
	ts, sig := bot.Sign(secret, now, []byte(body))
	_, wrong := bot.Sign("not-the-signing-secret", now, []byte(body))
	staleTS, staleSig := bot.Sign(secret, now.Add(-6*time.Minute), []byte(body))
	tests := []struct {
		name, body, ts, sig string
		want                int
	}{
		{"no signature", body, "", "", http.StatusUnauthorized},
		{"wrong secret", body, ts, wrong, http.StatusUnauthorized},
		{"stale timestamp", body, staleTS, staleSig, http.StatusUnauthorized},
		{"body changed after signing", strings.Replace(body, Outsider, Approver1, 1), ts, sig, http.StatusUnauthorized},
		{"malformed timestamp", body, "yesterday", sig, http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if code, _ := h.postEventSigned(tt.body, tt.ts, tt.sig); code != tt.want {
				t.Errorf("status %d, want %d", code, tt.want)
			}
		})
	}
	big := `{"type":"event_callback","pad":"` + strings.Repeat("x", 1<<20) + `"}`
	if code, _ := h.postEvent(big); code != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized body: status %d, want 413", code)
	}
	if code, _ := h.postEvent(`{"type":`); code != http.StatusBadRequest {
		t.Errorf("signed non-JSON: status %d, want 400", code)
	}
	// Signed events of types the bot does not know are acknowledged, or Slack would retry them.
	if code, _ := h.postEvent(`{"type":"event_callback","team_id":"T0FAKE","event_id":"EvX","event":{"type":"no_such_event"}}`); code != http.StatusOK {
		t.Errorf("unknown event type: status %d, want 200", code)
	}

	// A valid opening by someone else is published; the refused ones never were recorded.
	h.openHome("EvGood", Approver2)
	h.waitHome(Approver2, "Waiting for your decision (0)")
	for _, u := range []string{Outsider, Approver1} {
		if n := len(h.slack.Homes(u)); n != 0 {
			t.Errorf("%d views published to %s after refused deliveries, want 0", n, u)
		}
	}
	if !strings.Contains(h.logs.String(), "slack request refused: bad signature") {
		t.Error("refusals are not logged")
	}
}

// TestEventsRetries: Slack's redelivery of an event already handled (same event_id, with
// X-Slack-Retry-Num) is acknowledged and dropped; a retry of one that never arrived is handled.
func TestEventsRetries(t *testing.T) {
	h := homeHarness(t)
	h.openHome("EvR1", Outsider)
	h.waitHome(Outsider, "not an authorised approver")
	code, _ := h.postEvent(homeOpenedJSON("EvR1", Outsider), "X-Slack-Retry-Num", "1", "X-Slack-Retry-Reason", "http_timeout")
	if code != http.StatusOK {
		t.Fatalf("redelivery: status %d, want 200", code)
	}
	code, _ = h.postEvent(homeOpenedJSON("EvR2", Approver1), "X-Slack-Retry-Num", "2", "X-Slack-Retry-Reason", "http_error")
	if code != http.StatusOK {
		t.Fatalf("retry of an unseen event: status %d, want 200", code)
	}
	h.waitHome(Approver1, "Nothing is waiting for your approval")
	mustContain(t, "logs", h.logs.String(), "ignoring a redelivered event", "event_id=EvR1")
	mustNotContain(t, "logs", h.logs.String(), "event_id=EvR2")
}

// TestAppHomeOverSocketMode: Socket Mode's events_api envelopes (parsed by slack-go as the
// socketmode client parses them) are acked with an empty ack, and the Home is published and
// follows a change, as in HTTP mode.
func TestAppHomeOverSocketMode(t *testing.T) {
	h := homeHarness(t)
	send, _ := socketMode(t, h)
	a := send(slashEvent("env-vm", Requester, `vm CDP-Finance fin-db01 --reason "socket mode"`))
	mustContain(t, "ack", wire(t, a.payload), "Recorded *FO-1*")
	h.idle()

	raw := homeOpenedJSON("EvS1", Approver2)
	ev, err := slackevents.ParseEvent([]byte(raw), slackevents.OptionNoVerifyToken())
	if err != nil {
		t.Fatal(err)
	}
	a = send(socketmode.Event{Type: socketmode.EventTypeEventsAPI, Data: ev,
		Request: &socketmode.Request{Type: "events_api", EnvelopeID: "env-home", Payload: []byte(raw)}})
	if len(a.payload) != 0 {
		t.Errorf("events_api ack carries %s, want an empty ack", wire(t, a.payload))
	}
	h.waitHome(Approver2, "Waiting for your decision (1)", "fo_home_waiting_FO-1", "socket mode")

	send(h.clickEvent("env-approve", Approver1, "fo_approve", h.buttonValue("FO-1", "fo_approve")))
	h.idle()
	h.wantState("FO-1", store.Running)
	got := h.waitHome(Approver2, "Waiting for your decision (0)", "Failover running")
	mustNotContain(t, "Home after the approval", got, "fo_home_waiting_FO-1")

	// A retried envelope of the same event is acked and changes nothing.
	a = send(socketmode.Event{Type: socketmode.EventTypeEventsAPI, Data: ev,
		Request: &socketmode.Request{Type: "events_api", EnvelopeID: "env-home-2", Payload: []byte(raw), RetryAttempt: 1, RetryReason: "timeout"}})
	if len(a.payload) != 0 {
		t.Errorf("retried events_api ack carries %s, want an empty ack", wire(t, a.payload))
	}
	send(socketmode.Event{Type: socketmode.EventTypeHello}) // the loop is sequential: the envelope above is done
	mustContain(t, "logs", h.logs.String(), "ignoring a redelivered event", "event_id=EvS1")
}

// FuzzEventsPayload: no signed events payload panics the bot or makes it act; each gets a
// 200 or a 400, and a url_verification gets exactly its challenge back.
func FuzzEventsPayload(f *testing.F) {
	h := newHarness(f)
	id := h.requestDB01()
	for _, seed := range []string{
		homeOpenedJSON("EvF1", Approver1),
		`{"type":"url_verification","challenge":"abc"}`,
		`{"type":"url_verification","challenge":7}`,
		`{"type":"event_callback","event":null}`,
		`{"type":"event_callback","event":{"type":"app_home_opened","user":{"id":"U1"}}}`,
		`{"type":"event_callback","team_id":"T0OTHER","event":{"type":"app_home_opened","user":"U1","tab":"home"}}`,
		`{"type":"app_rate_limited","minute_rate_limited":"soon"}`,
		`{"type":"block_actions","actions":[{"action_id":"fo_approve","value":"` + h.buttonValue(id, "fo_approve") + `"}]}`,
		`[]`, `null`, `""`, `{}`, `{"type":7}`, ``,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, payload string) {
		h.t = t
		defer func() { h.t = f }()
		code, body := h.postEvent(payload)
		if code != http.StatusOK && code != http.StatusBadRequest {
			t.Fatalf("status %d for %q", code, payload)
		}
		var uv struct {
			Type      string `json:"type"`
			Challenge any    `json:"challenge"`
		}
		parsed := json.Unmarshal([]byte(payload), &uv) == nil
		challenge, _ := uv.Challenge.(string)
		if parsed && uv.Type == "url_verification" && code == http.StatusOK && challenge != "" {
			var answer map[string]string
			if err := json.Unmarshal([]byte(body), &answer); err != nil || answer["challenge"] != challenge {
				t.Fatalf("url_verification %q answered %q, want its challenge", payload, body)
			}
		}
		if strings.Contains(h.logs.String(), "panic") {
			t.Fatalf("payload %q panicked the bot", payload)
		}
		if n := h.failoverPOSTs(); n != 0 {
			t.Fatalf("%d failover POSTs after %q, want 0", n, payload)
		}
		if r := h.get(id); r.State != store.Pending || len(r.Approvals) != 0 {
			t.Fatalf("%s is %s with %d approvals after %q, want untouched", id, r.State, len(r.Approvals), payload)
		}
	})
}
