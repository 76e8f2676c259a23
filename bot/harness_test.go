package bot_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slack-go/slack"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/failover-bot/failover-bot/bot"
	"github.com/failover-bot/failover-bot/bot/slackfake"
	"github.com/failover-bot/failover-bot/emapi"
	"github.com/failover-bot/failover-bot/emapi/emsim"
	"github.com/failover-bot/failover-bot/store"
	"github.com/failover-bot/failover-bot/store/etcdtest"
	"github.com/failover-bot/failover-bot/store/failover/fakeclock"
)

// The cast. Requester asks; Approver1 and Approver2 are on APPROVERS; Outsider is a member who
// is not; Guest is on APPROVERS but a guest account; Robot is on APPROVERS but a bot.
const (
	Requester = "U0REQUEST"
	Approver1 = "U0APPROV1"
	Approver2 = "U0APPROV2"
	Outsider  = "U0OUTSIDE"
	Guest     = "U0GUESTAC"
	Robot     = "U0ROBOTAC"
	Channel   = "C0DRROOM1"
	Audit     = "C0AUDIT01"
	secret    = "test-signing-secret-0123456789abcdef"
	emUser    = "EM\\svc-failover"
	emPass    = "em-password-never-logged"
)

// Demo inventory names used by the tests (emsim.DemoInventory).
var demo = emsim.DemoInventory()

type harnessConfig struct {
	emCfg    emsim.Config
	opt      bot.Options
	dbPath   string
	required int
	// inventory replaces emsim.DemoInventory when set (e.g. ambiguous names).
	inventory *emsim.Inventory
	// emClientTimeout is the EM client's per-attempt timeout (default 5s); failover-timeout
	// tests shorten it so a lost answer costs milliseconds.
	emClientTimeout time.Duration
	// notify is NOTIFY_REQUESTER: "thread" (default) or "dm".
	notify string
	// etcd, when set, holds the store in etcd at these endpoints (under etcdPrefix) instead of
	// the dbPath file.
	etcd       []string
	etcdPrefix string
	// idleFor bounds idle's wait (default 90 s); a thousand requests' Slack backlog drains slower
	// through an etcd cluster's commits.
	idleFor time.Duration
}

type harness struct {
	t      testing.TB
	clock  *fakeclock.Clock
	cfg    harnessConfig
	em     *emsim.Server
	emSrv  *httptest.Server
	client *emapi.Client
	st     store.Store
	slack  *slackfake.Server
	bot    *bot.Bot
	srv    *httptest.Server
	logs   *syncBuffer
	clicks atomic.Int64 // numbers trigger_ids: Slack gives each delivery its own
}

// newHarness wires the real bot to the EM simulator and the Slack fake over HTTP.
func newHarness(t testing.TB, mods ...func(*harnessConfig)) *harness {
	t.Helper()
	c := fakeclock.New(time.Date(2026, 11, 23, 14, 0, 0, 0, time.UTC))
	cfg := harnessConfig{
		emCfg:    emsim.Config{Username: emUser, Password: emPass},
		dbPath:   filepath.Join(t.TempDir(), "bot.db"),
		required: 1,
		opt: bot.Options{
			Approvers:    []string{Approver1, Approver2, Guest, Robot},
			AuditChannel: Audit,
			RequestTTL:   time.Hour,
			WorkspaceURL: "https://acme.slack.com/",
			// Tests run Slack's pacing fast; the limit tests set Slack's real figures.
			PostRate: 1000, UpdateRate: 1000, SlackBackoff: time.Millisecond,
		},
	}
	for _, m := range mods {
		m(&cfg)
	}
	cfg.emCfg.Now = c.Now
	h := &harness{t: t, clock: c, cfg: cfg, logs: &syncBuffer{}}
	inv := demo
	if cfg.inventory != nil {
		inv = *cfg.inventory
	}
	h.em = emsim.New(cfg.emCfg, inv)
	h.emSrv = httptest.NewServer(h.em)
	t.Cleanup(h.emSrv.Close)
	h.slack = slackfake.New(t)
	for _, u := range []slack.User{
		{ID: Requester, Name: "rita"}, {ID: Approver1, Name: "alex"}, {ID: Approver2, Name: "bea"},
		{ID: Outsider, Name: "oscar"}, {ID: Guest, Name: "gus", IsRestricted: true}, {ID: Robot, Name: "robo", IsBot: true},
	} {
		h.slack.AddUser(u)
	}
	h.start()
	t.Cleanup(h.stop)
	return h
}

// start opens the store, logs on to EM lazily and starts the bot and its HTTP endpoints: what
// the process does at start.
func (h *harness) start() {
	h.t.Helper()
	sopt := store.Options{Now: h.clock.Now, ApprovalsRequired: h.cfg.required, LockTimeout: time.Second, Thread: bot.ThreadLine,
		Requester: bot.RequesterNotes(h.cfg.notify)}
	if h.cfg.etcd != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		st, err := store.OpenEtcd(ctx, clientv3.Config{Endpoints: h.cfg.etcd, DialTimeout: etcdtest.DialTimeout,
			MaxCallSendMsgSize: etcdtest.MaxCallSendMsgSize}, h.cfg.etcdPrefix, sopt)
		cancel()
		if err != nil {
			h.t.Fatalf("open etcd store: %v", err)
		}
		h.st = st
	} else {
		st, err := store.Open(h.cfg.dbPath, sopt)
		if err != nil {
			h.t.Fatalf("open store: %v", err)
		}
		h.st = st
	}
	var err error
	emTimeout := 5 * time.Second
	if h.cfg.emClientTimeout > 0 {
		emTimeout = h.cfg.emClientTimeout
	}
	h.client, err = emapi.New(emapi.Config{BaseURL: h.emSrv.URL + "/api/", Username: emUser, Password: emPass,
		Timeout: emTimeout, RetryBase: time.Millisecond, RetryMax: 5 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(h.logs, nil))})
	if err != nil {
		h.t.Fatalf("emapi: %v", err)
	}
	opt := h.cfg.opt
	opt.Now = h.clock.Now
	opt.ApprovalsRequired = h.cfg.required
	opt.Logger = slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	api := slack.New("xoxb-test-token-never-logged", slack.OptionAPIURL(h.slack.APIURL()))
	h.bot, err = bot.New(h.client, h.st, api, opt)
	if err != nil {
		h.t.Fatalf("bot.New: %v", err)
	}
	mux := http.NewServeMux()
	(&bot.HTTPHandlers{Bot: h.bot, SigningSecret: secret, Now: h.clock.Now}).Register(mux)
	h.srv = httptest.NewServer(mux)
}

// stop shuts down like SIGTERM does: stop accepting, finish background work, close the store.
func (h *harness) stop() {
	if h.bot == nil {
		return
	}
	h.srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.bot.Close(ctx); err != nil {
		h.t.Errorf("bot close: %v", err)
	}
	_ = h.client.Close(ctx)
	h.checkNoSecretsSent()
	if err := h.st.Close(); err != nil {
		h.t.Errorf("store close: %v", err)
	}
	h.bot = nil
	for _, s := range []string{emPass, "xoxb-test-token-never-logged", secret} {
		if strings.Contains(h.logs.String(), s) {
			h.t.Errorf("a secret appears in the logs: %q", s)
		}
	}
}

// restart is a process restart: everything in memory is gone, the store file and EM remain.
func (h *harness) restart() {
	h.t.Helper()
	h.stop()
	h.start()
}

// post sends a form signed exactly as Slack signs it.
func (h *harness) post(path string, form url.Values) (int, string) {
	h.t.Helper()
	body := form.Encode()
	ts, sig := bot.Sign(secret, h.clock.Now(), []byte(body))
	req, _ := http.NewRequest(http.MethodPost, h.srv.URL+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Slack-Request-Timestamp", ts)
	req.Header.Set("X-Slack-Signature", sig)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// command runs /failover text as user in the DR channel and returns the ephemeral answer.
func (h *harness) command(user, text string) string {
	h.t.Helper()
	return h.commandIn(user, Channel, text)
}

func (h *harness) commandIn(user, channel, text string) string {
	h.t.Helper()
	code, body := h.post("/slack/commands", url.Values{
		"team_id": {"T0FAKE"}, "channel_id": {channel}, "user_id": {user}, "command": {"/failover"},
		"text": {text}, "response_url": {h.slack.ResponseURL("cmd")}, "trigger_id": {fmt.Sprintf("trig-cmd-%d", h.clicks.Add(1))},
	})
	if code != http.StatusOK {
		h.t.Fatalf("/failover %s: status %d, body %s", text, code, body)
	}
	var resp bot.Response
	if err := json.Unmarshal([]byte(body), &resp); err != nil {
		h.t.Fatalf("/failover answer is not JSON: %v: %s", err, body)
	}
	if resp.ResponseType != "ephemeral" {
		h.t.Errorf("/failover answer is %q, want ephemeral", resp.ResponseType)
	}
	return resp.Text
}

// click presses a card button as user, with the action value the card carries, on the card
// of the request the value names (as Slack sends it: the container is the card's message).
func (h *harness) click(user, actionID, value string) {
	h.t.Helper()
	code, body := h.post("/slack/interactions", url.Values{"payload": {h.clickJSON(user, actionID, value, "")}})
	if code != http.StatusOK {
		h.t.Fatalf("click %s: status %d, body %s", actionID, code, body)
	}
}

// clickJSON is a block_actions payload for a button on message ts ("" = the card of the
// request named in value). Each click has its own trigger_id, as in Slack.
func (h *harness) clickJSON(user, actionID, value, ts string) string {
	if ts == "" {
		id, _, _ := strings.Cut(value, "|")
		if r, err := h.st.Get(context.Background(), id); err == nil {
			ts = r.MessageTS
		}
	}
	n := h.clicks.Add(1)
	payload := map[string]any{
		"type": "block_actions", "user": map[string]any{"id": user}, "channel": map[string]any{"id": Channel},
		"team":       map[string]any{"id": slackfake.TeamID},
		"trigger_id": fmt.Sprintf("trig-click-%d", n),
		"container":  map[string]any{"type": "message", "channel_id": Channel, "message_ts": ts},
		"message":    map[string]any{"ts": ts},
		"actions":    []map[string]any{{"action_id": actionID, "block_id": "fo_actions", "value": value, "type": "button"}},
	}
	b, _ := json.Marshal(payload)
	return string(b)
}

// approve clicks Approve on the request's card, with the value found on the posted card.
func (h *harness) approve(user, id string) {
	h.t.Helper()
	h.click(user, "fo_approve", h.buttonValue(id, "fo_approve"))
}

// submitReject submits the reject dialog and returns the acknowledgement body.
func (h *harness) submitReject(user, id, reason string) string {
	h.t.Helper()
	payload := map[string]any{
		"type": "view_submission", "user": map[string]any{"id": user},
		"view": map[string]any{"callback_id": "fo_reject_modal", "private_metadata": id,
			"state": map[string]any{"values": map[string]any{"fo_reject_reason": map[string]any{
				"fo_reject_reason_input": map[string]any{"type": "plain_text_input", "value": reason}}}}},
	}
	b, _ := json.Marshal(payload)
	code, body := h.post("/slack/interactions", url.Values{"payload": {string(b)}})
	if code != http.StatusOK {
		h.t.Fatalf("reject submission: status %d", code)
	}
	return body
}

// idle waits for background work and the Slack outbox.
func (h *harness) idle() {
	h.t.Helper()
	// Generous: seeding a thousand requests for a benchmark owes Slack a few thousand calls.
	wait := 90 * time.Second
	if h.cfg.idleFor > 0 {
		wait = h.cfg.idleFor
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := h.bot.Idle(ctx); err != nil {
		h.t.Fatalf("bot did not become idle: %v", err)
	}
}

// poll runs one poll cycle and waits for what it posts.
func (h *harness) poll() {
	h.t.Helper()
	h.bot.Poll(context.Background())
	h.idle()
}

func (h *harness) get(id string) *store.Request {
	h.t.Helper()
	r, err := h.st.Get(context.Background(), id)
	if err != nil {
		h.t.Fatalf("get %s: %v", id, err)
	}
	return r
}

func (h *harness) wantState(id string, want store.State) *store.Request {
	h.t.Helper()
	r := h.get(id)
	if r.State != want {
		h.t.Fatalf("%s is %s, want %s (EM: %s %d%% %s %q)", id, r.State, want, r.Items[0].EMState, r.Items[0].EMProgress, r.Items[0].EMResult, r.Items[0].EMMessage)
	}
	return r
}

// card returns the request's card as Slack holds it now.
func (h *harness) card(id string) slackfake.Message {
	h.t.Helper()
	r := h.get(id)
	for _, m := range h.slack.Messages(r.Channel) {
		if m.TS == r.MessageTS {
			return m
		}
	}
	h.t.Fatalf("no card for %s (channel %s ts %s)", id, r.Channel, r.MessageTS)
	return slackfake.Message{}
}

// cardJSON is the card's blocks as JSON with Slack's escapes undone, for substring checks.
func (h *harness) cardJSON(id string) string {
	h.t.Helper()
	return strings.NewReplacer(`\u003c`, "<", `\u003e`, ">", `\u0026`, "&").Replace(string(h.card(id).Blocks))
}

func (h *harness) buttonValue(id, actionID string) string {
	h.t.Helper()
	var blocks []struct {
		Type     string `json:"type"`
		Elements []struct {
			ActionID string `json:"action_id"`
			Value    string `json:"value"`
		} `json:"elements"`
	}
	if err := json.Unmarshal(h.card(id).Blocks, &blocks); err != nil {
		h.t.Fatalf("card blocks: %v", err)
	}
	for _, b := range blocks {
		for _, e := range b.Elements {
			if e.ActionID == actionID {
				return e.Value
			}
		}
	}
	h.t.Fatalf("card of %s has no %s button", id, actionID)
	return ""
}

// threadText is every reply in the card's thread, joined.
func (h *harness) threadText(id string) string {
	h.t.Helper()
	r := h.get(id)
	var b strings.Builder
	for _, m := range h.slack.Thread(r.Channel, r.MessageTS) {
		if m.TS != r.MessageTS {
			b.WriteString(m.Text + "\n")
		}
	}
	return b.String()
}

func (h *harness) auditText() string {
	var b strings.Builder
	for _, m := range h.slack.Messages(Audit) {
		b.WriteString(m.Text + "\n")
	}
	return b.String()
}

// ephemerals returns the texts of ephemeral messages sent to user.
func (h *harness) ephemerals(user string) string {
	var b strings.Builder
	for _, c := range h.slack.CallsTo("chat.postEphemeral") {
		if c.Values.Get("user") == user {
			b.WriteString(c.Values.Get("text") + "\n")
		}
	}
	return b.String()
}

func (h *harness) failoverPOSTs() int { return h.em.Count(http.MethodPost, "action=failover") }

func mustContain(t testing.TB, what, got string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(got, w) {
			t.Errorf("%s does not contain %q; got:\n%s", what, w, got)
		}
	}
}

func mustNotContain(t testing.TB, what, got string, nots ...string) {
	t.Helper()
	for _, w := range nots {
		if strings.Contains(got, w) {
			t.Errorf("%s contains %q; got:\n%s", what, w, got)
		}
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// secrets are the values that must never leave the process: not in logs, Slack messages or the
// audit log.
var secrets = []string{emPass, "xoxb-test-token-never-logged", secret}

// checkNoSecretsSent fails the test if any Slack call the bot made (messages, updates,
// ephemerals, views, response_url posts) or any audit event in the store carries a secret.
func (h *harness) checkNoSecretsSent() {
	h.t.Helper()
	for _, c := range h.slack.Calls() {
		var sent strings.Builder
		for k, vs := range c.Values {
			if k == "token" {
				continue // the bot token authenticates the call; it is not message content
			}
			sent.WriteString(strings.Join(vs, "\n"))
		}
		js, _ := json.Marshal(c.JSON)
		sent.Write(js)
		for _, s := range secrets {
			if strings.Contains(sent.String(), s) {
				h.t.Errorf("a secret was sent to Slack in %s: %q", c.Method, s)
			}
		}
	}
	err := h.st.Events(context.Background(), 0, time.Time{}, func(e store.Event) error {
		for _, s := range secrets {
			if strings.Contains(e.Actor+" "+e.Action+" "+e.Details, s) {
				h.t.Errorf("a secret is in audit event %d (%s %s): %q", e.Seq, e.RequestID, e.Action, s)
			}
		}
		return nil
	})
	if err != nil {
		h.t.Errorf("reading the audit log: %v", err)
	}
}

// bigInventory is one replica, CDP-Big, with n VMs vm-0000, vm-0001, …: tests that run many
// requests at once need a target each (one active request per target).
func bigInventory(n int) emsim.Inventory {
	inv := emsim.Inventory{Replicas: []emsim.Replica{{ID: "7665222c-2e99-4a3f-b892-1827ba8d1eee", Name: "CDP-Big", PolicyName: "Big"}}}
	for i := range n {
		inv.Replicas[0].VMs = append(inv.Replicas[0].VMs, emsim.VM{ID: fmt.Sprintf("00000000-0000-4000-8000-%012d", i), Name: fmt.Sprintf("vm-%04d", i)})
	}
	return inv
}
