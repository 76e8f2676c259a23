package slackfake

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack"
)

func newClient(t *testing.T) (*Server, *slack.Client) {
	t.Helper()
	s := New(t)
	return s, slack.New("xoxb-test", slack.OptionAPIURL(s.APIURL()))
}

func section(text string) slack.Block {
	return slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, text, false, false), nil, nil)
}

func TestPostMessageAndThread(t *testing.T) {
	s, api := newClient(t)
	ch, ts, err := api.PostMessage("C1", slack.MsgOptionText("card", false), slack.MsgOptionBlocks(section("*FO-1*")))
	if err != nil {
		t.Fatal(err)
	}
	if ch != "C1" || ts != "1700000000.000001" {
		t.Errorf("PostMessage = %q %q, want C1 1700000000.000001", ch, ts)
	}
	_, r1, err := api.PostMessage("C1", slack.MsgOptionText("running", false), slack.MsgOptionTS(ts))
	if err != nil {
		t.Fatal(err)
	}
	_, r2, err := api.PostMessage("C1", slack.MsgOptionText("done", false), slack.MsgOptionTS(ts))
	if err != nil {
		t.Fatal(err)
	}
	if !(ts < r1 && r1 < r2) {
		t.Errorf("timestamps not increasing: %s %s %s", ts, r1, r2)
	}
	msgs := s.Messages("C1")
	if len(msgs) != 3 {
		t.Fatalf("Messages = %d, want 3", len(msgs))
	}
	if !strings.Contains(string(msgs[0].Blocks), "*FO-1*") {
		t.Errorf("card blocks = %s, want the section text", msgs[0].Blocks)
	}
	thread := s.Thread("C1", ts)
	if len(thread) != 2 || thread[0].Text != "running" || thread[1].Text != "done" || thread[0].ThreadTS != ts {
		t.Errorf("Thread = %+v, want running then done under %s", thread, ts)
	}
	if got := len(s.Messages("C2")); got != 0 {
		t.Errorf("Messages(C2) = %d, want 0", got)
	}
	if _, _, err := api.PostMessage("C1", slack.MsgOptionText("x", false), slack.MsgOptionTS("1.000001")); err == nil || err.Error() != "thread_not_found" {
		t.Errorf("reply to unknown thread: %v, want thread_not_found", err)
	}
}

func TestPostMessageLimits(t *testing.T) {
	tests := []struct {
		name string
		opts []slack.MsgOption
		want string // Slack error, "" for ok
	}{
		{"text at the limit", []slack.MsgOption{slack.MsgOptionText(strings.Repeat("é", MaxTextLen), false)}, ""},
		{"text too long", []slack.MsgOption{slack.MsgOptionText(strings.Repeat("x", MaxTextLen+1), false)}, "msg_too_long"},
		{"no text", []slack.MsgOption{slack.MsgOptionText("", false)}, "no_text"},
		{"section at the limit", []slack.MsgOption{slack.MsgOptionBlocks(section(strings.Repeat("x", MaxSectionTextLen)))}, ""},
		{"section too long", []slack.MsgOption{slack.MsgOptionBlocks(section(strings.Repeat("x", MaxSectionTextLen+1)))}, "invalid_blocks"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, api := newClient(t)
			_, _, err := api.PostMessage("C1", tt.opts...)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("PostMessage: %v", err)
				}
				return
			}
			if err == nil || err.Error() != tt.want {
				t.Fatalf("PostMessage: %v, want %s", err, tt.want)
			}
			if n := len(s.Messages("C1")); n != 0 {
				t.Errorf("a rejected message was recorded (%d messages)", n)
			}
		})
	}
}

func TestUpdate(t *testing.T) {
	s, api := newClient(t)
	_, ts, err := api.PostMessage("C1", slack.MsgOptionText("pending", false), slack.MsgOptionBlocks(section("pending")))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := api.UpdateMessage("C1", ts, slack.MsgOptionText("approved", false), slack.MsgOptionBlocks(section("approved by <@U2>"))); err != nil {
		t.Fatal(err)
	}
	m := s.Messages("C1")[0]
	if m.Text != "approved" || m.Updates != 1 || !strings.Contains(string(m.Blocks), "approved by") {
		t.Errorf("after update: %+v", m)
	}
	if _, _, _, err := api.UpdateMessage("C1", ts, slack.MsgOptionText("text only", false)); err != nil {
		t.Fatal(err)
	}
	if m := s.Messages("C1")[0]; m.Blocks != nil || m.Updates != 2 {
		t.Errorf("text-only update kept blocks %s (updates %d); Slack drops them", m.Blocks, m.Updates)
	}

	tests := []struct{ name, channel, ts string }{
		{"unknown ts", "C1", "1700000000.999999"},
		{"wrong channel", "C2", ts},
		{"deleted", "C1", ts},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.name == "deleted" {
				s.DeleteMessage("C1", ts)
			}
			_, _, _, err := api.UpdateMessage(tt.channel, tt.ts, slack.MsgOptionText("x", false))
			var se slack.SlackErrorResponse
			if !errors.As(err, &se) || se.Err != "message_not_found" {
				t.Fatalf("UpdateMessage: %v, want message_not_found", err)
			}
		})
	}
	// A deleted parent still takes thread replies, so the bot can fall back to the thread.
	if _, _, err := api.PostMessage("C1", slack.MsgOptionText("fallback", false), slack.MsgOptionTS(ts)); err != nil {
		t.Errorf("reply under a deleted card: %v", err)
	}
}

func TestRateLimit(t *testing.T) {
	s, api := newClient(t)
	s.RateLimit("chat.postMessage", 2, 1500*time.Millisecond)
	for i := range 2 {
		_, _, err := api.PostMessage("C1", slack.MsgOptionText("x", false))
		var rl *slack.RateLimitedError
		if !errors.As(err, &rl) {
			t.Fatalf("call %d: %v, want *slack.RateLimitedError", i, err)
		}
		if rl.RetryAfter != 2*time.Second {
			t.Errorf("RetryAfter = %v, want 2s (1.5s rounded up)", rl.RetryAfter)
		}
	}
	if _, _, err := api.PostMessage("C1", slack.MsgOptionText("x", false)); err != nil {
		t.Fatalf("third call: %v, want success", err)
	}
	calls := s.CallsTo("chat.postMessage")
	if len(calls) != 3 || calls[0].Status != 429 || calls[2].Status != 200 {
		t.Errorf("calls = %+v, want 429, 429, 200", calls)
	}
	if got := len(s.Messages("C1")); got != 1 {
		t.Errorf("Messages = %d, want 1 (rate-limited posts are not delivered)", got)
	}
	// Other methods are unaffected.
	if _, err := api.AuthTest(); err != nil {
		t.Errorf("AuthTest: %v", err)
	}
}

func TestFailNext(t *testing.T) {
	s, api := newClient(t)
	s.FailNext("chat.postMessage", "channel_not_found", 1)
	if _, _, err := api.PostMessage("C1", slack.MsgOptionText("x", false)); err == nil || err.Error() != "channel_not_found" {
		t.Fatalf("first call: %v, want channel_not_found", err)
	}
	if _, _, err := api.PostMessage("C1", slack.MsgOptionText("x", false)); err != nil {
		t.Fatalf("second call: %v", err)
	}
}

func TestUsersAndGroups(t *testing.T) {
	s, api := newClient(t)
	s.AddUser(slack.User{ID: "U1", Name: "alice", IsRestricted: true})
	s.AddUser(slack.User{ID: "U2", Name: "bot", IsBot: true, Deleted: true})
	s.SetGroup("S1", []string{"U1", "U3"})
	s.SetGroup("S2", nil)

	u, err := api.GetUserInfo("U1")
	if err != nil || u.ID != "U1" || u.Name != "alice" || !u.IsRestricted {
		t.Errorf("GetUserInfo(U1) = %+v, %v", u, err)
	}
	u, err = api.GetUserInfo("U2")
	if err != nil || !u.IsBot || !u.Deleted {
		t.Errorf("GetUserInfo(U2) = %+v, %v", u, err)
	}
	if _, err := api.GetUserInfo("U9"); err == nil || err.Error() != "user_not_found" {
		t.Errorf("GetUserInfo(U9): %v, want user_not_found", err)
	}
	members, err := api.GetUserGroupMembers("S1")
	if err != nil || strings.Join(members, ",") != "U1,U3" {
		t.Errorf("GetUserGroupMembers(S1) = %v, %v", members, err)
	}
	members, err = api.GetUserGroupMembers("S2")
	if err != nil || len(members) != 0 {
		t.Errorf("GetUserGroupMembers(S2) = %v, %v, want empty", members, err)
	}
	if _, err := api.GetUserGroupMembers("S9"); err == nil || err.Error() != "no_such_subteam" {
		t.Errorf("GetUserGroupMembers(S9): %v, want no_such_subteam", err)
	}
	s.FailNext("usergroups.users.list", "plan_upgrade_required", 1)
	if _, err := api.GetUserGroupMembers("S1"); err == nil || err.Error() != "plan_upgrade_required" {
		t.Errorf("GetUserGroupMembers on a free plan: %v, want plan_upgrade_required", err)
	}
}

func TestEphemeralViewsAndResponseURL(t *testing.T) {
	s, api := newClient(t)
	ts, err := api.PostEphemeral("C1", "U1", slack.MsgOptionText("only you", false))
	if err != nil || ts == "" {
		t.Fatalf("PostEphemeral = %q, %v", ts, err)
	}
	msgs := s.Messages("C1")
	if len(msgs) != 1 || !msgs[0].Ephemeral || msgs[0].User != "U1" {
		t.Errorf("Messages = %+v, want one ephemeral for U1", msgs)
	}
	if _, _, _, err := api.UpdateMessage("C1", ts, slack.MsgOptionText("x", false)); err == nil {
		t.Error("chat.update of an ephemeral message succeeded; Slack refuses it")
	}

	view := slack.ModalViewRequest{
		Type:       slack.VTModal,
		CallbackID: "reject",
		Title:      slack.NewTextBlockObject(slack.PlainTextType, "Reject FO-1", false, false),
		Blocks:     slack.Blocks{BlockSet: []slack.Block{section("why?")}},
	}
	resp, err := api.OpenView("T123.456", view)
	if err != nil {
		t.Fatal(err)
	}
	if resp.ID == "" || resp.CallbackID != "reject" {
		t.Errorf("OpenView = %+v", resp.View)
	}
	calls := s.CallsTo("views.open")
	if len(calls) != 1 || calls[0].JSON["trigger_id"] != "T123.456" {
		t.Fatalf("views.open calls = %+v", calls)
	}
	if _, err := api.OpenView("", view); err == nil {
		t.Error("OpenView without trigger_id succeeded")
	}

	respURL := s.ResponseURL("cmd1")
	for i := range MaxResponseURLUse {
		if _, _, err := api.PostMessage("", slack.MsgOptionResponseURL(respURL, slack.ResponseTypeEphemeral), slack.MsgOptionText("hi", false)); err != nil {
			t.Fatalf("response_url use %d: %v", i+1, err)
		}
	}
	if _, _, err := api.PostMessage("", slack.MsgOptionResponseURL(respURL, slack.ResponseTypeEphemeral), slack.MsgOptionText("hi", false)); err == nil {
		t.Errorf("response_url use %d succeeded; Slack allows %d", MaxResponseURLUse+1, MaxResponseURLUse)
	}
	rc := s.CallsTo("response_url:cmd1")
	if len(rc) != MaxResponseURLUse+1 || rc[0].JSON["text"] != "hi" || rc[0].JSON["response_type"] != "ephemeral" {
		t.Errorf("response_url calls = %+v", rc)
	}
}

func TestPermalinkAndAuth(t *testing.T) {
	s, api := newClient(t)
	_, ts, err := api.PostMessage("C1", slack.MsgOptionText("card", false))
	if err != nil {
		t.Fatal(err)
	}
	link, err := api.GetPermalink(&slack.PermalinkParameters{Channel: "C1", Ts: ts})
	if err != nil || link != Permalink("C1", ts) {
		t.Errorf("GetPermalink = %q, %v", link, err)
	}
	at, err := api.AuthTest()
	if err != nil || at.UserID != BotUserID || at.TeamID != TeamID {
		t.Errorf("AuthTest = %+v, %v", at, err)
	}
	noToken := slack.New("", slack.OptionAPIURL(s.APIURL()))
	if _, err := noToken.AuthTest(); err == nil || err.Error() != "not_authed" {
		t.Errorf("AuthTest without token: %v, want not_authed", err)
	}
}

func TestWaitForAndChanged(t *testing.T) {
	s, api := newClient(t)

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range 5 {
			if _, _, err := api.PostMessageContext(context.Background(), "C1", slack.MsgOptionText(strings.Repeat("x", i+1), false)); err != nil {
				t.Error(err)
			}
		}
	}()
	// Two concurrent waiters: WaitFor must wake both.
	var wwg sync.WaitGroup
	for range 2 {
		wwg.Add(1)
		go func() {
			defer wwg.Done()
			s.WaitFor(t, 10*time.Second, func(s *Server) bool { return len(s.Messages("C1")) == 5 })
		}()
	}
	wwg.Wait()
	wg.Wait()
	select {
	case <-s.Changed():
	default:
		t.Error("Changed() has nothing after calls")
	}
	b, _ := json.Marshal(s.Calls()[0].Values["text"])
	if string(b) != `["x"]` {
		t.Errorf("first recorded text = %s", b)
	}
}
