package slackfake

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"
)

func homeView(blocks ...slack.Block) slack.HomeTabViewRequest {
	return slack.HomeTabViewRequest{Type: slack.VTHomeTab, Blocks: slack.Blocks{BlockSet: blocks}}
}

func publish(api *slack.Client, user string, v slack.HomeTabViewRequest) error {
	_, err := api.PublishViewContext(context.Background(), slack.PublishViewContextRequest{UserID: user, View: v})
	return err
}

// TestViewsPublish: views.publish records each user's Home and refuses, as Slack does, a view
// Block Kit would refuse.
func TestViewsPublish(t *testing.T) {
	many := func(n int) []slack.Block {
		out := make([]slack.Block, n)
		for i := range out {
			out[i] = slack.NewDividerBlock()
		}
		return out
	}
	pt := func(s string) *slack.TextBlockObject {
		return slack.NewTextBlockObject(slack.PlainTextType, s, false, false)
	}
	ctxEls := func(n int) []slack.MixedElement {
		out := make([]slack.MixedElement, n)
		for i := range out {
			out[i] = slack.NewTextBlockObject(slack.MarkdownType, "x", false, false)
		}
		return out
	}
	tests := []struct {
		name string
		user string
		view slack.HomeTabViewRequest
		want string // Slack error, "" for ok
	}{
		{"a home view", "U1", homeView(section("*FO-1*"), slack.NewHeaderBlock(pt("Active"))), ""},
		{"100 blocks", "U1", homeView(many(MaxHomeBlocks)...), ""},
		{"101 blocks", "U1", homeView(many(MaxHomeBlocks + 1)...), "invalid_arguments"},
		{"not a home view", "U1", slack.HomeTabViewRequest{Type: slack.VTModal, Blocks: slack.Blocks{BlockSet: []slack.Block{section("x")}}}, "invalid_arguments"},
		{"section too long", "U1", homeView(section(strings.Repeat("x", MaxSectionTextLen+1))), "invalid_arguments"},
		{"header too long", "U1", homeView(slack.NewHeaderBlock(pt(strings.Repeat("h", MaxHeaderTextLen+1)))), "invalid_arguments"},
		{"context of 11 elements", "U1", homeView(slack.NewContextBlock("c", ctxEls(MaxContextElems+1)...)), "invalid_arguments"},
		{"over 250 KB", "U1", homeView(func() []slack.Block {
			out := make([]slack.Block, 90)
			for i := range out {
				out[i] = section(strings.Repeat("y", MaxSectionTextLen))
			}
			return out
		}()...), "view_too_large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, api := newClient(t)
			err := publish(api, tt.user, tt.view)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("publish: %v, want ok", err)
				}
				if v, ok := s.Home(tt.user); !ok || v.User != tt.user || len(v.Blocks) == 0 {
					t.Fatalf("Home(%s) = %+v, %v; want the published view", tt.user, v, ok)
				}
				return
			}
			if err == nil || err.Error() != tt.want {
				t.Fatalf("publish: %v, want %s", err, tt.want)
			}
			if _, ok := s.Home(tt.user); ok {
				t.Fatal("a refused view was recorded")
			}
		})
	}

	t.Run("each user's views in order", func(t *testing.T) {
		s, api := newClient(t)
		for _, p := range []struct{ user, text string }{{"U1", "first"}, {"U2", "other"}, {"U1", "second"}} {
			if err := publish(api, p.user, homeView(section(p.text))); err != nil {
				t.Fatal(err)
			}
		}
		h := s.Homes("U1")
		if len(h) != 2 || !strings.Contains(string(h[0].Blocks), "first") || !strings.Contains(string(h[1].Blocks), "second") {
			t.Fatalf("Homes(U1) = %d views, want first then second", len(h))
		}
		if v, _ := s.Home("U1"); !strings.Contains(string(v.Blocks), "second") {
			t.Errorf("Home(U1) = %s, want the last one", v.Blocks)
		}
		if n := len(s.Homes("U3")); n != 0 {
			t.Errorf("Homes(U3) = %d, want 0", n)
		}
	})
}

// TestViewsPublishTier: views.publish is limited per workspace (Tier 4), across users.
func TestViewsPublishTier(t *testing.T) {
	s, api := newClient(t)
	s.EnforceLimits(Limits{PublishesPerMinute: 100, PublishBurst: 2})
	var errs []error
	for _, u := range []string{"U1", "U2", "U3"} {
		errs = append(errs, publish(api, u, homeView(section("x"))))
	}
	if errs[0] != nil || errs[1] != nil {
		t.Fatalf("first two publishes: %v, %v; want the burst of 2 accepted", errs[0], errs[1])
	}
	var rl *slack.RateLimitedError
	if !errors.As(errs[2], &rl) || rl.RetryAfter < time.Second {
		t.Fatalf("third publish: %v, want a RateLimitedError with Retry-After >= 1s", errs[2])
	}
	if got := s.RateLimited()["views.publish"]; got != 1 {
		t.Errorf("RateLimited()[views.publish] = %d, want 1", got)
	}
	if _, ok := s.Home("U3"); ok {
		t.Error("a rate-limited view was recorded")
	}
}
