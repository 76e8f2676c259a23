package bot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/failover-bot/failover-bot/bot/core"
	"github.com/slack-go/slack"
)

// Slack accepts at most 4,000 characters of message text; merged thread replies stay below this
// with room for a header.
const maxMergedText = 3500

// OutboxOptions configures an Outbox.
type OutboxOptions struct {
	Logger  *slog.Logger
	Metrics *Metrics
	Timeout time.Duration // per Slack call
	// MaxAttempts bounds retries of one message after 429s and transport errors (default 8). A
	// message that still fails is logged and counted, never silently lost.
	MaxAttempts int
}

// Outbox sends everything the bot says in Slack. Each channel has its own ordered queue and
// worker, because Slack allows about one message per second per channel and a DR event produces
// bursts: posts to one channel go out in order, 429 answers are honoured with Retry-After, queued
// card updates for the same message collapse into the newest, and queued thread replies to the
// same thread merge into one message instead of being dropped.
type Outbox struct {
	api SlackAPI
	opt OutboxOptions
	log *slog.Logger

	mu      sync.Mutex
	queues  map[string]*queue
	pending int           // ops queued or running
	idle    chan struct{} // closed while pending == 0
	closed  bool
	ctx     context.Context
	cancel  context.CancelFunc
}

type opKind int

const (
	opPost opKind = iota
	opUpdate
	opEphemeral
)

type outOp struct {
	kind      opKind
	channel   string
	threadTS  string // opPost: reply in this thread
	ts        string // opUpdate: the message to change
	user      string // opEphemeral
	text      string
	blocks    []slack.Block
	mergeable bool // thread replies that may merge with the next one to the same thread
	merged    int
	result    chan sendResult // nil: fire and forget
}

type sendResult struct {
	ts  string
	err error
}

type queue struct {
	ops     []*outOp
	running bool
}

// NewOutbox returns an Outbox that posts through api.
func NewOutbox(api SlackAPI, opt OutboxOptions) *Outbox {
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	if opt.Metrics == nil {
		opt.Metrics = NewMetrics(nil)
	}
	if opt.Timeout <= 0 {
		opt.Timeout = 10 * time.Second
	}
	if opt.MaxAttempts <= 0 {
		opt.MaxAttempts = 8
	}
	idle := make(chan struct{})
	close(idle)
	ctx, cancel := context.WithCancel(context.Background())
	return &Outbox{api: api, opt: opt, log: opt.Logger, queues: map[string]*queue{}, idle: idle, ctx: ctx, cancel: cancel}
}

// Post sends a message and waits for Slack's timestamp of it (cards need it for chat.update).
func (o *Outbox) Post(ctx context.Context, channel, threadTS, text string, blocks []slack.Block) (string, error) {
	res := make(chan sendResult, 1)
	if err := o.enqueue(&outOp{kind: opPost, channel: channel, threadTS: threadTS, text: text, blocks: blocks, result: res}); err != nil {
		return "", err
	}
	select {
	case r := <-res:
		return r.ts, r.err
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// Reply queues a thread reply (or, with threadTS empty, a channel message). Replies queued for the
// same thread while earlier ones wait are merged into one message.
func (o *Outbox) Reply(channel, threadTS, text string) {
	_ = o.enqueue(&outOp{kind: opPost, channel: channel, threadTS: threadTS, text: text, mergeable: true})
}

// Update queues a chat.update of a card; a newer update for the same card replaces a queued one.
// If the card was deleted, the new content is posted in its thread instead.
func (o *Outbox) Update(channel, ts, text string, blocks []slack.Block) {
	_ = o.enqueue(&outOp{kind: opUpdate, channel: channel, ts: ts, text: text, blocks: blocks})
}

// Ephemeral queues a message only user sees.
func (o *Outbox) Ephemeral(channel, user, text string) {
	_ = o.enqueue(&outOp{kind: opEphemeral, channel: channel, user: user, text: text})
}

var errOutboxClosed = errors.New("slack outbox is closed")

func (o *Outbox) enqueue(op *outOp) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		o.log.Error("slack message dropped after shutdown", "channel", op.channel, "text", core.Truncate(op.text, 200))
		return errOutboxClosed
	}
	key := op.channel
	if op.kind == opEphemeral {
		// A person waiting for "why did my click do nothing" must not queue behind a burst of
		// rate-limited channel posts; Slack limits ephemeral messages separately.
		key = "ephemeral:" + op.channel
	}
	q := o.queues[key]
	if q == nil {
		q = &queue{}
		o.queues[key] = q
	}
	if o.coalesce(q, op) {
		return nil
	}
	q.ops = append(q.ops, op)
	o.pending++
	if o.pending == 1 {
		o.idle = make(chan struct{})
	}
	if !q.running {
		q.running = true
		go o.work(q)
	}
	return nil
}

// coalesce folds op into a queued op when that loses nothing: a newer card update replaces an
// older queued one; a thread reply joins the last queued reply to the same thread.
func (o *Outbox) coalesce(q *queue, op *outOp) bool {
	switch op.kind {
	case opUpdate:
		for _, p := range q.ops {
			if p.kind == opUpdate && p.ts == op.ts {
				p.text, p.blocks = op.text, op.blocks
				o.opt.Metrics.SlackCoalesced.Inc()
				return true
			}
		}
	case opPost:
		if !op.mergeable || len(q.ops) == 0 {
			return false
		}
		last := q.ops[len(q.ops)-1]
		if last.kind == opPost && last.mergeable && last.threadTS == op.threadTS &&
			len(last.text)+len(op.text)+1 <= maxMergedText {
			last.text += "\n" + op.text
			last.merged++
			o.opt.Metrics.SlackCoalesced.Inc()
			return true
		}
	}
	return false
}

func (o *Outbox) work(q *queue) {
	for {
		o.mu.Lock()
		if len(q.ops) == 0 {
			q.running = false
			o.mu.Unlock()
			return
		}
		op := q.ops[0]
		q.ops = q.ops[1:]
		o.mu.Unlock()

		ts, err := o.send(op)
		if op.result != nil {
			op.result <- sendResult{ts: ts, err: err}
		}
		o.mu.Lock()
		o.pending--
		if o.pending == 0 {
			close(o.idle)
		}
		o.mu.Unlock()
	}
}

// send performs one op with retries. Slack's 429 carries Retry-After; transport errors back off.
func (o *Outbox) send(op *outOp) (string, error) {
	var err error
	for attempt := 1; attempt <= o.opt.MaxAttempts; attempt++ {
		var ts string
		ts, err = o.call(op)
		if err == nil {
			return ts, nil
		}
		var rl *slack.RateLimitedError
		wait := time.Duration(0)
		switch {
		case errors.As(err, &rl):
			o.opt.Metrics.SlackRateLimited.Inc()
			wait = rl.RetryAfter
			if wait <= 0 {
				wait = time.Second
			}
		case isSlackAPIError(err):
			if op.kind == opUpdate && isMessageGone(err) {
				return o.updateFallback(op)
			}
			o.fail(op, err)
			return "", err
		default:
			wait = time.Duration(attempt) * 500 * time.Millisecond
		}
		select {
		case <-time.After(wait):
		case <-o.ctx.Done():
			o.fail(op, err)
			return "", err
		}
	}
	o.fail(op, err)
	return "", err
}

func (o *Outbox) call(op *outOp) (string, error) {
	ctx, cancel := context.WithTimeout(o.ctx, o.opt.Timeout)
	defer cancel()
	opts := []slack.MsgOption{slack.MsgOptionText(op.text, false)}
	if len(op.blocks) > 0 {
		opts = append(opts, slack.MsgOptionBlocks(op.blocks...))
	}
	var (
		ts     string
		err    error
		method string
	)
	start := time.Now()
	switch op.kind {
	case opPost:
		method = "chat.postMessage"
		if op.threadTS != "" {
			opts = append(opts, slack.MsgOptionTS(op.threadTS))
		}
		_, ts, err = o.api.PostMessageContext(ctx, op.channel, opts...)
	case opUpdate:
		method = "chat.update"
		_, ts, _, err = o.api.UpdateMessageContext(ctx, op.channel, op.ts, opts...)
	case opEphemeral:
		method = "chat.postEphemeral"
		ts, err = o.api.PostEphemeralContext(ctx, op.channel, op.user, opts...)
	}
	observeSlack(o.opt.Metrics, method, err, time.Since(start))
	return ts, err
}

// updateFallback posts a deleted card's new content as a reply in its thread so that the change
// is still visible; if the thread is gone too, as a channel message.
func (o *Outbox) updateFallback(op *outOp) (string, error) {
	o.log.Warn("card no longer exists; posting its update in the thread", "channel", op.channel, "ts", op.ts)
	reply := &outOp{kind: opPost, channel: op.channel, threadTS: op.ts, text: op.text, blocks: op.blocks}
	ts, err := o.call(reply)
	if err == nil {
		return ts, nil
	}
	reply.threadTS = ""
	return o.send(reply)
}

func (o *Outbox) fail(op *outOp, err error) {
	o.log.Error("slack message could not be delivered", "channel", op.channel, "error", err, "text", core.Truncate(op.text, 200))
}

// Flush waits until every queued message has been sent (or given up on).
func (o *Outbox) Flush(ctx context.Context) error {
	o.mu.Lock()
	idle := o.idle
	o.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("slack outbox: %d messages still queued: %w", o.Pending(), ctx.Err())
	}
}

// Pending reports how many messages are queued or being sent.
func (o *Outbox) Pending() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.pending
}

// Close drains the queues until ctx ends, then stops retrying.
func (o *Outbox) Close(ctx context.Context) error {
	err := o.Flush(ctx)
	o.mu.Lock()
	o.closed = true
	o.mu.Unlock()
	o.cancel()
	return err
}

// isSlackAPIError tells a definite answer from Slack ({"ok":false,"error":…}), which retrying
// cannot change, from a transport failure, which it may.
func isSlackAPIError(err error) bool {
	var se slack.SlackErrorResponse
	return errors.As(err, &se)
}

func isMessageGone(err error) bool {
	var se slack.SlackErrorResponse
	if !errors.As(err, &se) {
		return false
	}
	switch se.Err {
	case "message_not_found", "cant_update_message", "thread_not_found":
		return true
	}
	return false
}
