// Package core is failover-bot's use cases: asking for a failover (names resolved, restore
// points checked), the two-person approval, submission under a cap, following every item's
// task and restore session, reconciliation after a crash, expiry, deliberate stops and retries.
// It knows no Slack types: the Slack edge (package bot) and the console call it, and it speaks
// back through the small interfaces it defines here (Notifier, Directory), to Enterprise
// Manager through EM and to the store through Store.
package core

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/failover-bot/failover-bot/bot/plans"
	"github.com/failover-bot/failover-bot/emapi"
	"github.com/failover-bot/failover-bot/store"
)

// EM is the part of Enterprise Manager's API the use cases need. *emapi.Client implements it.
type EM interface {
	Replicas(ctx context.Context) ([]emapi.Ref, error)
	ReplicaVMs(ctx context.Context, replicaID string) ([]emapi.Ref, error)
	VApps(ctx context.Context) ([]emapi.Ref, error)
	StartVMFailover(ctx context.Context, replicaID, vmID string, r emapi.RestoreIntent) (*emapi.Task, error)
	StartVAppFailover(ctx context.Context, vappID string, r emapi.RestoreIntent) (*emapi.Task, error)
	// TaskIn and StopTaskIn act only within the EM logon session the task was created in
	// (task IDs are numbered per session); LogonSession names the current one.
	TaskIn(ctx context.Context, session, id string) (*emapi.Task, error)
	StopTaskIn(ctx context.Context, session, id string) error
	LogonSession() string
	RestoreSession(ctx context.Context, id string) (*emapi.RestoreSession, error)
	VMIntervals(ctx context.Context, replicaID, vmID string, from, to time.Time) (*emapi.Intervals, error)
	VAppIntervals(ctx context.Context, vappID string, from, to time.Time) (*emapi.Intervals, error)
	QueryRestoreSessions(ctx context.Context, since time.Time, names []string) ([]emapi.RestoreSession, error)
	Ping(ctx context.Context) error
}

// Store is the part of the store the use cases need. *store.Bolt implements it.
type Store interface {
	Create(ctx context.Context, nr store.NewRequest) (*store.Request, error)
	Get(ctx context.Context, id string) (*store.Request, error)
	Remember(ctx context.Context, key string, ttl time.Duration) error
	Seen(ctx context.Context, key string) (bool, error)
	Note(ctx context.Context, id, actor, action, details, thread string) (*store.Request, error)
	Active(ctx context.Context) ([]*store.Request, error)
	Recent(ctx context.Context, fn func(*store.Request) bool) error
	Finished(ctx context.Context, since time.Time, limit int) ([]*store.Request, int, error)
	Holders(ctx context.Context, keys []string) (map[string]*store.Request, error)
	Approve(ctx context.Context, id, user, digest string) (*store.Request, error)
	Reject(ctx context.Context, id, user, reason string) (*store.Request, error)
	Withdraw(ctx context.Context, id, user string) (*store.Request, error)
	Expire(ctx context.Context, id string) (*store.Request, error)
	Transition(ctx context.Context, c store.Change) (*store.Request, error)
	TransitionAll(ctx context.Context, id string, cs []store.Change, actor, action, details string) (*store.Request, int, error)
	Continue(ctx context.Context, id, user string, group int) (*store.Request, error)
	EndRun(ctx context.Context, id, user, reason string, group int) (*store.Request, error)
	Remind(ctx context.Context, id string, n int, line string) (*store.Request, error)
}

// Notifier is how the use cases speak to people outside the store's outbox: a private answer
// to one person, the answer to a command that finished after its acknowledgement, and a nudge
// that a new request's card is owed.
type Notifier interface {
	// Ephemeral tells user, privately in channel, best effort.
	Ephemeral(channel, user, text string)
	// Respond answers a command through its response_url, else ephemerally.
	Respond(ctx context.Context, responseURL, channel, user, text string)
	// Created says request id was just recorded: its card is owed now.
	Created(id string)
}

// Dialogs opens the dialogs a decision needs: the reason for a rejection, and the confirmation
// (with its reason) of a stop.
type Dialogs interface {
	AskRejectReason(ctx context.Context, trigger string, r *store.Request) error
	AskStopReason(ctx context.Context, trigger string, r *store.Request, approvals int) error
}

// Options configure the use cases. Zero values take the documented defaults (see bot.Options).
type Options struct {
	Approvers, Requesters, AllowedChannels []string
	ApproverGroup                          string
	ApprovalsRequired                      int
	RequestTTL                             time.Duration
	PollConcurrency                        int
	MaxConcurrentFailovers                 int
	MaxTargets                             int
	AckBudget                              time.Duration
	SubmitRetryFor, SubmitGrace            time.Duration
	OutcomeGrace                           time.Duration
	StopApprovals                          int
	EMTimeout                              time.Duration
	// Reminders are when a pending request's approvers are reminded (REMINDERS).
	Reminders []Reminder
	// Plans are the recovery plans /failover plan runs (PLANS_FILE); nil for none.
	Plans *plans.File
	// Leader, when set (instances sharing an etcd store), reports whether this instance leads
	// and the context of its term, which ends with the leadership; leader-only work runs only
	// then. Forward hands what a standby cannot do to the leader (see Job).
	Leader  func() (context.Context, bool)
	Forward func(ctx context.Context, j Job) error
	Now     func() time.Time
	Logger  *slog.Logger
	Metrics *Metrics
}

// Service runs the use cases. It is safe for concurrent use.
type Service struct {
	em       EM
	st       Store
	opt      Options
	log      *slog.Logger
	now      func() time.Time
	met      *Metrics
	notify   Notifier
	dialogs  Dialogs
	inv      *inventory
	sessions *sessionIndex // restore sessions, read once per poll cycle when needed
	peers    peerIndex     // recent requests by target, read once per poll cycle when needed
	batch    progressBatch // this cycle's progress of items of requests of many
	// waiting holds, per item and condition, when EM was first seen giving no outcome (see
	// OutcomeGrace). In memory: after a restart the grace starts again, which errs on waiting.
	waitMu  sync.Mutex
	waiting map[string]time.Time
	auth    *authoriser
	ctx     context.Context // background work; cancelled by Close
	// sctx is for store writes that record what already happened (EM accepted a POST, a task
	// finished): shutdown must never cancel them half way, so it is ctx without its cancel.
	sctx   context.Context
	cancel context.CancelFunc
	// work counts background work. Not a sync.WaitGroup: work starts from goroutines nobody
	// waits on (the cron tick, a plan's delay timer) while a Wait may be in progress, which a
	// WaitGroup forbids.
	work workCount

	pollMu sync.Mutex // held by the running poll cycle
	// lastTerm is the leadership term of the last poll cycle (under pollMu): a new term's first
	// cycle reconciles every submitting item before anything else.
	lastTerm context.Context
	mu       sync.Mutex
	inflight map[string]bool // requests and items with a submission or stop under way in this process
	posts    chan struct{}   // one token per failover POST in flight (MaxConcurrentFailovers)
	failures map[string]int  // consecutive failed EM reads per request, for one warning in the thread
	wakes    map[string]wake // plan requests waiting for a group's delay, by ID
	closed   bool            // Close began: no new wake-ups
}

// New returns the use cases over em and st, speaking to people through notify and dialogs and
// asking dir who they are. Call Close to stop background work.
func New(em EM, st Store, notify Notifier, dir Directory, dialogs Dialogs, opt Options) (*Service, error) {
	if em == nil || st == nil || notify == nil || dir == nil || dialogs == nil {
		return nil, errors.New("core: EM client, store, notifier, directory and dialogs are required")
	}
	if len(opt.Approvers) == 0 && opt.ApproverGroup == "" {
		return nil, errors.New("bot: at least one approver or an approver group is required")
	}
	if opt.ApprovalsRequired <= 0 {
		opt.ApprovalsRequired = 1
	}
	if opt.AckBudget <= 0 {
		opt.AckBudget = 2 * time.Second
	}
	if opt.MaxTargets <= 0 {
		opt.MaxTargets = DefaultMaxTargets
	}
	if opt.RequestTTL <= 0 {
		opt.RequestTTL = time.Hour
	}
	if opt.PollConcurrency <= 0 {
		opt.PollConcurrency = 64
	}
	if opt.MaxConcurrentFailovers <= 0 {
		opt.MaxConcurrentFailovers = 8
	}
	if opt.SubmitRetryFor <= 0 {
		opt.SubmitRetryFor = 15 * time.Minute
	}
	if opt.SubmitGrace <= 0 {
		opt.SubmitGrace = 2 * time.Minute
	}
	if opt.StopApprovals <= 0 {
		opt.StopApprovals = 1
	}
	if opt.OutcomeGrace <= 0 {
		opt.OutcomeGrace = 10 * time.Minute
	}
	if opt.EMTimeout <= 0 {
		opt.EMTimeout = 30 * time.Second
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	if opt.Metrics == nil {
		opt.Metrics = NewMetrics(nil)
	}
	ctx, cancel := context.WithCancel(context.Background())
	b := &Service{
		em: em, st: st, opt: opt, notify: notify, dialogs: dialogs,
		log: opt.Logger, now: opt.Now, met: opt.Metrics,
		ctx: ctx, sctx: context.WithoutCancel(ctx), cancel: cancel,
		inflight: map[string]bool{},
		failures: map[string]int{},
		posts:    make(chan struct{}, opt.MaxConcurrentFailovers),
		waiting:  map[string]time.Time{},
		wakes:    map[string]wake{},
	}
	b.inv = newInventory(em, opt.Now)
	b.sessions = &sessionIndex{em: em}
	b.auth = newAuthoriser(dir, opt, opt.Now)
	return b, nil
}

// Options returns the options in force, defaults filled in.
func (b *Service) Options() Options { return b.opt }

// Wait waits until no background work (a click, a submission, a stop, a late answer) runs, or
// ctx ends.
func (b *Service) Wait(ctx context.Context) error {
	return b.work.wait(ctx)
}

// Close waits for background work until ctx ends, then cancels what is left. Closing never
// withdraws, fails or cancels a request.
func (b *Service) Close(ctx context.Context) error {
	b.stopWakes()
	err := b.Wait(ctx)
	b.cancel()
	if err != nil {
		return fmt.Errorf("bot: background work did not finish: %w", err)
	}
	return nil
}

// Go runs fn in the background, owned by the Service (Wait and Close wait for it).
func (b *Service) Go(fn func(ctx context.Context)) {
	b.work.add()
	go func() {
		defer b.work.done()
		defer func() {
			if r := recover(); r != nil {
				b.log.Error("background work panicked", "panic", r)
			}
		}()
		fn(b.ctx)
	}()
}

// claim marks a request or item as having a side effect under way in this process, so that the
// poller and a second click never start the same side effect twice. It returns false if already
// claimed.
func (b *Service) claim(id string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.inflight[id] {
		return false
	}
	b.inflight[id] = true
	return true
}

func (b *Service) release(id string) {
	b.mu.Lock()
	delete(b.inflight, id)
	b.mu.Unlock()
}

func (b *Service) claimed(id string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.inflight[id]
}

// reqLog returns a logger that carries the request ID on every line.
func (b *Service) reqLog(id string) *slog.Logger { return b.log.With("request", id) }

// note records something the thread and the audit channel must hear that is not a change of
// the request (EM unreachable, a stop EM refused), with the line it owes the thread.
func (b *Service) note(r *store.Request, actor, action, details, thread string) {
	if _, err := b.st.Note(b.sctx, r.ID, actor, action, details, thread); err != nil {
		b.reqLog(r.ID).Error("could not record a note for Slack", "action", action, "error", err, "line", truncate(thread, 200))
	}
}

// workCount counts work in flight; wait returns once it is none. Unlike a sync.WaitGroup it may
// gain work while someone waits: the waiter then waits for that work too, until the count is 0.
type workCount struct {
	mu   sync.Mutex
	n    int
	idle chan struct{} // closed when n drops to 0; nil while n is 0
}

func (w *workCount) add() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.n == 0 {
		w.idle = make(chan struct{})
	}
	w.n++
}

func (w *workCount) done() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.n--
	if w.n == 0 {
		close(w.idle)
		w.idle = nil
	}
}

func (w *workCount) wait(ctx context.Context) error {
	for {
		w.mu.Lock()
		ch := w.idle
		w.mu.Unlock()
		if ch == nil {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
