package console

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/failover-bot/failover-bot/bot"
	"github.com/failover-bot/failover-bot/bot/core"
	"github.com/failover-bot/failover-bot/store"
)

func TestPlainKeepsTimesAndStripsEmoji(t *testing.T) {
	term := New(&bytes.Buffer{}, []User{{ID: "U0BOB0000", Name: "bob"}})
	cases := []struct{ in, want string }{
		{":white_check_mark: Approved by <@U0BOB0000> at 07:00 UTC", "Approved by @bob at 07:00 UTC"},
		{"newest replicated state before 2026-11-23 07:00:00 UTC", "newest replicated state before 2026-11-23 07:00:00 UTC"},
		{"*FO-1* in <#C123> — <https://x.example/p1|card> &lt;b&gt;", "FO-1 in #C123 — card <b>"},
	}
	for _, tc := range cases {
		if got := term.plain(tc.in); got != tc.want {
			t.Errorf("plain(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// esc escapes mrkdwn as the bot does.
var esc = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// card builds blocks like the bot's card of many: a header, the card section, the item table
// (counts, monospace rows) and a status context.
func card(t *testing.T, counts string, rows ...string) string {
	t.Helper()
	md := func(s string) *slack.TextBlockObject {
		return slack.NewTextBlockObject(slack.MarkdownType, s, false, false)
	}
	blocks := []slack.Block{
		slack.NewHeaderBlock(slack.NewTextBlockObject(slack.PlainTextType, "Failover request FO-1", false, false)),
		slack.NewSectionBlock(md("Fail over 3 VMs of CDP-Web"), []*slack.TextBlockObject{md("*Reason*\nsite A lost power")}, nil, slack.SectionBlockOptionBlockID("fo_card")),
		slack.NewSectionBlock(md("*Items (3)*: "+counts), nil, nil, slack.SectionBlockOptionBlockID(tableCounts)),
		slack.NewSectionBlock(md("```"+esc.Replace(strings.Join(rows, "\n"))+"```"), nil, nil),
		slack.NewContextBlock(tableMore, md("2 more items not listed (succeeded items first); `/failover status FO-1` lists every failure.")),
		slack.NewContextBlock("fo_status", md("Running: "+counts)),
	}
	b, err := json.Marshal(blocks)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// call sends one Web API call to term as slack-go does (a form) and returns the answer's ts.
func call(t *testing.T, term *Terminal, method string, form url.Values) string {
	t.Helper()
	r := httptest.NewRequest("POST", "/api/"+method, strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	w := httptest.NewRecorder()
	term.ServeHTTP(w, r)
	var ans struct {
		OK bool
		TS string
	}
	if err := json.Unmarshal(w.Body.Bytes(), &ans); err != nil || !ans.OK {
		t.Fatalf("%s answered %s", method, w.Body.String())
	}
	return ans.TS
}

// TestItemTableShownAlignedAndOnChange: a card's item table keeps its columns (rows are not run
// together or stripped), a card update prints the table under the update line when it changed,
// and an update with the same table prints only the update line.
func TestItemTableShownAlignedAndOnChange(t *testing.T) {
	var out bytes.Buffer
	term := New(&out, []User{{ID: "U0BOB0000", Name: "bob"}})
	rows := []string{
		"web01            running      27% 18:48:27",
		"web02            failed           18:48:27 Failed to power on <VM> & co",
		"web*3            submitting",
	}
	ts := call(t, term, "chat.postMessage", url.Values{"channel": {Channel}, "text": {"Failover request FO-1"}, "blocks": {card(t, "2 running, 1 failed", rows...)}})
	posted := out.String()
	for _, want := range []string{"== Failover request FO-1 ==\n", "Fail over 3 VMs of CDP-Web\n", "  Reason: site A lost power\n",
		"Items (3): 2 running, 1 failed\n  " + rows[0] + "\n  web02            failed           18:48:27 Failed to power on <VM> & co\n  " + rows[2] + "\n",
		"2 more items not listed"} {
		if !strings.Contains(posted, want) {
			t.Errorf("the posted card lacks %q:\n%s", want, posted)
		}
	}

	out.Reset()
	call(t, term, "chat.update", url.Values{"channel": {Channel}, "ts": {ts}, "text": {"Failover request FO-1 for 3 VMs: Running"}, "blocks": {card(t, "2 running, 1 failed", rows...)}})
	if got := out.String(); got != "  ~ card updated: Failover request FO-1 for 3 VMs: Running\n" {
		t.Errorf("an update with the same table printed:\n%s", got)
	}

	out.Reset()
	rows[0] = "web01            running      55% 18:48:27"
	call(t, term, "chat.update", url.Values{"channel": {Channel}, "ts": {ts}, "text": {"Failover request FO-1 for 3 VMs: Running"}, "blocks": {card(t, "2 running, 1 failed", rows...)}})
	want := "  ~ card updated: Failover request FO-1 for 3 VMs: Running\n" +
		"      Items (3): 2 running, 1 failed\n" +
		"        web01            running      55% 18:48:27\n" +
		"        web02            failed           18:48:27 Failed to power on <VM> & co\n" +
		"        web*3            submitting\n" +
		"      2 more items not listed (succeeded items first); /failover status FO-1 lists every failure.\n"
	if got := out.String(); got != want {
		t.Errorf("an update with a new table printed:\n%s\nwant:\n%s", got, want)
	}
}

// TestSectionLinesAlign: a section of several lines under a prefix keeps its lines under the first.
func TestSectionLinesAlign(t *testing.T) {
	var out bytes.Buffer
	term := New(&out, nil)
	b, _ := json.Marshal([]slack.Block{slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, "*FO-1 finished*\nNext: check the VMs", false, false), nil, nil)})
	term.render("    ↳ ", "", string(b))
	if got, want := out.String(), "    ↳ FO-1 finished\n      Next: check the VMs\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// activeRequests is a store whose active requests are the ones given (by ID for Get).
type activeRequests []*store.Request

func (a activeRequests) Get(_ context.Context, id string) (*store.Request, error) {
	for _, r := range a {
		if r.ID == id {
			return r, nil
		}
	}
	return nil, store.ErrNotFound
}

func (a activeRequests) Active(context.Context) ([]*store.Request, error) { return a, nil }

// slackAnswer is what the bot answers in Slack to `/failover <text>` when the text cannot be split
// into words: the sentence of its usage error.
func slackAnswer(t *testing.T, text string) string {
	t.Helper()
	_, err := core.ParseCommand(text, time.Now())
	var ue *core.UsageError
	if !errors.As(err, &ue) {
		t.Fatalf("ParseCommand(%q) = %v, want a usage error", text, err)
	}
	return ue.Msg
}

// TestTypedClicksQuoteAsSlack: a typed reject (or any typed click) is split into words exactly as
// Slack's /failover text is: typographic quotes are quotes, an apostrophe inside a word is kept,
// shell characters and &, <, > are plain text, and a line Slack could not split gets Slack's own
// sentence, with nothing sent to the bot.
func TestTypedClicksQuoteAsSlack(t *testing.T) {
	pending := &store.Request{ID: "FO-7", Kind: store.KindVM, State: store.Pending, Channel: Channel, MessageTS: "1700000000.000001",
		Requester: "U0ALICE00", Digest: "d1", Items: []store.Item{{Target: store.Target{Name: "fin-db01"}}}}
	tests := []struct {
		name   string
		line   string
		reason string // the reject dialog's reason the bot receives; "" for nothing sent
		say    bool   // the console answers with Slack's sentence for this line
	}{
		{"straight double quotes", `reject FO-7 "site A is back"`, "site A is back", false},
		{"straight single quotes", `reject FO-7 'site A is back'`, "site A is back", false},
		{"typographic double quotes", `reject FO-7 “site A is back”`, "site A is back", false},
		{"typographic single quotes around an apostrophe", `reject FO-7 ‘don’t, EM is down’`, "don’t, EM is down", false},
		{"low and guillemet quotes", `reject FO-7 „wrong VM“`, "wrong VM", false},
		{"guillemets", `reject FO-7 «wrong VM»`, "wrong VM", false},
		{"shell characters and entities are text", `reject FO-7 "A&B <today> (urgent); $HOME | x"`, "A&B <today> (urgent); $HOME | x", false},
		{"an escaped quote", `reject FO-7 "the \"old\" site"`, `the "old" site`, false},
		{"no-break spaces between words", "reject\u00a0FO-7\u00a0“late”", "late", false},
		{"unbalanced double quote", `reject FO-7 "site A is back`, "", true},
		{"unbalanced typographic quote", `reject FO-7 “site A is back`, "", true},
		{"an apostrophe in single quotes", `reject FO-7 'isn't needed'`, "", true},
		{"a trailing backslash", `approve FO-7 \`, "", true},
		{"unbalanced quote in a stop", `stop FO-7 "wrong VM`, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			term := New(&out, []User{{ID: "U0BOB0000", Name: "bob"}})
			rb := &recordingBot{}
			term.handle(t.Context(), rb, activeRequests{pending}, tt.line)
			calls := rb.calls()
			if tt.say {
				if want := "  " + slackAnswer(t, tt.line) + "\n"; out.String() != want {
					t.Errorf("the console answered %q, want Slack's answer %q", out.String(), want)
				}
				if len(calls) != 0 {
					t.Errorf("%d interactions sent for a line that cannot be read, want none", len(calls))
				}
				return
			}
			if len(calls) != 1 || calls[0].View.CallbackID != "fo_reject_modal" || calls[0].View.State == nil {
				t.Fatalf("sent %+v, want one reject dialog submission; the console printed %q", calls, out.String())
			}
			cb := calls[0]
			if got := cb.View.State.Values["fo_reject_reason"]["fo_reject_reason_input"].Value; got != tt.reason {
				t.Errorf("reason %q, want %q", got, tt.reason)
			}
			if cb.View.PrivateMetadata != "FO-7" || cb.User.ID != "U0BOB0000" || cb.User.Name != "bob" {
				t.Errorf("submission for %q by %s (%q), want FO-7 by U0BOB0000 (bob)", cb.View.PrivateMetadata, cb.User.ID, cb.User.Name)
			}
		})
	}
}

// commandBot records the slash commands the console sends.
type commandBot struct {
	recordingBot
	cmds []slack.SlashCommand
}

func (c *commandBot) HandleCommand(_ context.Context, sc slack.SlashCommand) bot.Response {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cmds = append(c.cmds, sc)
	return bot.Response{Text: "ok"}
}

// TestCommandLineSentAsSlackSends: a /failover line reaches the bot as Slack's payload would carry
// it: the text after the command (not split, however it is quoted), &, < and > escaped as Slack
// escapes them, and the person's ID and name.
func TestCommandLineSentAsSlackSends(t *testing.T) {
	tests := []struct{ line, text string }{
		{`/failover vm CDP-Finance fin-db01 --reason "site A"`, `vm CDP-Finance fin-db01 --reason "site A"`},
		{`/failover status "FO-1`, `status "FO-1`},
		{`/FAILOVER   list  `, `list`},
		{`/failover vm x y --reason “A&B <now>”`, `vm x y --reason “A&amp;B &lt;now&gt;”`},
		{`/failover`, ``},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			term := New(&bytes.Buffer{}, []User{{ID: "U0BOB0000", Name: "bob"}})
			cb := &commandBot{}
			term.handle(t.Context(), cb, activeRequests{}, tt.line)
			if len(cb.cmds) != 1 {
				t.Fatalf("%d commands sent, want 1", len(cb.cmds))
			}
			sc := cb.cmds[0]
			if sc.Command != "/failover" || sc.Text != tt.text || sc.UserID != "U0BOB0000" || sc.UserName != "bob" || sc.TeamID != TeamID || sc.TriggerID == "" {
				t.Errorf("sent %s %q by %s (%q) team %s trigger %q; want /failover %q by U0BOB0000 (bob) team %s with a trigger",
					sc.Command, sc.Text, sc.UserID, sc.UserName, sc.TeamID, sc.TriggerID, tt.text, TeamID)
			}
		})
	}
}

// TestConsoleAnswersAsSlack drives the real bot: the console's answer to a typed click it cannot
// read is the sentence the bot gives in Slack to a command it cannot read, and the reason of a
// request and of a rejection reach the store exactly as typed, typographic quotes and & included.
func TestConsoleAnswersAsSlack(t *testing.T) {
	rig := newConsoleRig(t)
	slackSays := rig.do(`/failover status "FO-1`)
	consoleSays := rig.do(`reject FO-1 "site A is back`)
	sentence := slackAnswer(t, `status "FO-1`)
	mustHave(t, "the bot's answer in Slack", slackSays, sentence)
	mustHave(t, "the console's answer", consoleSays, sentence)

	mustHave(t, "the request", rig.do(`/failover vm CDP-Finance fin-db01 --reason “A&B <now>: site A lost power”`), "Recorded FO-1")
	if r := rig.get("FO-1"); r.Reason != "A&B <now>: site A lost power" {
		t.Errorf("stored reason %q, want it as typed", r.Reason)
	}
	rig.do("/as bob")
	rig.do(`reject FO-1 ‘don’t: the “old” site is back’`)
	r := rig.get("FO-1")
	if r.State != store.Rejected || r.StateBy != "U0BOB0000" {
		t.Fatalf("FO-1 is %s by %s, want rejected by bob", r.State, r.StateBy)
	}
	evs := 0
	if err := rig.st.Events(t.Context(), 0, time.Time{}, func(e store.Event) error {
		// As in a Slack command, quotes inside are made straight too; the apostrophe stays.
		if e.Action == "rejected" && strings.Contains(e.Details, `don’t: the "old" site is back`) {
			evs++
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if evs != 1 {
		t.Errorf("%d rejections with the typed reason in the audit log, want 1", evs)
	}
}

// TestQuitWhileFailoversRun: quit on a temporary store with failovers running warns (how many,
// and what is lost) and needs quit again or quit!; any other line in between asks afresh. With
// DB_PATH, or nothing running, quit quits.
func TestQuitWhileFailoversRun(t *testing.T) {
	running := func(id string) *store.Request { return &store.Request{ID: id, State: store.Running} }
	pending := &store.Request{ID: "FO-9", State: store.Pending}
	tests := []struct {
		name      string
		temporary bool
		active    activeRequests
		input     string
		warnings  int      // how many times quit was refused
		want      []string // printed, in order
		handled   []string // lines acted on ("you are now @…")
		notWant   []string
	}{
		{name: "temporary, two running: the second quit quits", temporary: true, active: activeRequests{running("FO-1"), running("FO-2"), pending},
			input: "quit\nquit\n/as bob\n", warnings: 1,
			want:    []string{"2 failovers are still running (and 1 waiting for a person), and this console's store is temporary", "Type quit again (or quit!)"},
			notWant: []string{"you are now @bob"}},
		{name: "temporary, one running: another line asks afresh", temporary: true, active: activeRequests{running("FO-1")},
			input: "quit\n/as bob\nexit\nexit\n/as carol\n", warnings: 2,
			want:    []string{"1 failover is still running, and this console's store is temporary", "you are now @bob", "1 failover is still running"},
			notWant: []string{"you are now @carol"}},
		{name: "temporary, one running, end of input: what ending loses", temporary: true, active: activeRequests{running("FO-1")},
			input: "/as bob\n", want: []string{"you are now @bob", "1 failover is still running after 1ms; this console's store is temporary, so ending now loses it"}},
		{name: "DB_PATH, two running, end of input: the store keeps them", active: activeRequests{running("FO-1"), running("FO-2")},
			input: "/as bob\n", want: []string{"you are now @bob", "2 failovers are still running after 1ms; the store (DB_PATH) keeps them for the next start."}},
		{name: "temporary, running: quit! quits at once", temporary: true, active: activeRequests{running("FO-1")},
			input: "quit!\n/as bob\n", notWant: []string{"still running", "you are now @bob"}},
		{name: "temporary, only a pending request: quit quits", temporary: true, active: activeRequests{pending},
			input: "quit\n/as bob\n", notWant: []string{"still running", "you are now @bob"}},
		{name: "DB_PATH, running: quit quits, saying the store keeps them", active: activeRequests{running("FO-1"), running("FO-2")},
			input: "quit\n/as bob\n", want: []string{"2 failovers are still running; the store (DB_PATH) keeps them"},
			notWant: []string{"temporary", "you are now @bob"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			term := New(&out, []User{{ID: "U0ALICE00", Name: "alice"}, {ID: "U0BOB0000", Name: "bob"}, {ID: "U0CAROL00", Name: "carol"}})
			err := term.Run(t.Context(), &recordingBot{}, tt.active, strings.NewReader(tt.input), Session{Settle: time.Millisecond, Temporary: tt.temporary})
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			got := out.String()
			if n := strings.Count(got, "Type quit again"); n != tt.warnings {
				t.Errorf("quit refused %d times, want %d:\n%s", n, tt.warnings, got)
			}
			rest := got
			for _, w := range tt.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("the console lacks %q (in order):\n%s", w, got)
				}
				rest = rest[i+len(w):]
			}
			for _, w := range tt.notWant {
				if strings.Contains(got, w) {
					t.Errorf("the console printed %q:\n%s", w, got)
				}
			}
		})
	}
}

// TestRunStopsAtSignalWhileReading: when ctx ends (SIGINT, SIGTERM) while the console waits for
// a line, Run returns at once with ctx's error, saying what becomes of running failovers; it does
// not wait for the person to type.
func TestRunStopsAtSignalWhileReading(t *testing.T) {
	tests := []struct {
		name      string
		temporary bool
		active    activeRequests
		want      string
	}{
		{"nothing running", true, nil, "\n  stopping (signal).\n"},
		{"running on a temporary store", true, activeRequests{{ID: "FO-1", State: store.Running}},
			"\n  stopping (signal): 1 running failover is lost with this console's temporary store.\n"},
		{"running with DB_PATH", false, activeRequests{{ID: "FO-1", State: store.Submitting}, {ID: "FO-2", State: store.Running}},
			"\n  stopping (signal): 2 failovers are still running; the store (DB_PATH) keeps them for the next start.\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := &syncBuffer{}
			term := New(out, []User{{ID: "U0ALICE00", Name: "alice"}})
			in, typing := io.Pipe() // a person who never types
			t.Cleanup(func() { typing.Close() })
			ctx, signal := context.WithCancel(t.Context())
			done := make(chan error, 1)
			go func() {
				done <- term.Run(ctx, &recordingBot{}, tt.active, in, Session{Interactive: true, Settle: time.Second, Temporary: tt.temporary})
			}()
			// The line typed before the signal is acted on; then the signal.
			if _, err := io.WriteString(typing, "/as alice\n"); err != nil {
				t.Fatal(err)
			}
			signal()
			select {
			case err := <-done:
				if !errors.Is(err, context.Canceled) {
					t.Errorf("Run = %v, want context.Canceled", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("Run did not return within 10 s of the signal:\n%s", out.String())
			}
			if got := out.String(); !strings.HasSuffix(got, tt.want) {
				t.Errorf("the console ended with:\n%q\nwant the suffix %q", got, tt.want)
			}
		})
	}
}
