package bot_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/slack-go/slack"

	"github.com/failover-bot/failover-bot/bot"
	"github.com/failover-bot/failover-bot/bot/slackfake"
	"github.com/failover-bot/failover-bot/store"
)

// TestSlackRateLimitedCard: Slack answers the card's chat.postMessage with 429 and Retry-After;
// the bot waits that long and posts the card, which then works as usual.
func TestSlackRateLimitedCard(t *testing.T) {
	h := newHarness(t, withOptions(func(o *bot.Options) { o.AuditChannel = "" })) // the card is the first post
	h.slack.RateLimit("chat.postMessage", 1, time.Second)
	id := h.requestDB01()

	posts := h.slack.CallsTo("chat.postMessage")
	if len(posts) < 2 || posts[0].Status != http.StatusTooManyRequests || posts[1].Status != http.StatusOK {
		t.Fatalf("chat.postMessage calls %v, want a 429 then the card", statuses(posts))
	}
	if gap := posts[1].At.Sub(posts[0].At); gap < 990*time.Millisecond {
		t.Errorf("retried after %v, want at least Retry-After (1s)", gap)
	}
	if posts[1].Values.Get("channel") != Channel || !strings.Contains(posts[1].Values.Get("blocks"), "fo_approve") {
		t.Errorf("the retried post is not the card: %v", posts[1].Values)
	}
	h.approve(Approver1, id)
	h.idle()
	h.wantState(id, store.Running)
}

// TestSlackRateLimitedUpdate: a 429 on chat.update delays the card's update; it is not lost.
func TestSlackRateLimitedUpdate(t *testing.T) {
	h := newHarness(t)
	id := h.requestDB01()
	h.slack.RateLimit("chat.update", 1, time.Second)
	h.approve(Approver1, id)
	h.idle()
	h.wantState(id, store.Running)
	updates := h.slack.CallsTo("chat.update")
	if len(updates) < 2 || updates[0].Status != http.StatusTooManyRequests {
		t.Fatalf("chat.update calls %v, want a 429 first", statuses(updates))
	}
	h.wantNoButtons(id)
	mustContain(t, "card", h.cardJSON(id), "Failover running")
}

func statuses(calls []slackfake.Call) []int {
	out := make([]int, len(calls))
	for i, c := range calls {
		out[i] = c.Status
	}
	return out
}

// TestSlackDeletedCard: someone deleted the card; the next change posts it again, so the
// request keeps exactly one card, and it shows the request as it is.
func TestSlackDeletedCard(t *testing.T) {
	h := newHarness(t)
	id := h.requestDB01()
	h.approve(Approver1, id)
	h.idle()
	old := h.card(id)
	h.slack.DeleteMessage(Channel, old.TS)

	h.clock.Advance(2 * time.Minute)
	h.poll()
	r := h.get(id)
	if r.MessageTS == old.TS || r.MessageTS == "" {
		t.Fatalf("card ts %q after the old card %q was deleted; want a new card", r.MessageTS, old.TS)
	}
	card := h.card(id)
	blocks := strings.NewReplacer(`\u003c`, "<", `\u003e`, ">").Replace(string(card.Blocks))
	mustContain(t, "reposted card", card.Text+blocks, "Failover succeeded", "Approved by <@"+Approver1+">")
	mustNotContain(t, "reposted card", blocks, "fo_approve")
	var cards int
	for _, m := range h.slack.Messages(Channel) {
		if m.ThreadTS == "" && !m.Ephemeral && strings.HasPrefix(m.Text, "Failover request "+id) && m.TS != old.TS {
			cards++
		}
	}
	if cards != 1 {
		t.Fatalf("%d live cards for %s, want 1", cards, id)
	}
}

// TestOutboxCoalescesBurst: thread replies queued while Slack makes the bot wait are merged into
// fewer messages, each within Slack's length limit, in order, and none is lost.
func TestOutboxCoalescesBurst(t *testing.T) {
	cases := []struct {
		name    string
		lines   int
		lineLen int
		maxMsgs int // messages in the thread at most, the first (rate-limited) one included
	}{
		{"short lines merge into one message", 60, 40, 2},
		{"long lines are split below Slack's limit", 40, 300, 1 + (40*301)/3500 + 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fake := slackfake.New(t)
			api := slack.New("xoxb-test-token-never-logged", slack.OptionAPIURL(fake.APIURL()))
			out := bot.NewOutbox(api, bot.OutboxOptions{})
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			parent, err := out.Post(ctx, Channel, "", "card", nil)
			if err != nil {
				t.Fatal(err)
			}
			line := func(i int) string {
				head := fmt.Sprintf("update %03d ", i)
				return head + strings.Repeat("x", tc.lineLen-len(head))
			}
			fake.RateLimit("chat.postMessage", 1, time.Second)
			out.Reply(Channel, parent, line(0))
			// Wait until the first reply has met the 429: the rest queue up behind it.
			fake.WaitFor(t, 5*time.Second, func(s *slackfake.Server) bool { return len(s.CallsTo("chat.postMessage")) >= 2 })
			for i := 1; i < tc.lines; i++ {
				out.Reply(Channel, parent, line(i))
			}
			if err := out.Close(ctx); err != nil {
				t.Fatal(err)
			}

			thread := fake.Thread(Channel, parent)
			if len(thread) > tc.maxMsgs {
				t.Errorf("%d lines became %d messages, want at most %d", tc.lines, len(thread), tc.maxMsgs)
			}
			var all []string
			for _, m := range thread {
				if n := utf8.RuneCountInString(m.Text); n > slackfake.MaxTextLen {
					t.Errorf("a merged message has %d characters, over Slack's %d", n, slackfake.MaxTextLen)
				}
				all = append(all, strings.Split(m.Text, "\n")...)
			}
			if len(all) != tc.lines {
				t.Fatalf("thread holds %d lines, want %d", len(all), tc.lines)
			}
			for i, l := range all {
				if l != line(i) {
					t.Fatalf("line %d is %.20q…, want %.20q… (lost or out of order)", i, l, line(i))
				}
			}
		})
	}
}

// TestSlackBurstEndToEnd: ten requests at once while Slack rate-limits: every card is posted and
// every audit event reaches the audit channel, in order per request; none is dropped.
func TestSlackBurstEndToEnd(t *testing.T) {
	inv := bigInventory(10)
	h := newHarness(t, func(c *harnessConfig) { c.inventory = &inv })
	h.slack.RateLimit("chat.postMessage", 1, time.Second)
	const n = 10
	for i := range n {
		mustContain(t, "ack", h.command(Requester, fmt.Sprintf(`vm CDP-Big vm-%04d --reason "burst"`, i)), "Recorded")
	}
	h.idle()
	audit := h.auditText()
	for i := 1; i <= n; i++ {
		id := fmt.Sprintf("FO-%d", i)
		if r := h.get(id); r.MessageTS == "" {
			t.Errorf("%s has no card", id)
		}
		mustContain(t, "audit channel", audit, id+" requested by <@"+Requester+">")
	}
}

// TestSlackRequestVerification: a request that is not signed by Slack with the signing secret,
// within 5 minutes either side of now, and at most 1 MiB, is refused with 401 (413 for size)
// before anything is parsed: nothing is stored, posted or sent to EM.
func TestSlackRequestVerification(t *testing.T) {
	commandBody := url.Values{"team_id": {"T0FAKE"}, "channel_id": {Channel}, "user_id": {Requester}, "command": {"/failover"},
		"text": {`vm CDP-Finance fin-db01 --reason "forged"`}, "response_url": {"https://hooks.slack.com/x"}}.Encode()
	oversized := commandBody + "&pad=" + strings.Repeat("a", 1<<20)
	cases := []struct {
		name string
		body string
		sign func(now time.Time, body string) (ts, sig string)
		want int
	}{
		{"forged signature", commandBody, func(now time.Time, body string) (string, string) {
			return bot.Sign("not-the-signing-secret", now, []byte(body))
		}, http.StatusUnauthorized},
		{"no signature headers", commandBody, func(time.Time, string) (string, string) { return "", "" }, http.StatusUnauthorized},
		{"signature of another body", commandBody, func(now time.Time, _ string) (string, string) {
			return bot.Sign(secret, now, []byte("text=help"))
		}, http.StatusUnauthorized},
		{"stale timestamp (5m1s old)", commandBody, func(now time.Time, body string) (string, string) {
			return bot.Sign(secret, now.Add(-5*time.Minute-time.Second), []byte(body))
		}, http.StatusUnauthorized},
		{"future timestamp (5m1s ahead)", commandBody, func(now time.Time, body string) (string, string) {
			return bot.Sign(secret, now.Add(5*time.Minute+time.Second), []byte(body))
		}, http.StatusUnauthorized},
		{"oversized body, correctly signed", oversized, func(now time.Time, body string) (string, string) {
			return bot.Sign(secret, now, []byte(body))
		}, http.StatusRequestEntityTooLarge},
	}
	for _, path := range []string{"/slack/commands", "/slack/interactions"} {
		for _, tc := range cases {
			t.Run(path+" "+tc.name, func(t *testing.T) {
				h := newHarness(t)
				body := tc.body
				if path == "/slack/interactions" && body == commandBody {
					body = url.Values{"payload": {h.clickJSON(Approver1, "fo_approve", "FO-1|digest", "")}}.Encode()
				}
				ts, sig := tc.sign(h.clock.Now(), body)
				code, answer, err := h.postRaw(path, body, ts, sig)
				if err != nil {
					t.Fatal(err)
				}
				if code != tc.want {
					t.Fatalf("status %d (%s), want %d", code, strings.TrimSpace(answer), tc.want)
				}
				h.wantNothingStored()
				if calls := h.slack.Calls(); len(calls) != 0 {
					t.Errorf("Slack was called %d times (first %s), want never", len(calls), calls[0].Method)
				}
				if n := len(h.em.Requests()); n != 0 {
					t.Errorf("EM received %d requests, want none", n)
				}
			})
		}
	}
	t.Run("forged approval of a real request", func(t *testing.T) {
		h := newHarness(t)
		id := h.requestDB01()
		calls := len(h.slack.Calls())
		body := url.Values{"payload": {h.clickJSON(Approver1, "fo_approve", h.buttonValue(id, "fo_approve"), "")}}.Encode()
		ts, sig := bot.Sign("not-the-signing-secret", h.clock.Now(), []byte(body))
		code, _, err := h.postRaw("/slack/interactions", body, ts, sig)
		if err != nil || code != http.StatusUnauthorized {
			t.Fatalf("forged click: status %d, err %v; want 401", code, err)
		}
		h.idle()
		h.wantState(id, store.Pending)
		if n := len(h.slack.Calls()); n != calls {
			t.Errorf("Slack calls went from %d to %d after a forged click", calls, n)
		}
		if n := h.failoverPOSTs(); n != 0 {
			t.Fatalf("failover POSTs = %d, want 0", n)
		}
	})
}

// TestSlackSigningExampleThroughHandler: Slack's published signing example, sent to the real
// slash-command endpoint configured with its secret, is accepted at its own timestamp (the body is
// an empty command, so the answer is the help) and refused 5 minutes and 1 second later.
func TestSlackSigningExampleThroughHandler(t *testing.T) {
	body, err := os.ReadFile("testdata/slack-signing-example.body")
	if err != nil {
		t.Fatal(err)
	}
	ex := readKeyValues(t, "testdata/slack-signing-example.txt")
	sec, err := strconv.ParseInt(ex["timestamp"], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Unix(sec, 0)
	h := newHarness(t)
	for _, tc := range []struct {
		name string
		now  time.Time
		want int
	}{
		{"at its timestamp", at, http.StatusOK},
		{"5m1s later", at.Add(5*time.Minute + time.Second), http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mux := http.NewServeMux()
			(&bot.HTTPHandlers{Bot: h.bot, SigningSecret: ex["secret"], Now: func() time.Time { return tc.now }}).Register(mux)
			srv := httptest.NewServer(mux)
			defer srv.Close()
			req, _ := http.NewRequest(http.MethodPost, srv.URL+"/slack/commands", strings.NewReader(string(body)))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set(bot.HeaderSlackTimestamp, ex["timestamp"])
			req.Header.Set(bot.HeaderSlackSignature, ex["signature"])
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.want)
			}
			if tc.want != http.StatusOK {
				return
			}
			var r bot.Response
			if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
				t.Fatal(err)
			}
			if r.ResponseType != "ephemeral" || r.Text != bot.HelpText() {
				t.Errorf("answer %+v, want the ephemeral help", r)
			}
		})
	}
	h.wantNothingStored()
}

func readKeyValues(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	kv := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if line := sc.Text(); line != "" && !strings.HasPrefix(line, "#") {
			k, v, _ := strings.Cut(line, "=")
			kv[k] = v
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return kv
}
