package bot

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/slack-go/slack"
	"golang.org/x/time/rate"

	"github.com/failover-bot/failover-bot/store"
)

// The App Home's pacing. views.publish is Tier 4 (100+ per minute) per workspace; a DR event
// changes requests many times a second, so refreshes are coalesced per viewer and paced under
// the tier, and a Home whose content did not change is not published again.
const (
	// homePublishesPerMinute is views.publish's Tier 4 figure, per workspace.
	homePublishesPerMinute = 100
	// homeRefreshEvery is the default Options.HomeRefresh: at most one publish per viewer per
	// this, however many changes happen meanwhile (the last one is always shown).
	homeRefreshEvery = 5 * time.Second
	// homeOpenedGap is how soon after a publish a viewer who opens the tab again is refreshed.
	homeOpenedGap = time.Second
	// homeViewerTTL is how long after opening the Home a viewer's tab follows the changes.
	homeViewerTTL = 24 * time.Hour
	// homeMaxViewers bounds the viewers followed; the one who opened the Home longest ago is
	// forgotten first (their tab then refreshes the next time they open it).
	homeMaxViewers = 500
)

// homePublisher is the Slack call the Home needs. *slack.Client implements it; console mode
// has no Home tab and does not.
type homePublisher interface {
	PublishViewContext(ctx context.Context, req slack.PublishViewContextRequest) (*slack.ViewResponse, error)
}

// homeStore is what the Home reads: everything active, and the last day's outcomes (at most
// limit of them newest first, and how many more; see store.Store.Finished). *store.Bolt
// implements it.
type homeStore interface {
	Active(ctx context.Context) ([]*store.Request, error)
	Finished(ctx context.Context, since time.Time, limit int) ([]*store.Request, int, error)
}

// homeViewer is one person who opened the Home recently.
type homeViewer struct {
	opened    time.Time // the bot's clock: when they last opened the Home
	due       bool      // something changed since their last refresh
	asked     bool      // they opened the Home since their last refresh
	checked   time.Time // wall clock: their last refresh (render, and publish if it changed)
	retryAt   time.Time // wall clock: not before this after a failed publish
	failures  int
	published bool     // Slack shows the view whose digest is sum
	sum       [32]byte // digest of the content last published (the as-of line left out)
}

// home keeps the App Home tab of everyone who opened it within homeViewerTTL showing the
// store: what waits for their decision, everything active, the last day's history. A change
// marks every viewer due; one worker refreshes them, at most one publish per viewer per
// refresh interval and all of them under views.publish's tier, viewers who just opened the tab
// first. The Home is a projection of the store, so nothing of it needs to survive a restart:
// the next opening publishes it again.
type home struct {
	pub          homePublisher
	st           homeStore
	approver     func(ctx context.Context, user string) (bool, error)
	log          *slog.Logger
	met          *Metrics
	now          func() time.Time // the bot's clock: viewer lifetimes, the as-of line, the history window
	wall         func() time.Time // pacing and backoff: real time
	workspaceURL string
	refresh      time.Duration
	limiter      *rate.Limiter
	timeout      time.Duration
	backoffBase  time.Duration

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
	kick   chan struct{}

	mu         sync.Mutex
	viewers    map[string]*homeViewer
	gen        uint64 // store changes seen
	snap       *homeSnapshot
	snapGen    uint64
	pauseUntil time.Time // wall clock: Slack answered 429 for views.publish
}

// homeOptions are what newHome needs besides the Bot's parts, for tests to set.
type homeOptions struct {
	refresh     time.Duration
	publishRate float64 // per second; 0: Slack's tier
	timeout     time.Duration
	backoffBase time.Duration
	wall        func() time.Time
}

func newHome(pub homePublisher, st homeStore, approver func(context.Context, string) (bool, error), log *slog.Logger, met *Metrics, now func() time.Time, workspaceURL string, o homeOptions) *home {
	if o.refresh <= 0 {
		o.refresh = homeRefreshEvery
	}
	if o.publishRate <= 0 {
		o.publishRate = float64(homePublishesPerMinute) / 60
	}
	if o.timeout <= 0 {
		o.timeout = 10 * time.Second
	}
	if o.backoffBase <= 0 {
		o.backoffBase = 250 * time.Millisecond
	}
	if o.wall == nil {
		o.wall = time.Now
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &home{
		pub: pub, st: st, approver: approver, log: log, met: met, now: now, wall: o.wall,
		workspaceURL: workspaceURL, refresh: o.refresh, limiter: rate.NewLimiter(rate.Limit(o.publishRate), 1),
		timeout: o.timeout, backoffBase: o.backoffBase,
		ctx: ctx, cancel: cancel, done: make(chan struct{}), kick: make(chan struct{}, 1),
		viewers: map[string]*homeViewer{},
	}
}

// start runs the worker until stop.
func (h *home) start() { go h.run() }

// stop ends the worker, abandoning a publish under way: the Home is only a projection.
func (h *home) stop() {
	h.cancel()
	<-h.done
}

func (h *home) nudge() {
	select {
	case h.kick <- struct{}{}:
	default:
	}
}

// opened records that user opened their Home tab; shown is whether Slack shows them a view
// published earlier (app_home_opened carries it). The refresh happens in the background.
func (h *home) opened(user string, shown bool) {
	h.mu.Lock()
	now := h.now()
	v := h.viewers[user]
	if v == nil {
		h.forget(now)
		if len(h.viewers) >= homeMaxViewers {
			h.evictOldest()
		}
		v = &homeViewer{}
		h.viewers[user] = v
	}
	v.opened, v.due, v.asked = now, true, true
	if !shown {
		v.published = false // nothing to compare with: publish whatever it is
	}
	h.mu.Unlock()
	h.nudge()
}

// changed is called after the store committed a change: every viewer's Home is due.
func (h *home) changed() {
	h.mu.Lock()
	h.gen++
	for _, v := range h.viewers {
		v.due = true
	}
	h.mu.Unlock()
	h.nudge()
}

// forget drops the viewers who have not opened the Home within homeViewerTTL; h.mu is held.
func (h *home) forget(now time.Time) {
	for id, v := range h.viewers {
		if now.Sub(v.opened) >= homeViewerTTL {
			delete(h.viewers, id)
		}
	}
}

// evictOldest drops the viewer who opened the Home longest ago; h.mu is held.
func (h *home) evictOldest() {
	var oldest string
	for id, v := range h.viewers {
		if oldest == "" || v.opened.Before(h.viewers[oldest].opened) {
			oldest = id
		}
	}
	delete(h.viewers, oldest)
}

// eligibleAt is when v may be refreshed next (wall clock).
func (h *home) eligibleAt(v *homeViewer) time.Time {
	gap := h.refresh
	if v.asked {
		gap = min(gap, homeOpenedGap)
	}
	at := v.checked.Add(gap)
	if v.retryAt.After(at) {
		at = v.retryAt
	}
	return at
}

func (h *home) run() {
	defer close(h.done)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		wait := h.step()
		if wait == 0 {
			if h.ctx.Err() != nil {
				return
			}
			continue
		}
		if wait > 0 {
			timer.Reset(wait)
		}
		select {
		case <-h.ctx.Done():
			timer.Stop()
			return
		case <-h.kick:
		case <-timer.C:
		}
		timer.Stop()
	}
}

// step refreshes the viewer who has waited longest (one who just opened the tab first) and
// reports 0, or reports how long until a viewer may be refreshed (-1: none is due).
func (h *home) step() time.Duration {
	h.mu.Lock()
	h.forget(h.now())
	wall := h.wall()
	if wall.Before(h.pauseUntil) {
		d := h.pauseUntil.Sub(wall)
		h.mu.Unlock()
		return d
	}
	var user string
	var pick *homeViewer
	wait := time.Duration(-1)
	for id, v := range h.viewers {
		if !v.due {
			continue
		}
		if at := h.eligibleAt(v); at.After(wall) {
			if d := at.Sub(wall); wait < 0 || d < wait {
				wait = d
			}
			continue
		}
		if pick == nil || (v.asked && !pick.asked) || (v.asked == pick.asked && v.checked.Before(pick.checked)) {
			user, pick = id, v
		}
	}
	if pick == nil {
		h.mu.Unlock()
		return wait
	}
	prevChecked, prevAsked := pick.checked, pick.asked
	pick.due, pick.asked, pick.checked = false, false, wall
	published, sum := pick.published, pick.sum
	h.mu.Unlock()
	// undo makes a refresh that did not reach Slack not count as one: the viewer keeps their
	// place (and their priority if they had just opened the tab).
	undo := func(v *homeViewer) {
		v.checked, v.asked = prevChecked, v.asked || prevAsked
	}

	snap, err := h.snapshot()
	if err != nil {
		h.log.Error("app home: reading the store failed; retrying", "error", err)
		h.mu.Lock()
		if v := h.viewers[user]; v != nil {
			undo(v)
			v.due, v.retryAt = true, h.wall().Add(time.Second)
		}
		h.mu.Unlock()
		return 0
	}
	actx, cancel := context.WithTimeout(h.ctx, h.timeout)
	approver, aerr := h.approver(actx, user)
	cancel()
	if aerr != nil {
		h.log.Warn("app home: could not check whether the viewer may approve", "user", user, "error", aerr)
	}
	content, asOf := renderHome(snap, h.workspaceURL, user, approver, aerr)
	next := digest(content)
	if published && next == sum {
		return 0 // Slack already shows exactly this
	}
	if err := h.limiter.Wait(h.ctx); err != nil {
		return 0 // stopping
	}
	err = h.publish(user, append([]slack.Block{asOf}, content...))
	outcome, hint := classify(err)
	h.mu.Lock()
	defer h.mu.Unlock()
	v := h.viewers[user]
	switch outcome {
	case delivered:
		if v != nil {
			v.published, v.sum, v.failures = true, next, 0
		}
	case transient:
		var rl *slack.RateLimitedError
		if errors.As(err, &rl) {
			h.met.SlackRateLimited.Inc()
			h.pauseUntil = h.wall().Add(hint) // the tier is the workspace's, not this viewer's
		}
		if v != nil {
			undo(v)
			v.failures++
			v.due = true
			if hint <= 0 {
				hint = min(time.Duration(1<<min(v.failures, 6))*h.backoffBase, maxBackoff)
			}
			v.retryAt = h.wall().Add(hint)
		}
		h.log.Warn("app home: publish failed; retrying", "user", user, "error", err)
	default:
		// Slack refused this view for good (the Home tab is disabled for the app, the user is
		// gone, the view is invalid): the next change or opening tries again.
		if v != nil {
			undo(v)
			v.published = false
		}
		msg := "app home: Slack refused the view"
		if slackErrorText(err) == "not_enabled" {
			msg = "app home: the Home tab is not enabled for this Slack app; set features.app_home.home_tab_enabled in its manifest"
		}
		h.log.Error(msg, "user", user, "error", err)
	}
	return 0
}

// snapshot reads the store once per change: every viewer refreshed after the same change
// shares one read and one rendering of the shared parts.
func (h *home) snapshot() (*homeSnapshot, error) {
	h.mu.Lock()
	gen, cached := h.gen, h.snap
	if cached != nil && h.snapGen == gen && h.now().Sub(cached.at) < time.Minute {
		h.mu.Unlock()
		return cached, nil
	}
	h.mu.Unlock()
	ctx, cancel := context.WithTimeout(h.ctx, h.timeout)
	defer cancel()
	s, err := readHomeSnapshot(ctx, h.st, h.now())
	if err != nil {
		return nil, err
	}
	h.mu.Lock()
	h.snap, h.snapGen = s, gen
	h.mu.Unlock()
	return s, nil
}

func (h *home) publish(user string, blocks []slack.Block) error {
	ctx, cancel := context.WithTimeout(h.ctx, h.timeout)
	defer cancel()
	start := time.Now()
	_, err := h.pub.PublishViewContext(ctx, slack.PublishViewContextRequest{UserID: user, View: slack.HomeTabViewRequest{
		Type: slack.VTHomeTab, CallbackID: callbackHomeView, Blocks: slack.Blocks{BlockSet: blocks}}})
	observeSlack(h.met, "views.publish", err, time.Since(start))
	return err
}

// digest identifies a Home's content, to skip publishing what Slack already shows.
func digest(blocks []slack.Block) [32]byte {
	b, err := json.Marshal(blocks)
	if err != nil {
		return [32]byte{} // never equal to a published digest of real content
	}
	return sha256.Sum256(b)
}
