package bot_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/failover-bot/failover-bot/bot"
	"github.com/failover-bot/failover-bot/emapi"
	"github.com/failover-bot/failover-bot/store"
)

// Helpers shared by the end-to-end tests beyond TestHappyPath. Unlike the harness's own helpers,
// the ones returning an error are safe to call from several goroutines at once.

// postRaw sends body to path with the given Slack headers (empty: header absent) and returns the
// status and answer. It never fails the test itself.
func (h *harness) postRaw(path, body, ts, sig string) (int, string, error) {
	req, err := http.NewRequest(http.MethodPost, h.srv.URL+path, strings.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if ts != "" {
		req.Header.Set(bot.HeaderSlackTimestamp, ts)
	}
	if sig != "" {
		req.Header.Set(bot.HeaderSlackSignature, sig)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// clickErr is click for concurrent use: it reports a failure instead of stopping the test.
func (h *harness) clickErr(user, actionID, value string) error {
	body := url.Values{"payload": {h.clickJSON(user, actionID, value, "")}}.Encode()
	ts, sig := bot.Sign(secret, h.clock.Now(), []byte(body))
	code, answer, err := h.postRaw("/slack/interactions", body, ts, sig)
	if err != nil {
		return err
	}
	if code != http.StatusOK {
		return fmt.Errorf("click %s by %s: status %d, body %s", actionID, user, code, answer)
	}
	return nil
}

var recordedID = regexp.MustCompile(`Recorded \*(FO-\d+)\*`)

// request runs a /failover command that must be recorded, waits for its card and returns its ID.
func (h *harness) request(user, text string) string {
	h.t.Helper()
	ack := h.command(user, text)
	m := recordedID.FindStringSubmatch(ack)
	if m == nil {
		h.t.Fatalf("/failover %s was not recorded; answer:\n%s", text, ack)
	}
	h.idle()
	if r := h.get(m[1]); r.MessageTS == "" {
		h.t.Fatalf("%s has no card", m[1])
	}
	return m[1]
}

// requestDB01 is the request most tests need: fin-db01 at its latest state, by Requester.
func (h *harness) requestDB01() string {
	h.t.Helper()
	return h.request(Requester, `vm CDP-Finance fin-db01 --reason "primary DC down"`)
}

// runningDB01 requests fin-db01, has Approver1 approve it and returns it running in EM.
func (h *harness) runningDB01() *store.Request {
	h.t.Helper()
	id := h.requestDB01()
	h.approve(Approver1, id)
	h.idle()
	r := h.wantState(id, store.Running)
	if n := h.failoverPOSTs(); n != 1 {
		h.t.Fatalf("failover POSTs = %d, want 1", n)
	}
	return r
}

// wantEphemeral checks that user was told each of wants in an ephemeral message.
func (h *harness) wantEphemeral(user string, wants ...string) {
	h.t.Helper()
	mustContain(h.t, "ephemeral messages to "+user, h.ephemerals(user), wants...)
}

// wantNothingStored checks that no request exists, no card or audit message was posted and EM
// received no failover.
func (h *harness) wantNothingStored() {
	h.t.Helper()
	h.idle()
	active, err := h.st.Active(context.Background())
	if err != nil {
		h.t.Fatal(err)
	}
	if len(active) != 0 {
		h.t.Errorf("%d requests stored, want none (first: %s %s)", len(active), active[0].ID, active[0].State)
	}
	if _, err := h.st.Get(context.Background(), "FO-1"); err == nil {
		h.t.Errorf("FO-1 exists, want nothing stored")
	}
	if n := len(h.slack.CallsTo("chat.postMessage")); n != 0 {
		h.t.Errorf("chat.postMessage called %d times, want 0", n)
	}
	if n := h.failoverPOSTs(); n != 0 {
		h.t.Errorf("failover POSTs = %d, want 0", n)
	}
}

// cardButtons lists the action IDs of the buttons the card shows now.
func (h *harness) cardButtons(id string) []string {
	h.t.Helper()
	var blocks []struct {
		Elements []struct {
			ActionID string `json:"action_id"`
		} `json:"elements"`
	}
	if err := json.Unmarshal(h.card(id).Blocks, &blocks); err != nil {
		h.t.Fatalf("card blocks of %s: %v", id, err)
	}
	var out []string
	for _, b := range blocks {
		for _, e := range b.Elements {
			if e.ActionID != "" {
				out = append(out, e.ActionID)
			}
		}
	}
	return out
}

// wantNoButtons checks that the card no longer offers Approve or Reject; a running failover's
// card offers only Stop, and a finished one nothing.
func (h *harness) wantNoButtons(id string) {
	h.t.Helper()
	b := h.cardButtons(id)
	if h.get(id).State == store.Running && len(b) == 1 && b[0] == "fo_stop" {
		return
	}
	if h.get(id).State.Terminal() && len(b) == 1 && b[0] == "fo_retry" {
		return // a finished card offers a new request for what failed, never a decision
	}
	if len(b) != 0 {
		h.t.Errorf("card of %s (%s) still has buttons %v", id, h.get(id).State, b)
	}
}

// auditActions lists the store's audit log as "FO-1:action:to" entries.
func (h *harness) auditActions() []string {
	h.t.Helper()
	var out []string
	if err := h.st.Events(context.Background(), 0, time.Time{}, func(e store.Event) error {
		out = append(out, fmt.Sprintf("%s:%s:%s", e.RequestID, e.Action, e.To))
		return nil
	}); err != nil {
		h.t.Fatal(err)
	}
	return out
}

// newEMClient is a second EM client, as another operator's tool would be: it has its own logon
// session.
func (h *harness) newEMClient() *emapi.Client {
	h.t.Helper()
	c, err := emapi.New(emapi.Config{BaseURL: h.emSrv.URL + "/api/", Username: emUser, Password: emPass,
		Timeout: 5 * time.Second, RetryBase: time.Millisecond, RetryMax: 5 * time.Millisecond})
	if err != nil {
		h.t.Fatalf("emapi: %v", err)
	}
	return c
}

// withRequired sets APPROVALS_REQUIRED.
func withRequired(n int) func(*harnessConfig) {
	return func(c *harnessConfig) { c.required = n }
}

// withOptions edits the bot's options.
func withOptions(f func(*bot.Options)) func(*harnessConfig) {
	return func(c *harnessConfig) { f(&c.opt) }
}
