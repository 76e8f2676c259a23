package bot_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/failover-bot/failover-bot/bot"
	"github.com/failover-bot/failover-bot/bot/slackfake"
	"github.com/failover-bot/failover-bot/emapi/emsim"
	"github.com/failover-bot/failover-bot/store"
)

// Tests of issue 12's history: /failover list --recent and /failover status, through the bot's
// HTTP edge (signed slash commands), the real store and the EM simulator.

// mustContainInOrder checks that got holds each of wants, in that order.
func mustContainInOrder(t testing.TB, what, got string, wants ...string) {
	t.Helper()
	rest := got
	for _, w := range wants {
		i := strings.Index(rest, w)
		if i < 0 {
			t.Fatalf("%s lacks %q (after what came before); got:\n%s", what, w, got)
		}
		rest = rest[i+len(w):]
	}
}

// readOnly runs fn and checks that it wrote nothing: no audit event, no Slack call.
func (h *harness) readOnly(what string, fn func()) {
	h.t.Helper()
	h.idle()
	events, calls := len(h.auditActions()), len(h.slack.Calls())
	fn()
	h.idle()
	if n := len(h.auditActions()) - events; n != 0 {
		h.t.Errorf("%s wrote %d audit events", what, n)
	}
	if n := len(h.slack.Calls()) - calls; n != 0 {
		h.t.Errorf("%s made %d Slack calls; the answer is the command's response", what, n)
	}
}

// TestListRecent: right after failovers, `list` still shows what is pending or active and points
// at the history; `list --recent [period]` lists what finished in the period, newest first,
// whichever way it ended; a bad period gets the usage; none of it writes anything.
func TestListRecent(t *testing.T) {
	h := newHarness(t)
	h.em.SetScript(finDB01, emsim.Script{Running: 10 * time.Minute})
	ok := h.runningDB01().ID // FO-1, 14:00
	h.clock.Advance(11 * time.Minute)
	h.poll()
	h.wantState(ok, store.Succeeded) // 14:11
	rejected := h.request(Requester, `vm CDP-Web web01 --reason "web down"`)
	h.submitReject(Approver2, rejected, "web is fine") // 14:11
	h.idle()
	expired := h.request(Requester, `vm CDP-Web web02 --reason "web down too"`)
	h.clock.Advance(time.Hour)
	h.poll()
	h.wantState(expired, store.Expired) // 15:11
	pending := h.request(Requester, `vapp erp-vapp --reason "ERP site lost"`)

	h.readOnly("list", func() {
		list := h.command(Outsider, "list")
		mustContainInOrder(t, "list", list, "*1 pending or active failover requests*", "*"+pending+"* erp-vapp",
			"3 requests finished in the last 24 hours: `/failover list --recent` lists them.")
		mustNotContain(t, "list", list, "*"+ok+"*", "*"+rejected+"*", "*"+expired+"*")

		recent := h.command(Outsider, "list --recent")
		mustContainInOrder(t, "list --recent", recent,
			"*"+pending+"* erp-vapp",
			"*3 requests finished in the last 24 hours* (newest first, UTC)",
			"• *"+expired+"* web02 — expired 2026-11-23 15:11 with 0 of 1 approvals",
			"• *"+rejected+"* web01 — rejected by <@"+Approver2+"> 2026-11-23 14:11, after 0s",
			"• *"+ok+"* fin-db01 — succeeded 2026-11-23 14:11, ran 11m00s")
		mustNotContain(t, "list --recent", recent, "…and")
		if strings.Count(recent, "*"+pending+"*") != 1 {
			t.Errorf("the pending request is listed more than once:\n%s", recent)
		}

		mustContainInOrder(t, "list --recent 30m", h.command(Outsider, "list --recent 30m"),
			"*1 request finished in the last 30 minutes*", "*"+expired+"* web02")
		mustContain(t, "list --recent=90m", h.command(Outsider, "list --recent=90m"), "*3 requests finished in the last 90 minutes*")
	})

	h.clock.Advance(25 * time.Hour)
	h.readOnly("list a day later", func() {
		mustContain(t, "list --recent a day later", h.command(Outsider, "list --recent"), "Nothing finished in the last 24 hours.")
		mustNotContain(t, "list a day later", h.command(Outsider, "list"), "finished")
		mustContainInOrder(t, "list --recent 2d", h.command(Outsider, "list --recent 2d"), "*3 requests finished in the last 2 days*",
			"*"+expired+"*", "*"+rejected+"*", "*"+ok+"*")
	})

	for _, tc := range []struct{ text, want string }{
		{"list --recent 5x", `--recent "5x" is not a period: write e.g. 90m, 24h or 2d`},
		{"list --recent 400d", "longer than 366 days"},
		{"list 2d", "`/failover list --recent 2d`"},
		{"list everything", "`list` takes no arguments except --recent"},
	} {
		got := h.command(Outsider, tc.text)
		mustContain(t, tc.text, got, tc.want, "Usage:", "/failover list [--recent [&lt;period&gt;]]")
	}
}

// TestListRecentIsBounded: a busy day's history is listed newest first in one message within
// Slack's 4,000 characters, and the answer says how many it left out and how to narrow it.
func TestListRecentIsBounded(t *testing.T) {
	const n = 70
	h := newHarness(t)
	ctx := context.Background()
	for i := range n {
		h.clock.Advance(time.Minute)
		r, err := h.st.Create(ctx, store.NewRequest{Kind: store.KindVM, Intent: store.IntentLatest, Reason: "drill", Requester: Requester,
			Channel: Channel, TTL: time.Hour, Target: store.Target{ReplicaID: "rep-1", ReplicaName: "CDP-Big", ID: fmt.Sprintf("vm-%d", i), Name: fmt.Sprintf("vm-%04d", i)}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := h.st.Reject(ctx, r.ID, Approver1, "drill over"); err != nil {
			t.Fatal(err)
		}
	}
	var got string
	h.readOnly("list --recent", func() { got = h.command(Approver2, "list --recent") })
	if c := utf8.RuneCountInString(got); c > slackfake.MaxTextLen {
		t.Fatalf("list --recent is %d characters, over Slack's %d", c, slackfake.MaxTextLen)
	}
	shown := strings.Count(got, "\n• *FO-")
	if shown < 10 || shown >= n {
		t.Fatalf("list --recent shows %d of %d finished requests:\n%s", shown, n, got)
	}
	var newest []string
	for i := range shown {
		newest = append(newest, fmt.Sprintf("• *FO-%d* vm-%04d — rejected by <@%s>", n-i, n-1-i, Approver1))
	}
	mustContainInOrder(t, "list --recent", got, append(append([]string{fmt.Sprintf("*%d requests finished in the last 24 hours*", n)}, newest...),
		fmt.Sprintf("…and %d more. Narrow the period (e.g. `/failover list --recent 1h`)", n-shown))...)
}

// TestStatusShowsTheWholeStory: the status of a failover asked before midnight and finished
// after it shows every step with its date and who took it, and how long it waited, ran and took.
func TestStatusShowsTheWholeStory(t *testing.T) {
	h := newHarness(t)
	h.clock.Set(time.Date(2026, 11, 23, 23, 50, 0, 0, time.UTC))
	h.em.SetScript(finDB01, emsim.Script{Running: 20 * time.Minute})
	id := h.request(Requester, `vm CDP-Finance fin-db01 --reason "primary DC <down> & out"`)

	pending := h.command(Outsider, "status "+id)
	mustContainInOrder(t, "status while pending", pending, "*"+id+"* — ", "Waiting for approval (0 of 1)",
		"Reason: primary DC &lt;down&gt; &amp; out", "*Timeline* (UTC)",
		"• 2026-11-23 23:50:00 — requested by <@"+Requester+">",
		"• 2026-11-24 00:50:00 — expires unless approved by then",
		"*Durations*: waiting for approval 0s so far")
	mustNotContain(t, "status while pending", pending, "<down>")

	h.clock.Advance(5 * time.Minute)
	h.approve(Approver1, id)
	h.idle()
	h.wantState(id, store.Running)
	h.clock.Advance(3 * time.Minute)
	mustContain(t, "status while running", h.command(Outsider, "status "+id), "Failover running",
		"*Durations*: waiting for approval 5m00s · running 3m00s so far · total 8m00s so far")

	h.clock.Advance(18 * time.Minute)
	h.poll()
	r := h.wantState(id, store.Succeeded)
	var done string
	h.readOnly("status", func() { done = h.command(Outsider, "status "+id) })
	mustContainInOrder(t, "status when finished", done, "*"+id+"* — ", "Failover succeeded",
		"• 2026-11-23 23:50:00 — requested by <@"+Requester+">",
		"• 2026-11-23 23:55:00 — approved by <@"+Approver1+"> (1 of 1)",
		"• 2026-11-23 23:55:00 — sent to Enterprise Manager",
		"• 2026-11-23 23:55:00 — running in Enterprise Manager",
		"• 2026-11-24 00:16:00 — finished: succeeded",
		"*Durations*: waiting for approval 5m00s · running 21m00s · total 26m00s",
		"EM task `"+r.Items[0].TaskID+"`")
	mustNotContain(t, "status when finished", done, "so far", "expires")
}

// TestStatusOfManyItems: the status of a replica request of more VMs than one message can list
// (80 here; TestStatusTextFitsOneMessage in bot/core takes 200 and 500) lists its items in a
// table (state, restore point, start, finish, duration, EM's word on each failure), failures
// first, and stays within one Slack message by counting the rest.
func TestStatusOfManyItems(t *testing.T) {
	const n = 80
	inv := bigInventory(n)
	// The pre-flight of many VMs may outlast the usual answer budget under the race detector; the
	// answer then only says it is checking. This test is about the status, so it waits.
	h := newHarness(t, withOptions(func(o *bot.Options) { o.AckBudget = time.Minute }), func(c *harnessConfig) { c.inventory = &inv })
	failed := []int{7, 42, 79}
	for _, i := range failed {
		h.em.SetScript(inv.Replicas[0].VMs[i].ID, emsim.Script{Running: time.Minute, Result: emsim.ResultFailed, Message: fmt.Sprintf("Datastore <ds-%02d> & co is full", i)})
	}
	h.clock.Set(time.Date(2026, 11, 23, 23, 58, 0, 0, time.UTC))
	id := h.request(Requester, `replica CDP-Big --reason "site A lost power"`)
	h.approve(Approver1, id)
	h.idle()
	h.clock.Advance(3 * time.Minute)
	h.poll()
	r := h.wantState(id, store.PartlyFailed)
	if c := store.Counts(r); c[store.Failed] != len(failed) || c[store.Succeeded] != n-len(failed) {
		t.Fatalf("counts %v", c)
	}

	var got string
	h.readOnly("status", func() { got = h.command(Outsider, "status "+id) })
	if c := utf8.RuneCountInString(got); c > slackfake.MaxTextLen {
		t.Fatalf("status of %d items is %d characters, over Slack's %d:\n%s", n, c, slackfake.MaxTextLen, got)
	}
	point := r.Items[7].Point.UTC().Format("15:04:05")
	mustContainInOrder(t, "status", got, "*"+id+"* — ", "Partly failed: 3 failed, 77 succeeded",
		"Asked for: replica CDP-Big",
		"• 2026-11-23 23:58:00 — approved by <@"+Approver1+"> (1 of 1)",
		"first failover sent to Enterprise Manager",
		"• 2026-11-24 00:01:00 — finished: :large_orange_circle: partly failed",
		"*Items (80)*: 3 failed, 77 succeeded. Times UTC on 2026-11-23 unless marked (+1d: the day after).",
		"item             state      restore pt   start        finish       took",
		"vm-0007          failed     "+point+"     23:58:00     00:01:00+1d  3m00s Datastore &lt;ds-07&gt; &amp; co is full",
		"vm-0042          failed", "vm-0079          failed", "vm-0000          succeeded",
		"more items not listed (those that need eyes are listed first):", "succeeded.")
	mustNotContain(t, "status", got, "<ds-07>")
}

// TestStatusOf200Items: a 200-VM request, driven through the store as the bot drives it (one
// write per step for all items, EM's messages on the failures), answers /failover status in one
// Slack message, failures first, every one of them named.
func TestStatusOf200Items(t *testing.T) {
	const n = 200
	h := newHarness(t)
	ctx := context.Background()
	nr := store.NewRequest{Kind: store.KindVM, Intent: store.IntentLatest, Reason: "site A lost power", Requester: Requester,
		Channel: Channel, TTL: time.Hour, Scope: "replica CDP-Big"}
	for i := range n {
		nr.Items = append(nr.Items, store.Item{Target: store.Target{ReplicaID: "rep-big", ReplicaName: "CDP-Big",
			ID: fmt.Sprintf("vm-%d", i), Name: fmt.Sprintf("big-vm-%04d", i)}, Point: h.clock.Now().Add(-15 * time.Second), RPO: 15})
	}
	r, err := h.st.Create(ctx, nr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.st.Approve(ctx, r.ID, Approver1, r.Digest); err != nil {
		t.Fatal(err)
	}
	all := func(to store.State, apply func(i int) func(*store.Item)) {
		t.Helper()
		var cs []store.Change
		for i, it := range r.Items {
			if to == store.Failed && i%9 != 0 || to == store.Succeeded && i%9 == 0 {
				continue
			}
			cs = append(cs, store.Change{Item: it.Target.ID, To: to, Actor: "em", Apply: apply(i)})
		}
		if _, _, err := h.st.TransitionAll(ctx, r.ID, cs, "em", string(to), "test"); err != nil {
			t.Fatal(err)
		}
	}
	none := func(int) func(*store.Item) { return nil }
	all(store.Submitting, none)
	h.clock.Advance(time.Second)
	all(store.Running, func(i int) func(*store.Item) {
		return func(it *store.Item) { it.TaskID = fmt.Sprintf("task-%d", i) }
	})
	h.clock.Advance(9 * time.Minute)
	all(store.Failed, func(i int) func(*store.Item) {
		return func(it *store.Item) { it.EMMessage = fmt.Sprintf("Datastore <ds-%02d> is full", i%7) }
	})
	h.clock.Advance(time.Minute)
	all(store.Succeeded, none)
	r = h.wantState(r.ID, store.PartlyFailed)
	h.idle()

	var got string
	h.readOnly("status", func() { got = h.command(Outsider, "status "+r.ID) })
	if c := utf8.RuneCountInString(got); c > slackfake.MaxTextLen {
		t.Fatalf("status of %d items is %d characters, over Slack's %d:\n%s", n, c, slackfake.MaxTextLen, got)
	}
	failed := store.Counts(r)[store.Failed]
	mustContainInOrder(t, "status", got, "*"+r.ID+"* — ", fmt.Sprintf("*Items (200)*: %d failed, %d succeeded.", failed, n-failed),
		"big-vm-0000      failed", "Datastore &lt;ds-00&gt; is full", "big-vm-0009      failed",
		"more items not listed (those that need eyes are listed first):")
	mustNotContain(t, "status", got, "<ds-")
	// Every failure is named, in the table or after it.
	for i := 0; i < n; i += 9 {
		if !strings.Contains(got, fmt.Sprintf("big-vm-%04d", i)) {
			t.Errorf("status does not name the failed big-vm-%04d:\n%s", i, got)
		}
	}
}
