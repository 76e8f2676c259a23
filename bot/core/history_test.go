package core

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/failover-bot/failover-bot/store"
)

func TestParsePeriod(t *testing.T) {
	accepts := []struct {
		in   string
		want time.Duration
	}{
		{"90m", 90 * time.Minute},
		{"24h", 24 * time.Hour},
		{"2d", 48 * time.Hour},
		{"1.5d", 36 * time.Hour},
		{"1h30m", 90 * time.Minute},
		{" 2D ", 48 * time.Hour},
		{"45s", 45 * time.Second},
		{"366d", MaxRecent},
	}
	for _, tc := range accepts {
		if got, err := ParsePeriod(tc.in); err != nil || got != tc.want {
			t.Errorf("ParsePeriod(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	rejects := []struct {
		in, want string
	}{
		{"", "is not a period"},
		{"abc", `"abc" is not a period: write e.g. 90m, 24h or 2d`},
		{"2w", "is not a period"},
		{"d", "is not a period"},
		{"1d12h", "is not a period"},
		{"infd", "is not a period"},
		{"nand", "is not a period"},
		{"0x1p4d", "is not a period"},
		{"1_0d", "is not a period"},
		{"1e9h", "is not a period"},
		{"0", "give a positive one"},
		{"0d", "give a positive one"},
		{"-2h", "give a positive one"},
		{"367d", "longer than 366 days"},
		{"1e300d", "longer than 366 days"},
		{"9000h", "longer than 366 days"},
		{strings.Repeat("9", 60) + "h", "is not a period"},
	}
	for _, tc := range rejects {
		_, err := ParsePeriod(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasSuffix(err.Error(), ".") || !strings.Contains(err.Error(), "--recent") {
			t.Errorf("ParsePeriod(%q) error = %v, want a sentence about --recent containing %q", tc.in, err, tc.want)
		}
		if err != nil && utf8.RuneCountInString(err.Error()) > 200 {
			t.Errorf("ParsePeriod(%q) echoes %d characters; typed input must be truncated", tc.in, utf8.RuneCountInString(err.Error()))
		}
	}
}

func TestParseListCommand(t *testing.T) {
	accepts := []struct {
		name, text string
		want       time.Duration
	}{
		{"plain", "list", 0},
		{"recent without a period", "list --recent", DefaultRecent},
		{"recent with a period", "list --recent 90m", 90 * time.Minute},
		{"recent in days", "list --recent 2d", 48 * time.Hour},
		{"recent with equals", "list --recent=1.5d", 36 * time.Hour},
		{"em dash from a phone keyboard", "list —recent 2d", 48 * time.Hour},
		{"upper case", "LIST --RECENT 2H", 2 * time.Hour},
		{"quoted period", `list --recent "12h"`, 12 * time.Hour},
	}
	for _, tc := range accepts {
		t.Run(tc.name, func(t *testing.T) {
			cmd, err := ParseCommand(tc.text, parseNow)
			if err != nil || cmd.Sub != SubList || cmd.Recent != tc.want {
				t.Fatalf("ParseCommand(%q) = %+v, %v; want list with Recent %v", tc.text, cmd, err, tc.want)
			}
		})
	}
	rejects := []struct {
		name, text string
		want       []string
	}{
		{"a word", "list all", []string{"takes no arguments except --recent", `"all"`}},
		{"a period without the option", "list 2d", []string{"`/failover list --recent 2d`", "2 days"}},
		{"a bad period", "list --recent 5x", []string{`--recent "5x" is not a period`}},
		{"an empty period", "list --recent=", []string{`--recent "" is not a period`}},
		{"a period too long", "list --recent 400d", []string{"longer than 366 days", "audit export"}},
		{"twice", "list --recent --recent", []string{"--recent is given twice"}},
		{"twice with periods", "list --recent 1h --recent 2h", []string{"--recent is given twice"}},
		{"a word after the period", "list --recent 2d extra", []string{`"extra"`}},
		{"another option", "list --since 2d", []string{`"--since"`}},
		{"a negative period", "list --recent=-1h", []string{"give a positive one"}},
	}
	for _, tc := range rejects {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseCommand(tc.text, parseNow)
			var ue *UsageError
			if !errors.As(err, &ue) {
				t.Fatalf("ParseCommand(%q) error %v, want a UsageError", tc.text, err)
			}
			for _, w := range tc.want {
				if !strings.Contains(ue.Msg, w) {
					t.Errorf("Msg = %q, want it to contain %q", ue.Msg, w)
				}
			}
			if ue.Usage != usageList || !strings.HasSuffix(ue.Msg, ".") {
				t.Errorf("Usage %q, Msg %q: want list's usage and a whole sentence", ue.Usage, ue.Msg)
			}
		})
	}
}

// day0 is late in the evening, so requests cross midnight.
var day0 = time.Date(2026, 11, 23, 23, 50, 0, 0, time.UTC)

// finishedReq is a finished one-VM request: asked at asked, finished at done in state st.
func finishedReq(seq uint64, name string, st store.State, asked, done time.Time) *store.Request {
	r := &store.Request{Seq: seq, ID: fmt.Sprintf("FO-%d", seq), Kind: store.KindVM, Intent: store.IntentLatest,
		Items:  []store.Item{{Target: store.Target{ReplicaID: "rep-1", ReplicaName: "CDP-Web", ID: "vm-" + name, Name: name}, State: st, StateAt: done}},
		Reason: "site A lost power", Requester: "U0REQ", ApprovalsRequired: 1, State: st, StateAt: done, StateBy: "poller",
		CreatedAt: asked, ExpiresAt: asked.Add(time.Hour), FinishedAt: done, Version: 5}
	switch st {
	case store.Rejected:
		r.Rejection = &store.Rejection{User: "U0APP", Reason: "not now", At: done}
		r.StateBy, r.DecidedAt = "U0APP", done
	case store.Withdrawn:
		r.StateBy = "U0REQ"
	case store.Expired:
		r.StateBy = store.ExpiryActor
	case store.Pending:
		r.StateBy, r.StateAt, r.FinishedAt = "U0REQ", asked, time.Time{}
	default:
		r.Approvals = []store.Approval{{User: "U0APP", At: asked.Add(time.Minute)}}
		r.DecidedAt = asked.Add(time.Minute)
		r.SubmittedAt, r.StartedAt = asked.Add(time.Minute), asked.Add(time.Minute+time.Second)
	}
	return r
}

func TestHistoryText(t *testing.T) {
	now := day0.Add(3 * time.Hour)
	pending := finishedReq(9, "web09", store.Pending, now.Add(-time.Minute), time.Time{})
	pending.FinishedAt = time.Time{}
	ok := finishedReq(5, "fin-db01", store.Succeeded, day0, day0.Add(14*time.Minute+12*time.Second))
	rejected := finishedReq(4, "web01", store.Rejected, day0.Add(-time.Hour), day0.Add(-50*time.Minute))
	expired := finishedReq(3, "erp-vapp", store.Expired, day0.Add(-2*time.Hour), day0.Add(-time.Hour))
	gone := finishedReq(2, "web02", store.Withdrawn, day0.Add(-3*time.Hour), day0.Add(-3*time.Hour+time.Minute))
	undeliverable := finishedReq(1, "web03", store.Withdrawn, day0.Add(-4*time.Hour), day0.Add(-4*time.Hour))
	undeliverable.StateBy = store.UndeliverableActor
	finished := []*store.Request{ok, rejected, expired, gone, undeliverable}

	cases := []struct {
		name     string
		active   []*store.Request
		finished []*store.Request
		more     int
		recent   time.Duration
		want     []string // in order
		not      []string
	}{
		{"plain list points at history", []*store.Request{pending}, nil, 5, 0,
			[]string{"*1 pending or active failover requests*", "*FO-9* web09", "5 requests finished in the last 24 hours: `/failover list --recent` lists them."}, nil},
		{"plain list, nothing active", nil, nil, 1, 0,
			[]string{"No pending or active failover requests.", "1 request finished in the last 24 hours"}, nil},
		{"plain list, nothing finished", nil, nil, 0, 0, []string{"No pending or active failover requests."}, []string{"finished"}},
		{"plain list, the count capped", nil, nil, store.FinishedMoreCap, 0, []string{"At least 1000 requests finished in the last 24 hours"}, nil},
		{"recent, newest first", []*store.Request{pending}, finished, 0, DefaultRecent,
			[]string{"*FO-9* web09", "*5 requests finished in the last 24 hours* (newest first, UTC)",
				"• *FO-5* fin-db01 — succeeded 2026-11-24 00:04, ran 13m12s",
				"• *FO-4* web01 — rejected by <@U0APP> 2026-11-23 23:00, after 10m00s",
				"• *FO-3* erp-vapp — expired 2026-11-23 22:50 with 0 of 1 approvals",
				"• *FO-2* web02 — withdrawn by <@U0REQ> 2026-11-23 20:51",
				"• *FO-1* web03 — withdrawn 2026-11-23 19:50: its card could not be posted"},
			[]string{"…and"}},
		{"recent, nothing in the period", nil, nil, 0, 90 * time.Minute,
			[]string{"No pending or active failover requests.", "Nothing finished in the last 90 minutes."}, nil},
		{"recent, more than the page", nil, finished[:2], 48, 2 * 24 * time.Hour,
			[]string{"*50 requests finished in the last 2 days*", "*FO-5*", "*FO-4*", "…and 48 more. Narrow the period (e.g. `/failover list --recent 1h`)"}, nil},
		{"recent, the count capped", nil, finished[:1], store.FinishedMoreCap, 30 * 24 * time.Hour,
			[]string{"*At least 1001 requests finished in the last 30 days*", "…and at least 1000 more", "--recent 24h"}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := historyText(tc.active, tc.finished, tc.more, tc.recent)
			rest := got
			for _, w := range tc.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("answer lacks %q (in this order); got:\n%s", w, got)
				}
				rest = rest[i+len(w):]
			}
			for _, n := range tc.not {
				if strings.Contains(got, n) {
					t.Errorf("answer contains %q; got:\n%s", n, got)
				}
			}
		})
	}
}

// TestHistoryTextFitsOneMessage: however many active and finished requests, with names made long
// and full of characters mrkdwn must escape, the answer stays within Slack's 4,000 characters and
// says how many it left out.
func TestHistoryTextFitsOneMessage(t *testing.T) {
	now := day0
	long := strings.Repeat("<&>", 30)
	var active, finished []*store.Request
	for i := range 300 {
		r := finishedReq(uint64(1000+i), fmt.Sprintf("%s-%03d", long, i), store.Running, now.Add(-time.Hour), time.Time{})
		r.FinishedAt = time.Time{}
		r.Items[0].EMMessage = long
		active = append(active, r)
	}
	for i := range recentRows {
		r := finishedReq(uint64(900-i), fmt.Sprintf("%s-%03d", long, i), store.PartlyFailed, now.Add(-2*time.Hour), now.Add(-time.Duration(i)*time.Minute))
		r.Items = append(r.Items, r.Items[0])
		r.Items[1].State = store.Failed
		finished = append(finished, r)
	}
	for _, tc := range []struct {
		name   string
		active []*store.Request
		more   int
		recent time.Duration
		want   string
	}{
		{"plain list of 300 active", active, 7, 0, "7 requests finished"},
		{"recent with 300 active", active, 80, DefaultRecent, "more. Narrow the period"},
		{"recent with no active", nil, 80, DefaultRecent, "more. Narrow the period"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fin := finished
			if tc.recent == 0 {
				fin = nil
			}
			got := historyText(tc.active, fin, tc.more, tc.recent)
			if n := utf8.RuneCountInString(got); n > answerLimit {
				t.Fatalf("answer is %d characters, over Slack's %d", n, answerLimit)
			}
			if !strings.Contains(got, tc.want) || strings.Contains(got, "<&>") {
				t.Fatalf("answer lacks %q or carries unescaped text:\n%s", tc.want, got)
			}
			if len(tc.active) > 0 && !strings.Contains(got, "more lines not shown") {
				t.Errorf("the cut active list does not say so:\n%s", got)
			}
		})
	}
}

func TestHumanDurations(t *testing.T) {
	cases := []struct {
		d             time.Duration
		human, period string
	}{
		{42 * time.Second, "42s", "42s"},
		{4*time.Minute + 12*time.Second, "4m12s", "4m12s"},
		{90 * time.Minute, "1h30m", "90 minutes"},
		{time.Hour, "1h00m", "1 hour"},
		{24 * time.Hour, "1d00h", "24 hours"},
		{48 * time.Hour, "2d00h", "2 days"},
		{36 * time.Hour, "1d12h", "36 hours"},
		{-time.Second, "0s", "0s"},
	}
	for _, tc := range cases {
		if got := humanDuration(tc.d); got != tc.human {
			t.Errorf("humanDuration(%v) = %q, want %q", tc.d, got, tc.human)
		}
		if got := periodText(tc.d); got != tc.period {
			t.Errorf("periodText(%v) = %q, want %q", tc.d, got, tc.period)
		}
	}
	ref := time.Date(2026, 11, 23, 23, 50, 0, 0, time.UTC)
	for _, tc := range []struct {
		t    time.Time
		want string
	}{
		{ref, "23:50:00"},
		{ref.Add(15 * time.Minute), "00:05:00+1d"},
		{ref.Add(-3 * 24 * time.Hour), "23:50:00-3d"},
		{time.Time{}, "—"},
		{ref.In(time.FixedZone("CET", 3600)), "23:50:00"},
	} {
		if got := dayClock(tc.t, ref); got != tc.want {
			t.Errorf("dayClock(%s) = %q, want %q", tc.t, got, tc.want)
		}
	}
}

// manyReq is a request of n VMs of CDP-Big, approved at 23:52, sent at 23:53, each item running
// from 23:53 for i seconds: the first fail, some are unknown, the rest succeed, after midnight.
func manyReq(n, failed int) *store.Request {
	asked := day0
	r := &store.Request{Seq: 7, ID: "FO-7", Kind: store.KindVM, Intent: store.IntentLatest, Scope: "replica CDP-Big",
		Reason: "site A <lost> power & more", Requester: "U0REQ", ApprovalsRequired: 2,
		Approvals: []store.Approval{{User: "U0APP1", At: asked.Add(time.Minute)}, {User: "U0APP2", At: asked.Add(2 * time.Minute)}},
		State:     store.PartlyFailed, StateBy: "poller", CreatedAt: asked, ExpiresAt: asked.Add(time.Hour),
		DecidedAt: asked.Add(2 * time.Minute), SubmittedAt: asked.Add(3 * time.Minute), StartedAt: asked.Add(3*time.Minute + time.Second), Version: 900}
	for i := range n {
		it := store.Item{Target: store.Target{ReplicaID: "rep-big", ReplicaName: "CDP-Big", ID: fmt.Sprintf("vm-%04d", i), Name: fmt.Sprintf("vm-%04d", i)},
			Point: asked.Add(-15 * time.Second), RPO: 15, State: store.Succeeded, TaskID: fmt.Sprintf("task-%d", i),
			SubmittedAt: asked.Add(3 * time.Minute), StartedAt: asked.Add(3*time.Minute + time.Second)}
		it.FinishedAt = it.StartedAt.Add(10*time.Minute + time.Duration(i)*time.Second)
		switch {
		case i < failed:
			it.State, it.EMMessage = store.Failed, "Datastore ds-07 is full `really` <now>"
		case i == failed:
			it.State, it.EMMessage = store.Unknown, "no outcome from EM"
		}
		it.StateAt = it.FinishedAt
		r.Items = append(r.Items, it)
		r.FinishedAt = it.FinishedAt
	}
	r.StateAt = r.FinishedAt
	return r
}

func TestStatusText(t *testing.T) {
	now := day0.Add(2 * time.Hour)
	pending := finishedReq(1, "fin-db01", store.Pending, day0, time.Time{})
	pending.FinishedAt, pending.StateBy, pending.StateAt = time.Time{}, "U0REQ", day0
	pending.Reason = "DC <!channel> & more"
	rejected := finishedReq(2, "web01", store.Rejected, day0, day0.Add(20*time.Minute))
	rejected.Rejection.Reason = "not <now>"
	expired := finishedReq(3, "web02", store.Expired, day0, day0.Add(time.Hour))
	undeliverable := finishedReq(4, "web03", store.Withdrawn, day0, day0.Add(time.Second))
	undeliverable.StateBy = store.UndeliverableActor
	running := finishedReq(5, "fin-app01", store.Running, day0, time.Time{})
	running.FinishedAt = time.Time{}
	running.Items[0].TaskID, running.Items[0].RestoreSessionID = "task-3", "rs-9"
	running.Stop = &store.StopRequest{User: "U0REQ", Reason: "wrong <VM>", At: day0.Add(5 * time.Minute)}
	ok := finishedReq(6, "fin-db01", store.Succeeded, day0, day0.Add(25*time.Minute))

	cases := []struct {
		name string
		r    *store.Request
		want []string // in order
		not  []string
	}{
		{"pending", pending, []string{"*FO-1* — ", "Waiting for approval (0 of 1)", "Reason: DC &lt;!channel&gt; &amp; more",
			"*Timeline* (UTC)", "• 2026-11-23 23:50:00 — requested by <@U0REQ>", "• 2026-11-24 00:50:00 — expires unless approved by then",
			"*Durations*: waiting for approval 2h00m so far"}, []string{"<!channel>", "total", "running"}},
		{"rejected", rejected, []string{"• 2026-11-23 23:50:00 — requested by <@U0REQ>", "• 2026-11-24 00:10:00 — rejected by <@U0APP>: “not &lt;now&gt;”",
			"*Durations*: waiting for approval 20m00s · total 20m00s"}, []string{"finished:", "<now>"}},
		{"expired", expired, []string{"• 2026-11-24 00:50:00 — expired with 0 of 1 approvals; nothing was sent to Enterprise Manager",
			"waiting for approval 1h00m · total 1h00m"}, []string{"finished:"}},
		{"withdrawn because its card could not be posted", undeliverable, []string{"withdrawn by the bot: Slack refused its approval card for good"}, nil},
		{"running, a stop asked", running, []string{"• 2026-11-23 23:51:00 — approved by <@U0APP> (1 of 1)", "• 2026-11-23 23:51:00 — sent to Enterprise Manager",
			"• 2026-11-23 23:51:01 — running in Enterprise Manager", "• 2026-11-23 23:55:00 — stop asked by <@U0REQ>: “wrong &lt;VM&gt;”",
			"*Durations*: waiting for approval 1m00s · running 1h59m so far · total 2h00m so far", "EM task `task-3`, restore session `rs-9`."}, []string{"*Items"}},
		{"succeeded after midnight", ok, []string{"• 2026-11-23 23:51:00 — approved by <@U0APP> (1 of 1)", "• 2026-11-24 00:15:00 — finished: succeeded",
			"*Durations*: waiting for approval 1m00s · running 24m00s · total 25m00s"}, []string{"so far", "*Items"}},
		{"many items", manyReq(5, 1), []string{"Asked for: replica CDP-Big", "Reason: site A &lt;lost&gt; power &amp; more",
			"approved by <@U0APP1> (1 of 2)", "approved by <@U0APP2> (2 of 2)", "first failover sent to Enterprise Manager", "finished: :large_orange_circle: partly failed",
			"*Items (5)*: 1 failed, 1 unknown, 3 succeeded. Times UTC on 2026-11-23 unless marked (+1d: the day after).",
			"item             state      restore pt   start        finish       took",
			"vm-0000          failed     23:49:45     23:53:01     00:03:01+1d  10m00s Datastore ds-07 is full 'really' &lt;now&gt;",
			"vm-0001          unknown    23:49:45     23:53:01     00:03:02+1d  10m01s no outcome from EM",
			"vm-0002          succeeded"}, []string{"more items not listed", "<now>"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := statusText(tc.r, now)
			rest := got
			for _, w := range tc.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("status lacks %q (in this order); got:\n%s", w, got)
				}
				rest = rest[i+len(w):]
			}
			for _, n := range tc.not {
				if strings.Contains(got, n) {
					t.Errorf("status contains %q; got:\n%s", n, got)
				}
			}
		})
	}
}

// TestStatusTextFitsOneMessage: a request of up to 500 items (MaxTargets), of a replica or of a
// plan, with long names to escape, still answers in one message of at most 4,000 characters: the
// items that need eyes are listed first, and the rest are counted by state.
func TestStatusTextFitsOneMessage(t *testing.T) {
	for _, tc := range []struct {
		n, failed int
		plan      bool
		long      bool
	}{{2, 0, false, false}, {60, 3, false, false}, {200, 10, false, false}, {200, 10, false, true}, {500, 120, false, true}, {500, 120, false, false}, {200, 10, true, false}} {
		t.Run(fmt.Sprintf("%d items, %d failed, plan %v, long names %v", tc.n, tc.failed, tc.plan, tc.long), func(t *testing.T) {
			r := manyReq(tc.n, tc.failed)
			if tc.long {
				for i := range r.Items {
					r.Items[i].Target.Name = strings.Repeat("&", 40) + r.Items[i].Target.Name
				}
				r.Reason = strings.Repeat("<", MaxReasonLen)
			}
			if tc.plan {
				r.Kind, r.Plan = store.KindPlan, "dc-recovery"
				for g := range 50 {
					r.Groups = append(r.Groups, store.Group{Name: fmt.Sprintf("tier %d <db>", g), Concurrency: 4})
				}
				for i := range r.Items {
					r.Items[i].Kind, r.Items[i].Group = store.KindVM, i%50
				}
			}
			got := statusText(r, day0.Add(3*time.Hour))
			if n := utf8.RuneCountInString(got); n > answerLimit {
				t.Fatalf("status of %d items is %d characters, over Slack's %d", tc.n, n, answerLimit)
			}
			if tc.n > 60 && !strings.Contains(got, "more items not listed (those that need eyes are listed first)") {
				t.Fatalf("status of %d items does not say what it left out:\n%s", tc.n, got)
			}
			if tc.failed > 60 && !strings.Contains(got, "Not listed and not succeeded: ") {
				t.Errorf("status of %d failures beyond the table does not name them:\n%s", tc.failed, got)
			}
			if !tc.long && !strings.Contains(got, "vm-0000") {
				t.Fatalf("status does not list the first failure:\n%s", got)
			}
			if tc.failed > 0 && tc.n <= 200 && !tc.long && !strings.Contains(got, fmt.Sprintf("vm-%04d", tc.failed)) {
				t.Errorf("status does not list the unknown item vm-%04d among the first:\n%s", tc.failed, got)
			}
		})
	}
}
