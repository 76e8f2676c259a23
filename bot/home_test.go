package bot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"

	"github.com/failover-bot/failover-bot/bot/slackfake"
	"github.com/failover-bot/failover-bot/store"
	"github.com/failover-bot/failover-bot/store/failover"
	"github.com/failover-bot/failover-bot/store/failover/fakeclock"
)

// The cast of the Home's unit tests.
const (
	homeRequester = "U0REQ"
	homeApprover  = "U0APP"
	homeOutsider  = "U0OUT"
)

var homeT0 = time.Date(2026, 11, 23, 14, 0, 0, 0, time.UTC)

// homeRequest is a one-VM request by requester in state, created at.
func homeRequest(seq int, state store.State, requester string, at time.Time) *store.Request {
	id := failover.FormatID(uint64(seq))
	r := &store.Request{Seq: uint64(seq), ID: id, Kind: store.KindVM,
		Items:  []store.Item{{Target: store.Target{ReplicaID: "rep-1", ReplicaName: "CDP-Finance", ID: "vm-" + id, Name: "db-" + id}, State: state}},
		Intent: store.IntentLatest, Reason: "site A lost power", Requester: requester, Channel: "C0DR", MessageTS: fmt.Sprintf("1700000000.%06d", seq),
		ApprovalsRequired: 1, State: state, StateBy: requester, StateAt: at, CreatedAt: at, ExpiresAt: at.Add(time.Hour), UpdatedAt: at,
		DigestV: failover.DigestVersion}
	r.Digest = r.ComputeDigest()
	if state.Terminal() {
		r.FinishedAt = at.Add(time.Minute)
		r.StateAt = r.FinishedAt
	}
	return r
}

// fakeHomeStore is the store as the Home reads it; tests change it between steps.
type fakeHomeStore struct {
	mu       sync.Mutex
	active   []*store.Request
	finished []*store.Request
	err      error
}

func (f *fakeHomeStore) Active(context.Context) ([]*store.Request, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.active, f.err
}

// Finished answers as store.Store.Finished does: newest first from f.finished (kept in that
// order), those since since, at most limit, and how many more.
func (f *fakeHomeStore) Finished(_ context.Context, since time.Time, limit int) ([]*store.Request, int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*store.Request
	more := 0
	for _, r := range f.finished {
		switch {
		case store.FinishTime(r).Before(since):
		case len(out) < limit:
			out = append(out, r)
		default:
			more = min(more+1, store.FinishedMoreCap)
		}
	}
	return out, more, f.err
}

func (f *fakeHomeStore) set(active ...*store.Request) {
	f.mu.Lock()
	f.active = active
	f.mu.Unlock()
}

// fakePublisher records views.publish calls and answers with err when set.
type fakePublisher struct {
	mu    sync.Mutex
	calls []slack.PublishViewContextRequest
	err   error
}

func (p *fakePublisher) PublishViewContext(_ context.Context, req slack.PublishViewContextRequest) (*slack.ViewResponse, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls = append(p.calls, req)
	if p.err != nil {
		return nil, p.err
	}
	return &slack.ViewResponse{}, nil
}

func (p *fakePublisher) count(user string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, c := range p.calls {
		if c.UserID == user {
			n++
		}
	}
	return n
}

// last is the text of user's last published view (its blocks as JSON).
func (p *fakePublisher) last(t *testing.T, user string) string {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := len(p.calls) - 1; i >= 0; i-- {
		if p.calls[i].UserID == user {
			b, err := json.Marshal(p.calls[i].View.Blocks)
			if err != nil {
				t.Fatal(err)
			}
			return unescapeJSON(string(b))
		}
	}
	t.Fatalf("no view published to %s", user)
	return ""
}

func unescapeJSON(s string) string {
	return strings.NewReplacer(`\u003c`, "<", `\u003e`, ">", `\u0026`, "&").Replace(s)
}

type homeFixture struct {
	h     *home
	st    *fakeHomeStore
	pub   *fakePublisher
	clock *fakeclock.Clock // the bot's clock
	wall  *fakeclock.Clock // pacing
	// approverErr makes the approver check fail as a Slack outage would.
	approverErr error
}

// newHomeFixture is a Home that is never started: the test runs its worker's steps itself, so
// nothing happens between two of them.
func newHomeFixture(t *testing.T) *homeFixture {
	t.Helper()
	f := &homeFixture{st: &fakeHomeStore{}, pub: &fakePublisher{}, clock: fakeclock.New(homeT0), wall: fakeclock.New(homeT0)}
	approver := func(_ context.Context, user string) (bool, error) {
		if f.approverErr != nil {
			return false, f.approverErr
		}
		return user == homeApprover, nil
	}
	f.h = newHome(f.pub, f.st, approver, slog.New(slog.NewTextHandler(io.Discard, nil)), NewMetrics(nil),
		f.clock.Now, "https://acme.slack.com/", homeOptions{refresh: 5 * time.Second, publishRate: 1e6, wall: f.wall.Now, backoffBase: time.Second})
	t.Cleanup(f.h.cancel)
	return f
}

// drain runs the worker's steps until it has nothing to do now, and returns how long until it
// would have something (-1: nothing due).
func (f *homeFixture) drain(t *testing.T) time.Duration {
	t.Helper()
	for i := 0; i < 10000; i++ {
		if wait := f.h.step(); wait != 0 {
			return wait
		}
	}
	t.Fatal("the Home worker never runs out of work")
	return 0
}

// TestHomeCoalescesRefreshes: a burst of changes (a 200-VM failover's progress) becomes one
// publish per viewer per refresh interval, and the view published next shows the newest state.
func TestHomeCoalescesRefreshes(t *testing.T) {
	f := newHomeFixture(t)
	r := homeRequest(1, store.Running, homeRequester, homeT0)
	f.st.set(r)
	f.h.opened(homeApprover, false)
	f.h.opened(homeOutsider, false)
	f.drain(t)
	for _, u := range []string{homeApprover, homeOutsider} {
		if n := f.pub.count(u); n != 1 {
			t.Fatalf("%s: %d publishes after opening the Home, want 1", u, n)
		}
	}

	for i := 1; i <= 200; i++ {
		next := r.Clone()
		next.Items[0].EMProgress, next.Version = i/3, uint64(i)
		next.Items[0].EMState = "Working"
		f.st.set(next)
		f.h.changed()
		if wait := f.drain(t); wait <= 0 || wait > 5*time.Second {
			t.Fatalf("change %d: next refresh in %v, want within the 5s interval", i, wait)
		}
	}
	for _, u := range []string{homeApprover, homeOutsider} {
		if n := f.pub.count(u); n != 1 {
			t.Fatalf("%s: %d publishes during the burst, want still 1 (the interval has not passed)", u, n)
		}
	}

	f.wall.Advance(5 * time.Second)
	if wait := f.drain(t); wait != -1 {
		t.Errorf("after the refresh, next work in %v, want none due", wait)
	}
	for _, u := range []string{homeApprover, homeOutsider} {
		if n := f.pub.count(u); n != 2 {
			t.Fatalf("%s: %d publishes after the interval, want 2", u, n)
		}
		mustHave(t, u+"'s Home", f.pub.last(t, u), "Working 66%")
	}
}

// TestHomeSkipsUnchangedViews: a change that does not change what a viewer sees publishes
// nothing; a viewer whose Slack shows no view (after a restart, say) gets one on opening.
func TestHomeSkipsUnchangedViews(t *testing.T) {
	f := newHomeFixture(t)
	f.st.set(homeRequest(1, store.Pending, homeRequester, homeT0))
	f.h.opened(homeOutsider, false)
	f.drain(t)
	f.wall.Advance(time.Minute)
	f.h.changed() // e.g. a thread line delivered: the request is as it was
	f.drain(t)
	f.h.opened(homeOutsider, true) // opened again: Slack shows the view published above
	f.wall.Advance(time.Minute)
	f.drain(t)
	if n := f.pub.count(homeOutsider); n != 1 {
		t.Fatalf("%d publishes, want 1: nothing changed after the first", n)
	}
	f.h.opened(homeOutsider, false) // Slack says it shows no view of ours
	f.wall.Advance(time.Minute)
	f.drain(t)
	if n := f.pub.count(homeOutsider); n != 2 {
		t.Fatalf("%d publishes, want 2: a Home Slack does not show is published", n)
	}
}

// TestHomeViewers: only people who opened the Home within a day are refreshed, and the set is
// bounded, forgetting whoever opened it longest ago.
func TestHomeViewers(t *testing.T) {
	f := newHomeFixture(t)
	f.h.opened(homeApprover, false)
	f.drain(t)
	f.clock.Advance(homeViewerTTL - time.Minute)
	f.h.opened(homeOutsider, false)
	f.drain(t)

	f.clock.Advance(2 * time.Minute) // the approver opened it a day ago, the outsider a minute ago
	f.wall.Advance(time.Minute)
	f.st.set(homeRequest(1, store.Pending, homeRequester, f.clock.Now()))
	f.h.changed()
	f.drain(t)
	if n := f.pub.count(homeApprover); n != 1 {
		t.Errorf("approver who opened the Home a day ago: %d publishes, want 1 (no refresh)", n)
	}
	if n := f.pub.count(homeOutsider); n != 2 {
		t.Errorf("outsider who opened it recently: %d publishes, want 2", n)
	}

	for i := range homeMaxViewers + 10 {
		f.clock.Advance(time.Second)
		f.h.opened(fmt.Sprintf("U%05d", i), true)
	}
	f.h.mu.Lock()
	n := len(f.h.viewers)
	_, outsider := f.h.viewers[homeOutsider]
	_, first := f.h.viewers["U00000"]
	_, newest := f.h.viewers[fmt.Sprintf("U%05d", homeMaxViewers+9)]
	f.h.mu.Unlock()
	if n != homeMaxViewers || outsider || first || !newest {
		t.Errorf("viewers = %d (longest-ago kept: %v, first of the burst kept: %v, newest kept: %v), want %d, the longest-ago forgotten",
			n, outsider, first, newest, homeMaxViewers)
	}
}

// TestHomePublishFailures: a 429 pauses every viewer's refresh for Retry-After (the tier is the
// workspace's); a transport error is retried after a backoff; a permanent refusal is not retried
// until the next change.
func TestHomePublishFailures(t *testing.T) {
	t.Run("rate limited", func(t *testing.T) {
		f := newHomeFixture(t)
		f.pub.err = &slack.RateLimitedError{RetryAfter: 30 * time.Second}
		f.h.opened(homeApprover, false)
		f.h.opened(homeOutsider, false)
		if wait := f.drain(t); wait != 30*time.Second {
			t.Fatalf("after a 429, next attempt in %v, want Retry-After 30s", wait)
		}
		if got := len(f.pub.calls); got != 1 {
			t.Fatalf("%d views.publish calls, want 1: the second viewer waits for Retry-After too", got)
		}
		f.pub.err = nil
		f.wall.Advance(30 * time.Second)
		f.drain(t)
		if n := len(f.pub.calls); n != 3 || f.pub.count(homeApprover) == 0 || f.pub.count(homeOutsider) == 0 {
			t.Fatalf("after Retry-After: %d calls (approver %d, outsider %d), want 3: the limited one again and the other",
				n, f.pub.count(homeApprover), f.pub.count(homeOutsider))
		}
	})
	t.Run("transport error", func(t *testing.T) {
		f := newHomeFixture(t)
		f.pub.err = errors.New("connection reset by peer")
		f.h.opened(homeApprover, false)
		if wait := f.drain(t); wait != 2*time.Second {
			t.Fatalf("after a transport error, next attempt in %v, want the 2s backoff", wait)
		}
		f.pub.err = nil
		f.wall.Advance(2 * time.Second)
		f.drain(t)
		if n := f.pub.count(homeApprover); n != 2 {
			t.Fatalf("%d calls, want 2 (the retry)", n)
		}
	})
	t.Run("refused for good", func(t *testing.T) {
		f := newHomeFixture(t)
		f.pub.err = slack.SlackErrorResponse{Err: "not_enabled"}
		f.h.opened(homeApprover, false)
		if wait := f.drain(t); wait != -1 {
			t.Fatalf("after not_enabled, next attempt in %v, want none until something changes", wait)
		}
		f.pub.err = nil
		f.wall.Advance(time.Minute)
		f.h.changed()
		f.drain(t)
		if n := f.pub.count(homeApprover); n != 2 {
			t.Fatalf("%d calls, want 2 (the next change tries again)", n)
		}
	})
	t.Run("store unreadable", func(t *testing.T) {
		f := newHomeFixture(t)
		f.st.err = errors.New("disk on fire")
		f.h.opened(homeApprover, false)
		if wait := f.drain(t); wait != time.Second {
			t.Fatalf("store error: next attempt in %v, want 1s", wait)
		}
		if len(f.pub.calls) != 0 {
			t.Fatal("a view was published without reading the store")
		}
	})
}

func mustHave(t *testing.T, what, got string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(got, w) {
			t.Errorf("%s does not contain %q; got:\n%s", what, w, got)
		}
	}
}

func mustLack(t *testing.T, what, got string, nots ...string) {
	t.Helper()
	for _, w := range nots {
		if strings.Contains(got, w) {
			t.Errorf("%s contains %q; got:\n%s", what, w, got)
		}
	}
}

// TestHomeViewFor: what each viewer sees of the same store: an approver the requests waiting for
// their decision (not their own, not one they approved), the requester their own, an outsider
// only the lists; everyone everything active and the last day's outcomes.
func TestHomeViewFor(t *testing.T) {
	pending := homeRequest(1, store.Pending, homeRequester, homeT0)
	own := homeRequest(2, store.Pending, homeApprover, homeT0) // the approver's own request
	approvedTwice := homeRequest(3, store.Pending, homeRequester, homeT0)
	approvedTwice.ApprovalsRequired = 2
	approvedTwice.Approvals = []store.Approval{{User: homeApprover, At: homeT0}}
	expired := homeRequest(4, store.Pending, homeRequester, homeT0.Add(-2*time.Hour)) // the poller has not expired it yet
	running := homeRequest(5, store.Running, homeRequester, homeT0)
	running.Items[0].EMState, running.Items[0].EMProgress = "Working", 40
	done := homeRequest(6, store.Succeeded, homeRequester, homeT0.Add(-time.Hour))
	old := homeRequest(7, store.Failed, homeRequester, homeT0.Add(-25*time.Hour))
	st := &fakeHomeStore{active: []*store.Request{pending, own, approvedTwice, expired, running}, finished: []*store.Request{done, old}}
	snap := func() *homeSnapshot {
		s, err := readHomeSnapshot(context.Background(), st, homeT0)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	link := "<https://acme.slack.com/archives/C0DR/p1700000000000001|FO-1>"
	everyone := []string{"Active (5)", "FO-5", "Working 40%", "Finished in the last 24 hours (1)", "FO-6", "(finished 13:01 UTC)", "updated 2026-11-23 14:00 UTC"}
	tests := []struct {
		name        string
		user        string
		approver    bool
		approverErr error
		want, not   []string
	}{
		{"approver", homeApprover, true, nil,
			append([]string{"Waiting for your decision (1)", `"block_id":"fo_home_waiting_FO-1"`, link, "site A lost power", "Approve or reject it on its card",
				"Your active requests (1)"}, everyone...),
			[]string{"fo_home_waiting_FO-2", "fo_home_waiting_FO-3", "fo_home_waiting_FO-4", "fo_home_waiting_FO-5", "FO-7", "not an authorised approver"}},
		{"requester", homeRequester, false, nil,
			append([]string{"Waiting for your decision (0)", "not an authorised approver", "Your active requests (4)"}, everyone...),
			[]string{"fo_home_waiting_FO-"}},
		{"outsider", homeOutsider, false, nil,
			append([]string{"Waiting for your decision (0)", "not an authorised approver"}, everyone...),
			[]string{"fo_home_waiting_FO-", "Your active requests"}},
		{"approver while Slack cannot tell", homeApprover, false, errors.New("users.info: timeout"),
			append([]string{"Waiting for your decision (0)", "Slack did not tell me whether you may approve"}, everyone...),
			[]string{"fo_home_waiting_FO-", "not an authorised approver"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			content, asOf := renderHome(snap(), "https://acme.slack.com/", tt.user, tt.approver, tt.approverErr)
			b, _ := json.Marshal(append([]slack.Block{asOf}, content...))
			got := unescapeJSON(string(b))
			mustHave(t, "Home of "+tt.name, got, tt.want...)
			mustLack(t, "Home of "+tt.name, got, tt.not...)
		})
	}

	t.Run("history beyond what the store counts", func(t *testing.T) {
		s := &homeSnapshot{at: homeT0, finished: []*store.Request{done}, more: store.FinishedMoreCap}
		content, _ := renderHome(s, "", homeOutsider, false, nil)
		b, _ := json.Marshal(content)
		mustHave(t, "Home", string(b), fmt.Sprintf("Finished in the last 24 hours (over %d)", store.FinishedMoreCap+1),
			fmt.Sprintf("and over %d more finished", store.FinishedMoreCap))
	})
	t.Run("halted plan waits for a second person", func(t *testing.T) {
		plan := homeRequest(8, store.Halted, homeRequester, homeT0)
		plan.Kind, plan.Plan = store.KindPlan, "site-a"
		plan.Groups = []store.Group{{Name: "databases"}, {Name: "apps"}}
		plan.Items[0].State, plan.Items[0].Group = store.Failed, 0
		plan.Items = append(plan.Items, store.Item{Target: store.Target{ID: "vm-app", Name: "app01", ReplicaID: "rep-1", ReplicaName: "CDP-Finance"}, Group: 1, State: store.Pending})
		plan.Halt = &store.Halt{Group: 0, At: homeT0, Items: []string{plan.Items[0].Target.Name}}
		s := &homeSnapshot{at: homeT0, active: []*store.Request{plan}}
		for _, v := range []struct {
			user string
			want bool
		}{{homeApprover, true}, {homeRequester, false}} {
			content, _ := renderHome(s, "", v.user, true, nil)
			b, _ := json.Marshal(content)
			if got := strings.Contains(string(b), "fo_home_waiting_FO-8"); got != v.want {
				t.Errorf("%s: halted plan waits for them = %v, want %v", v.user, got, v.want)
			}
			if v.want {
				mustHave(t, "approver's Home", unescapeJSON(string(b)), "Halted after", "Continue or stop the run on its card")
			}
		}
	})
}

// TestHomeViewStaysInSlackLimits: hundreds of requests waiting, active and finished, with long
// names and reasons, still make a view Slack accepts (through the fake's views.publish, which
// checks Slack's limits), with the rest counted.
func TestHomeViewStaysInSlackLimits(t *testing.T) {
	long := strings.Repeat("ünïcode-", 40)
	var active, finished []*store.Request
	for i := 1; i <= 300; i++ {
		state := store.Pending
		if i%3 == 0 {
			state = store.Running
		}
		r := homeRequest(i, state, homeRequester, homeT0)
		r.Reason = long + long
		r.Items[0].Target.Name = long
		r.Items[0].EMMessage = long
		r.Digest = r.ComputeDigest()
		active = append(active, r)
		f := homeRequest(1000+i, store.Failed, homeRequester, homeT0.Add(-time.Hour))
		f.Items[0].Target.Name = long
		finished = append(finished, f)
	}
	s, err := readHomeSnapshot(context.Background(), &fakeHomeStore{active: active, finished: finished}, homeT0)
	if err != nil {
		t.Fatal(err)
	}
	fake := slackfake.New(t)
	api := slack.New("xoxb-test", slack.OptionAPIURL(fake.APIURL()))
	for _, user := range []string{homeApprover, homeRequester, homeOutsider} {
		content, asOf := renderHome(s, "https://acme.slack.com/", user, user == homeApprover, nil)
		blocks := append([]slack.Block{asOf}, content...)
		if len(blocks) > homeMaxBlocks {
			t.Fatalf("%s: %d blocks, Slack allows %d", user, len(blocks), homeMaxBlocks)
		}
		b, _ := json.Marshal(blocks)
		for _, blk := range blocks {
			if sec, ok := blk.(*slack.SectionBlock); ok && utf8.RuneCountInString(sec.Text.Text) > slackfake.MaxSectionTextLen {
				t.Fatalf("%s: a section of %d characters", user, utf8.RuneCountInString(sec.Text.Text))
			}
		}
		_, err := api.PublishViewContext(context.Background(), slack.PublishViewContextRequest{UserID: user,
			View: slack.HomeTabViewRequest{Type: slack.VTHomeTab, CallbackID: callbackHomeView, Blocks: slack.Blocks{BlockSet: blocks}}})
		if err != nil {
			t.Fatalf("%s: Slack refused the Home (%d blocks, %d bytes): %v", user, len(blocks), len(b), err)
		}
		got := unescapeJSON(string(b))
		mustHave(t, user+"'s Home", got, "Active (300)", "more active requests (all active: 200 pending, 100 running)",
			"Finished in the last 24 hours (300)", "…and 270 more finished in the last 24 hours")
		if user == homeApprover {
			mustHave(t, "approver's Home", got, "Waiting for your decision (200)", "185 more waiting for you: FO-")
		}
	}
}

// homeEvent is an app_home_opened delivery as Slack sends it, parsed as the endpoints parse it.
func homeEvent(t *testing.T, eventID, team, user, tab string, shown bool) slackevents.EventsAPIEvent {
	t.Helper()
	inner := map[string]any{"type": "app_home_opened", "user": user, "channel": "D0HOME", "tab": tab, "event_ts": "1700000000.000100"}
	if shown {
		inner["view"] = map[string]any{"id": "V1", "type": "home", "blocks": []any{}}
	}
	body, _ := json.Marshal(map[string]any{"type": "event_callback", "team_id": team, "api_app_id": "A0FAKE",
		"event_id": eventID, "event_time": 1700000000, "event": inner})
	ev, err := parseEventsPayload(body)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

// TestHandleEvent: what an Events API delivery does to the Home's viewers: a Home opening
// follows the viewer; Slack's redelivery of the same event, the Messages tab, another workspace
// and other events do nothing.
func TestHandleEvent(t *testing.T) {
	newBot := func(t *testing.T) (*Bot, *homeFixture) {
		f := newHomeFixture(t)
		return &Bot{opt: Options{Teams: []string{"T0MINE"}}, log: slog.New(slog.NewTextHandler(io.Discard, nil)),
			met: NewMetrics(nil), now: f.clock.Now, home: f.h}, f
	}
	viewer := func(f *homeFixture, user string) *homeViewer {
		f.h.mu.Lock()
		defer f.h.mu.Unlock()
		if v := f.h.viewers[user]; v != nil {
			c := *v
			return &c
		}
		return nil
	}
	t.Run("opening, then its redelivery", func(t *testing.T) {
		b, f := newBot(t)
		b.handleEvent(homeEvent(t, "Ev1", "T0MINE", homeApprover, "home", false))
		if v := viewer(f, homeApprover); v == nil || !v.due || !v.asked {
			t.Fatalf("viewer after app_home_opened = %+v, want a due viewer who asked", v)
		}
		f.drain(t)
		b.handleEvent(homeEvent(t, "Ev1", "T0MINE", homeApprover, "home", false)) // X-Slack-Retry-Num: 1
		if v := viewer(f, homeApprover); v.due || !v.published {
			t.Fatalf("viewer after the redelivery = %+v: the retry was acted on", v)
		}
		f.clock.Advance(eventSeenFor)
		b.handleEvent(homeEvent(t, "Ev1", "T0MINE", homeApprover, "home", false))
		if v := viewer(f, homeApprover); !v.due || v.published {
			t.Fatalf("viewer after an event ID long forgotten = %+v, want it handled", v)
		}
	})
	for _, tc := range []struct {
		name string
		ev   func(t *testing.T) slackevents.EventsAPIEvent
	}{
		{"messages tab", func(t *testing.T) slackevents.EventsAPIEvent {
			return homeEvent(t, "Ev2", "T0MINE", homeApprover, "messages", false)
		}},
		{"another workspace", func(t *testing.T) slackevents.EventsAPIEvent {
			return homeEvent(t, "Ev3", "T0OTHER", homeApprover, "home", false)
		}},
		{"no user", func(t *testing.T) slackevents.EventsAPIEvent { return homeEvent(t, "Ev4", "T0MINE", "", "home", false) }},
		{"another event", func(t *testing.T) slackevents.EventsAPIEvent {
			ev, err := parseEventsPayload([]byte(`{"type":"event_callback","team_id":"T0MINE","event_id":"Ev5","event":{"type":"app_mention","user":"` + homeApprover + `","text":"hi"}}`))
			if err != nil {
				t.Fatal(err)
			}
			return ev
		}},
		{"app rate limited", func(t *testing.T) slackevents.EventsAPIEvent {
			ev, err := parseEventsPayload([]byte(`{"type":"app_rate_limited","team_id":"T0MINE","minute_rate_limited":1518467820,"api_app_id":"A0FAKE"}`))
			if err != nil {
				t.Fatal(err)
			}
			return ev
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, f := newBot(t)
			b.handleEvent(tc.ev(t))
			if v := viewer(f, homeApprover); v != nil {
				t.Fatalf("viewer = %+v, want none", v)
			}
		})
	}
	t.Run("no Home (console)", func(t *testing.T) {
		b, _ := newBot(t)
		b.home = nil
		b.handleEvent(homeEvent(t, "Ev6", "T0MINE", homeApprover, "home", false)) // must not panic
	})
}

// TestEventIDs: an event ID is remembered for eventSeenFor, and at most maxSeenEvents of them.
func TestEventIDs(t *testing.T) {
	var s eventIDs
	if s.seen("Ev1", homeT0) {
		t.Fatal("a new event ID was reported seen")
	}
	if !s.seen("Ev1", homeT0.Add(eventSeenFor-time.Second)) {
		t.Fatal("a redelivery within the window was not recognised")
	}
	if s.seen("Ev1", homeT0.Add(eventSeenFor)) {
		t.Fatal("an event ID was remembered past the window")
	}
	for i := range maxSeenEvents + 100 {
		s.seen(fmt.Sprintf("EvB%d", i), homeT0.Add(eventSeenFor+time.Second))
	}
	if n := len(s.at); n > maxSeenEvents || len(s.order) > maxSeenEvents {
		t.Fatalf("remembers %d event IDs (%d in order), want at most %d", n, len(s.order), maxSeenEvents)
	}
}
