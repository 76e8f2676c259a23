package bot_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/slack-go/slack"

	"github.com/failover-bot/failover-bot/bot"
	"github.com/failover-bot/failover-bot/bot/slackfake"
	"github.com/failover-bot/failover-bot/store"
)

// TestUsageErrors: every mistake gets an ephemeral answer that says what was wrong and shows the
// correct usage; nothing is stored, nothing is posted and EM is not even asked.
func TestUsageErrors(t *testing.T) {
	cases := []struct {
		name, text string
		want       []string // in the answer, besides "Usage:"
	}{
		{"unknown subcommand", "bogus", []string{`Unknown subcommand "bogus"`, "/failover vm <replica>", "/failover cancel"}},
		{"vm without arguments", "vm", []string{"Missing <replica> and <vm>", "/failover vm <replica> <vm>"}},
		{"vm without a VM", "vm CDP-Finance", []string{"Missing <vm>"}},
		{"missing reason", "vm CDP-Finance fin-db01", []string{"--reason is required"}},
		{"reason without a value", "vapp erp-vapp --reason", []string{"--reason needs a value", "/failover vapp <vapp>"}},
		{"conflicting restore points", `vm CDP-Finance fin-db01 --latest --latest-vss --reason x`, []string{"--latest and --latest-vss conflict"}},
		{"bad time", `vm CDP-Finance fin-db01 --point-in-time yesterday --reason x`, []string{`"yesterday" is not a time`, "RFC 3339"}},
		{"time in the future", `vm CDP-Finance fin-db01 --interval 2027-01-01T00:00:00Z --reason x`, []string{"is in the future"}},
		{"unknown option", `vm CDP-Finance fin-db01 --bogus --reason x`, []string{`Unknown option "--bogus"`}},
		{"unbalanced quote", `vm "CDP-Finance fin-db01 --reason x`, []string{"unbalanced quote"}},
		{"vapp without arguments", "vapp", []string{"Missing <vapp>"}},
		{"status without ID", "status", []string{"`status` needs a request ID", "/failover status <request-id>"}},
		{"status with a bad ID", "status abc", []string{`"abc" is not a request ID`}},
		{"status with two IDs", "status FO-1 FO-2", []string{"takes one request ID"}},
		{"list with arguments", "list extra", []string{"`list` takes no arguments"}},
		{"cancel without ID", "cancel", []string{"`cancel` needs a request ID", "/failover cancel <request-id>"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			// Slack shows the answer as mrkdwn: placeholders arrive escaped (&lt;vm&gt;), or Slack
			// would swallow them as links.
			want := []string{"Usage:"}
			for _, w := range tc.want {
				want = append(want, strings.NewReplacer("<", "&lt;", ">", "&gt;").Replace(w))
			}
			got := h.command(Requester, tc.text)
			mustContain(t, "answer", got, want...)
			mustNotContain(t, "answer", got, "<vm>", "<replica>", "<vapp>", "<request-id>")
			h.wantNothingStored()
			if calls := h.slack.Calls(); len(calls) != 0 {
				t.Errorf("Slack was called (%s), want nothing", calls[0].Method)
			}
			if n := len(h.em.Requests()); n != 0 {
				t.Errorf("EM received %d requests, want none", n)
			}
		})
	}
}

// TestRequestNotAllowed: ALLOWED_CHANNELS and REQUESTERS refuse with an ephemeral explanation and
// store nothing.
func TestRequestNotAllowed(t *testing.T) {
	cases := []struct {
		name    string
		user    string
		channel string
		want    string
	}{
		{"channel not allowed", Requester, "C0ELSEWHERE", "/failover is not enabled in this channel. Use it in <#" + Channel + ">"},
		{"user not a requester", Outsider, Channel, "You are not allowed to request failovers"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, withOptions(func(o *bot.Options) {
				o.AllowedChannels = []string{Channel}
				o.Requesters = []string{Requester}
			}))
			ack := h.commandIn(tc.user, tc.channel, `vm CDP-Finance fin-db01 --reason "not here"`)
			mustContain(t, "answer", ack, tc.want)
			h.wantNothingStored()
		})
	}
}

// TestHelp: an empty command and "help" both answer the help, ephemerally, storing nothing.
func TestHelp(t *testing.T) {
	h := newHarness(t)
	for _, text := range []string{"", "help", "HELP", "help vm"} {
		if got := h.command(Requester, text); got != bot.HelpText() {
			t.Errorf("/failover %q answered %q, want the help", text, got)
		}
	}
	mustContain(t, "help", bot.HelpText(), "/failover vm", "/failover vapp", "/failover status", "/failover list", "/failover cancel", "--reason",
		"/failover vm &lt;replica&gt; &lt;vm&gt;") // Slack swallows a bare <vm> as a link
	mustNotContain(t, "help", bot.HelpText(), "<vm>", "<replica>")
	// A usage error echoes what was typed, escaped: it shows the placeholders and pings nobody.
	got := h.command(Requester, `replica CDP-Web <!channel> --reason x`)
	mustContain(t, "usage error", got, "&lt;!channel&gt;", "/failover replica &lt;replica&gt;")
	mustNotContain(t, "usage error", got, "<!channel>")
	h.wantNothingStored()
}

// TestStatusAndList: status shows one request wherever it is; list shows the pending and active
// ones only. Neither changes anything.
func TestStatusAndList(t *testing.T) {
	h := newHarness(t)
	mustContain(t, "empty list", h.command(Approver1, "list"), "No pending or active failover requests.")
	mustContain(t, "status of nothing", h.command(Approver1, "status FO-9"), "There is no such request")

	running := h.runningDB01().ID
	pending := h.request(Requester, `vapp erp-vapp --latest-vss --reason "ERP site lost"`)
	rejected := h.request(Requester, `vm CDP-Web web01 --reason "web down"`)
	h.submitReject(Approver2, rejected, "web is fine")
	h.idle()
	h.wantState(rejected, store.Rejected)
	events := len(h.auditActions())

	for _, text := range []string{"status " + pending, "status 2", "status fo-2", "status #2"} {
		mustContain(t, text, h.command(Outsider, text), "*"+pending+"*", "Waiting for approval (0 of 1)", "vApp *erp-vapp*",
			"latest application-consistent (VSS) restore point", "<@"+Requester+">", "ERP site lost")
	}
	r := h.get(running)
	mustContain(t, "status of the running one", h.command(Outsider, "status "+running), "*"+running+"*", "Failover running",
		"• 2026-11-23 14:00:00 — approved by <@"+Approver1+"> (1 of 1)", "EM task `"+r.Items[0].TaskID+"`")
	mustContain(t, "status of the rejected one", h.command(Outsider, "status "+rejected), "Rejected by <@"+Approver2+">", "web is fine")

	list := h.command(Outsider, "list")
	mustContain(t, "list", list, "2 pending or active failover requests", "*"+running+"* fin-db01", "*"+pending+"* erp-vapp")
	mustNotContain(t, "list", list, rejected)

	h.idle()
	if n := len(h.auditActions()); n != events {
		t.Errorf("status and list wrote %d audit events", n-events)
	}
	if n := h.failoverPOSTs(); n != 1 {
		t.Errorf("failover POSTs = %d, want 1", n)
	}
}

// TestNoSecretsInSlackOrAudit: failures that involve the credentials (EM refusing them) reach
// Slack and the audit log without the password, bot token or signing secret; the harness checks
// every Slack call and audit event at stop, and this test checks that the check itself works.
func TestNoSecretsInSlackOrAudit(t *testing.T) {
	t.Run("EM refuses the credentials", func(t *testing.T) {
		h := newHarness(t, func(c *harnessConfig) { c.emCfg.Password = "not-" + emPass })
		ack := h.command(Requester, `vm CDP-Finance fin-db01 --reason "x"`)
		mustContain(t, "answer", ack, "rejected the bot's credentials (401)", "EM_USERNAME and EM_PASSWORD")
		mustNotContain(t, "answer", ack, secrets...)
		h.wantNothingStored()
	})
	t.Run("a failed failover", func(t *testing.T) {
		h := newHarness(t)
		r := h.runningDB01()
		h.em.ExpireSessions()
		mustContain(t, "stop", h.command(Requester, "stop "+r.ID), "Confirm the stop")
		h.idle()
		meta, _ := h.stopDialog()
		h.submitStop(Requester, meta, "test")
		// The DELETE meets the expired session: the client logs on again, and the task (of the
		// old session) is not stopped from the new one. The thread says so.
		mustContain(t, "thread", h.threadText(r.ID), "The stop was *not* sent", "earlier Enterprise Manager logon session", "still running")
		if got := h.wantState(r.ID, store.Running); got.Stop != nil {
			t.Errorf("a stop that was never sent is still recorded: %+v", got.Stop)
		}
		mustContain(t, "stop again", h.command(Requester, "stop "+r.ID), "earlier Enterprise Manager logon session")
		if n := h.em.Count(http.MethodDelete, "/tasks/"); n != 1 {
			t.Errorf("%d DELETEs, want the one answered 401 and not repeated", n)
		}
		h.poll()
		for _, text := range []string{"status " + r.ID, "list"} {
			mustNotContain(t, text, h.command(Requester, text), secrets...)
		}
	})
	t.Run("the check finds a leak", func(t *testing.T) {
		h := newHarness(t)
		leaky := slackfake.New(t)
		api := slack.New("xoxb-other", slack.OptionAPIURL(leaky.APIURL()))
		if _, _, err := api.PostMessageContext(context.Background(), Channel, slack.MsgOptionText("password is "+emPass, false)); err != nil {
			t.Fatal(err)
		}
		rec := &recordingTB{TB: t}
		real, realSlack := h.t, h.slack
		h.t, h.slack = rec, leaky
		h.checkNoSecretsSent()
		h.t, h.slack = real, realSlack
		if len(rec.errors) == 0 || !strings.Contains(rec.errors[0], "chat.postMessage") {
			t.Fatalf("checkNoSecretsSent reported %q, want the leaking chat.postMessage", rec.errors)
		}
	})
}

// recordingTB records errors instead of failing the test.
type recordingTB struct {
	testing.TB
	errors []string
}

func (r *recordingTB) Helper() {}
func (r *recordingTB) Errorf(format string, args ...any) {
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}
