package console

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/failover-bot/failover-bot/bot"
	"github.com/failover-bot/failover-bot/bot/core"
	"github.com/failover-bot/failover-bot/emapi"
	"github.com/failover-bot/failover-bot/emapi/emsim"
	"github.com/failover-bot/failover-bot/store"
	"github.com/failover-bot/failover-bot/store/failover"
)

// TestDemoPlansMatchDemoSite: the built-in plans parse, and every replica, VM and vApp they
// name exists in the demo site the console's simulator serves, so the demo cannot rot when the
// site changes. The demo's story holds too: crm-db01, the VM the console scripts to fail, is a
// critical item of site-b's first group, so the run halts after databases.
func TestDemoPlansMatchDemoSite(t *testing.T) {
	f, err := DemoPlans()
	if err != nil {
		t.Fatalf("DemoPlans: %v", err)
	}
	if f.Path != DemoPlansPath {
		t.Errorf("path %q, want %q", f.Path, DemoPlansPath)
	}
	site := emsim.DemoSite()
	vms := map[string]map[string]bool{} // replica -> VM names
	for _, r := range site.Replicas {
		vms[r.Name] = map[string]bool{}
		for _, vm := range r.VMs {
			vms[r.Name][vm.Name] = true
		}
	}
	vapps := map[string]bool{}
	for _, va := range site.VApps {
		vapps[va.Name] = true
	}
	for _, p := range f.Plans {
		for _, g := range p.Groups {
			for _, tg := range g.Targets {
				where := fmt.Sprintf("plan %s, group %s, %s (line %d)", p.Name, g.Name, tg, tg.Line)
				if tg.Replica != "" {
					in, ok := vms[tg.Replica]
					if !ok {
						t.Errorf("%s: no replica %s in emsim.DemoSite()", where, tg.Replica)
						continue
					}
					for _, vm := range append(append([]string(nil), tg.VMs...), tg.Except...) {
						if !in[vm] {
							t.Errorf("%s: no VM %s in replica %s of emsim.DemoSite()", where, vm, tg.Replica)
						}
					}
				}
				for _, va := range tg.VApps {
					if !vapps[va] {
						t.Errorf("%s: no vApp %s in emsim.DemoSite()", where, va)
					}
				}
			}
		}
	}

	cases := []struct {
		plan   string
		groups []string
	}{
		{"site-b", []string{"databases", "apps", "web"}},
		{"mail-only", []string{"mail"}},
	}
	for _, tc := range cases {
		p, ok := f.Plan(tc.plan)
		if !ok {
			t.Errorf("no plan %s in the demo plans", tc.plan)
			continue
		}
		var got []string
		for _, g := range p.Groups {
			got = append(got, g.Name)
		}
		if strings.Join(got, ",") != strings.Join(tc.groups, ",") {
			t.Errorf("plan %s has groups %v, want %v", tc.plan, got, tc.groups)
		}
	}
	if p, ok := f.Plan("site-b"); ok {
		db := p.Groups[0]
		if db.Concurrency != 2 {
			t.Errorf("databases has concurrency %d, want 2", db.Concurrency)
		}
		found := false
		for _, tg := range db.Targets {
			for _, vm := range tg.VMs {
				if tg.Replica == "CDP-Crm" && vm == "crm-db01" {
					found = true
					if tg.Optional {
						t.Error("crm-db01 is optional in databases; the demo needs it critical so the run halts")
					}
				}
			}
		}
		if !found {
			t.Error("crm-db01 (the VM the console scripts to fail) is not in site-b's databases group")
		}
	}
	if p, ok := f.Plan("mail-only"); ok {
		if tg := p.Groups[0].Targets; len(tg) != 1 || tg[0].Replica != "CDP-Mail" || len(tg[0].VMs) > 0 || len(tg[0].Except) > 0 {
			t.Errorf("mail-only targets %v, want the whole CDP-Mail replica", tg)
		}
	}
}

// recordingBot stands in for the bot: it records every interaction the console sends. With
// onClick set it answers a click as the bot would, e.g. by opening a dialog through views.open.
type recordingBot struct {
	mu      sync.Mutex
	got     []slack.InteractionCallback
	onClick func(cb slack.InteractionCallback)
}

func (r *recordingBot) HandleCommand(context.Context, slack.SlashCommand) bot.Response {
	return bot.Response{}
}

func (r *recordingBot) HandleInteraction(_ context.Context, cb slack.InteractionCallback) any {
	r.mu.Lock()
	r.got = append(r.got, cb)
	r.mu.Unlock()
	if r.onClick != nil && cb.Type == slack.InteractionTypeBlockActions {
		r.onClick(cb)
	}
	return nil
}

func (r *recordingBot) Idle(context.Context) error { return nil }

func (r *recordingBot) calls() []slack.InteractionCallback {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]slack.InteractionCallback(nil), r.got...)
}

// fixedRequests is a store of the requests given.
type fixedRequests map[string]*store.Request

func (f fixedRequests) Get(_ context.Context, id string) (*store.Request, error) {
	if r, ok := f[id]; ok {
		return r, nil
	}
	return nil, store.ErrNotFound
}

func (f fixedRequests) Active(context.Context) ([]*store.Request, error) { return nil, nil }

// payload is what a test expects of one interaction: a block action (ActionID, Value) or a view
// submission (Callback, Metadata, Reason).
type payload struct {
	ActionID, Value            string
	Callback, Metadata, Reason string
}

func (p payload) String() string {
	if p.Callback != "" {
		return fmt.Sprintf("view_submission %s metadata %q reason %q", p.Callback, p.Metadata, p.Reason)
	}
	return fmt.Sprintf("block_actions %s value %q", p.ActionID, p.Value)
}

// wantPayloads checks the interactions against want, and that each looks like Slack's: the
// typing user, the console's team, its own trigger_id, and a click from the card's message.
func wantPayloads(t *testing.T, got []slack.InteractionCallback, r *store.Request, user string, want []payload) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d interactions sent, want %d (%v): %+v", len(got), len(want), want, got)
	}
	triggers := map[string]bool{}
	for i, cb := range got {
		w := want[i]
		if cb.User.ID != user || cb.Team.ID != TeamID || cb.TriggerID == "" || triggers[cb.TriggerID] {
			t.Errorf("interaction %d: user %q team %q trigger %q (want user %s, team %s, a trigger of its own)", i, cb.User.ID, cb.Team.ID, cb.TriggerID, user, TeamID)
		}
		triggers[cb.TriggerID] = true
		var p payload
		switch cb.Type {
		case slack.InteractionTypeBlockActions:
			if n := len(cb.ActionCallback.BlockActions); n != 1 {
				t.Fatalf("interaction %d has %d actions, want 1", i, n)
			}
			a := cb.ActionCallback.BlockActions[0]
			p = payload{ActionID: a.ActionID, Value: a.Value}
			if cb.Container.ChannelID != r.Channel || cb.Container.MessageTs != r.MessageTS || cb.Channel.ID != r.Channel {
				t.Errorf("interaction %d: clicked on %s/%s (channel %s), want the card %s/%s", i, cb.Container.ChannelID, cb.Container.MessageTs, cb.Channel.ID, r.Channel, r.MessageTS)
			}
		case slack.InteractionTypeViewSubmission:
			p = payload{Callback: cb.View.CallbackID, Metadata: cb.View.PrivateMetadata}
			if cb.View.State != nil {
				p.Reason = cb.View.State.Values["fo_stop_reason"]["fo_stop_reason_input"].Value
			}
		default:
			t.Fatalf("interaction %d has type %q", i, cb.Type)
		}
		if p != w {
			t.Errorf("interaction %d: %s, want %s", i, p, w)
		}
	}
}

// TestTypedContinueAndStop: `continue <id>` is the Continue button's block action, its value
// naming the halt the card shows (or the last one, or 0, when the request is not halted: the bot
// answers why); `stop <id> "<reason>"` is the Stop button's block action, then the stop dialog's
// submission with the request and stop key the bot gives the dialog, and the reason.
func TestTypedContinueAndStop(t *testing.T) {
	halted := func() *store.Request {
		return &store.Request{ID: "FO-7", Kind: store.KindPlan, State: store.Halted, Channel: Channel, MessageTS: "1700000000.000001",
			Requester: "U0ALICE00", Halt: &store.Halt{Group: 1, Items: []string{"crm-db01"}}, Current: 1,
			Continues: []failover.Continuation{{User: "U0BOB0000", Group: 0}},
			Groups:    []store.Group{{Name: "databases"}, {Name: "apps"}, {Name: "web"}},
			Items:     []store.Item{{Target: store.Target{Name: "crm-db01"}}, {Target: store.Target{Name: "crm-app01"}, Group: 1}}}
	}
	continued := halted()
	continued.State, continued.Halt = store.Running, nil
	continued.Continues = append(continued.Continues, failover.Continuation{User: "U0CAROL00", Group: 2})
	running := &store.Request{ID: "FO-7", Kind: store.KindVM, State: store.Running, Channel: Channel, MessageTS: "1700000000.000002",
		Requester: "U0ALICE00", Items: []store.Item{{Target: store.Target{Name: "fin-db01"}, TaskID: "task-9"}}}
	many := &store.Request{ID: "FO-7", Kind: store.KindVM, State: store.Running, Channel: Channel, MessageTS: "1700000000.000003",
		Requester: "U0ALICE00", Items: []store.Item{{Target: store.Target{Name: "web01"}, TaskID: "task-1"}, {Target: store.Target{Name: "web02"}, TaskID: "task-2"}}}

	cases := []struct {
		name string
		r    *store.Request
		line string
		want []payload
		say  string // printed by the console itself
		// refuse makes the bot answer the Stop click without opening its dialog.
		refuse bool
	}{
		{name: "continue a halted plan", r: halted(), line: "continue FO-7", want: []payload{{ActionID: "fo_continue", Value: "FO-7|1"}}},
		{name: "continue, id in lower case without FO-", r: halted(), line: "continue 7", want: []payload{{ActionID: "fo_continue", Value: "FO-7|1"}}},
		{name: "continue a plan no longer halted: its last halt", r: continued, line: "continue fo-7", want: []payload{{ActionID: "fo_continue", Value: "FO-7|2"}}},
		{name: "continue a request never halted: 0", r: running, line: "continue FO-7", want: []payload{{ActionID: "fo_continue", Value: "FO-7|0"}}},
		{name: "stop a halted plan", r: halted(), line: `stop FO-7 "crm-db01 must be fixed first"`, want: []payload{
			{ActionID: "fo_stop", Value: "FO-7"},
			{Callback: "fo_stop_modal", Metadata: "FO-7|halt:1", Reason: "crm-db01 must be fixed first"}}},
		{name: "stop a running failover of one VM", r: running, line: `STOP fo-7 'wrong VM'`, want: []payload{
			{ActionID: "fo_stop", Value: "FO-7"},
			{Callback: "fo_stop_modal", Metadata: "FO-7|task-9", Reason: "wrong VM"}}},
		{name: "stop with typographic quotes, as Slack reads them", r: running, line: `stop FO-7 “wrong VM, don’t”`, want: []payload{
			{ActionID: "fo_stop", Value: "FO-7"},
			{Callback: "fo_stop_modal", Metadata: "FO-7|task-9", Reason: "wrong VM, don’t"}}},
		{name: "stop a running failover of many", r: many, line: `stop FO-7 "wrong replica"`, want: []payload{
			{ActionID: "fo_stop", Value: "FO-7"},
			{Callback: "fo_stop_modal", Metadata: "FO-7|all", Reason: "wrong replica"}}},
		{name: "stop refused: no dialog, nothing submitted", r: halted(), line: `stop FO-7 "why"`, refuse: true, want: []payload{
			{ActionID: "fo_stop", Value: "FO-7"}}},
		{name: "continue without an id", r: halted(), line: "continue", say: "usage:"},
		{name: "continue with a reason", r: halted(), line: `continue FO-7 "why"`, say: "usage:"},
		{name: "stop without a reason", r: halted(), line: "stop FO-7", say: "usage:"},
		{name: "continue an unknown request", r: halted(), line: "continue FO-8", say: "there is no request FO-8"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			term := New(&out, []User{{ID: "U0ALICE00", Name: "alice"}, {ID: "U0BOB0000", Name: "bob"}})
			// The bot opens the stop dialog as bot/stop.go does: through a Slack client, with the
			// request and its stop key as private_metadata.
			srv := httptest.NewServer(term)
			defer srv.Close()
			api := slack.New("xoxb-console", slack.OptionAPIURL(srv.URL+"/api/"))
			rb := &recordingBot{onClick: func(cb slack.InteractionCallback) {
				if cb.ActionCallback.BlockActions[0].ActionID != "fo_stop" || tc.refuse {
					return
				}
				modal := slack.ModalViewRequest{Type: slack.VTModal, CallbackID: "fo_stop_modal", PrivateMetadata: tc.r.ID + "|" + core.StopKey(tc.r),
					Title:  slack.NewTextBlockObject(slack.PlainTextType, "Stop run "+tc.r.ID, false, false),
					Blocks: slack.Blocks{BlockSet: []slack.Block{slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, "*End the run of "+tc.r.ID+"?*", false, false), nil, nil)}}}
				if _, err := api.OpenViewContext(t.Context(), cb.TriggerID, modal); err != nil {
					t.Errorf("views.open: %v", err)
				}
			}}
			term.handle(t.Context(), rb, fixedRequests{tc.r.ID: tc.r}, "/as bob")
			term.handle(t.Context(), rb, fixedRequests{tc.r.ID: tc.r}, tc.line)
			wantPayloads(t, rb.calls(), tc.r, "U0BOB0000", tc.want)
			if tc.want != nil {
				// The stop key is the bot's own, whatever the request.
				for _, p := range tc.want {
					if p.Callback != "" && p.Metadata != tc.r.ID+"|"+core.StopKey(tc.r) {
						t.Errorf("metadata %q is not the bot's %q", p.Metadata, tc.r.ID+"|"+core.StopKey(tc.r))
					}
				}
			}
			if len(tc.want) == 2 && !strings.Contains(out.String(), "[dialog: Stop run FO-7]\n  | End the run of FO-7?\n") {
				t.Errorf("the console did not show the stop dialog:\n%s", out.String())
			}
			if tc.say != "" && !strings.Contains(out.String(), tc.say) {
				t.Errorf("the console printed:\n%s\nwant %q", out.String(), tc.say)
			}
		})
	}
}

// TestHelpNamesTypedClicks: the greeting and the answer to unknown input name every typed click.
func TestHelpNamesTypedClicks(t *testing.T) {
	var out bytes.Buffer
	term := New(&out, []User{{ID: "U0ALICE00", Name: "alice"}})
	if err := term.Run(t.Context(), &recordingBot{}, fixedRequests{}, strings.NewReader("hello\n"), Session{Settle: time.Second}); err != nil {
		t.Fatal(err)
	}
	greeting, rest, _ := strings.Cut(out.String(), "\n")
	for _, want := range []string{"approve <id>", `reject <id> "<reason>"`, "continue <id>", `stop <id> "<reason>"`} {
		if !strings.Contains(greeting, want) {
			t.Errorf("the greeting lacks %q: %s", want, greeting)
		}
		if !strings.Contains(rest, "unknown input") || !strings.Contains(rest, want) {
			t.Errorf("the answer to unknown input lacks %q:\n%s", want, rest)
		}
	}
}

// syncBuffer is the terminal's output, read by the test while the bot writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// consoleRig is the real bot behind a Terminal, against the EM simulator with the demo site and
// the demo plans, as console mode wires it (the cast of cmd/bot: alice requests, bob and carol
// approve).
type consoleRig struct {
	t    *testing.T
	term *Terminal
	out  *syncBuffer
	bot  *bot.Bot
	st   *store.Bolt
	sim  *emsim.Server
	site emsim.Inventory
}

func newConsoleRig(t *testing.T) *consoleRig {
	t.Helper()
	f, err := DemoPlans()
	if err != nil {
		t.Fatal(err)
	}
	rig := &consoleRig{t: t, out: &syncBuffer{}, site: emsim.DemoSite()}
	rig.sim = emsim.New(emsim.Config{Username: "demo", Password: "demo"}, rig.site)
	rig.sim.SetDefaultScript(emsim.Script{Running: 200 * time.Millisecond, Result: emsim.ResultSuccess})
	emSrv := httptest.NewServer(rig.sim)
	t.Cleanup(emSrv.Close)
	em, err := emapi.New(emapi.Config{BaseURL: emSrv.URL + "/api/", Username: "demo", Password: "demo",
		Timeout: 5 * time.Second, RetryBase: time.Millisecond, RetryMax: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	rig.st, err = store.Open(filepath.Join(t.TempDir(), "console.db"), store.Options{LockTimeout: time.Second, Thread: bot.ThreadLine})
	if err != nil {
		t.Fatal(err)
	}
	rig.term = New(rig.out, []User{{ID: "U0ALICE00", Name: "alice"}, {ID: "U0BOB0000", Name: "bob"}, {ID: "U0CAROL00", Name: "carol"}})
	slSrv := httptest.NewServer(rig.term)
	t.Cleanup(slSrv.Close)
	api := slack.New("xoxb-console", slack.OptionAPIURL(slSrv.URL+"/api/"))
	rig.bot, err = bot.New(em, rig.st, api, bot.Options{Approvers: []string{"U0BOB0000", "U0CAROL00"}, AuditChannel: AuditChannel,
		Teams: []string{TeamID}, PostRate: 200, UpdateRate: 200, Plans: f, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := rig.bot.Close(ctx); err != nil {
			t.Errorf("bot close: %v", err)
		}
		_ = em.Close(ctx)
		if err := rig.st.Close(); err != nil {
			t.Errorf("store close: %v", err)
		}
	})
	return rig
}

// vmID is the ID of the demo site's VM name.
func (rig *consoleRig) vmID(name string) string {
	rig.t.Helper()
	for _, r := range rig.site.Replicas {
		for _, vm := range r.VMs {
			if vm.Name == name {
				return vm.ID
			}
		}
	}
	rig.t.Fatalf("no VM %s in the demo site", name)
	return ""
}

// do types line as the console's current person, waits for what it causes, and returns what the
// terminal printed meanwhile.
func (rig *consoleRig) do(line string) string {
	rig.t.Helper()
	mark := len(rig.out.String())
	rig.term.handle(rig.t.Context(), rig.bot, rig.st, line)
	rig.idle()
	return rig.out.String()[mark:]
}

func (rig *consoleRig) idle() {
	rig.t.Helper()
	ctx, cancel := context.WithTimeout(rig.t.Context(), 30*time.Second)
	defer cancel()
	if err := rig.bot.Idle(ctx); err != nil {
		rig.t.Fatalf("bot did not become idle: %v", err)
	}
}

func (rig *consoleRig) get(id string) *store.Request {
	rig.t.Helper()
	r, err := rig.st.Get(rig.t.Context(), id)
	if err != nil {
		rig.t.Fatal(err)
	}
	return r
}

// pollUntil runs poll cycles, as the console's poller does, until the request is in state.
func (rig *consoleRig) pollUntil(id string, state store.State) *store.Request {
	rig.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		rig.bot.Poll(rig.t.Context())
		rig.idle()
		r := rig.get(id)
		if r.State == state {
			return r
		}
		if time.Now().After(deadline) {
			rig.t.Fatalf("%s is %s (%v) after 30s, want %s; the console printed:\n%s", id, r.State, store.Counts(r), state, rig.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// haltedDemo requests site-b as alice, has bob approve it, and runs it until it halts after
// databases, crm-db01 failing as the console's demo scripts it.
func (rig *consoleRig) haltedDemo() *store.Request {
	rig.t.Helper()
	rig.sim.SetScript(rig.vmID("crm-db01"), emsim.Script{Running: 200 * time.Millisecond, Result: emsim.ResultFailed, Message: "Replica disk missing on ds-crm"})
	mustHave(rig.t, "the plan's answer", rig.do(`/failover plan site-b --reason "site A lost power"`), "Recorded FO-1")
	rig.do("/as bob")
	rig.do("approve FO-1")
	r := rig.pollUntil("FO-1", store.Halted)
	if r.Halt == nil || r.Halt.Group != 0 || strings.Join(r.Halt.Items, ",") != "crm-db01" {
		rig.t.Fatalf("halt %+v, want after group 0 on crm-db01", r.Halt)
	}
	for _, i := range r.GroupItems(1) {
		if st := r.Items[i].State; st != store.Approved && st != store.Pending {
			rig.t.Fatalf("%s of apps is %s while halted", r.Items[i].Target.Name, st)
		}
	}
	mustHave(rig.t, "the halted card", rig.out.String(), "[Continue] [Stop run…]", "continue <id>")
	return r
}

func mustHave(t *testing.T, what, got string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(got, w) {
			t.Errorf("%s lacks %q:\n%s", what, w, got)
		}
	}
}

// TestConsolePlanHaltsAndContinues drives the console's demo end to end against the real bot:
// site-b halts after databases when crm-db01 fails; `continue` typed by the requester is refused
// (two-person rule), by an approver accepted, and the apps group starts.
func TestConsolePlanHaltsAndContinues(t *testing.T) {
	rig := newConsoleRig(t)
	rig.haltedDemo()

	rig.do("/as alice")
	mustHave(t, "alice's continue", rig.do("continue FO-1"), "(only @alice sees)", "You requested FO-1", "second person")
	if r := rig.get("FO-1"); r.State != store.Halted || len(r.Continues) != 0 {
		t.Fatalf("after the requester's continue: %s, continues %+v", r.State, r.Continues)
	}

	rig.do("/as bob")
	got := rig.do("continue FO-1")
	mustHave(t, "bob's continue", got, "continued the run")
	r := rig.get("FO-1")
	if len(r.Continues) != 1 || r.Continues[0].User != "U0BOB0000" || r.Continues[0].Group != 0 || r.Current != 1 || r.Halt != nil {
		t.Fatalf("after bob's continue: %s, current %d, halt %+v, continues %+v", r.State, r.Current, r.Halt, r.Continues)
	}
	sent := 0
	for _, i := range r.GroupItems(1) {
		if !r.Items[i].SubmittedAt.IsZero() || r.Items[i].State != store.Approved {
			sent++
		}
	}
	if sent == 0 {
		t.Fatalf("no item of apps was sent after the continue: %v", store.Counts(r))
	}
	for _, i := range r.GroupItems(2) {
		if st := r.Items[i].State; st != store.Approved && st != store.Pending {
			t.Fatalf("%s of web is %s while apps runs", r.Items[i].Target.Name, st)
		}
	}
}

// TestConsolePlanStopRun: `stop FO-1 "<reason>"` on the halted demo run clicks Stop run, sees the
// bot's dialog and submits it: the run ends, what was not sent is skipped.
func TestConsolePlanStopRun(t *testing.T) {
	rig := newConsoleRig(t)
	rig.haltedDemo()

	rig.do("/as alice")
	mustHave(t, "the stop", rig.do(`stop FO-1 "crm-db01 must be fixed first"`), "[dialog: Stop run FO-1]", "End the run of FO-1?", "skipped")
	r := rig.get("FO-1")
	n := store.Counts(r)
	if !r.State.Terminal() || n[store.Skipped] == 0 || n[store.Skipped] != len(r.GroupItems(1))+len(r.GroupItems(2)) {
		t.Fatalf("after stop: %s %v", r.State, n)
	}
	mustHave(t, "the thread", rig.out.String(), "stopped the run after group 1 of 3 (databases)")
}

// TestConsoleStopRefusedOnce: a Stop the bot refuses opens no dialog, so the console submits
// none and the person reads the refusal once.
func TestConsoleStopRefusedOnce(t *testing.T) {
	rig := newConsoleRig(t)
	rig.do(`/failover plan mail-only --reason "mail server room flooded"`)
	got := rig.do(`stop FO-1 "not yet"`)
	if n := strings.Count(got, "there is nothing to stop"); n != 1 {
		t.Errorf("the refusal was printed %d times, want once:\n%s", n, got)
	}
	if strings.Contains(got, "[dialog") {
		t.Errorf("a dialog was shown for a refused stop:\n%s", got)
	}
	if r := rig.get("FO-1"); r.State != store.Pending {
		t.Errorf("FO-1 is %s after a refused stop, want pending", r.State)
	}
}
