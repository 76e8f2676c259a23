package core

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
	"github.com/failover-bot/failover-bot/store/failover"
)

// progressStep is how far a restore session's progress must move before the thread hears about
// it: every state change is posted, but a 30-minute failover should not post a line per poll.
const progressStep = 25

// warnAfterFailures is how many poll cycles in a row EM may fail for one request before the
// thread is told that the bot cannot see the task (said once, and again when it recovers).
const warnAfterFailures = 3

// StartPoller runs Poll on schedule (robfig/cron spec, UTC) until the returned stop function is
// called; stop waits for a running cycle to finish or ctx to end.
func (b *Service) StartPoller(schedule string) (stop func(ctx context.Context) error, err error) {
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
func (b *Service) Poll(ctx context.Context) {
	// One cycle at a time: cron's SkipIfStillRunning covers its own ticks, this also covers the
	// cycle PollSoon starts at boot.
	if !b.pollMu.TryLock() {
		return
	}
	defer b.pollMu.Unlock()
	ctx, term, endTerm, leads := b.termCtx(ctx)
	defer endTerm()
	if !leads {
		return // a standby follows nothing: the leader does
	}
	if term != nil && term != b.lastTerm {
		// A new leader first settles every submission the last one may have left half way,
		// through EM, before it sends or follows anything.
		b.lastTerm = term
		b.reconcileAll(ctx)
	}
	start := time.Now()
	defer func() { b.met.PollDuration.Observe(time.Since(start).Seconds()) }()
	reqs, err := b.st.Active(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return // the cycle was cancelled (the term ended, or shutdown): nothing failed
		}
		b.log.Error("poll: listing active requests failed", "error", err)
		return
	}
	b.met.Active.Set(float64(len(reqs)))
	b.sessions.reset(reqs)
	b.peers.reset(reqs, b.opt.RequestTTL)
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(b.opt.PollConcurrency)
	b.batch.open()
	var submit []leg
	now := b.now()
	for _, r := range reqs {
		if b.claimed(r.ID) {
			continue // a stop is under way in this process
		}
		if r.State == store.Pending {
			if !now.Before(r.ExpiresAt) {
				b.expire(r)
			} else {
				b.remind(r, now)
			}
			continue
		}
		if at, later := failover.NextStart(r, now); later {
			b.wakeAt(r.ID, at) // a plan's next group waits for a delay (re-armed after a restart)
		}
		eligible := map[int]bool{}
		for _, i := range failover.Eligible(r, now) {
			eligible[i] = true
		}
		for i, l := range legs(r) {
			if b.claimed(l.key()) {
				continue // a submission is under way in this process
			}
			switch l.Item.State {
			case store.Approved:
				if eligible[i] { // a plan's later groups, and a halted run, wait
					submit = append(submit, l)
				}
			case store.Submitting:
				g.Go(func() error { b.reconcile(ctx, l); return nil })
			case store.Running, store.Stopping:
				g.Go(func() error { b.follow(ctx, l); return nil })
			}
		}
	}
	if len(submit) > 0 {
		// Submissions wait for a POST slot (MaxConcurrentFailovers), not for a poll slot.
		g.Go(func() error { b.submitLegs(ctx, submit); return nil })
	}
	_ = g.Wait()
	b.flushProgress(ctx)
}

// reconcileAll reconciles every submitting item, and waits.
func (b *Service) reconcileAll(ctx context.Context) {
	reqs, err := b.st.Active(ctx)
	if err != nil {
		b.log.Error("taking over: listing active requests failed", "error", err)
		return
	}
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(b.opt.PollConcurrency)
	n := 0
	for _, r := range reqs {
		for _, l := range legs(r) {
			if l.Item.State == store.Submitting && !b.claimed(l.key()) {
				n++
				g.Go(func() error { b.reconcile(ctx, l); return nil })
			}
		}
	}
	_ = g.Wait()
	b.log.Info("taking over: submissions left half way reconciled through EM", "items", n)
}

// PollSoon runs one poll cycle now in the background, owned by the Bot (Close waits for it): after
// a restart, active failovers are followed at once rather than at the first tick.
func (b *Service) PollSoon() {
	b.Go(func(ctx context.Context) { b.Poll(ctx) })
}

func (b *Service) expire(r *store.Request) {
	e, err := b.st.Expire(b.sctx, r.ID)
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
//
// A task ID means something only in the EM logon session that created it (EM numbers tasks
// per session, so after a re-logon task-1 is someone else's failover): the task is read only
// while the client is still in that session, and a task read never replaces a restore session
// ID already stored. Without a usable task the restore session is followed; without a known
// restore session it is looked for by query (VM name, created after the submission, failover job
// type). When EM gives no outcome for longer than OutcomeGrace, the request becomes unknown and
// the thread says why.
func (b *Service) follow(ctx context.Context, r leg) {
	var task *emapi.Task
	if r.TaskID != "" && r.EMSession != "" && r.EMSession == b.em.LogonSession() {
		t, err := b.em.TaskIn(ctx, r.EMSession, r.TaskID)
		switch {
		case err == nil:
			task = t
		case emapi.KindOf(err) == emapi.KindNotFound:
			// Gone with its logon session (re-logon, EM restart) or removed by a DELETE.
		default:
			b.emTrouble(r, err)
			return
		}
	}
	sid := r.RestoreSessionID
	if sid == "" && task != nil {
		sid = task.RestoreSessionID
	}
	var rs *emapi.RestoreSession
	switch {
	case sid != "":
		s, err := b.em.RestoreSession(ctx, sid)
		switch {
		case err == nil:
			rs = s
		case task != nil:
			b.reqLog(r.ID).Warn("restore session unreadable; using the task alone", "session", sid, "error", err)
		case emapi.KindOf(err) == emapi.KindNotFound:
			b.markUnknown(r, "Enterprise Manager no longer knows restore session "+sid+", and the task that started it belongs to an earlier EM logon session.")
			return
		default:
			b.emTrouble(r, err)
			return
		}
	case task == nil || task.Done:
		// No session known, and no live task to wait on: find it. (A running task may simply
		// not show its Related link yet.)
		found, err := b.findSession(ctx, r)
		if err != nil {
			b.emTrouble(r, err)
			return
		}
		if found != nil {
			rs, sid = found, found.ID
		}
	}
	b.emRecovered(r)
	o := observe(r, task, rs, sid)
	if why := b.noOutcome(r, task, rs, o); why != "" {
		b.markUnknown(r, why)
		return
	}
	b.record(r, o)
}

// noOutcome returns why r must be declared unknown now: EM has given no readable outcome for
// longer than OutcomeGrace. "" while there is an outcome, or while the grace lasts.
func (b *Service) noOutcome(r leg, task *emapi.Task, rs *emapi.RestoreSession, o observation) string {
	var key, why string
	switch {
	case o.state.Terminal():
	case rs == nil && task == nil:
		key = "lost"
		why = "Enterprise Manager does not show task " + orDash(r.TaskID) + " in this logon session (tasks belong to the EM logon session that started them), and lists no failover restore session for " + r.Target.Name + " since the submission."
	case rs == nil && task.Done:
		key = "unlinked"
		why = "Enterprise Manager's task " + task.ID + " finished (success " + successWord(task) + ") but names no restore session, and none for " + r.Target.Name + " since the submission can be found."
	case rs != nil && rs.State == emapi.SessionStopped && (rs.Result == emapi.ResultNone || rs.Result == ""):
		key = "no-result"
		why = "Enterprise Manager's restore session " + rs.ID + " stopped without a result (Result None)."
	}
	b.waitMu.Lock()
	defer b.waitMu.Unlock()
	for _, k := range []string{"lost", "unlinked", "no-result"} {
		if k != key {
			delete(b.waiting, r.key()+"/"+k)
		}
	}
	if key == "" {
		return ""
	}
	first, ok := b.waiting[r.key()+"/"+key]
	if !ok {
		b.waiting[r.key()+"/"+key] = b.now()
		return ""
	}
	if b.now().Sub(first) < b.opt.OutcomeGrace {
		return ""
	}
	delete(b.waiting, r.key()+"/"+key)
	return fmt.Sprintf("%s I kept asking for %s.", why, b.opt.OutcomeGrace)
}

func successWord(t *emapi.Task) string {
	if t.Success == nil {
		return "not stated"
	}
	if *t.Success {
		return "true"
	}
	return "false"
}

// reconcile settles a request found "submitting" with no submission under way: the POST may or
// may not have reached EM (a crash, or a lost answer). It is never sent again. A restore session
// for the target created since the submission means it started; none within SubmitGrace means
// nobody can tell, and the thread says so.
func (b *Service) reconcile(ctx context.Context, r leg) {
	rs, err := b.findSession(ctx, r)
	if err != nil {
		b.emTrouble(r, err)
		return
	}
	if rs == nil {
		if b.now().Sub(r.Item.StateAt) < b.opt.SubmitGrace {
			return
		}
		b.markUnknown(r, "The failover POST was sent (or was about to be) when the bot lost track of it, and Enterprise Manager shows no restore session for "+r.Target.Name+" since then.")
		return
	}
	c := r.change()
	c.From, c.To, c.Actor, c.Action, c.Details = []store.State{store.Submitting}, store.Running, "poller", "reconciled", "found restore session "+rs.ID
	c.Thread = r.chatty(fmt.Sprintf(":mag: The submission's answer was lost, but Enterprise Manager shows restore session %s for %s, so the failover did start. Following it.", rs.ID, esc(r.Target.Name)))
	c.Apply = func(q *store.Item) { q.RestoreSessionID = rs.ID }
	n, err := b.st.Transition(b.sctx, c)
	if err != nil {
		b.reqLog(r.Request.ID).Info("reconcile skipped", "reason", err)
		return
	}
	nl := leg{n, n.Item(r.Target.ID)}
	b.record(nl, observe(nl, nil, rs, rs.ID))
}

// sessionSkew is how much earlier than our submission time EM's clock may date the restore
// session it created for it.
const sessionSkew = 2 * time.Minute

// findSession looks for the restore session of r's failover: the newest failover session EM
// shows for r's target created since the submission that no other request follows. A same-named
// VM's other restore kinds (file-level restore, instant recovery) never match: the job type must
// be a failover's. A retry of a failed failover of the same VM minutes later is common in a DR
// event, and adopting the earlier request's session would report its outcome as this one's; while
// another request's session for the target is not known yet, it finds nothing (the caller looks
// again, or declares the outcome unknown).
func (b *Service) findSession(ctx context.Context, r leg) (*emapi.RestoreSession, error) {
	from := searchFrom(r)
	taken, known := b.sessionsOfOthers(r, from)
	if !known {
		b.reqLog(r.Request.ID).Info("restore session not attributable yet: another request for the same target is unresolved", "target", r.name())
		return nil, nil
	}
	list, err := b.sessions.all(ctx)
	if err != nil {
		return nil, err
	}
	var best *emapi.RestoreSession
	for i := range list {
		s := &list[i]
		if taken[s.ID] || !s.For(r.Target.Name, from) || !emapi.IsFailoverJob(s.JobType) {
			continue
		}
		if best == nil || s.Created.After(best.Created) {
			best = s
		}
	}
	return best, nil
}

// searchFrom is the earliest creation time of a restore session that can be r's.
func searchFrom(r leg) time.Time {
	since := r.Item.SubmittedAt
	if since.IsZero() {
		since = r.Item.StateAt
	}
	return since.Add(-sessionSkew)
}

// needsSearch reports whether a poll cycle may have to look for r's restore session.
func needsSearch(r leg) bool {
	switch r.Item.State {
	case store.Submitting, store.Running, store.Stopping:
		return r.RestoreSessionID == ""
	}
	return false
}

// sessionIndex is EM's recent failover restore sessions, read with at most one query per poll
// cycle (GET /query?type=RestoreSession, paged) for every request that needs its session found:
// after an EM restart or re-logon 1,000 running requests may all need it at once, and asking per
// request would cost 1,000 queries.
type sessionIndex struct {
	em EM

	mu    sync.Mutex
	since time.Time // earliest creation time any request of this cycle may need
	names []string  // targets whose sessions may be needed
	read  bool      // this cycle's query is done (err says how it went)
	list  []emapi.RestoreSession
	err   error
}

// reset starts a new poll cycle over active: the next all() queries EM again, for the targets
// of the requests that may need a search.
func (x *sessionIndex) reset(active []*store.Request) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.read, x.list, x.err, x.names, x.since = false, nil, nil, nil, time.Time{}
	seen := map[string]bool{}
	for _, req := range active {
		for _, r := range legs(req) {
			if !needsSearch(r) {
				continue
			}
			if from := searchFrom(r); x.since.IsZero() || from.Before(x.since) {
				x.since = from
			}
			if !seen[r.Target.Name] {
				seen[r.Target.Name] = true
				x.names = append(x.names, r.Target.Name)
			}
		}
	}
}

// all returns the restore sessions of this cycle's query. A failure is remembered for the rest
// of the cycle so a struggling EM is not asked again by every request.
func (x *sessionIndex) all(ctx context.Context) ([]emapi.RestoreSession, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.read {
		return x.list, x.err
	}
	x.read = true
	if len(x.names) == 0 {
		return nil, nil // nobody in this cycle's snapshot needs one (a request newer than it waits a cycle)
	}
	x.list, x.err = x.em.QueryRestoreSessions(ctx, x.since, x.names)
	return x.list, x.err
}

// sessionsOfOthers returns the restore sessions followed by the other requests for r's target
// that were submitted late enough for their session to fall in the window from which findSession
// searches. known is false when r has no task ID (its POST's answer was lost) and such a request
// reached EM (or may have) but its session is not recorded yet.
func (b *Service) sessionsOfOthers(r leg, from time.Time) (taken map[string]bool, known bool) {
	taken, known = map[string]bool{}, true
	for _, o := range b.peers.of(b.sctx, b.st, r.Target.ID) {
		if o.Request.ID == r.Request.ID || o.Item.SubmittedAt.IsZero() || o.Item.SubmittedAt.Before(from.Add(-sessionSkew)) {
			continue
		}
		switch {
		case o.RestoreSessionID != "":
			taken[o.RestoreSessionID] = true
		case r.TaskID == "" && (o.TaskID != "" || o.Item.State == store.Submitting || o.Item.State == store.Unknown):
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
	byTarget map[string][]leg
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
func (p *peerIndex) of(ctx context.Context, st Store, target string) []leg {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.built {
		p.built, p.byTarget = true, map[string][]leg{}
		add := func(o *store.Request) {
			for _, l := range legs(o) {
				p.byTarget[l.Target.ID] = append(p.byTarget[l.Target.ID], l)
			}
		}
		// Newer than the newest active request: created during this cycle.
		for seq := p.newest + 1; ; seq++ {
			o, err := st.Get(ctx, fmt.Sprintf("FO-%d", seq))
			if err != nil {
				break
			}
			add(o)
		}
		for seq := p.newest; seq > 0; seq-- {
			o, err := st.Get(ctx, fmt.Sprintf("FO-%d", seq))
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
func observe(r leg, t *emapi.Task, rs *emapi.RestoreSession, sid string) observation {
	o := observation{state: r.Item.State, emState: r.EMState, progress: r.EMProgress, result: r.EMResult, message: r.EMMessage, session: sid}
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
		if rs.State == emapi.SessionStopped {
			switch rs.Result {
			case emapi.ResultSuccess:
				o.state = store.Succeeded
			case emapi.ResultWarning:
				o.state = store.Warning
			case emapi.ResultFailed:
				o.state = store.Failed
			}
			// Result None (or absent) on a stopped session is no outcome: noOutcome waits.
		}
	}
	if t != nil && t.Done && t.Success != nil && !*t.Success &&
		(rs == nil || rs.State == emapi.SessionStopped && (rs.Result == emapi.ResultNone || rs.Result == "")) {
		// EM failed the task and no session says otherwise (an asynchronous refusal creates none).
		o.state = store.Failed
	}
	if r.Item.State == store.Stopping && o.state == store.Failed {
		o.state = store.Stopped
	}
	return o
}

// record stores a change EM reported and tells the thread, the card and the audit channel. A
// request of one item tells its thread every change; one of many tells it each failure with EM's
// words (milestones and the summary come from ThreadLine).
func (b *Service) record(r leg, o observation) {
	if o.state == r.Item.State && o.emState == r.EMState && o.progress == r.EMProgress && o.result == r.EMResult &&
		o.message == r.EMMessage && o.session == r.RestoreSessionID {
		return
	}
	apply := func(q *store.Item) {
		q.EMState, q.EMProgress, q.EMResult, q.EMMessage = o.emState, o.progress, o.result, o.message
		if o.session != "" && q.RestoreSessionID == "" {
			q.RestoreSessionID = o.session
		}
	}
	// The change is guarded by the item's version, so the line it owes the thread can be worked
	// out from the item and the observation before it is stored, and is stored with it.
	next := *r.Item
	next.State = o.state
	apply(&next)
	stateChanged := next.State != r.Item.State || next.EMState != r.EMState || next.EMResult != r.EMResult
	action, line := actionProgress, ""
	if stateChanged {
		action = "em-state"
	}
	if !r.single() && next.State != r.Item.State {
		// In a request of many the request's own from/to says little ("running → running"):
		// the audit names the item's new state ("item succeeded: web03: …").
		action = "item-" + string(next.State)
	}
	nl := leg{r.Request, &next}
	switch {
	case !r.single():
		if next.State != r.Item.State && (next.State == store.Failed || next.State == store.Stopped) {
			line = fmt.Sprintf(":red_circle: *%s*%s %s: %s", esc(r.name()), planRole(r), stateWords(next.State), emText(nl))
		}
	case stateChanged || next.EMProgress/progressStep != r.EMProgress/progressStep:
		line = updateLine(nl)
		if r.Item.State == store.Stopping && (next.State == store.Succeeded || next.State == store.Warning) {
			line = ":warning: Enterprise Manager finished the failover despite the stop request (the DELETE did not stop it). " + line
		}
	}
	c := r.change()
	c.To, c.Actor, c.Action, c.Thread, c.Apply = o.state, "em", action, line, apply
	c.Details = fmt.Sprintf("%s %d%% %s %s", o.emState, o.progress, o.result, truncate(o.message, 200))
	if !r.single() && next.State == r.Item.State && line == "" && b.batch.add(r.Request.ID, c) {
		return // progress of one item of many: written with the request's others at the cycle's end
	}
	n, err := b.st.Transition(b.sctx, c)
	if err != nil {
		b.reqLog(r.Request.ID).Info("EM change not recorded", "reason", err, "target", r.name())
		return
	}
	if next.State != r.Item.State {
		b.dispatch(n) // an outcome frees a slot of its group, or ends the group
	}
	if it := n.Item(r.Target.ID); it != nil && it.State.Terminal() && it.State != r.Item.State {
		b.reqLog(n.ID).Info("failover finished", "target", r.name(), "state", it.State, "result", it.EMResult)
	}
	if n.State.Terminal() && n.State != r.Request.State {
		b.met.Requests.WithLabelValues(string(n.State)).Inc()
	}
}

// planRole says, for an item of a plan, what its failure means for the run.
func planRole(r leg) string {
	switch {
	case !r.Request.IsPlan():
		return ""
	case r.Optional:
		return " (optional: the run goes on)"
	}
	return " (critical: the run halts after its group)"
}

func updateLine(r leg) string {
	switch r.Item.State {
	case store.Succeeded, store.Warning, store.Failed, store.Stopped:
		return outcomeLine(r)
	}
	return ":arrows_counterclockwise: " + emText(r)
}

func (b *Service) markUnknown(r leg, why string) {
	c := r.change()
	c.To, c.Actor, c.Action, c.Details = store.Unknown, "poller", "unknown", why
	c.Thread = ":warning: I cannot tell how this failover ended. " + why + " *An operator must check Enterprise Manager* (restore sessions for " + esc(r.Target.Name) + ") and act from there. I will not send it again."
	if !r.single() {
		c.Thread = ":warning: *" + esc(r.name()) + "*" + planRole(r) + ": I cannot tell how its failover ended. " + why + " *Check its restore sessions in Enterprise Manager.* I will not send it again."
	}
	n, err := b.st.Transition(b.sctx, c)
	if err != nil {
		b.reqLog(r.Request.ID).Info("unknown not recorded", "reason", err, "target", r.name())
		return
	}
	b.dispatch(n)
	b.met.Requests.WithLabelValues("unknown").Inc()
	b.reqLog(r.Request.ID).Warn("failover outcome unknown", "target", r.name(), "why", why)
}

// emTrouble counts a failed EM read for a request and tells the thread once when it persists.
func (b *Service) emTrouble(r leg, err error) {
	b.mu.Lock()
	b.failures[r.Request.ID]++
	n := b.failures[r.Request.ID]
	b.mu.Unlock()
	b.reqLog(r.Request.ID).Warn("poll: EM read failed", "error", err, "consecutive", n, "target", r.name())
	if n == warnAfterFailures*len(r.Request.Items) {
		b.note(r.Request, "poller", "em-unreachable", fmt.Sprintf("%d EM reads in a row failed: %s", n, describe(err)),
			fmt.Sprintf(":warning: I cannot read this failover's progress from Enterprise Manager (%s). I keep trying every poll and will post here when I can.", describe(err)))
	}
}

func (b *Service) emRecovered(r leg) {
	b.mu.Lock()
	n := b.failures[r.Request.ID]
	delete(b.failures, r.Request.ID)
	b.mu.Unlock()
	if n >= warnAfterFailures*len(r.Request.Items) {
		b.note(r.Request, "poller", "em-reachable", "EM answers again",
			":white_check_mark: Enterprise Manager answers again; following the failover.")
	}
}

// cronLogger adapts slog to cron's logger interface.
type cronLogger struct{ l *slog.Logger }

func (c cronLogger) Info(msg string, kv ...any) { c.l.Debug("cron: "+msg, kv...) }
func (c cronLogger) Error(err error, msg string, kv ...any) {
	c.l.Error("cron: "+msg, append(kv, "error", err)...)
}

// progressBatch collects, during one poll cycle, the progress of the items of requests of many
// (EM's state and percentage, the item's state unchanged), so that each request gets one write
// per cycle instead of one per item: 800 running items cost 4 writes, not 800. Outcomes and
// anything owed to the thread are still written at once, one by one.
type progressBatch struct {
	mu   sync.Mutex
	on   bool
	byID map[string][]store.Change
}

func (p *progressBatch) open() {
	p.mu.Lock()
	p.on, p.byID = true, map[string][]store.Change{}
	p.mu.Unlock()
}

// add keeps c for the end of the cycle; false when no cycle is collecting (write it now).
func (p *progressBatch) add(id string, c store.Change) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.on {
		return false
	}
	p.byID[id] = append(p.byID[id], c)
	return true
}

func (p *progressBatch) take() map[string][]store.Change {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := p.byID
	p.on, p.byID = false, nil
	return out
}

// flushProgress writes the cycle's collected progress, one write per request.
func (b *Service) flushProgress(ctx context.Context) {
	g, _ := errgroup.WithContext(ctx)
	g.SetLimit(b.opt.PollConcurrency)
	for id, cs := range b.batch.take() {
		g.Go(func() error {
			if _, n, err := b.st.TransitionAll(b.sctx, id, cs, "em", actionProgress, "EM progress"); err != nil {
				b.reqLog(id).Info("EM progress not recorded", "reason", err, "items", len(cs))
			} else if n < len(cs) {
				b.reqLog(id).Debug("some EM progress was stale and is read again next cycle", "applied", n, "of", len(cs))
			}
			return nil
		})
	}
	_ = g.Wait()
}
