package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/failover-bot/failover-bot/bot"
	"github.com/failover-bot/failover-bot/bot/slackfake"
	"github.com/failover-bot/failover-bot/emapi/emsim"
	"github.com/failover-bot/failover-bot/store"
	"github.com/failover-bot/failover-bot/store/failover/fakeclock"
)

const (
	crashChannel = "C0DRROOM1"
	crashAudit   = "C0AUDIT01"
	crashSecret  = "crash-test-signing-secret"
	crashUser    = "U0REQUEST"
	crashApprove = "U0APPROVE"
)

// botProcess is the real failover-bot binary (this test binary re-executed as main) serving
// HTTP mode against the parent's EM simulator and Slack fake.
type botProcess struct {
	t      *testing.T
	cmd    *exec.Cmd
	url    string
	stderr *syncBuffer
	done   chan error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

var listenLine = regexp.MustCompile(`"msg":"failover-bot running".*?"listen":"([^"]+)"`)

func startBot(t *testing.T, env []string) *botProcess {
	t.Helper()
	p := &botProcess{t: t, stderr: &syncBuffer{}, done: make(chan error, 1)}
	p.cmd = exec.Command(os.Args[0])
	p.cmd.Env = append(os.Environ(), append([]string{childEnv + "=1"}, env...)...)
	pr, pw := io.Pipe()
	p.cmd.Stderr = pw
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			p.stderr.Write([]byte(line + "\n"))
			if m := listenLine.FindStringSubmatch(line); m != nil {
				select {
				case addr <- m[1]:
				default:
				}
			}
		}
	}()
	go func() { err := p.cmd.Wait(); pw.Close(); p.done <- err }()
	select {
	case a := <-addr:
		p.url = "http://" + a
	case err := <-p.done:
		t.Fatalf("the bot exited at start: %v\n%s", err, p.stderr.String())
	case <-time.After(20 * time.Second):
		p.kill()
		t.Fatalf("the bot did not start\n%s", p.stderr.String())
	}
	return p
}

// kill is kill -9.
func (p *botProcess) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

func (p *botProcess) term(within time.Duration) {
	p.t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		if err != nil {
			p.t.Fatalf("exit after SIGTERM: %v\n%s", err, p.stderr.String())
		}
	case <-time.After(within):
		p.kill()
		p.t.Fatalf("no exit within %v of SIGTERM\n%s", within, p.stderr.String())
	}
}

func (p *botProcess) post(path string, form url.Values) string {
	p.t.Helper()
	body := form.Encode()
	ts, sig := bot.Sign(crashSecret, time.Now(), []byte(body))
	req, _ := http.NewRequest(http.MethodPost, p.url+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set(bot.HeaderSlackTimestamp, ts)
	req.Header.Set(bot.HeaderSlackSignature, sig)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatalf("POST %s: %v\n%s", path, err, p.stderr.String())
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		p.t.Fatalf("POST %s: %d %s", path, resp.StatusCode, b)
	}
	return string(b)
}

var triggers int

func (p *botProcess) command(sl *slackfake.Server, text string) string {
	p.t.Helper()
	triggers++
	return p.post("/slack/commands", url.Values{"team_id": {slackfake.TeamID}, "channel_id": {crashChannel},
		"user_id": {crashUser}, "command": {"/failover"}, "text": {text},
		"response_url": {sl.ResponseURL("cmd")}, "trigger_id": {fmt.Sprintf("crash-cmd-%d", triggers)}})
}

// approve clicks Approve on the live card of id, as Slack shows it.
func (p *botProcess) approve(sl *slackfake.Server, id string) {
	p.t.Helper()
	cards := sl.LiveCards(id)
	if len(cards) != 1 {
		p.t.Fatalf("%d live cards for %s, want 1", len(cards), id)
	}
	value := regexp.MustCompile(`"action_id":"fo_approve"[^}]*?"value":"([^"]+)"|"value":"([^"]+)"[^}]*?"action_id":"fo_approve"`).FindStringSubmatch(string(cards[0].Blocks))
	if value == nil {
		p.t.Fatalf("no approve button on %s's card: %s", id, cards[0].Blocks)
	}
	p.click(sl, crashApprove, id, "fo_approve", value[1]+value[2])
}

// click sends a block action of user on the live card of id.
func (p *botProcess) click(sl *slackfake.Server, user, id, actionID, value string) {
	p.t.Helper()
	cards := sl.LiveCards(id)
	if len(cards) != 1 {
		p.t.Fatalf("%d live cards for %s, want 1", len(cards), id)
	}
	triggers++
	payload, _ := json.Marshal(map[string]any{
		"type": "block_actions", "user": map[string]any{"id": user}, "team": map[string]any{"id": slackfake.TeamID},
		"channel": map[string]any{"id": crashChannel}, "trigger_id": fmt.Sprintf("crash-click-%d", triggers),
		"container": map[string]any{"type": "message", "channel_id": crashChannel, "message_ts": cards[0].TS},
		"actions":   []map[string]any{{"action_id": actionID, "block_id": "fo_actions", "value": value, "type": "button"}},
	})
	p.post("/slack/interactions", url.Values{"payload": {string(payload)}})
}

// crashEM is the EM simulator the crash tests run against, over HTTP, on a fake clock the test
// moves failovers along with: each failover runs 10 minutes and is collected in 1.
func crashEM(t *testing.T, inv emsim.Inventory) (*fakeclock.Clock, *emsim.Server, string) {
	t.Helper()
	clock := fakeclock.New(time.Now().UTC())
	sim := emsim.New(emsim.Config{Username: "svc", Password: "pw", Now: clock.Now}, inv)
	sim.SetDefaultScript(emsim.Script{Running: 10 * time.Minute, Collect: time.Minute})
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	return clock, sim, srv.URL
}

func waitUntil(t *testing.T, what string, within time.Duration, cond func() bool, logs func() string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s\n%s", what, logs())
		}
		time.Sleep(20 * time.Millisecond) // polling another process: there is no channel to wait on
	}
}

// TestKill9KeepsTheConversation kills the real bot with SIGKILL at each point of a failover's
// life, against a Slack that rate-limits and answers late, restarting it each time, and then
// checks what people see: every audit event meant for the audit channel is there (duplicates
// at most one per crash), every request has at most one live card and it shows the request's
// current state, every outcome is in its card's thread, and EM got one failover POST per
// approval.
func TestKill9KeepsTheConversation(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	clock, sim, emURL := crashEM(t, emsim.DemoInventory())
	sl, path, env := crashSetup(t, emURL)
	crashes := 0
	var logs strings.Builder
	p := startBot(t, env)
	restart := func() {
		crashes++
		p.kill()
		logs.WriteString(p.stderr.String())
		p = startBot(t, env)
	}
	logsOf := func() string { return logs.String() + p.stderr.String() }

	// 1. Killed while its card post is in flight: Slack stored the card, the answer is late.
	sl.DelayAnswer("chat.postMessage:"+crashChannel, 1, 10*time.Second)
	mustContain(t, "ack", p.command(sl, `vm CDP-Finance fin-db01 --reason "site A down"`), "Recorded *FO-1*")
	waitUntil(t, "FO-1's card stored by Slack", 10*time.Second, func() bool { return len(sl.LiveCards("FO-1")) == 1 }, logsOf)
	restart()

	// 2. Killed right after the acknowledgement of another request.
	mustContain(t, "ack", p.command(sl, `vm CDP-Finance fin-app01 --reason "site A down"`), "Recorded *FO-2*")
	restart()
	waitUntil(t, "FO-2's card", 20*time.Second, func() bool { return len(sl.LiveCards("FO-2")) == 1 }, logsOf)
	if n := len(sl.LiveCards("FO-1")); n != 1 {
		t.Fatalf("FO-1 has %d live cards after the restart, want 1 (the one Slack stored is adopted)", n)
	}

	// 3. Killed right after an approval was acknowledged. The click may die with the process
	// before it is recorded; then the card still offers Approve after the restart, and the
	// approver clicks again, as a person would.
	p.approve(sl, "FO-1")
	restart()
	time.Sleep(2 * time.Second) // give the restarted bot time to refresh the card, if it must
	if len(sl.LiveCards("FO-1")) == 1 && !strings.Contains(auditText(sl), "FO-1 approved") {
		p.approve(sl, "FO-1")
	}

	// 4. Killed during a submission: EM has created the failover, its answer is late.
	sim.DelayResponses(1, 10*time.Second)
	p.approve(sl, "FO-2")
	waitUntil(t, "both failover POSTs", 20*time.Second, func() bool { return sim.Count(http.MethodPost, "action=failover") == 2 }, logsOf)
	restart()

	// 5. Killed while both run.
	clock.Advance(3 * time.Minute)
	waitUntil(t, "progress polled", 20*time.Second, func() bool { return sim.Count(http.MethodGet, "restoreSessions") > 0 }, logsOf)
	restart()

	// 6. Killed as they finish.
	clock.Advance(time.Hour)
	before := sim.Count(http.MethodGet, "")
	// Both may be recorded finished in the first cycle after the advance, and then nothing is
	// polled again; so wait for a recorded outcome (or a poll that saw the end) and kill then.
	waitUntil(t, "a poll after the end", 20*time.Second, func() bool {
		return strings.Contains(p.stderr.String(), `"msg":"failover finished"`) || sim.Count(http.MethodGet, "") > before+2
	}, logsOf)
	restart()

	// Settle: the outcomes reach the cards and threads, then stop cleanly.
	waitUntil(t, "both outcomes in Slack", 60*time.Second, func() bool {
		return strings.Count(threadsText(sl), "Failover succeeded") >= 2
	}, logsOf)
	waitUntil(t, "the audit channel to catch up", 60*time.Second, func() bool {
		return strings.Count(auditText(sl), "EM reported succeeded") >= 2
	}, logsOf)
	p.term(30 * time.Second)

	st, err := store.Open(path, store.Options{LockTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Verify(context.Background()); err != nil {
		t.Fatalf("audit chain: %v", err)
	}
	if n := sim.Count(http.MethodPost, "action=failover"); n != 2 {
		t.Errorf("EM received %d failover POSTs, want 2 (one per approval)", n)
	}
	audit := auditText(sl)
	events, lines := 0, strings.Count(audit, "\n")+1
	err = st.Events(context.Background(), 0, time.Time{}, func(e store.Event) error {
		if e.Action == "em-progress" || e.Action == "card-posted" {
			return nil
		}
		events++
		want := fmt.Sprintf("`%s` %s ", e.Time.UTC().Format("15:04:05 UTC"), e.RequestID)
		if !strings.Contains(audit, want) {
			t.Errorf("audit channel lacks event %d (%s %s by %s)", e.Seq, e.RequestID, e.Action, e.Actor)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if lines < events || lines > events+crashes {
		t.Errorf("audit channel has %d lines for %d events, want between %d and %d (one duplicate per crash at most)\n%s", lines, events, events, events+crashes, audit)
	}
	for _, id := range []string{"FO-1", "FO-2"} {
		r, err := st.Get(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if r.State != store.Succeeded {
			t.Errorf("%s is %s, want succeeded", id, r.State)
		}
		if n := len(sl.LiveCards(id)); n != 0 {
			t.Errorf("%s has %d cards with live buttons after it finished", id, n)
		}
		var card *slackfake.Message
		for _, m := range sl.Posted(crashChannel) {
			if m.TS == r.MessageTS {
				card = &m
			}
		}
		if card == nil {
			t.Fatalf("%s's recorded card %s is not in Slack", id, r.MessageTS)
		}
		mustContain(t, id+"'s card", card.Text, "Failover succeeded")
		mustContain(t, id+"'s thread", threadOf(sl, r.MessageTS), "Failover succeeded", "Approved by")
	}
	if n := sl.RateLimited()["chat.postMessage"]; n != 0 {
		t.Logf("Slack answered %d posts with 429 (the bot then honours Retry-After)", n)
	}
	for _, secret := range []string{"xoxb-crash-token", crashSecret, "EM_PASSWORD=pw"} {
		if strings.Contains(logsOf(), secret) {
			t.Errorf("a secret appears in the logs: %q", secret)
		}
	}
}

// crashSetup is what every crash test's bot runs against: a Slack fake enforcing Slack's own
// limits (the bot paces itself under them) with the requester and the approver, a store file,
// and the bot's environment for the EM simulator at emURL, plus extra settings.
func crashSetup(t *testing.T, emURL string, extra ...string) (*slackfake.Server, string, []string) {
	t.Helper()
	sl := slackfake.New(t)
	sl.AddUser(slack.User{ID: crashUser, Name: "rita"})
	sl.AddUser(slack.User{ID: crashApprove, Name: "alex"})
	sl.EnforceLimits(slackfake.Limits{PostPerSecond: 1, PostBurst: 3, UpdatesPerMinute: 50, UpdateBurst: 3})
	path := filepath.Join(t.TempDir(), "bot.db")
	env := []string{"SLACK_BOT_TOKEN=xoxb-crash-token", "SLACK_SIGNING_SECRET=" + crashSecret, "SLACK_API_URL=" + sl.APIURL(),
		"EM_URL=" + emURL + "/api/", "EM_USERNAME=svc", "EM_PASSWORD=pw", "DB_PATH=" + path,
		"APPROVERS=" + crashApprove, "AUDIT_CHANNEL=" + crashAudit, "LISTEN_ADDR=127.0.0.1:0",
		"POLL_SCHEDULE=@every 1s", "LOG_FORMAT=json", "SHUTDOWN_TIMEOUT=20s"}
	return sl, path, append(env, extra...)
}

func auditText(sl *slackfake.Server) string {
	var parts []string
	for _, m := range sl.Posted(crashAudit) {
		parts = append(parts, m.Text)
	}
	return strings.Join(parts, "\n")
}

func threadsText(sl *slackfake.Server) string {
	var b strings.Builder
	for _, m := range sl.Posted(crashChannel) {
		if m.ThreadTS != "" {
			b.WriteString(m.Text + "\n")
		}
	}
	return b.String()
}

func threadOf(sl *slackfake.Server, ts string) string {
	var b strings.Builder
	for _, m := range sl.Thread(crashChannel, ts) {
		b.WriteString(m.Text + "\n")
	}
	return b.String()
}

func mustContain(t *testing.T, what, got string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(got, w) {
			t.Errorf("%s does not contain %q; got:\n%s", what, w, got)
		}
	}
}

// TestSIGTERMKeepsTheBacklog: SIGTERM with a short SHUTDOWN_TIMEOUT while Slack is down exits
// cleanly, logs how many messages remain, withdraws nothing, and the next start delivers them.
func TestSIGTERMKeepsTheBacklog(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	sim := emsim.New(emsim.Config{Username: "svc", Password: "pw"}, emsim.DemoInventory())
	emSrv := httptest.NewServer(sim)
	defer emSrv.Close()
	sl := slackfake.New(t)
	sl.AddUser(slack.User{ID: crashApprove, Name: "alex"})
	path := filepath.Join(t.TempDir(), "bot.db")
	env := []string{"SLACK_BOT_TOKEN=xoxb-crash-token", "SLACK_SIGNING_SECRET=" + crashSecret, "SLACK_API_URL=" + sl.APIURL(),
		"EM_URL=" + emSrv.URL + "/api/", "EM_USERNAME=svc", "EM_PASSWORD=pw", "DB_PATH=" + path,
		"APPROVERS=" + crashApprove, "AUDIT_CHANNEL=" + crashAudit, "LISTEN_ADDR=127.0.0.1:0",
		"POLL_SCHEDULE=@every 1s", "LOG_FORMAT=json", "SHUTDOWN_TIMEOUT=1s"}
	p := startBot(t, env)
	sl.Outage(true)
	for _, vm := range []string{"fin-db01", "fin-app01", "fin-web01"} {
		mustContain(t, "ack", p.command(sl, "vm CDP-Finance "+vm+` --reason "site down"`), "Recorded")
	}
	start := time.Now()
	p.term(15 * time.Second)
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("SIGTERM took %v with SHUTDOWN_TIMEOUT=1s", d)
	}
	mustContain(t, "logs", p.stderr.String(), "slack delivery stopped with messages still owed", `"remaining":`)

	st, err := store.Open(path, store.Options{LockTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"FO-1", "FO-2", "FO-3"} {
		if r, err := st.Get(context.Background(), id); err != nil || r.State != store.Pending {
			t.Errorf("%s after SIGTERM: %v %v, want pending", id, r, err)
		}
	}
	st.Close()

	sl.Outage(false)
	p = startBot(t, env)
	defer p.kill()
	waitUntil(t, "the three cards and their audit events", 30*time.Second, func() bool {
		return len(sl.LiveCards("FO-1")) == 1 && len(sl.LiveCards("FO-2")) == 1 && len(sl.LiveCards("FO-3")) == 1 &&
			strings.Contains(auditText(sl), "FO-3 requested by")
	}, p.stderr.String)
}
