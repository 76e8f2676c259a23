package bot

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/robfig/cron/v3"
	"golang.org/x/sync/errgroup"

	"github.com/failover-bot/failover-bot/emapi"
	"github.com/failover-bot/failover-bot/store"
)

// progressStep is how far a restore session's progress must move before the thread hears about
// it: every state change is posted, but a 30-minute failover should not post a line per poll.
const progressStep = 25

// warnAfterFailures is how many poll cycles in a row EM may fail for one request before the
// thread is told that the bot cannot see the task (said once, and again when it recovers).
const warnAfterFailures = 3

// StartPoller runs Poll on schedule (robfig/cron spec, UTC) until the returned stop function is
// called; stop waits for a running cycle to finish or ctx to end.
func (b *Bot) StartPoller(schedule string) (stop func(ctx context.Context) error, err error) {
	logger := cronLogger{b.log}
	c := cron.New(cron.WithLocation(time.UTC), cron.WithLogger(logger),
		cron.WithChain(cron.Recover(logger), cron.SkipIfStillRunning(logger)))
	if _, err := c.AddFunc(schedule, func() { b.Poll(b.ctx) }); err != nil {
		return nil, fmt.Errorf("POLL_SCHEDULE %q: %w", schedule, err)
	}
	c.Start()
	return func(ctx context.Context) error {
		select {
		case <-c.Stop().Done():
			return nil
		case <-ctx.Done():
			return fmt.Errorf("poll cycle still running at shutdown: %w", ctx.Err())
		}
	}, nil
}

// Poll is one poll cycle: it expires stale pending requests, resumes approved ones that never
// reached EM, reconciles those whose submission outcome is unknown, and follows every running
// task. EM calls run with bounded concurrency; a slow or failing request never blocks the others.
func (b *Bot) Poll(ctx context.Context) {
	// One cycle at a time: cron's SkipIfStillRunning covers its own ticks, this also covers the
	// cycle PollSoon starts at boot.
	if !b.pollMu.TryLock() {
		return
	}
	defer b.pollMu.Unlock()
	b.sessions.reset()
	start := time.Now()
	defer func() { b.met.PollDuration.Observe(time.Since(start).Seconds()) }()
	reqs, err := b.st.Active()
	if err != nil {
		b.log.Error("poll: listing active requests failed", "error", err)
		return
	}
	b.met.Active.Set(float64(len(reqs)))
	b.peers.reset(reqs, b.opt.RequestTTL)
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(b.opt.PollConcurrency)
	for _, r := range reqs {
		if b.claimed(r.ID) {
			continue // a submission or stop is under way in this process
		}
		switch r.State {
		case store.Pending:
			if !b.now().Before(r.ExpiresAt) {
				b.expire(r)
			}
		case store.Approved:
			g.Go(func() error { b.submit(ctx, r.ID); return nil })
		case store.Submitting:
			g.Go(func() error { b.reconcile(ctx, r); return nil })
		case store.Running, store.Stopping:
			g.Go(func() error { b.follow(ctx, r); return nil })
		}
	}
	_ = g.Wait()
}

// PollSoon runs one poll cycle now in the background, owned by the Bot (Close waits for it): after
// a restart, active failovers are followed at once rather than at the first tick.
func (b *Bot) PollSoon() {
	b.goBackground(func(ctx context.Context) { b.Poll(ctx) })
}

func (b *Bot) expire(r *store.Request) {
	e, err := b.st.Expire(r.ID)
	if err != nil {
		b.reqLog(r.ID).Info("expiry skipped", "reason", err)
		return
	}
	b.met.Requests.WithLabelValues("expired").Inc()
	b.reqLog(r.ID).Info("request expired", "state", e.State)
}

// observation is what EM says about a request's failover right now.
type observation struct {
	state    store.State
	emState  string
	progress int
	result   string
	message  string
	session  string
}

// follow reads a request's task and restore session and records any change.
func (b *Bot) follow(ctx context.Context, r *store.Request) {
	if r.TaskID == "" {
		b.followSession(ctx, r, r.RestoreSessionID)
		return
	}
	task, err := b.em.Task(ctx, r.TaskID)
	if err != nil {
		if emapi.KindOf(err) == emapi.KindNotFound {
			// EM keeps tasks per logon session: after a restart or re-logon the ID may be gone.
			// The restore session is the way back to the outcome.
			b.followSession(ctx, r, r.RestoreSessionID)
			return
		}
		b.emTrouble(r, err)
		return
	}
	sid := task.RestoreSessionID
	if sid == "" {
		sid = r.RestoreSessionID
	}
	var rs *emapi.RestoreSession
	if sid != "" {
		if rs, err = b.em.RestoreSession(ctx, sid); err != nil {
			b.reqLog(r.ID).Warn("restore session unreadable; using the task alone", "session", sid, "error", err)
			rs = nil
		}
	}
	b.emRecovered(r)
	b.record(r, observe(r, task, rs, sid))
}

// followSession follows a request through its restore session alone (the task is gone). Without
// a session ID it looks for a session created for the target since the submission.
func (b *Bot) followSession(ctx context.Context, r *store.Request, sid string) {
	if sid == "" {
		found, err := b.findSession(ctx, r)
		if err != nil {
			b.emTrouble(r, err)
			return
		}
		if found == nil {
			b.markUnknown(r, "Enterprise Manager no longer knows task "+orDash(r.TaskID)+" (tasks belong to the EM logon session that started them) and lists no restore session for "+r.Target.Name+" since the submission.")
			return
		}
		// The index read this session during this cycle: no need to ask EM again.
		b.emRecovered(r)
		b.record(r, observe(r, nil, found, found.ID))
		return
	}
	rs, err := b.em.RestoreSession(ctx, sid)
	if err != nil {
		if emapi.KindOf(err) == emapi.KindNotFound {
			b.markUnknown(r, "Enterprise Manager knows neither task "+orDash(r.TaskID)+" nor restore session "+sid+".")
			return
		}
		b.emTrouble(r, err)
		return
	}
	b.emRecovered(r)
	b.record(r, observe(r, nil, rs, sid))
}

// reconcile settles a request found "submitting" with no submission under way: the POST may or
// may not have reached EM (a crash, or a lost answer). It is never sent again. A restore session
// for the target created since the submission means it started; none within SubmitGrace means
// nobody can tell, and the thread says so.
func (b *Bot) reconcile(ctx context.Context, r *store.Request) {
	rs, err := b.findSession(ctx, r)
	if err != nil {
		b.emTrouble(r, err)
		return
	}
	if rs == nil {
		if b.now().Sub(r.StateAt) < b.opt.SubmitGrace {
			return
		}
		b.markUnknown(r, "The failover POST was sent (or was about to be) when the bot lost track of it, and Enterprise Manager shows no restore session for "+r.Target.Name+" since then.")
		return
	}
	n, err := b.st.Transition(store.Change{ID: r.ID, Version: r.Version, From: []store.State{store.Submitting},
		To: store.Running, Actor: "poller", Action: "reconciled", Details: "found restore session " + rs.ID,
		Thread: fmt.Sprintf(":mag: The submission's answer was lost, but Enterprise Manager shows restore session %s for %s, so the failover did start. Following it.", rs.ID, esc(r.Target.Name)),
		Apply:  func(q *store.Request) { q.RestoreSessionID = rs.ID }})
	if err != nil {
		b.reqLog(r.ID).Info("reconcile skipped", "reason", err)
		return
	}
	b.record(n, observe(n, nil, rs, rs.ID))
}

// sessionSkew is how much earlier than our submission time EM's clock may date the restore
// session it created for it.
const sessionSkew = 2 * time.Minute

// findSession looks for the restore session of r's failover: the newest one EM lists for r's
// target since the submission that no other request follows. A retry of a failed failover of the
// same VM minutes later is common in a DR event, and adopting the earlier request's session would
// report its outcome as this one's; while another request's session for the target is not known
// yet, it finds nothing (the caller looks again, or declares the outcome unknown).
func (b *Bot) findSession(ctx context.Context, r *store.Request) (*emapi.RestoreSession, error) {
	since := r.SubmittedAt
	if since.IsZero() {
		since = r.StateAt
	}
	from := since.Add(-sessionSkew)
	taken, known := b.sessionsOfOthers(r, from)
	if !known {
		b.reqLog(r.ID).Info("restore session not attributable yet: another request for the same target is unresolved")
		return nil, nil
	}
	list, err := b.sessions.all(ctx)
	if err != nil {
		return nil, err
	}
	var best *emapi.RestoreSession
	for i := range list {
		s := &list[i]
		if taken[s.ID] || !s.For(r.Target.Name, from) {
			continue
		}
		if best == nil || s.Created.After(best.Created) {
			best = s
		}
	}
	return best, nil
}

// sessionIndex is EM's restore sessions, read at most once per poll cycle. After an EM restart or
// re-logon every running request may need its session found at once; asking EM per request would
// list and fetch every session once per request (1,000 tasks: a million calls). Stopped sessions
// never change, so they are kept across cycles and fetched only once.
type sessionIndex struct {
	em    EM
	limit int

	mu      sync.Mutex
	read    bool // this cycle's listing is done (err says how it went)
	list    []emapi.RestoreSession
	err     error
	stopped map[string]emapi.RestoreSession
}

// reset starts a new poll cycle: the next all() reads EM again.
func (x *sessionIndex) reset() {
	x.mu.Lock()
	x.read, x.list, x.err = false, nil, nil
	x.mu.Unlock()
}

// all returns every restore session EM lists (its last 30 days), fetching the ones not known to
// have stopped with bounded concurrency. A failure is remembered for the rest of the cycle so a
// struggling EM is not asked again by every request.
func (x *sessionIndex) all(ctx context.Context) ([]emapi.RestoreSession, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.read {
		return x.list, x.err
	}
	x.read = true
	refs, err := x.em.RestoreSessions(ctx)
	if err != nil {
		x.err = err
		return nil, err
	}
	if x.stopped == nil {
		x.stopped = map[string]emapi.RestoreSession{}
	}
	list := make([]emapi.RestoreSession, len(refs))
	keep := make([]bool, len(refs))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(x.limit)
	for i, ref := range refs {
		if s, ok := x.stopped[ref.ID]; ok {
			list[i], keep[i] = s, true
			continue
		}
		g.Go(func() error {
			s, err := x.em.RestoreSession(gctx, ref.ID)
			if err != nil {
				switch emapi.KindOf(err) {
				case emapi.KindNotFound, emapi.KindBadRequest:
					return nil // gone between the listing and the read, or a ref with no usable ID
				}
				return err
			}
			list[i], keep[i] = *s, true
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		x.err = err
		return nil, err
	}
	out := list[:0]
	for i := range list {
		if keep[i] {
			out = append(out, list[i])
			if list[i].State == "Stopped" {
				x.stopped[list[i].ID] = list[i]
			}
		}
	}
	x.list = out
	return out, nil
}

// sessionsOfOthers returns the restore sessions followed by the other requests for r's target
// that were submitted late enough for their session to fall in the window from which findSession
// searches. known is false when r has no task ID (its POST's answer was lost) and such a request
// reached EM (or may have) but its session is not recorded yet.
func (b *Bot) sessionsOfOthers(r *store.Request, from time.Time) (taken map[string]bool, known bool) {
	taken, known = map[string]bool{}, true
	for _, o := range b.peers.of(b.st, r.Target.ID) {
		if o.ID == r.ID || o.SubmittedAt.IsZero() || o.SubmittedAt.Before(from.Add(-sessionSkew)) {
			continue
		}
		switch {
		case o.RestoreSessionID != "":
			taken[o.RestoreSessionID] = true
		case r.TaskID == "" && (o.TaskID != "" || o.State == store.Submitting || o.State == store.Unknown):
			// r may never have reached EM, and o did or may have: a session in the window may be
			// o's. (A request with a task ID certainly has a session, so it does not wait.)
			known = false
		}
	}
	return taken, known
}

// peerIndex groups by target the requests that could share a restore-session search window with
// this cycle's active requests. It is built at most once per cycle with one walk over the recent
// requests (by sequence, newest first), so a recovery cycle over 1,000 requests costs one walk,
// not one per request.
type peerIndex struct {
	mu       sync.Mutex
	built    bool
	newest   uint64    // highest active sequence number when the cycle began
	oldest   time.Time // requests created before this cannot matter to any active request
	byTarget map[string][]*store.Request
}

// reset prepares the index for a cycle over active.
func (p *peerIndex) reset(active []*store.Request, ttl time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.built, p.byTarget, p.newest, p.oldest = false, nil, 0, time.Time{}
	for _, r := range active {
		if r.Seq > p.newest {
			p.newest = r.Seq
		}
		since := r.SubmittedAt
		if since.IsZero() {
			since = r.StateAt
		}
		// findSession looks back sessionSkew from the submission, and a peer submitted in that
		// window was created at most REQUEST_TTL earlier.
		if bound := since.Add(-2*sessionSkew - ttl); p.oldest.IsZero() || bound.Before(p.oldest) {
			p.oldest = bound
		}
	}
}

// of returns the recent requests for target.
func (p *peerIndex) of(st Store, target string) []*store.Request {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.built {
		p.built, p.byTarget = true, map[string][]*store.Request{}
		add := func(o *store.Request) { p.byTarget[o.Target.ID] = append(p.byTarget[o.Target.ID], o) }
		// Newer than the newest active request: created during this cycle.
		for seq := p.newest + 1; ; seq++ {
			o, err := st.Get(fmt.Sprintf("FO-%d", seq))
			if err != nil {
				break
			}
			add(o)
		}
		for seq := p.newest; seq > 0; seq-- {
			o, err := st.Get(fmt.Sprintf("FO-%d", seq))
			if err != nil || o.CreatedAt.Before(p.oldest) {
				break
			}
			add(o)
		}
	}
	return p.byTarget[target]
}

// observe turns EM's task and restore session into the request's next state. The task tells that
// EM has finished handing the failover over; the restore session tells how the failover went.
func observe(r *store.Request, t *emapi.Task, rs *emapi.RestoreSession, sid string) observation {
	o := observation{state: r.State, emState: r.EMState, progress: r.EMProgress, result: r.EMResult, message: r.EMMessage, session: sid}
	if t != nil {
		o.emState = "task " + t.State
		if t.Message != "" {
			o.message = t.Message
		}
	}
	if rs != nil {
		o.emState = "restore " + rs.State
		o.progress = rs.Progress
		o.result = rs.Result
		if rs.FailureMessage != "" {
			o.message = rs.FailureMessage
		}
		if rs.State == "Stopped" {
			switch rs.Result {
			case "Success":
				o.state = store.Succeeded
			case "Warning":
				o.state = store.Warning
			default:
				o.state = store.Failed
			}
		}
	}
	if t != nil && t.Done && t.Success != nil && !*t.Success && (rs == nil || rs.State == "Stopped") {
		o.state = store.Failed
	}
	if r.State == store.Stopping && o.state == store.Failed {
		o.state = store.Stopped
	}
	return o
}

// record stores a change EM reported and tells the thread, the card and the audit channel.
func (b *Bot) record(r *store.Request, o observation) {
	if o.state == r.State && o.emState == r.EMState && o.progress == r.EMProgress && o.result == r.EMResult &&
		o.message == r.EMMessage && o.session == r.RestoreSessionID {
		return
	}
	apply := func(q *store.Request) {
		q.EMState, q.EMProgress, q.EMResult, q.EMMessage = o.emState, o.progress, o.result, o.message
		if o.session != "" {
			q.RestoreSessionID = o.session
		}
	}
	// The change is guarded by r's version, so the line it owes the thread can be worked out
	// from r and the observation before it is stored, and is stored with it.
	next := *r
	next.State = o.state
	apply(&next)
	stateChanged := next.State != r.State || next.EMState != r.EMState || next.EMResult != r.EMResult
	action, line := actionProgress, ""
	if stateChanged {
		action = "em-state"
	}
	if stateChanged || next.EMProgress/progressStep != r.EMProgress/progressStep {
		line = updateLine(&next)
	}
	n, err := b.st.Transition(store.Change{ID: r.ID, Version: r.Version, To: o.state, Actor: "em", Action: action,
		Details: fmt.Sprintf("%s %d%% %s %s", o.emState, o.progress, o.result, truncate(o.message, 200)),
		Thread:  line, Apply: apply})
	if err != nil {
		b.reqLog(r.ID).Info("EM change not recorded", "reason", err)
		return
	}
	if n.State.Terminal() {
		b.met.Requests.WithLabelValues(string(n.State)).Inc()
		b.reqLog(n.ID).Info("failover finished", "state", n.State, "result", n.EMResult)
	}
}

func updateLine(r *store.Request) string {
	switch r.State {
	case store.Succeeded, store.Warning, store.Failed, store.Stopped:
		return statusLine(r) + "."
	}
	return ":arrows_counterclockwise: " + emText(r)
}

func (b *Bot) markUnknown(r *store.Request, why string) {
	if _, err := b.st.Transition(store.Change{ID: r.ID, Version: r.Version, To: store.Unknown, Actor: "poller", Action: "unknown", Details: why,
		Thread: ":warning: I cannot tell how this failover ended. " + why + " *An operator must check Enterprise Manager* (restore sessions for " + esc(r.Target.Name) + ") and act from there. I will not send it again."}); err != nil {
		b.reqLog(r.ID).Info("unknown not recorded", "reason", err)
		return
	}
	b.met.Requests.WithLabelValues("unknown").Inc()
	b.reqLog(r.ID).Warn("failover outcome unknown", "why", why)
}

// emTrouble counts a failed EM read for a request and tells the thread once when it persists.
func (b *Bot) emTrouble(r *store.Request, err error) {
	b.mu.Lock()
	b.failures[r.ID]++
	n := b.failures[r.ID]
	b.mu.Unlock()
	b.reqLog(r.ID).Warn("poll: EM read failed", "error", err, "consecutive", n)
	if n == warnAfterFailures {
		b.note(r, "poller", "em-unreachable", fmt.Sprintf("%d EM reads in a row failed: %s", n, describe(err)),
			fmt.Sprintf(":warning: I cannot read this failover's progress from Enterprise Manager (%s). I keep trying every poll and will post here when I can.", describe(err)))
	}
}

func (b *Bot) emRecovered(r *store.Request) {
	b.mu.Lock()
	n := b.failures[r.ID]
	delete(b.failures, r.ID)
	b.mu.Unlock()
	if n >= warnAfterFailures {
		b.note(r, "poller", "em-reachable", "EM answers again",
			":white_check_mark: Enterprise Manager answers again; following the failover.")
	}
}

// cronLogger adapts slog to cron's logger interface.
type cronLogger struct{ l *slog.Logger }

func (c cronLogger) Info(msg string, kv ...any) { c.l.Debug("cron: "+msg, kv...) }
func (c cronLogger) Error(err error, msg string, kv ...any) {
	c.l.Error("cron: "+msg, append(kv, "error", err)...)
}
