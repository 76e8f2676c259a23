package slackfake

import (
	"encoding/json"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Limits are Slack's rate limits, enforced when set with EnforceLimits. Zero rates mean no
// limit for that method.
type Limits struct {
	// PostPerSecond limits chat.postMessage per channel (Slack: about 1 per second, short
	// bursts tolerated), with a bucket of PostBurst (default 1).
	PostPerSecond float64
	PostBurst     int
	// UpdatesPerMinute limits chat.update per workspace across all messages (Slack's Tier 3:
	// about 50 per minute), with a bucket of UpdateBurst (default 1).
	UpdatesPerMinute float64
	UpdateBurst      int
	// PublishesPerMinute limits views.publish per workspace (Slack's Tier 4: 100+ per minute),
	// with a bucket of PublishBurst (default 1).
	PublishesPerMinute float64
	PublishBurst       int
}

type bucket struct {
	tokens float64
	last   time.Time
}

// take refills at rate per second up to burst and takes a token, or says how long until one.
func (b *bucket) take(now time.Time, rate float64, burst int) (bool, time.Duration) {
	if b.last.IsZero() {
		b.tokens, b.last = float64(burst), now
	}
	b.tokens = math.Min(float64(burst), b.tokens+now.Sub(b.last).Seconds()*rate)
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	return false, time.Duration((1 - b.tokens) / rate * float64(time.Second))
}

type afterCall struct {
	delay time.Duration
	drop  bool
}

type scripted struct {
	n     int
	delay time.Duration
	drop  bool
}

// extensions is the fake's scripting beyond single answers; guarded by Server.mu.
type extensions struct {
	limits      Limits
	posts       map[string]*bucket // by channel
	updates     bucket
	publishes   bucket
	limited     map[string]int
	after       map[string]*scripted
	failChannel map[string]string
	failAll     string
	outage      bool
}

func newExtensions() extensions {
	return extensions{posts: map[string]*bucket{}, limited: map[string]int{}, after: map[string]*scripted{}, failChannel: map[string]string{}}
}

func (e *extensions) takeAfter(method, channel string) afterCall {
	sc := e.after[method+":"+channel]
	if sc == nil || sc.n <= 0 {
		sc = e.after[method]
	}
	if sc == nil || sc.n <= 0 {
		return afterCall{}
	}
	sc.n--
	return afterCall{delay: sc.delay, drop: sc.drop}
}

// EnforceLimits makes the fake limit chat.postMessage per channel, and chat.update and
// views.publish per workspace, as Slack does, answering 429 with Retry-After when a bucket is empty.
func (s *Server) EnforceLimits(l Limits) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if l.PostBurst <= 0 {
		l.PostBurst = 1
	}
	if l.UpdateBurst <= 0 {
		l.UpdateBurst = 1
	}
	if l.PublishBurst <= 0 {
		l.PublishBurst = 1
	}
	s.ext.limits = l
}

// RateLimited returns how many 429s the fake answered, by method.
func (s *Server) RateLimited() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for k, v := range s.ext.limited {
		out[k] = v
	}
	return out
}

// DelayAnswer processes the next n calls to method (a posted message is stored) and then
// holds the answer for d: Slack stored the card, its answer is late. method may name one
// channel, "chat.postMessage:C123", to script only the calls naming it.
func (s *Server) DelayAnswer(method string, n int, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ext.after[method] = &scripted{n: n, delay: d}
}

// DropAnswer processes the next n calls to method and closes the connection without an
// answer: Slack stored the message, the poster never learns its ts.
func (s *Server) DropAnswer(method string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ext.after[method] = &scripted{n: n, drop: true}
}

// FailChannel makes every chat.postMessage, chat.update and conversations.history naming
// channel answer slackErr (channel_not_found, not_in_channel, is_archived) until ClearChannel.
func (s *Server) FailChannel(channel, slackErr string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ext.failChannel[channel] = slackErr
}

// ClearChannel ends FailChannel.
func (s *Server) ClearChannel(channel string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.ext.failChannel, channel)
}

// FailAll makes every Web API call answer slackErr (invalid_auth, token_revoked) until
// FailAll("").
func (s *Server) FailAll(slackErr string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ext.failAll = slackErr
}

// Outage makes every Web API call answer HTTP 503 with an empty body while on.
func (s *Server) Outage(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ext.outage = on
}

// CallsIn counts chat.postMessage and chat.update calls naming channel, whatever their answer.
func (s *Server) CallsIn(channel string) int {
	n := 0
	for _, c := range s.CallsInByMethod(channel) {
		n += c
	}
	return n
}

// CallsInByMethod counts chat.postMessage and chat.update calls naming channel, by method.
func (s *Server) CallsInByMethod(channel string) map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for _, c := range s.calls {
		if (c.Method == "chat.postMessage" || c.Method == "chat.update") && c.Values.Get("channel") == channel {
			out[c.Method]++
		}
	}
	return out
}

// Posted returns the channel's non-ephemeral messages in the order Slack stored them.
func (s *Server) Posted(channel string) []Message {
	var out []Message
	for _, m := range s.Messages(channel) {
		if !m.Ephemeral {
			out = append(out, m)
		}
	}
	return out
}

// LiveCards returns the cards of requestID (messages whose metadata is the bot's card for it)
// that are not deleted and still offer a decision: an Approve or Reject button, or the Continue
// of a halted plan. A running failover's Stop button does not make a card live: it only opens a
// dialog.
func (s *Server) LiveCards(requestID string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Message
	for _, m := range s.messages {
		if m.Metadata == nil || m.Metadata.EventType != "failover_card" || s.deleted[m.Channel+"/"+m.TS] {
			continue
		}
		if id, _ := m.Metadata.EventPayload["request_id"].(string); id != requestID {
			continue
		}
		if b := string(m.Blocks); strings.Contains(b, `"action_id":"fo_approve"`) || strings.Contains(b, `"action_id":"fo_reject"`) || strings.Contains(b, `"action_id":"fo_continue"`) {
			out = append(out, m.copy())
		}
	}
	return out
}

// handleExt applies outages, permanent failures and rate limits before handle; s.mu is held.
func (s *Server) handleExt(method string, req request) answer {
	if strings.HasPrefix(method, "response_url:") {
		return s.handle(method, req)
	}
	if s.ext.outage {
		return answer{status: http.StatusServiceUnavailable}
	}
	if s.ext.failAll != "" {
		return fail(s.ext.failAll)
	}
	ch := req.param("channel")
	switch method {
	case "chat.postMessage", "chat.update", "conversations.history":
		if e := s.ext.failChannel[ch]; e != "" {
			return fail(e)
		}
	}
	now := time.Now()
	l := s.ext.limits
	retry := func(wait time.Duration) answer {
		secs := int64(math.Max(1, math.Ceil(wait.Seconds())))
		return answer{status: http.StatusTooManyRequests, retryAfter: strconv.FormatInt(secs, 10),
			body: map[string]any{"ok": false, "error": "ratelimited"}}
	}
	switch {
	case method == "chat.postMessage" && l.PostPerSecond > 0:
		b := s.ext.posts[ch]
		if b == nil {
			b = &bucket{}
			s.ext.posts[ch] = b
		}
		if okay, wait := b.take(now, l.PostPerSecond, l.PostBurst); !okay {
			return retry(wait)
		}
	case method == "chat.update" && l.UpdatesPerMinute > 0:
		if okay, wait := s.ext.updates.take(now, l.UpdatesPerMinute/60, l.UpdateBurst); !okay {
			return retry(wait)
		}
	case method == "views.publish" && l.PublishesPerMinute > 0:
		if okay, wait := s.ext.publishes.take(now, l.PublishesPerMinute/60, l.PublishBurst); !okay {
			return retry(wait)
		}
	case method == "conversations.history":
		if req.token == "" {
			return fail("not_authed")
		}
		return s.history(req)
	}
	return s.handle(method, req)
}

// history answers conversations.history: top-level messages, newest first, with paging.
func (s *Server) history(req request) answer {
	ch := req.param("channel")
	if ch == "" {
		return fail("channel_not_found")
	}
	oldest, latest := req.param("oldest"), req.param("latest")
	limit, _ := strconv.Atoi(req.param("limit"))
	if limit <= 0 {
		limit = 100
	}
	limit = min(limit, 999)
	withMeta := req.param("include_all_metadata") == "1" || req.param("include_all_metadata") == "true"
	start, _ := strconv.Atoi(req.param("cursor"))
	var top []*Message
	replies := map[string]bool{}
	for _, m := range s.messages {
		if m.Channel == ch && m.ThreadTS != "" && m.ThreadTS != m.TS {
			replies[m.ThreadTS] = true
		}
	}
	for _, m := range s.messages {
		if m.Channel != ch || m.Ephemeral || (m.ThreadTS != "" && m.ThreadTS != m.TS) || s.deleted[ch+"/"+m.TS] {
			continue
		}
		if (oldest != "" && tsLess(m.TS, oldest, true)) || (latest != "" && !tsLess(m.TS, latest, false)) {
			continue
		}
		top = append(top, m)
	}
	slices.Reverse(top)
	var out []map[string]any
	end := min(start+limit, len(top))
	if start > len(top) {
		start = len(top)
	}
	for _, m := range top[start:end] {
		msg := map[string]any{"type": "message", "ts": m.TS, "text": m.Text, "user": BotUserID, "bot_id": BotID}
		if m.Blocks != nil {
			msg["blocks"] = json.RawMessage(m.Blocks)
		}
		if replies[m.TS] {
			msg["thread_ts"] = m.TS
		}
		if withMeta && m.Metadata != nil {
			msg["metadata"] = m.Metadata
		}
		out = append(out, msg)
	}
	if out == nil {
		out = []map[string]any{}
	}
	fields := map[string]any{"messages": out, "has_more": end < len(top)}
	if end < len(top) {
		fields["response_metadata"] = map[string]any{"next_cursor": strconv.Itoa(end)}
	}
	return ok(fields)
}

// tsLess compares Slack timestamps (seconds.micros); orEqual makes it "<=" for exclusive bounds.
func tsLess(a, b string, orEqual bool) bool {
	fa, _ := strconv.ParseFloat(a, 64)
	fb, _ := strconv.ParseFloat(b, 64)
	if orEqual {
		return fa <= fb
	}
	return fa < fb
}
