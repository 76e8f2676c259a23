package bot_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/failover-bot/failover-bot/bot"
	"github.com/failover-bot/failover-bot/store/failover/fakeclock"
)

// TestNamesDirectory: what the audit log's name directory answers after payloads and users.info
// answers, as time passes.
func TestNamesDirectory(t *testing.T) {
	profile := func(id, display, real, handle string) *slack.User {
		u := &slack.User{ID: id, Name: handle, RealName: real}
		u.Profile.DisplayName = display
		return u
	}
	type step struct {
		payload    [2]string   // id, name: a command or click
		profile    *slack.User // a users.info answer
		advance    time.Duration
		id, wantIs string // then Name(id) must be wantIs
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"unknown", []step{{id: "U1", wantIs: ""}}},
		{"a payload's name", []step{{payload: [2]string{"U1", " rita "}, id: "U1", wantIs: "rita"}}},
		{"an empty payload name changes nothing", []step{
			{payload: [2]string{"U1", "rita"}},
			{payload: [2]string{"U1", ""}, id: "U1", wantIs: "rita"}}},
		{"a rename in a later payload", []step{
			{payload: [2]string{"U1", "rita"}},
			{payload: [2]string{"U1", "rita.ops"}, id: "U1", wantIs: "rita.ops"}}},
		{"users.info's display name replaces the handle", []step{
			{payload: [2]string{"U1", "rita"}},
			{profile: profile("U1", "Rita Requester", "Rita R.", "rita"), id: "U1", wantIs: "Rita Requester"},
			{payload: [2]string{"U1", "rita"}, id: "U1", wantIs: "Rita Requester"}}},
		{"users.info without a display name: the real name", []step{
			{profile: profile("U1", "", "Rita R.", "rita"), id: "U1", wantIs: "Rita R."}}},
		{"users.info with no name at all changes nothing", []step{
			{payload: [2]string{"U1", "rita"}},
			{profile: profile("U1", "", "", ""), id: "U1", wantIs: "rita"}}},
		{"users.info with only a handle counts as a payload's", []step{
			{profile: profile("U1", "", "", "rita"), id: "U1", wantIs: "rita"},
			{payload: [2]string{"U1", "rita.ops"}, id: "U1", wantIs: "rita.ops"}}},
		{"a name expires", []step{
			{payload: [2]string{"U1", "rita"}},
			{advance: time.Hour - time.Second, id: "U1", wantIs: "rita"},
			{advance: time.Second, id: "U1", wantIs: ""}}},
		{"a payload renews a name", []step{
			{payload: [2]string{"U1", "rita"}},
			{advance: 50 * time.Minute},
			{payload: [2]string{"U1", "rita"}},
			{advance: 50 * time.Minute, id: "U1", wantIs: "rita"}}},
		{"an expired display name gives way to the handle", []step{
			{profile: profile("U1", "Rita Requester", "", "rita")},
			{advance: time.Hour},
			{payload: [2]string{"U1", "rita"}, id: "U1", wantIs: "rita"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := fakeclock.New(time.Date(2026, 11, 23, 14, 0, 0, 0, time.UTC))
			n := bot.NewNames(0, time.Hour, clock.Now)
			for i, s := range tt.steps {
				if s.payload[0] != "" {
					n.FromPayload(s.payload[0], s.payload[1])
				}
				if s.profile != nil {
					n.FromProfile(s.profile)
				}
				clock.Advance(s.advance)
				if s.id != "" {
					if got := n.Name(s.id); got != s.wantIs {
						t.Errorf("step %d: Name(%s) = %q, want %q", i, s.id, got, s.wantIs)
					}
				}
			}
		})
	}
}

// TestNamesBounded: the directory keeps at most its size, forgetting the least recently learned.
func TestNamesBounded(t *testing.T) {
	n := bot.NewNames(3, time.Hour, nil)
	for i := range 5 {
		n.FromPayload(fmt.Sprintf("U%d", i), fmt.Sprintf("user%d", i))
	}
	n.FromPayload("U2", "user2") // learned again: now the most recent
	n.FromPayload("U5", "user5") // evicts U3, the least recently learned
	for id, want := range map[string]string{"U0": "", "U1": "", "U2": "user2", "U3": "", "U4": "user4", "U5": "user5"} {
		if got := n.Name(id); got != want {
			t.Errorf("Name(%s) = %q, want %q", id, got, want)
		}
	}
	var none *bot.Names
	none.FromPayload("U1", "x")
	none.FromProfile(&slack.User{ID: "U1", Name: "x"})
	if got := none.Name("U1"); got != "" {
		t.Errorf("a nil directory named U1 %q", got)
	}
}
