package slackfake

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/slack-go/slack"
)

func TestEnforceLimits(t *testing.T) {
	for _, tc := range []struct {
		name   string
		limits Limits
		calls  func(api *slack.Client) []error
		want   []bool // call ok?
	}{
		{"posts per channel", Limits{PostPerSecond: 1, PostBurst: 2}, func(api *slack.Client) []error {
			var errs []error
			for _, ch := range []string{"C1", "C1", "C1", "C2"} {
				_, _, err := api.PostMessage(ch, slack.MsgOptionText("x", false))
				errs = append(errs, err)
			}
			return errs
		}, []bool{true, true, false, true}},
		{"updates per workspace", Limits{UpdatesPerMinute: 50}, func(api *slack.Client) []error {
			_, ts1, _ := api.PostMessage("C1", slack.MsgOptionText("a", false))
			_, ts2, _ := api.PostMessage("C2", slack.MsgOptionText("b", false))
			_, _, _, e1 := api.UpdateMessage("C1", ts1, slack.MsgOptionText("a2", false))
			_, _, _, e2 := api.UpdateMessage("C2", ts2, slack.MsgOptionText("b2", false))
			return []error{e1, e2}
		}, []bool{true, false}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, api := newClient(t)
			s.EnforceLimits(tc.limits)
			errs := tc.calls(api)
			limited := 0
			for i, err := range errs {
				if got := err == nil; got != tc.want[i] {
					t.Errorf("call %d: err %v, want ok=%v", i, err, tc.want[i])
				}
				if err != nil {
					var rl *slack.RateLimitedError
					if !errors.As(err, &rl) || rl.RetryAfter < time.Second {
						t.Errorf("call %d: %v, want a RateLimitedError with Retry-After >= 1s", i, err)
					}
					limited++
				}
			}
			total := 0
			for _, n := range s.RateLimited() {
				total += n
			}
			if total != limited {
				t.Errorf("RateLimited() counts %d, want %d", total, limited)
			}
		})
	}
}

func TestLostAnswersStoreTheMessage(t *testing.T) {
	s, api := newClient(t)
	s.DropAnswer("chat.postMessage", 1)
	if _, _, err := api.PostMessage("C1", slack.MsgOptionText("card", false)); err == nil {
		t.Fatal("a dropped answer reached the client")
	}
	if n := len(s.Posted("C1")); n != 1 {
		t.Fatalf("%d messages stored, want 1 (Slack stored it before the answer was lost)", n)
	}
	s.DelayAnswer("chat.postMessage", 1, time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, _, err := api.PostMessageContext(ctx, "C1", slack.MsgOptionText("late", false)); err == nil {
		t.Fatal("a delayed answer arrived before the client's deadline")
	}
	if n := len(s.Posted("C1")); n != 2 {
		t.Fatalf("%d messages stored, want 2", n)
	}
	if _, _, err := api.PostMessage("C1", slack.MsgOptionText("normal", false)); err != nil {
		t.Fatalf("after the scripted calls: %v", err)
	}
}

func TestHistoryWithMetadataAndPaging(t *testing.T) {
	s, api := newClient(t)
	for i := range 5 {
		_, ts, err := api.PostMessage("C1", slack.MsgOptionText(fmt.Sprint("card ", i), false),
			slack.MsgOptionBlocks(slack.NewActionBlock("a", slack.NewButtonBlockElement("fo_approve", "v", slack.NewTextBlockObject(slack.PlainTextType, "B", false, false)))),
			slack.MsgOptionMetadata(slack.SlackMetadata{EventType: "failover_card", EventPayload: map[string]any{"request_id": fmt.Sprint("FO-", i)}}))
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			api.PostMessage("C1", slack.MsgOptionText("reply", false), slack.MsgOptionTS(ts))
		}
	}
	params := &slack.GetConversationHistoryParameters{ChannelID: "C1", IncludeAllMetadata: true, Limit: 2}
	var got []string
	for {
		resp, err := api.GetConversationHistoryContext(context.Background(), params)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range resp.Messages {
			got = append(got, fmt.Sprint(m.Metadata.EventPayload["request_id"]))
		}
		if !resp.HasMore {
			break
		}
		params.Cursor = resp.ResponseMetaData.NextCursor
	}
	if fmt.Sprint(got) != "[FO-4 FO-3 FO-2 FO-1 FO-0]" {
		t.Fatalf("history = %v, want the five cards newest first without the reply", got)
	}
	if n := len(s.LiveCards("FO-2")); n != 1 {
		t.Fatalf("LiveCards(FO-2) = %d, want 1", n)
	}
	s.FailChannel("C1", "not_in_channel")
	if _, err := api.GetConversationHistoryContext(context.Background(), params); err == nil || err.Error() != "not_in_channel" {
		t.Fatalf("history on a failed channel: %v", err)
	}
	s.ClearChannel("C1")
	s.Outage(true)
	if _, _, err := api.PostMessage("C1", slack.MsgOptionText("x", false)); err == nil {
		t.Fatal("a post during an outage succeeded")
	}
	s.Outage(false)
	s.FailAll("invalid_auth")
	if _, _, err := api.PostMessage("C2", slack.MsgOptionText("x", false)); err == nil || err.Error() != "invalid_auth" {
		t.Fatalf("FailAll: %v", err)
	}
	if s.CallsIn("C1") == 0 {
		t.Fatal("CallsIn(C1) = 0")
	}
}
