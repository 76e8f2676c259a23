package slackfake

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"
	"unicode/utf8"
)

// Slack's limits on a published App Home view, as documented.
const (
	MaxHomeBlocks     = 100       // blocks in a home view
	MaxHeaderTextLen  = 150       // a header block's plain text
	MaxContextElems   = 10        // elements of a context block
	MaxViewBytes      = 250 << 10 // the view's JSON; larger is view_too_large
	MaxCallbackIDLen  = 255
	maxViewMetadataLn = 3000 // private_metadata
)

// HomeView is one view published to a user's App Home with views.publish.
type HomeView struct {
	User   string
	ID     string
	Blocks json.RawMessage
	At     time.Time
}

// Homes returns every home view published to user, oldest first: the last one is what the
// user's Home tab shows.
func (s *Server) Homes(user string) []HomeView {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := slices.Clone(s.homes[user])
	for i := range out {
		out[i].Blocks = slices.Clone(out[i].Blocks)
	}
	return out
}

// Home returns the view user's Home tab shows now, and whether one was ever published.
func (s *Server) Home(user string) (HomeView, bool) {
	h := s.Homes(user)
	if len(h) == 0 {
		return HomeView{}, false
	}
	return h[len(h)-1], true
}

// viewsPublish answers views.publish for a home view: it validates the view as Slack does
// (invalid_arguments for a view Block Kit refuses, view_too_large over 250 KB) and records it
// as the user's Home.
func (s *Server) viewsPublish(req request) answer {
	user := req.param("user_id")
	view, _ := req.json["view"].(map[string]any)
	if view == nil {
		if raw := req.values.Get("view"); raw != "" {
			if err := json.Unmarshal([]byte(raw), &view); err != nil {
				return fail("invalid_arguments")
			}
		}
	}
	if user == "" || view == nil {
		return fail("invalid_arguments")
	}
	raw, _ := json.Marshal(view)
	if len(raw) > MaxViewBytes {
		return fail("view_too_large")
	}
	if e := validateHomeView(view); e != "" {
		return fail(e)
	}
	blocks, _ := json.Marshal(view["blocks"])
	s.views++
	id := fmt.Sprintf("V%06d", s.views)
	if s.homes == nil {
		s.homes = map[string][]HomeView{}
	}
	s.homes[user] = append(s.homes[user], HomeView{User: user, ID: id, Blocks: blocks, At: time.Now()})
	out := map[string]any{}
	for k, v := range view {
		out[k] = v
	}
	out["id"], out["team_id"], out["hash"] = id, TeamID, fmt.Sprintf("%d.%s", firstTS+s.views, id)
	return ok(map[string]any{"view": out})
}

// validateHomeView checks what Slack checks of a home view that the bot could get wrong: its
// type, its block count and the length limits of its blocks' texts.
func validateHomeView(view map[string]any) string {
	if view["type"] != "home" {
		return "invalid_arguments"
	}
	if s, _ := view["callback_id"].(string); utf8.RuneCountInString(s) > MaxCallbackIDLen {
		return "invalid_arguments"
	}
	if s, _ := view["private_metadata"].(string); utf8.RuneCountInString(s) > maxViewMetadataLn {
		return "invalid_arguments"
	}
	bs, ok := view["blocks"].([]any)
	if !ok || len(bs) > MaxHomeBlocks {
		return "invalid_arguments"
	}
	text := func(o any) string {
		m, _ := o.(map[string]any)
		s, _ := m["text"].(string)
		return s
	}
	for _, raw := range bs {
		b, _ := raw.(map[string]any)
		switch b["type"] {
		case "header":
			if n := utf8.RuneCountInString(text(b["text"])); n == 0 || n > MaxHeaderTextLen {
				return "invalid_arguments"
			}
		case "section":
			t := text(b["text"])
			fields, _ := b["fields"].([]any)
			if utf8.RuneCountInString(t) > MaxSectionTextLen || (t == "" && len(fields) == 0) {
				return "invalid_arguments"
			}
			for _, f := range fields {
				if utf8.RuneCountInString(text(f)) > MaxSectionField {
					return "invalid_arguments"
				}
			}
		case "context":
			els, _ := b["elements"].([]any)
			if len(els) == 0 || len(els) > MaxContextElems {
				return "invalid_arguments"
			}
			for _, e := range els {
				if utf8.RuneCountInString(text(e)) > MaxSectionTextLen {
					return "invalid_arguments"
				}
			}
		case "divider", "actions", "image", "input", "rich_text", "table":
		default:
			return "invalid_arguments"
		}
	}
	return ""
}
