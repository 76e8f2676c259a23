// Package bot is failover-bot's product: the /failover command, the two-person approval flow,
// the Slack edge (HTTP and Socket Mode share one dispatcher), the task poller and the audit
// channel. It speaks to Enterprise Manager through emapi and keeps every promise in store.
package bot

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/slack-go/slack"

	"github.com/failover-bot/failover-bot/emapi"
	"github.com/failover-bot/failover-bot/store"
)

// EM is the part of Enterprise Manager's API the bot uses. *emapi.Client implements it.
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

// Store is the part of the store the bot uses. *store.Bolt implements it.
type Store interface {
	deliveryStore
	Create(ctx context.Context, nr store.NewRequest) (*store.Request, error)
	ByMessage(ctx context.Context, channel, ts string) (*store.Request, error)
	Remember(ctx context.Context, key string, ttl time.Duration) error
	Seen(ctx context.Context, key string) (bool, error)
	Note(ctx context.Context, id, actor, action, details, thread string) (*store.Request, error)
	Active(ctx context.Context) ([]*store.Request, error)
	Recent(ctx context.Context, fn func(*store.Request) bool) error
	Approve(ctx context.Context, id, user, digest string) (*store.Request, error)
	Reject(ctx context.Context, id, user, reason string) (*store.Request, error)
	Withdraw(ctx context.Context, id, user string) (*store.Request, error)
	Expire(ctx context.Context, id string) (*store.Request, error)
	Transition(ctx context.Context, c store.Change) (*store.Request, error)
	Writable(ctx context.Context) error
}

// SlackAPI is the part of Slack's Web API the bot calls. *slack.Client implements it; console mode
// implements it with a terminal.
type SlackAPI interface {
	PostMessageContext(ctx context.Context, channelID string, options ...slack.MsgOption) (string, string, error)
	UpdateMessageContext(ctx context.Context, channelID, timestamp string, options ...slack.MsgOption) (string, string, string, error)
	PostEphemeralContext(ctx context.Context, channelID, userID string, options ...slack.MsgOption) (string, error)
	OpenViewContext(ctx context.Context, triggerID string, view slack.ModalViewRequest) (*slack.ViewResponse, error)
	GetUserInfoContext(ctx context.Context, user string, options ...slack.GetUserInfoOption) (*slack.User, error)
	GetUserGroupMembersContext(ctx context.Context, userGroup string, options ...slack.GetUserGroupMembersOption) ([]string, error)
	GetConversationHistoryContext(ctx context.Context, params *slack.GetConversationHistoryParameters) (*slack.GetConversationHistoryResponse, error)
}

// Options configures a Bot. Zero values take the documented defaults.
type Options struct {
	Approvers       []string // Slack user IDs allowed to approve
	ApproverGroup   string   // Slack user group whose members may approve
	Requesters      []string // empty: anyone in an allowed channel
	AllowedChannels []string // empty: any channel
	AuditChannel    string   // empty: audit only in the store
	// ApprovalsRequired is the store's setting (default 1), used to refuse at once a request that
	// no one could approve (an approver's own request when too few other approvers exist).
	ApprovalsRequired int
	RequestTTL        time.Duration
	// Teams are the Slack workspace IDs (auth.test's team_id, plus the organisation's other
	// workspaces on Enterprise Grid) whose commands and clicks are acted on. Empty: any (only
	// for tests and the console; cmd/bot always sets it).
	Teams []string
	// PostRate and UpdateRate override Slack's documented limits that delivery paces itself
	// under (chat.postMessage per channel per second, default 1; chat.update per workspace
	// per second, default 50/60). Benchmarks and the console raise them.
	PostRate, UpdateRate float64
	// SlackBackoff is the first wait after a Slack transport error or 5xx; it doubles per
	// attempt up to 64 times itself (default 250ms; at most 30s). Tests shorten it.
	SlackBackoff time.Duration
	// WorkspaceURL is the team's URL from auth.test ("https://acme.slack.com/"); it makes audit
	// events link to the card. Empty: audit events name the channel instead.
	WorkspaceURL string
	// PollConcurrency bounds concurrent EM calls in one poll cycle (default 64: 1,000 tasks at
	// 20 ms per call and two calls per task finish in about 0.7 s).
	PollConcurrency int
	// MaxConcurrentFailovers bounds failover POSTs in flight to EM at once (default 8): 200
	// approvals in a DR event must not become 200 simultaneous POSTs to an EM that answers 503
	// when overloaded. The others wait, in the "approved" state, for a slot.
	MaxConcurrentFailovers int
	// MaxTargets is the most targets one request may hold (default DefaultMaxTargets, 500).
	MaxTargets int
	// AckBudget is how long a failover command waits for its pre-flight before answering
	// "Checking …" and finishing in the background (default 2 s: Slack allows 3 for the answer).
	AckBudget time.Duration
	// SubmitRetryFor is how long after the approval a failover that could not reach EM (nothing
	// sent) is retried before it fails saying so (default 15m).
	SubmitRetryFor time.Duration
	// SubmitGrace is how long a request may stay "submitting" with no task ID before the poller
	// looks for its restore session and, failing that, declares the outcome unknown (default 2m).
	SubmitGrace time.Duration
	// OutcomeGrace is how long EM may leave a failover without a readable outcome — a finished
	// task that names no restore session while none can be found, or a restore session Stopped
	// with Result None — before the request is declared unknown and the thread says so
	// (default 10m).
	OutcomeGrace time.Duration
	// StopApprovals is how many people must confirm the stop dialog before a running failover
	// is stopped: 1 (default) or 2 (a second person, requester or approver, confirms).
	StopApprovals int
	// Timeouts for work done after an acknowledgement.
	EMTimeout    time.Duration // default 30s per EM call sequence
	SlackTimeout time.Duration // default 10s per Slack call
	Now          func() time.Time
	Logger       *slog.Logger
	Metrics      *Metrics
	// Responder posts an ephemeral message to a slash command's response_url (default: an HTTP
	// POST with a 10 s timeout). Console mode has no response_url and leaves it unused.
	Responder func(ctx context.Context, responseURL, text string) error
}

// Bot holds the flow's dependencies. It is safe for concurrent use.
type Bot struct {
	em       EM
	st       Store
	api      SlackAPI
	opt      Options
	log      *slog.Logger
	now      func() time.Time
	met      *Metrics
	out      *Outbox   // best-effort ephemeral answers and superseded-card notices
	deliver  *delivery // everything the store owes Slack
	inv      *inventory
	sessions *sessionIndex // restore sessions, read once per poll cycle when needed
	peers    peerIndex     // recent requests by target, read once per poll cycle when needed
	// waiting holds, per request and condition, when EM was first seen giving no outcome (see
	// OutcomeGrace). In memory: after a restart the grace starts again, which errs on waiting.
	waitMu  sync.Mutex
	waiting map[string]time.Time
	auth    *authoriser
	ctx     context.Context // background work; cancelled by Close
	// sctx is for store writes that record what already happened (EM accepted a POST, a task
	// finished): shutdown must never cancel them half way, so it is ctx without its cancel.
	sctx   context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	pollMu   sync.Mutex // held by the running poll cycle
	mu       sync.Mutex
	inflight map[string]bool // request IDs with a submission or stop under way in this process
	posts    chan struct{}   // one token per failover POST in flight (MaxConcurrentFailovers)
	failures map[string]int  // consecutive failed EM reads per request, for one warning in the thread
}

// New returns a Bot. Call Close to stop background work.
func New(em EM, st Store, api SlackAPI, opt Options) (*Bot, error) {
	if em == nil || st == nil || api == nil {
		return nil, errors.New("bot: EM client, store and Slack API are required")
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
	if opt.SlackTimeout <= 0 {
		opt.SlackTimeout = 10 * time.Second
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
	if opt.Responder == nil {
		opt.Responder = postResponseURL
	}
	ctx, cancel := context.WithCancel(context.Background())
	b := &Bot{
		em: em, st: st, api: api, opt: opt,
		log: opt.Logger, now: opt.Now, met: opt.Metrics,
		ctx: ctx, sctx: context.WithoutCancel(ctx), cancel: cancel,
		inflight: map[string]bool{},
		failures: map[string]int{},
		posts:    make(chan struct{}, opt.MaxConcurrentFailovers),
	}
	b.out = NewOutbox(api, OutboxOptions{Logger: opt.Logger, Metrics: opt.Metrics, Timeout: opt.SlackTimeout})
	b.deliver = newDelivery(b)
	b.deliver.start()
	b.inv = newInventory(em, opt.Now)
	b.sessions = &sessionIndex{em: em}
	b.waiting = map[string]time.Time{}
	b.auth = newAuthoriser(api, opt, opt.Now)
	return b, nil
}

// Close stops background work: it waits for in-flight submissions and clicks, then delivers
// what Slack is owed until ctx ends. What is left stays in the store for the next start (the
// count is logged); closing never withdraws, fails or cancels a request.
func (b *Bot) Close(ctx context.Context) error {
	done := make(chan struct{})
	go func() { b.wg.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		b.cancel()
		err = fmt.Errorf("bot: background work did not finish: %w", ctx.Err())
	}
	b.deliver.stop(ctx)
	if oerr := b.out.Close(ctx); oerr != nil {
		b.log.Warn("ephemeral answers dropped at shutdown", "error", oerr)
	}
	b.cancel()
	return err
}

// Idle waits until no click, submission or stop is being processed and the outbox is empty.
// Console mode uses it to finish at end of input; tests use it instead of sleeping.
func (b *Bot) Idle(ctx context.Context) error {
	done := make(chan struct{})
	go func() { b.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return ctx.Err()
	}
	if err := b.deliver.flush(ctx); err != nil {
		return err
	}
	return b.out.Flush(ctx)
}

// goBackground runs fn after the acknowledgement, owned by the Bot (Close waits for it).
func (b *Bot) goBackground(fn func(ctx context.Context)) {
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		defer func() {
			if r := recover(); r != nil {
				b.log.Error("background work panicked", "panic", r)
			}
		}()
		fn(b.ctx)
	}()
}

// claim marks a request as having a side effect under way in this process, so that the poller
// and a second click never start the same side effect twice. It returns false if already claimed.
func (b *Bot) claim(id string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.inflight[id] {
		return false
	}
	b.inflight[id] = true
	return true
}

func (b *Bot) release(id string) {
	b.mu.Lock()
	delete(b.inflight, id)
	b.mu.Unlock()
}

func (b *Bot) claimed(id string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.inflight[id]
}

// reqLog returns a logger that carries the request ID on every line.
func (b *Bot) reqLog(id string) *slog.Logger { return b.log.With("request", id) }

var responseClient = &http.Client{Timeout: 10 * time.Second}

// postResponseURL sends an ephemeral message through a slash command's response_url.
func postResponseURL(ctx context.Context, responseURL, text string) error {
	body, _ := json.Marshal(map[string]string{"response_type": "ephemeral", "text": text})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, responseURL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := responseClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("response_url answered %s", resp.Status)
	}
	return nil
}
