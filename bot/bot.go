// Package bot is failover-bot's Slack edge around its use cases (package core): slash commands
// and clicks over HTTP or Socket Mode (one dispatcher, signatures checked), the cards, dialogs
// and threads rendered in Block Kit, and the delivery of everything the store owes Slack. The
// use cases themselves (requests, approvals, submission, the poller, stops, retries) know no
// Slack types; this package turns Slack's payloads into their calls and their answers into
// Slack's.
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
	"time"

	"github.com/slack-go/slack"

	"github.com/failover-bot/failover-bot/bot/core"
	"github.com/failover-bot/failover-bot/bot/plans"
	"github.com/failover-bot/failover-bot/store"
)

// EM is the part of Enterprise Manager's API the bot uses (see core.EM).
type EM = core.EM

// Store is the part of the store the bot uses: what the use cases need and what delivery to
// Slack needs. *store.Bolt implements it.
type Store interface {
	core.Store
	deliveryStore
	ByMessage(ctx context.Context, channel, ts string) (*store.Request, error)
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
	// Reminders are when a pending request's approvers are reminded in its thread (REMINDERS);
	// none when empty.
	Reminders []core.Reminder
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
	// HomeRefresh is the least time between two refreshes of one person's App Home tab while
	// requests change (default 5s): a 200-VM failover's changes coalesce into one publish per
	// viewer per interval. HomePublishRate overrides views.publish's pace (per second, across
	// all viewers; default Slack's Tier 4, 100 per minute). Tests raise both.
	HomeRefresh     time.Duration
	HomePublishRate float64
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
	// Plans are the recovery plans (PLANS_FILE, loaded and validated by the caller); nil for none.
	Plans *plans.File
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
	// Leader, when set (several instances on one etcd store), reports whether this instance
	// leads and its term's context: only the leader submits, polls, expires and delivers to
	// Slack; every instance answers Slack and records what people ask. Forward hands what a
	// standby cannot do to the leader, which runs it with RunJob. Nil: this instance always leads.
	Leader  func() (context.Context, bool)
	Forward func(ctx context.Context, j core.Job) error
	// Names is the directory of display names the audit log records beside user IDs (give the
	// same one to store.Options.Names); the edge fills it from payloads and users.info. Default:
	// a new one of DefaultNamesSize, each name fresh for DefaultNamesTTL.
	Names *Names
}

// Bot is the Slack edge over the use cases. It is safe for concurrent use.
type Bot struct {
	core    *core.Service
	st      Store
	api     SlackAPI
	opt     Options
	log     *slog.Logger
	now     func() time.Time
	met     *Metrics
	out     *Outbox   // best-effort ephemeral answers and superseded-card notices
	deliver *delivery // everything the store owes Slack
	home    *home     // the App Home tabs; nil when api cannot publish views (console)
	events  eventIDs  // Events API deliveries handled recently, to drop Slack's retries
	names   *Names    // display names for the audit log, learned from payloads and users.info
}

// New returns a Bot. Call Close to stop background work.
func New(em EM, st Store, api SlackAPI, opt Options) (*Bot, error) {
	if em == nil || st == nil || api == nil {
		return nil, errors.New("bot: EM client, store and Slack API are required")
	}
	if opt.SlackTimeout <= 0 {
		opt.SlackTimeout = 10 * time.Second
	}
	if opt.Responder == nil {
		opt.Responder = postResponseURL
	}
	if opt.Names == nil {
		opt.Names = NewNames(0, 0, opt.Now)
	}
	b := &Bot{st: st, api: api, names: opt.Names}
	c, err := core.New(em, st, edgeNotifier{b}, slackDirectory{api, opt.Names}, slackDialogs{api}, core.Options{
		Approvers: opt.Approvers, Requesters: opt.Requesters, AllowedChannels: opt.AllowedChannels,
		ApproverGroup: opt.ApproverGroup, ApprovalsRequired: opt.ApprovalsRequired, RequestTTL: opt.RequestTTL,
		PollConcurrency: opt.PollConcurrency, MaxConcurrentFailovers: opt.MaxConcurrentFailovers,
		MaxTargets: opt.MaxTargets, AckBudget: opt.AckBudget, SubmitRetryFor: opt.SubmitRetryFor,
		SubmitGrace: opt.SubmitGrace, OutcomeGrace: opt.OutcomeGrace, StopApprovals: opt.StopApprovals,
		EMTimeout: opt.EMTimeout, Plans: opt.Plans, Reminders: opt.Reminders, Now: opt.Now, Logger: opt.Logger, Metrics: opt.Metrics,
		Leader: opt.Leader, Forward: opt.Forward,
	})
	if err != nil {
		return nil, err
	}
	// The use cases fill in the shared defaults (clock, logger, metrics, approval settings); the
	// edge uses the same values.
	co := c.Options()
	opt.ApprovalsRequired, opt.RequestTTL, opt.StopApprovals = co.ApprovalsRequired, co.RequestTTL, co.StopApprovals
	opt.Now, opt.Logger, opt.Metrics = co.Now, co.Logger, co.Metrics
	b.core, b.opt, b.log, b.now, b.met = c, opt, co.Logger, co.Now, co.Metrics
	b.out = NewOutbox(api, OutboxOptions{Logger: opt.Logger, Metrics: opt.Metrics, Timeout: opt.SlackTimeout})
	b.deliver = newDelivery(b)
	if pub, ok := api.(homePublisher); ok {
		b.home = newHome(pub, st, c.IsApprover, b.log, b.met, b.now, opt.WorkspaceURL,
			homeOptions{refresh: opt.HomeRefresh, publishRate: opt.HomePublishRate, timeout: opt.SlackTimeout, backoffBase: opt.SlackBackoff})
		b.deliver.onChange = b.home.changed
		b.home.start()
	}
	b.deliver.start()
	return b, nil
}

// Core returns the use cases the Bot serves.
func (b *Bot) Core() *core.Service { return b.core }

// edgeNotifier is how the use cases speak through Slack.
type edgeNotifier struct{ b *Bot }

func (n edgeNotifier) Ephemeral(channel, user, text string) { n.b.out.Ephemeral(channel, user, text) }
func (n edgeNotifier) Created(id string)                    { n.b.deliver.created(id) }

// Respond answers through the command's response_url, falling back to an ephemeral message.
func (n edgeNotifier) Respond(ctx context.Context, responseURL, channel, user, text string) {
	b := n.b
	if responseURL != "" && b.opt.Responder != nil {
		if err := b.opt.Responder(ctx, responseURL, text); err == nil {
			return
		} else {
			b.log.Warn("response_url failed; falling back to an ephemeral message", "error", err)
		}
	}
	b.out.Ephemeral(channel, user, text)
}

// slackDialogs opens the reject and stop dialogs as Slack modals.
type slackDialogs struct{ api SlackAPI }

func (d slackDialogs) AskRejectReason(ctx context.Context, trigger string, r *store.Request) error {
	_, err := d.api.OpenViewContext(ctx, trigger, rejectModal(r))
	return err
}

func (d slackDialogs) AskStopReason(ctx context.Context, trigger string, r *store.Request, approvals int) error {
	_, err := d.api.OpenViewContext(ctx, trigger, stopModal(r, approvals))
	return err
}

// slackDirectory answers who a person is from users.info and usergroups.users.list; what
// users.info says of a person's name goes to the audit log's directory on the way.
type slackDirectory struct {
	api   SlackAPI
	names *Names
}

func (d slackDirectory) Person(ctx context.Context, id string) (core.Person, error) {
	u, err := d.api.GetUserInfoContext(ctx, id)
	if err != nil {
		return core.Person{}, err
	}
	d.names.FromProfile(u)
	return core.Person{ID: u.ID, Bot: u.IsBot || u.ID == "USLACKBOT", Deactivated: u.Deleted,
		Guest: u.IsRestricted || u.IsUltraRestricted}, nil
}

func (d slackDirectory) GroupMembers(ctx context.Context, group string) ([]string, error) {
	return d.api.GetUserGroupMembersContext(ctx, group)
}

// Close stops background work: it waits for in-flight submissions and clicks, then delivers
// what Slack is owed until ctx ends. What is left stays in the store for the next start (the
// count is logged); closing never withdraws, fails or cancels a request.
func (b *Bot) Close(ctx context.Context) error {
	err := b.core.Close(ctx)
	b.deliver.stop(ctx)
	if b.home != nil {
		b.home.stop()
	}
	if oerr := b.out.Close(ctx); oerr != nil {
		b.log.Warn("ephemeral answers dropped at shutdown", "error", oerr)
	}
	return err
}

// Idle waits until no click, submission or stop is being processed and the outbox is empty.
// Console mode uses it to finish at end of input; tests use it instead of sleeping.
func (b *Bot) Idle(ctx context.Context) error {
	if err := b.core.Wait(ctx); err != nil {
		return err
	}
	if err := b.deliver.flush(ctx); err != nil {
		return err
	}
	return b.out.Flush(ctx)
}

// RunJob runs work another instance handed to this one, the leader (see Options.Forward).
func (b *Bot) RunJob(ctx context.Context, j core.Job) { b.core.RunJob(ctx, j) }

// Kick wakes delivery at once (a new term: what the last leader left undelivered).
func (b *Bot) Kick() { b.deliver.nudge() }

// Poll runs one poll cycle (see core.Service.Poll).
func (b *Bot) Poll(ctx context.Context) { b.core.Poll(ctx) }

// PollSoon runs one poll cycle now in the background.
func (b *Bot) PollSoon() { b.core.PollSoon() }

// StartPoller runs Poll on schedule (see core.Service.StartPoller).
func (b *Bot) StartPoller(schedule string) (stop func(ctx context.Context) error, err error) {
	return b.core.StartPoller(schedule)
}

// goBackground runs fn after the acknowledgement, owned by the use cases' background work.
func (b *Bot) goBackground(fn func(ctx context.Context)) { b.core.Go(fn) }

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
