// Package slackfake is a recording fake of the Slack Web API on httptest, for the bot's
// tests. It answers the methods the bot calls the way Slack does (including its errors,
// its length limits and 429 with Retry-After), records every call, and keeps the channel
// history so a test can assert on cards, thread replies and updates.
//
// slack-go's slacktest lacks chat.update, views.open, usergroups.users.list and
// response_url, and its message timestamps are whole seconds that collide; this fake has
// all of those and unique, increasing timestamps.
package slackfake

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/slack-go/slack"
)

// Slack's limits, as documented (characters, not bytes).
const (
	MaxTextLen        = 4000 // chat.postMessage / chat.update "text"
	MaxSectionTextLen = 3000 // a section block's text
	MaxSectionField   = 2000 // each of a section block's fields
	MaxBlocks         = 50   // blocks in one message
	MaxResponseURLUse = 5    // POSTs accepted by one response_url
)

// Identity the fake reports in auth.test.
const (
	TeamID    = "T0FAKE"
	BotUserID = "U0FAKEBOT"
	BotID     = "B0FAKEBOT"
)

// firstTS is the seconds part of the first message timestamp handed out.
const firstTS = 1700000000

// Call is one recorded HTTP call. Values holds form and query fields (slack-go sends most
// methods form-encoded, with blocks as a JSON string field); JSON holds the decoded body of
// JSON requests (views.open, response_url). Status is the HTTP status answered.
type Call struct {
	Method string
	Values url.Values
	JSON   map[string]any
	At     time.Time
	Status int
}

// Message is a message as the channel shows it now: Text and Blocks are the latest after
// any chat.update, and Updates counts those updates. Ephemeral messages have User set to
// the one user who sees them.
type Message struct {
	Channel   string
	TS        string
	ThreadTS  string
	Text      string
	Blocks    json.RawMessage
	Ephemeral bool
	User      string
	Updates   int
	// Metadata is the message metadata the poster set (nil when none).
	Metadata *slack.SlackMetadata
}

type rateLimit struct {
	n          int
	retryAfter time.Duration
}

type failure struct {
	err string
	n   int
}

// Server is the fake. Its methods are safe for concurrent use.
type Server struct {
	srv *httptest.Server

	mu           sync.Mutex
	calls        []Call
	messages     []*Message
	byTS         map[string]*Message // channel + "/" + ts
	deleted      map[string]bool
	users        map[string]slack.User
	groups       map[string][]string
	rateLimits   map[string]*rateLimit
	failures     map[string]*failure
	responseUses map[string]int
	seq          int64
	views        int
	homes        map[string][]HomeView // views.publish, by user
	ext          extensions
	changed      chan struct{}
	notify       chan struct{} // closed and replaced after every call, for WaitFor
}

// New starts a fake Slack on a local httptest server, closed by t.Cleanup.
func New(t testing.TB) *Server {
	t.Helper()
	s := &Server{
		ext:          newExtensions(),
		byTS:         map[string]*Message{},
		deleted:      map[string]bool{},
		users:        map[string]slack.User{},
		groups:       map[string][]string{},
		rateLimits:   map[string]*rateLimit{},
		failures:     map[string]*failure{},
		responseUses: map[string]int{},
		changed:      make(chan struct{}, 1),
		notify:       make(chan struct{}),
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serveHTTP))
	t.Cleanup(s.srv.Close)
	return s
}

// APIURL is the Web API base URL for slack.OptionAPIURL; it ends with "/".
func (s *Server) APIURL() string { return s.srv.URL + "/api/" }

// ResponseURL returns a slash-command or interaction response_url whose POSTs are recorded
// as calls to "response_url:" + name. Like Slack's, it accepts MaxResponseURLUse POSTs.
func (s *Server) ResponseURL(name string) string {
	return s.srv.URL + "/response/" + url.PathEscape(name)
}

// AddUser makes users.info answer for u.ID; unknown users get user_not_found.
func (s *Server) AddUser(u slack.User) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users[u.ID] = u
}

// SetGroup sets the members usergroups.users.list returns for a user group ID; unknown
// groups get no_such_subteam.
func (s *Server) SetGroup(id string, members []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.groups[id] = slices.Clone(members)
}

// RateLimit makes the next n calls to method answer HTTP 429 with a Retry-After header of
// retryAfter in whole seconds, rounded up, as Slack does.
func (s *Server) RateLimit(method string, n int, retryAfter time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rateLimits[method] = &rateLimit{n: n, retryAfter: retryAfter}
}

// FailNext makes the next n calls to method answer {"ok":false,"error":slackErr}.
func (s *Server) FailNext(method, slackErr string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures[method] = &failure{err: slackErr, n: n}
}

// DeleteMessage deletes a message as a user would: chat.update on it then answers
// message_not_found. It stays in Messages (a deleted parent keeps its thread in Slack).
func (s *Server) DeleteMessage(channel, ts string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deleted[channel+"/"+ts] = true
}

// Calls returns every call so far, in order.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// CallsTo returns the calls to one method ("chat.update", "response_url:cmd1"), in order.
func (s *Server) CallsTo(method string) []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Call
	for _, c := range s.calls {
		if c.Method == method {
			out = append(out, c)
		}
	}
	return out
}

// Messages returns the messages posted to channel, thread replies and ephemeral messages
// included, in post order, each with its latest text and blocks.
func (s *Server) Messages(channel string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Message
	for _, m := range s.messages {
		if m.Channel == channel {
			out = append(out, m.copy())
		}
	}
	return out
}

// Thread returns the replies in the thread of the message ts in channel (the parent
// itself excluded), in post order.
func (s *Server) Thread(channel, ts string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Message
	for _, m := range s.messages {
		if m.Channel == channel && m.ThreadTS == ts && m.TS != ts {
			out = append(out, m.copy())
		}
	}
	return out
}

// Changed receives after every recorded call (the send never blocks; the buffer holds
// one), so a single test goroutine can wait for activity without sleeping.
func (s *Server) Changed() <-chan struct{} { return s.changed }

// WaitFor waits until cond returns true, re-checking after every call the fake receives,
// and fails the test if that takes longer than timeout. Unlike Changed, it is safe for
// several waiters at once. cond may call the Server's methods.
func (s *Server) WaitFor(t testing.TB, timeout time.Duration, cond func(*Server) bool) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		next := s.notify
		s.mu.Unlock()
		if cond(s) {
			return
		}
		select {
		case <-next:
		case <-deadline.C:
			t.Fatalf("slackfake: condition not met within %v; calls so far: %s", timeout, s.callSummary())
			return
		}
	}
}

func (s *Server) callSummary() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.calls) == 0 {
		return "none"
	}
	parts := make([]string, 0, len(s.calls))
	for _, c := range s.calls {
		parts = append(parts, fmt.Sprintf("%s(%d)", c.Method, c.Status))
	}
	return strings.Join(parts, ", ")
}

func (m *Message) copy() Message {
	c := *m
	c.Blocks = slices.Clone(m.Blocks)
	return c
}

// request is one decoded call: form/query values and, for JSON bodies, the object.
type request struct {
	values url.Values
	json   map[string]any
	token  string
}

// param reads a field from the form or, for JSON requests, the top level of the body.
func (r request) param(name string) string {
	if v := r.values.Get(name); v != "" {
		return v
	}
	switch v := r.json[name].(type) {
	case nil:
		return ""
	case string:
		return v
	case bool:
		return strconv.FormatBool(v)
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	default:
		b, _ := json.Marshal(v)
		return string(b)
	}
}

// answer is what a handler decides: an HTTP status, headers and a JSON body.
type answer struct {
	status     int
	retryAfter string
	body       any
}

func ok(fields map[string]any) answer {
	if fields == nil {
		fields = map[string]any{}
	}
	fields["ok"] = true
	return answer{status: http.StatusOK, body: fields}
}

func fail(slackErr string) answer {
	return answer{status: http.StatusOK, body: map[string]any{"ok": false, "error": slackErr}}
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	req, err := decodeRequest(r)
	var method string
	switch {
	case strings.HasPrefix(r.URL.Path, "/api/"):
		method = strings.TrimPrefix(r.URL.Path, "/api/")
	case strings.HasPrefix(r.URL.Path, "/response/"):
		name, _ := url.PathUnescape(strings.TrimPrefix(r.URL.Path, "/response/"))
		method = "response_url:" + name
	default:
		method = "unknown:" + r.URL.Path
	}

	s.mu.Lock()
	var a answer
	switch {
	case err != nil:
		a = answer{status: http.StatusBadRequest, body: map[string]any{"ok": false, "error": "invalid_form_data"}}
	default:
		a = s.handleExt(method, req)
	}
	if a.status == http.StatusTooManyRequests {
		s.ext.limited[method]++
	}
	s.calls = append(s.calls, Call{Method: method, Values: req.values, JSON: req.json, At: time.Now(), Status: a.status})
	close(s.notify)
	s.notify = make(chan struct{})
	after := s.ext.takeAfter(method, req.param("channel"))
	s.mu.Unlock()

	select {
	case s.changed <- struct{}{}:
	default:
	}
	if after.drop {
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				conn.Close()
				return
			}
		}
	}
	if after.delay > 0 {
		select {
		case <-time.After(after.delay):
		case <-r.Context().Done():
			return
		}
	}
	if a.status == http.StatusServiceUnavailable {
		w.WriteHeader(a.status)
		return
	}

	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	if a.retryAfter != "" {
		w.Header().Set("Retry-After", a.retryAfter)
	}
	w.WriteHeader(a.status)
	_ = json.NewEncoder(w).Encode(a.body)
}

func decodeRequest(r *http.Request) (request, error) {
	req := request{values: url.Values{}}
	if auth, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		req.token = auth
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct == "application/json" {
		body, err := io.ReadAll(io.LimitReader(r.Body, 10<<20))
		if err != nil {
			return req, err
		}
		if len(body) > 0 {
			if err := json.Unmarshal(body, &req.json); err != nil {
				return req, err
			}
		}
		req.values = r.URL.Query()
	} else {
		if err := r.ParseForm(); err != nil {
			return req, err
		}
		req.values = r.Form
	}
	if t := req.values.Get("token"); t != "" {
		req.token = t
	}
	return req, nil
}

// handle runs with s.mu held.
func (s *Server) handle(method string, req request) answer {
	if rl := s.rateLimits[method]; rl != nil && rl.n > 0 {
		rl.n--
		secs := int64(math.Ceil(rl.retryAfter.Seconds()))
		return answer{status: http.StatusTooManyRequests, retryAfter: strconv.FormatInt(secs, 10),
			body: map[string]any{"ok": false, "error": "ratelimited"}}
	}
	if f := s.failures[method]; f != nil && f.n > 0 {
		f.n--
		return fail(f.err)
	}
	if name, ok := strings.CutPrefix(method, "response_url:"); ok {
		return s.responseURL(name)
	}
	if req.token == "" {
		return fail("not_authed")
	}
	switch method {
	case "auth.test":
		return ok(map[string]any{"url": "https://fake.slack.com/", "team": "Fake", "user": "failover-bot",
			"team_id": TeamID, "user_id": BotUserID, "bot_id": BotID})
	case "chat.postMessage":
		return s.postMessage(req)
	case "chat.postEphemeral":
		return s.postEphemeral(req)
	case "chat.update":
		return s.update(req)
	case "chat.getPermalink":
		ch, ts := req.param("channel"), req.param("message_ts")
		if s.byTS[ch+"/"+ts] == nil {
			return fail("message_not_found")
		}
		return ok(map[string]any{"channel": ch, "permalink": Permalink(ch, ts)})
	case "views.open":
		return s.viewsOpen(req)
	case "views.publish":
		return s.viewsPublish(req)
	case "users.info":
		u, found := s.users[req.param("user")]
		if !found {
			return fail("user_not_found")
		}
		return ok(map[string]any{"user": u})
	case "usergroups.users.list":
		members, found := s.groups[req.param("usergroup")]
		if !found {
			return fail("no_such_subteam")
		}
		if members == nil {
			members = []string{}
		}
		return ok(map[string]any{"users": members})
	case "conversations.info":
		ch := req.param("channel")
		if ch == "" {
			return fail("channel_not_found")
		}
		return ok(map[string]any{"channel": map[string]any{"id": ch, "name": strings.ToLower(ch), "is_channel": true, "is_member": true}})
	default:
		return answer{status: http.StatusNotFound, body: map[string]any{"ok": false, "error": "unknown_method"}}
	}
}

// Permalink is the link chat.getPermalink answers for a message.
func Permalink(channel, ts string) string {
	return "https://fake.slack.com/archives/" + channel + "/p" + strings.ReplaceAll(ts, ".", "")
}

func (s *Server) nextTS() string {
	s.seq++
	return fmt.Sprintf("%d.%06d", firstTS+s.seq/1_000_000, s.seq%1_000_000)
}

// content validates text and blocks as Slack does and returns the blocks to store.
func content(req request) (text string, blocks json.RawMessage, slackErr string) {
	text = req.param("text")
	if utf8.RuneCountInString(text) > MaxTextLen {
		return "", nil, "msg_too_long"
	}
	raw := req.param("blocks")
	if raw == "" || raw == "null" {
		if text == "" && req.param("attachments") == "" {
			return "", nil, "no_text"
		}
		return text, nil, ""
	}
	var bs []map[string]any
	if err := json.Unmarshal([]byte(raw), &bs); err != nil {
		return "", nil, "invalid_blocks_format"
	}
	if len(bs) > MaxBlocks {
		return "", nil, "invalid_blocks"
	}
	for _, b := range bs {
		if b["type"] != "section" {
			continue
		}
		if t, _ := b["text"].(map[string]any); t != nil {
			if s, _ := t["text"].(string); utf8.RuneCountInString(s) > MaxSectionTextLen {
				return "", nil, "invalid_blocks"
			}
		}
		if fields, _ := b["fields"].([]any); fields != nil {
			for _, f := range fields {
				fm, _ := f.(map[string]any)
				if s, _ := fm["text"].(string); utf8.RuneCountInString(s) > MaxSectionField {
					return "", nil, "invalid_blocks"
				}
			}
		}
	}
	return text, json.RawMessage(raw), ""
}

func (s *Server) postMessage(req request) answer {
	ch := req.param("channel")
	if ch == "" {
		return fail("channel_not_found")
	}
	thread := req.param("thread_ts")
	if thread != "" && s.byTS[ch+"/"+thread] == nil {
		return fail("thread_not_found")
	}
	text, blocks, e := content(req)
	if e != "" {
		return fail(e)
	}
	m := &Message{Channel: ch, TS: s.nextTS(), ThreadTS: thread, Text: text, Blocks: blocks}
	if raw := req.param("metadata"); raw != "" {
		var md slack.SlackMetadata
		if err := json.Unmarshal([]byte(raw), &md); err != nil {
			return fail("invalid_metadata_format")
		}
		m.Metadata = &md
	}
	s.messages = append(s.messages, m)
	s.byTS[ch+"/"+m.TS] = m
	msg := map[string]any{"type": "message", "text": text, "ts": m.TS, "user": BotUserID, "bot_id": BotID}
	if thread != "" {
		msg["thread_ts"] = thread
	}
	if blocks != nil {
		msg["blocks"] = blocks
	}
	return ok(map[string]any{"channel": ch, "ts": m.TS, "message": msg})
}

func (s *Server) postEphemeral(req request) answer {
	ch, user := req.param("channel"), req.param("user")
	if ch == "" {
		return fail("channel_not_found")
	}
	if user == "" {
		return fail("user_not_in_channel")
	}
	text, blocks, e := content(req)
	if e != "" {
		return fail(e)
	}
	// Ephemeral messages are not kept by Slack and cannot be updated, so they are not
	// indexed by ts.
	m := &Message{Channel: ch, TS: s.nextTS(), ThreadTS: req.param("thread_ts"), Text: text, Blocks: blocks, Ephemeral: true, User: user}
	s.messages = append(s.messages, m)
	return ok(map[string]any{"message_ts": m.TS})
}

func (s *Server) update(req request) answer {
	ch, ts := req.param("channel"), req.param("ts")
	key := ch + "/" + ts
	m := s.byTS[key]
	if m == nil || s.deleted[key] {
		return fail("message_not_found")
	}
	text, blocks, e := content(req)
	if e != "" {
		return fail(e)
	}
	// As in Slack, an update replaces the message: text without blocks drops the blocks.
	m.Text, m.Blocks = text, blocks
	m.Updates++
	return ok(map[string]any{"channel": ch, "ts": ts, "text": text})
}

func (s *Server) viewsOpen(req request) answer {
	if req.param("trigger_id") == "" {
		return fail("invalid_arguments")
	}
	view, _ := req.json["view"].(map[string]any)
	if view == nil {
		if raw := req.values.Get("view"); raw != "" {
			if err := json.Unmarshal([]byte(raw), &view); err != nil {
				return fail("invalid_arguments")
			}
		}
	}
	if view == nil {
		return fail("invalid_arguments")
	}
	s.views++
	out := map[string]any{}
	for k, v := range view {
		out[k] = v
	}
	out["id"] = fmt.Sprintf("V%06d", s.views)
	out["team_id"] = TeamID
	return ok(map[string]any{"view": out})
}

func (s *Server) responseURL(name string) answer {
	s.responseUses[name]++
	if s.responseUses[name] > MaxResponseURLUse {
		return answer{status: http.StatusNotFound, body: map[string]any{"ok": false, "error": "used_url"}}
	}
	return ok(nil)
}
