// Package console puts a terminal in place of Slack: people type what they would type in Slack,
// play several users, click buttons by typing, and see cards, thread replies and audit events as
// text. The bot behind it is the real one: same parser, store, approval rules, poller and messages.
package console

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/slack-go/slack"

	"github.com/failover-bot/failover-bot/bot"
	"github.com/failover-bot/failover-bot/bot/core"
	"github.com/failover-bot/failover-bot/store"
)

// Channel is the one channel the console plays in; AuditChannel receives audit events.
const (
	Channel      = "CCONSOLE1"
	AuditChannel = "CAUDIT001"
	// TeamID is the console's workspace, as its auth.test reports it.
	TeamID = "T0CONSOLE"
)

// User is a person the console can play.
type User struct {
	ID, Name string
	Guest    bool
}

// Terminal is a Slack Web API endpoint that prints (see ServeHTTP), and reads the person's input.
type Terminal struct {
	out    io.Writer
	users  map[string]User // by ID
	byName map[string]User

	mu    sync.Mutex
	seq   int
	cards map[string]string // ts -> request ID, to label thread replies
	// tables is the item table each card last showed, by ts: an update prints it when it changed.
	tables map[string]string
	who    User
	// started and triggers make trigger_ids unique across console runs on one store, as
	// Slack's are: the bot remembers them to refuse replays.
	started  int64
	triggers int
	// views are the stop dialogs the bot opened (views.open), by trigger_id: a typed stop submits
	// the dialog its click opened, with the private_metadata the bot gave it, as Slack does.
	views map[string]openedView
	viewN int
	// temporary is Run's Session.Temporary: the store goes with the console.
	temporary bool
}

// openedView is what the console keeps of a dialog the bot opened.
type openedView struct {
	ID, CallbackID, PrivateMetadata string
}

// New returns a Terminal writing to out, playing users (the first is the current one).
func New(out io.Writer, users []User) *Terminal {
	t := &Terminal{out: out, users: map[string]User{}, byName: map[string]User{}, cards: map[string]string{}, tables: map[string]string{},
		views: map[string]openedView{}, started: time.Now().UnixNano()}
	for _, u := range users {
		t.users[u.ID] = u
		t.byName[strings.ToLower(u.Name)] = u
	}
	if len(users) > 0 {
		t.who = users[0]
	}
	return t
}

func (t *Terminal) nextTS() string {
	t.seq++
	return fmt.Sprintf("%d.%06d", time.Now().Unix(), t.seq)
}

func (t *Terminal) printf(format string, args ...any) {
	fmt.Fprintf(t.out, format, args...)
}

// mentionRE matches Slack's <@U…>, <#C…>, <!subteam^S…> and <url|label> forms.
var mentionRE = regexp.MustCompile(`<([@#!]?)([^>|]+)(?:\|([^>]*))?>`)

// plain turns Slack mrkdwn into terminal text: mentions become @names, links their labels.
func (t *Terminal) plain(s string) string {
	s = mentionRE.ReplaceAllStringFunc(s, func(m string) string {
		p := mentionRE.FindStringSubmatch(m)
		switch p[1] {
		case "@":
			if u, ok := t.users[p[2]]; ok {
				return "@" + u.Name
			}
			return "@" + p[2]
		case "#":
			return "#" + p[2]
		default:
			if p[3] != "" {
				return p[3]
			}
			return p[2]
		}
	})
	s = stripEmoji(s)
	return strings.NewReplacer("&lt;", "<", "&gt;", ">", "&amp;", "&", "*", "", "`", "").Replace(s)
}

// lines prints s after prefix, its continuation lines aligned under the first.
func (t *Terminal) lines(prefix, s string) {
	for _, line := range strings.Split(s, "\n") {
		t.printf("%s%s\n", prefix, line)
		prefix = strings.Repeat(" ", utf8.RuneCountInString(prefix))
	}
}

// section turns a section's mrkdwn into terminal lines. A ``` block (the card's item table) keeps
// its rows as they are, indented, so its columns line up; the rest is plain text.
func (t *Terminal) section(s string) string {
	parts := strings.Split(s, "```")
	var out []string
	for i, p := range parts {
		if i%2 == 0 || i == len(parts)-1 { // outside a block, or an unclosed fence
			if p = strings.Trim(t.plain(p), "\n"); p != "" {
				out = append(out, p)
			}
			continue
		}
		p = strings.NewReplacer("&lt;", "<", "&gt;", ">", "&amp;", "&").Replace(strings.Trim(p, "\n"))
		for _, row := range strings.Split(p, "\n") {
			out = append(out, "  "+row)
		}
	}
	return strings.Join(out, "\n")
}

// itemTable returns the lines of a card's item table (its counts, rows and the note on rows
// left out), or nil when the card has none.
func (t *Terminal) itemTable(blocksJSON string) []string {
	var blocks slack.Blocks
	if blocksJSON == "" || json.Unmarshal([]byte(blocksJSON), &blocks) != nil {
		return nil
	}
	var out []string
	in := false
	for _, b := range blocks.BlockSet {
		switch b := b.(type) {
		case *slack.SectionBlock:
			if b.BlockID == tableCounts {
				in = true
			} else if b.BlockID != "" {
				in = false
			}
			if in && b.Text != nil {
				out = append(out, strings.Split(t.section(b.Text.Text), "\n")...)
			}
		case *slack.ContextBlock:
			if in && b.BlockID == tableMore {
				for _, e := range b.ContextElements.Elements {
					if tb, ok := e.(*slack.TextBlockObject); ok {
						out = append(out, t.plain(tb.Text))
					}
				}
			}
			in = false
		default:
			in = false
		}
	}
	return out
}

// The card's item table: a section with the counts (tableCounts), monospace sections of rows
// without a block ID, and perhaps a context saying how many rows are not listed (tableMore).
const (
	tableCounts = "fo_counts"
	tableMore   = "fo_table_more"
)

// showTable prints the item table of the card at ts under its update line, unless that card
// last showed the same table: the table is where a request of many shows each item's progress.
func (t *Terminal) showTable(ts, blocksJSON string) {
	rows := t.itemTable(blocksJSON)
	key := strings.Join(rows, "\n")
	if len(rows) == 0 || t.tables[ts] == key {
		return
	}
	t.tables[ts] = key
	for _, row := range rows {
		t.printf("      %s\n", row)
	}
}

// renderActions prints only the action blocks of a message.
func (t *Terminal) renderActions(prefix, blocksJSON string) {
	var blocks slack.Blocks
	if err := json.Unmarshal([]byte(blocksJSON), &blocks); err != nil {
		return
	}
	var actions []slack.Block
	for _, b := range blocks.BlockSet {
		if _, ok := b.(*slack.ActionBlock); ok {
			actions = append(actions, b)
		}
	}
	data, err := json.Marshal(actions)
	if err == nil && len(actions) > 0 {
		t.render(prefix, "", string(data))
	}
}

// render prints a message's blocks (or its text) indented by prefix.
func (t *Terminal) render(prefix, text, blocksJSON string) {
	if blocksJSON == "" {
		t.lines(prefix, t.plain(text))
		return
	}
	var blocks slack.Blocks
	if err := json.Unmarshal([]byte(blocksJSON), &blocks); err != nil {
		t.printf("%s%s\n", prefix, t.plain(text))
		return
	}
	for _, b := range blocks.BlockSet {
		switch b := b.(type) {
		case *slack.HeaderBlock:
			t.printf("%s== %s ==\n", prefix, b.Text.Text)
		case *slack.SectionBlock:
			if b.Text != nil {
				t.lines(prefix, t.section(b.Text.Text))
			}
			for _, f := range b.Fields {
				t.printf("%s  %s\n", prefix, strings.ReplaceAll(t.plain(f.Text), "\n", ": "))
			}
		case *slack.ContextBlock:
			for _, e := range b.ContextElements.Elements {
				if tb, ok := e.(*slack.TextBlockObject); ok {
					t.printf("%s%s\n", prefix, t.plain(tb.Text))
				}
			}
		case *slack.ActionBlock:
			var names, typed []string
			for _, e := range b.Elements.ElementSet {
				if btn, ok := e.(*slack.ButtonBlockElement); ok {
					names = append(names, "["+btn.Text.Text+"]")
					if h, ok := typedClicks[btn.ActionID]; ok {
						typed = append(typed, h)
					}
				}
			}
			if len(typed) > 0 {
				t.printf("%s%s   (type: %s)\n", prefix, strings.Join(names, " "), strings.Join(typed, " | "))
			} else {
				t.printf("%s%s\n", prefix, strings.Join(names, " "))
			}
		}
	}
}

// The IDs of the stop button and dialog (bot/stop.go): a typed stop carries them as Slack does.
const (
	actionStop    = "fo_stop"
	callbackStop  = "fo_stop_modal"
	blockStopWhy  = "fo_stop_reason"
	actionStopWhy = "fo_stop_reason_input"
)

// typedClicks is how each button of a card is typed in the console.
var typedClicks = map[string]string{
	"fo_approve":  "approve <id>",
	"fo_reject":   `reject <id> "<reason>"`,
	"fo_continue": "continue <id>",
	"fo_stop":     `stop <id> "<reason>"`,
}

// ServeHTTP answers the Slack Web API methods the bot calls, printing what they carry. The bot
// talks to the console through a genuine slack.Client, so the console exercises the same code
// (form encoding, Block Kit JSON, errors) as production.
func (t *Terminal) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		writeSlack(w, map[string]any{"ok": false, "error": "invalid_form_data"})
		return
	}
	method := path.Base(r.URL.Path)
	f := r.Form
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		var body map[string]any
		_ = json.NewDecoder(r.Body).Decode(&body)
		for k, v := range body {
			if s, ok := v.(string); ok {
				f.Set(k, s)
			} else if js, err := json.Marshal(v); err == nil {
				f.Set(k, string(js)) // a view or blocks: JSON, as a form carries them
			}
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	switch method {
	case "chat.postMessage":
		ts := t.nextTS()
		switch {
		case f.Get("channel") == AuditChannel:
			t.render("[audit] ", f.Get("text"), "")
		case f.Get("thread_ts") != "":
			t.render("    ↳ ", f.Get("text"), f.Get("blocks"))
		default:
			t.printf("\n")
			t.render("", f.Get("text"), f.Get("blocks"))
			t.printf("\n")
			if rows := t.itemTable(f.Get("blocks")); len(rows) > 0 {
				t.tables[ts] = strings.Join(rows, "\n")
			}
		}
		writeSlack(w, map[string]any{"ok": true, "channel": f.Get("channel"), "ts": ts})
	case "chat.update":
		t.printf("  ~ card updated: %s\n", t.plain(stripEmoji(f.Get("text"))))
		t.showTable(f.Get("ts"), f.Get("blocks"))
		if strings.Contains(f.Get("blocks"), `"fo_continue"`) {
			// A halted plan's card asks for a decision: show its buttons as a new card would.
			t.renderActions("      ", f.Get("blocks"))
		}
		writeSlack(w, map[string]any{"ok": true, "channel": f.Get("channel"), "ts": f.Get("ts"), "text": f.Get("text")})
	case "chat.postEphemeral":
		t.render("  (only @"+t.users[f.Get("user")].Name+" sees) ", f.Get("text"), "")
		writeSlack(w, map[string]any{"ok": true, "message_ts": t.nextTS()})
	case "views.open":
		// The reject and stop dialogs: in the console the reason is typed with the command. The
		// stop dialog is recorded for the submission a typed stop sends, and printed: it says
		// what stopping does and cannot undo.
		var v struct {
			CallbackID      string                 `json:"callback_id"`
			PrivateMetadata string                 `json:"private_metadata"`
			Title           *slack.TextBlockObject `json:"title"`
			Blocks          json.RawMessage        `json:"blocks"`
		}
		trigger := f.Get("trigger_id")
		if err := json.Unmarshal([]byte(f.Get("view")), &v); err != nil || trigger == "" {
			writeSlack(w, map[string]any{"ok": false, "error": "invalid_arguments"})
			return
		}
		t.viewN++
		id := fmt.Sprintf("V0CONSOLE%d", t.viewN)
		if v.CallbackID == callbackStop {
			t.views[trigger] = openedView{ID: id, CallbackID: v.CallbackID, PrivateMetadata: v.PrivateMetadata}
			title := "dialog"
			if v.Title != nil {
				title = v.Title.Text
			}
			t.printf("  [dialog: %s]\n", title)
			t.render("  | ", "", string(v.Blocks))
		}
		writeSlack(w, map[string]any{"ok": true, "view": map[string]any{"id": id}})
	case "users.info":
		u, ok := t.users[f.Get("user")]
		if !ok {
			writeSlack(w, map[string]any{"ok": false, "error": "user_not_found"})
			return
		}
		writeSlack(w, map[string]any{"ok": true, "user": slack.User{ID: u.ID, Name: u.Name, IsRestricted: u.Guest}})
	case "usergroups.users.list":
		writeSlack(w, map[string]any{"ok": false, "error": "no_such_subteam"})
	case "conversations.history":
		// The console keeps no history: a card whose post was cut short is posted again.
		writeSlack(w, map[string]any{"ok": true, "messages": []any{}, "has_more": false})
	case "auth.test":
		writeSlack(w, map[string]any{"ok": true, "url": "https://console.invalid/", "team": "console", "team_id": TeamID, "user_id": "U0BOTUSER"})
	default:
		writeSlack(w, map[string]any{"ok": false, "error": "unknown_method"})
	}
}

func writeSlack(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// stripEmoji drops a leading :emoji: code, which a terminal shows as noise.
func stripEmoji(s string) string {
	return emojiRE.ReplaceAllString(s, "")
}

// Emoji codes start with a letter, so times such as 07:00:00 are left alone.
var emojiRE = regexp.MustCompile(`:[a-z][a-z0-9_+-]*: ?`)

// Bot is what the console needs of the bot: commands, clicks and dialog submissions, and a way
// to wait until their work is done. *bot.Bot implements it; tests record the payloads instead.
type Bot interface {
	HandleCommand(ctx context.Context, sc slack.SlashCommand) bot.Response
	HandleInteraction(ctx context.Context, cb slack.InteractionCallback) any
	Idle(ctx context.Context) error
}

// Requests is what the console needs from the store to turn a typed click into Slack's payload.
type Requests interface {
	Get(ctx context.Context, id string) (*store.Request, error)
	Active(ctx context.Context) ([]*store.Request, error)
}

// Session says how Run reads its input and ends.
type Session struct {
	// Interactive is a person at a terminal: a prompt is shown and typed lines are not echoed.
	Interactive bool
	// Settle is how long Run waits at end of input for running failovers to reach an outcome, so
	// a piped script shows the whole story.
	Settle time.Duration
	// Temporary says the store is deleted when the console ends (no DB_PATH): quitting while
	// failovers run would lose them, so quit asks to be confirmed.
	Temporary bool
}

// The ways to end a console: quit (asks again while failovers run on a temporary store) and
// quit! (at once).
const (
	quitHelp = "quit (quit! leaves at once)"
)

// Run reads lines from in until it ends, a quit, or ctx is done (SIGINT or SIGTERM), and returns
// ctx's error in the last case. It stops reading at once when ctx ends, even while a read waits
// for the person: the goroutine reading in then ends with in (or the process), and nothing is
// acted on after Run returns.
func (t *Terminal) Run(ctx context.Context, b Bot, st Requests, in io.Reader, s Session) error {
	t.printf("failover-bot console. You are @%s. Type /failover help, /as <name> (%s), approve <id>, reject <id> \"<reason>\", continue <id>, stop <id> \"<reason>\", %s.\n",
		t.who.Name, strings.Join(t.names(), ", "), quitHelp)
	rctx, stopReading := context.WithCancel(ctx)
	defer stopReading()
	lines, readErr := readLines(rctx, in)
	t.mu.Lock()
	t.temporary = s.Temporary
	t.mu.Unlock()
	prompt := func() {
		if s.Interactive {
			t.mu.Lock()
			t.printf("@%s> ", t.who.Name)
			t.mu.Unlock()
		}
	}
	prompt()
	quitAsked := false // the last line was a quit the console asked to confirm
	for {
		var line string
		select {
		case <-ctx.Done():
			t.interrupted(st, s)
			return ctx.Err()
		case l, ok := <-lines:
			if !ok {
				if err := <-readErr; err != nil {
					return err
				}
				return t.settle(ctx, b, st, s.Settle, true)
			}
			line = strings.TrimSpace(l)
		}
		if line == "" || strings.HasPrefix(line, "#") {
			prompt()
			continue
		}
		if !s.Interactive {
			t.mu.Lock()
			t.printf("@%s> %s\n", t.who.Name, line)
			t.mu.Unlock()
		}
		switch strings.ToLower(line) {
		case "quit!", "exit!":
			return nil
		case "quit", "exit":
			if quitAsked || t.mayQuit(ctx, st, s) {
				return nil
			}
			quitAsked = true
			prompt()
			continue
		}
		quitAsked = false
		t.handle(ctx, b, st, line)
		if !s.Interactive {
			// Scripts read like a conversation: let each step's messages appear before the next.
			ictx, cancel := context.WithTimeout(ctx, 30*time.Second)
			_ = b.Idle(ictx)
			cancel()
		}
		prompt()
	}
}

// readLines reads in line by line on its own goroutine, so Run can stop while a read waits for
// the person. The goroutine stops sending when ctx ends; a read in progress then ends with in.
func readLines(ctx context.Context, in io.Reader) (<-chan string, <-chan error) {
	lines, errc := make(chan string), make(chan error, 1)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(in)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-ctx.Done():
				errc <- nil
				return
			}
		}
		errc <- sc.Err()
	}()
	return lines, errc
}

// busy counts the requests on their way through EM (not those waiting for a person: pending, or
// a plan halted for Continue), and the requests waiting for a person.
func busy(reqs []*store.Request) (running, waiting int) {
	for _, r := range reqs {
		if r.State == store.Pending || r.State == store.Halted {
			waiting++
		} else {
			running++
		}
	}
	return running, waiting
}

// mayQuit says whether quit can end the console now. On a temporary store with failovers running
// it warns (how many, and what quitting loses) and asks for quit again or quit!; with DB_PATH the
// store keeps them for the next start, which is said.
func (t *Terminal) mayQuit(ctx context.Context, st Requests, s Session) bool {
	reqs, err := st.Active(ctx)
	if err != nil {
		t.say("I could not read the running failovers (%v); type quit! to quit anyway.", err)
		return false
	}
	running, waiting := busy(reqs)
	switch {
	case running == 0:
		return true
	case !s.Temporary:
		t.say("%s still running; the store (DB_PATH) keeps %s, and the next start follows %s to the end.",
			failovers(running), them(running), them(running))
		return true
	}
	also := ""
	if waiting > 0 {
		also = fmt.Sprintf(" (and %d waiting for a person)", waiting)
	}
	t.say("%s still running%s, and this console's store is temporary: quitting now deletes it, so nothing follows %s to the end or keeps %s record. "+
		"Type quit again (or quit!) to quit anyway, or wait to let %s finish. (Set DB_PATH to keep the store next time.)",
		failovers(running), also, them(running), their(running), them(running))
	return false
}

// interrupted says, after SIGINT or SIGTERM, what becomes of the running failovers.
func (t *Terminal) interrupted(st Requests, s Session) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	msg := "stopping (signal)."
	if reqs, err := st.Active(ctx); err == nil {
		if running, _ := busy(reqs); running > 0 && s.Temporary {
			lost := "1 running failover is"
			if running > 1 {
				lost = fmt.Sprintf("%d running failovers are", running)
			}
			msg = fmt.Sprintf("stopping (signal): %s lost with this console's temporary store.", lost)
		} else if running > 0 {
			msg = fmt.Sprintf("stopping (signal): %s still running; the store (DB_PATH) keeps %s for the next start.", failovers(running), them(running))
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.printf("\n  %s\n", msg)
}

func failovers(n int) string {
	if n == 1 {
		return "1 failover is"
	}
	return fmt.Sprintf("%d failovers are", n)
}

func them(n int) string {
	if n == 1 {
		return "it"
	}
	return "them"
}

func their(n int) string {
	if n == 1 {
		return "its"
	}
	return "their"
}

func (t *Terminal) names() []string {
	var n []string
	for name := range t.byName {
		n = append(n, name)
	}
	sort.Strings(n)
	return n
}

// slackEscaper is what Slack does to a slash command's text before sending it (with
// should_escape off): the console sends typed text as Slack would, so the bot's parser sees the
// same bytes.
var slackEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// firstWord splits line at its first run of spaces (any Unicode space, as the bot's parser
// treats them).
func firstWord(line string) (word, rest string) {
	i := strings.IndexFunc(line, unicode.IsSpace)
	if i < 0 {
		return line, ""
	}
	return line[:i], strings.TrimSpace(line[i:])
}

// handle acts on one typed line. A /failover line goes to the bot as Slack sends it (the text
// after the command, escaped as Slack escapes it), so the bot's own parser answers it; the
// console's own lines (typed clicks, /as) are split by the same splitter, so quoting works, and
// fails, exactly as in a Slack command: typographic quotes “like this” count as quotes.
func (t *Terminal) handle(ctx context.Context, b Bot, st Requests, line string) {
	if verb, rest := firstWord(line); strings.EqualFold(verb, "/failover") {
		resp := b.HandleCommand(ctx, slack.SlashCommand{Command: "/failover", Text: slackEscaper.Replace(rest), UserID: t.who.ID,
			UserName: t.who.Name, ChannelID: Channel, TeamID: TeamID, TriggerID: t.trigger()})
		t.mu.Lock()
		t.render("  (only @"+t.who.Name+" sees) ", resp.Text, "")
		t.mu.Unlock()
		return
	}
	args, err := core.SplitArgs(slackEscaper.Replace(line))
	if err != nil {
		t.say("%v", err)
		return
	}
	if len(args) == 0 {
		return
	}
	switch strings.ToLower(args[0]) {
	case "/as":
		if len(args) != 2 {
			t.say("usage: /as <name>  (one of %s)", strings.Join(t.names(), ", "))
			return
		}
		u, ok := t.byName[strings.ToLower(strings.TrimPrefix(args[1], "@"))]
		if !ok {
			t.say("no such person %q; the cast is %s", args[1], strings.Join(t.names(), ", "))
			return
		}
		t.mu.Lock()
		t.who = u
		t.mu.Unlock()
		t.say("you are now @%s", u.Name)
	case "approve", "reject", "continue", "stop":
		t.click(ctx, b, st, args)
	case "wait":
		// For scripts: let the running failovers reach an outcome (or a halt) first.
		if err := t.settle(ctx, b, st, 2*time.Minute, false); err != nil {
			t.say("wait: %v", err)
		}
	default:
		t.say("unknown input. Try /failover help, /as <name>, approve <id>, reject <id> \"<reason>\", continue <id>, stop <id> \"<reason>\", %s", quitHelp)
	}
}

func (t *Terminal) click(ctx context.Context, b Bot, st Requests, args []string) {
	verb := strings.ToLower(args[0])
	if len(args) < 2 || ((verb == "reject" || verb == "stop") && len(args) != 3) || ((verb == "approve" || verb == "continue") && len(args) != 2) {
		t.say(`usage: approve <id> | reject <id> "<reason>" | continue <id> | stop <id> "<reason>"`)
		return
	}
	id := strings.ToUpper(args[1])
	if !strings.HasPrefix(id, "FO-") {
		id = "FO-" + id
	}
	r, err := t.cardOf(ctx, st, id)
	if err != nil {
		t.say("%v", err)
		return
	}
	user := slack.User{ID: t.who.ID, Name: t.who.Name}
	button := func(actionID, value string) (trigger string) {
		// As in Slack, the click comes from the card: its channel and message, its own trigger.
		trigger = t.trigger()
		cb := slack.InteractionCallback{Type: slack.InteractionTypeBlockActions, User: user, TriggerID: trigger,
			Channel: slack.Channel{GroupConversation: slack.GroupConversation{Conversation: slack.Conversation{ID: r.Channel}}}}
		cb.Team.ID = TeamID
		cb.Container.ChannelID, cb.Container.MessageTs = r.Channel, r.MessageTS
		cb.ActionCallback.BlockActions = []*slack.BlockAction{{ActionID: actionID, Value: value}}
		b.HandleInteraction(ctx, cb)
		return trigger
	}
	switch verb {
	case "continue":
		// The button names the halt it was shown for; the bot, not the console, decides.
		g := 0
		if r.Halt != nil {
			g = r.Halt.Group
		} else if n := len(r.Continues); n > 0 {
			g = r.Continues[n-1].Group
		}
		button("fo_continue", fmt.Sprintf("%s|%d", r.ID, g))
		return
	case "stop":
		// The Stop button opens the dialog; submitting it (with the reason) is the decision. As
		// in Slack, only a dialog the bot opened can be submitted, and it carries the
		// private_metadata the bot gave it (the request and core.StopKey when it opened). When
		// the bot refuses the click it says why, and nothing is submitted.
		v, ok := t.awaitView(ctx, b, button(actionStop, r.ID))
		if !ok || v.CallbackID != callbackStop {
			return
		}
		cb := slack.InteractionCallback{Type: slack.InteractionTypeViewSubmission, User: user, TriggerID: t.trigger()}
		cb.Team.ID = TeamID
		cb.View.ID, cb.View.CallbackID, cb.View.PrivateMetadata = v.ID, v.CallbackID, v.PrivateMetadata
		cb.View.State = &slack.ViewState{Values: map[string]map[string]slack.BlockAction{
			blockStopWhy: {actionStopWhy: {Value: args[2]}}}}
		if resp := b.HandleInteraction(ctx, cb); resp != nil {
			t.say("the stop dialog needs a reason")
		}
		return
	}
	if verb == "approve" {
		// As in Slack, the click comes from the card: its channel and message, its own trigger.
		cb := slack.InteractionCallback{Type: slack.InteractionTypeBlockActions, User: user, TriggerID: t.trigger(),
			Channel: slack.Channel{GroupConversation: slack.GroupConversation{Conversation: slack.Conversation{ID: r.Channel}}}}
		cb.Team.ID = TeamID
		cb.Container.ChannelID, cb.Container.MessageTs = r.Channel, r.MessageTS
		cb.ActionCallback.BlockActions = []*slack.BlockAction{{ActionID: "fo_approve", Value: r.ID + "|" + r.Digest}}
		b.HandleInteraction(ctx, cb)
		return
	}
	cb := slack.InteractionCallback{Type: slack.InteractionTypeViewSubmission, User: user, TriggerID: t.trigger()}
	cb.Team.ID = TeamID
	cb.View.CallbackID = "fo_reject_modal"
	cb.View.PrivateMetadata = r.ID
	cb.View.State = &slack.ViewState{Values: map[string]map[string]slack.BlockAction{
		"fo_reject_reason": {"fo_reject_reason_input": {Value: args[2]}}}}
	if resp := b.HandleInteraction(ctx, cb); resp != nil {
		t.say("the reject dialog needs a reason")
	}
}

// awaitView waits for the dialog the click with trigger opens, until the bot is done with the
// click (it refused: no dialog) or 10 seconds pass.
func (t *Terminal) awaitView(ctx context.Context, b Bot, trigger string) (openedView, bool) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	idle := make(chan struct{})
	go func() {
		defer close(idle)
		_ = b.Idle(ctx)
	}()
	defer func() { cancel(); <-idle }()
	opened := func() (openedView, bool) {
		t.mu.Lock()
		defer t.mu.Unlock()
		v, ok := t.views[trigger]
		delete(t.views, trigger)
		return v, ok
	}
	for {
		if v, ok := opened(); ok {
			return v, true
		}
		select {
		case <-idle:
			return opened()
		case <-ctx.Done():
			return opened()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// cardOf returns the request once its card is on screen: a button exists only on a posted
// card, so a click typed right after the command waits for it.
func (t *Terminal) cardOf(ctx context.Context, st Requests, id string) (*store.Request, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		r, err := st.Get(ctx, id)
		if err != nil {
			return nil, fmt.Errorf("there is no request %s", id)
		}
		if r.MessageTS != "" || r.State != store.Pending {
			return r, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("the card of %s is not posted yet; try again", id)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// trigger numbers interactions as Slack's trigger_id does: each one its own.
func (t *Terminal) trigger() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.triggers++
	return fmt.Sprintf("console-%d-%d", t.started, t.triggers)
}

func (t *Terminal) say(format string, args ...any) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.printf("  "+format+"\n", args...)
}

// settle waits for requests that are on their way through EM, so a piped demo ends with outcomes.
// It returns parent's error when parent ends first (a signal), and nil after limit, saying what
// becomes of the failovers still running: at the end of input (atEnd) the console ends next.
func (t *Terminal) settle(parent context.Context, b Bot, st Requests, limit time.Duration, atEnd bool) error {
	ctx, cancel := context.WithTimeout(parent, limit)
	defer cancel()
	for {
		reqs, err := st.Active(ctx)
		if err != nil {
			if perr := parent.Err(); perr != nil {
				return perr
			}
			return err
		}
		// Pending and halted requests wait for a person, not for EM.
		running, _ := busy(reqs)
		if running == 0 {
			err := b.Idle(ctx)
			if perr := parent.Err(); perr != nil {
				return perr
			}
			return err
		}
		select {
		case <-ctx.Done():
			if err := parent.Err(); err != nil {
				return err
			}
			t.mu.Lock()
			temporary := t.temporary
			t.mu.Unlock()
			switch {
			case !atEnd:
				t.say("%s still running after %s; the console goes on following %s.", failovers(running), limit, them(running))
			case temporary:
				t.say("%s still running after %s; this console's store is temporary, so ending now loses %s (set DB_PATH to keep it).",
					failovers(running), limit, them(running))
			default:
				t.say("%s still running after %s; the store (DB_PATH) keeps %s for the next start.", failovers(running), limit, them(running))
			}
			return nil
		case <-time.After(200 * time.Millisecond):
		}
	}
}
