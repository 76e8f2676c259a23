package console

import (
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/slack-go/slack"
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
