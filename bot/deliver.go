package bot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/slack-go/slack"
	"golang.org/x/time/rate"

	"github.com/failover-bot/failover-bot/bot/core"
	"github.com/failover-bot/failover-bot/store"
)

// Slack's documented limits, which delivery paces itself under instead of provoking 429s.
const (
	// postsPerSecond is chat.postMessage's limit per channel ("about one message per second").
	postsPerSecond = 1
	// updatesPerMinute is chat.update's Tier 3 limit, per workspace across all messages.
	updatesPerMinute = 50
	// cardEventType marks the bot's cards in Slack message metadata, so a card whose post
	// answer was lost in a crash can be found in the channel instead of posted twice.
	cardEventType = "failover_card"
	// responseURLLife is how long Slack accepts a slash command's response_url.
	responseURLLife = 30 * time.Minute
	// maxAuditBatch bounds how many audit events share one audit-channel message.
	maxAuditBatch = 25
	// delayNoticeAfter is how many failed attempts at a card make the requester hear that it
	// is delayed.
	delayNoticeAfter = 2
	// maxBackoff caps the wait between attempts after transport errors.
	maxBackoff = 30 * time.Second
)

// deliveryStore is what delivery reads and writes: the outbox, the cards, the audit cursor.
type deliveryStore interface {
	Get(ctx context.Context, id string) (*store.Request, error)
	UnpostedChannels(ctx context.Context) ([]string, error)
	UnpostedCards(ctx context.Context, channel string, limit int) ([]store.Card, error)
	StaleCards(ctx context.Context, limit int) ([]store.Card, error)
	SetMessage(ctx context.Context, id, channel, ts string, rendered uint64) (*store.Request, error)
	CardRendered(ctx context.Context, id string, version uint64) error
	CardDelayNotified(ctx context.Context, id string) error
	AbandonCard(ctx context.Context, id, why string) (*store.Request, error)
	WithdrawUndeliverable(ctx context.Context, id, why string) (*store.Request, error)
	OutboxChannels(ctx context.Context) ([]string, error)
	Outbox(ctx context.Context, channel string, limit int) ([]store.Outgoing, error)
	Delivered(ctx context.Context, channel string, seqs ...uint64) error
	AuditCursor(ctx context.Context, channel string) (uint64, error)
	SetAuditCursor(ctx context.Context, channel string, seq uint64) error
	Events(ctx context.Context, sinceSeq uint64, since time.Time, fn func(store.Event) error) error
	Backlog(ctx context.Context, auditChannel string, show func(store.Event) bool) (messages, cards, events int, err error)
	Changed() <-chan struct{}
}

// delivery makes Slack show what the store holds: it posts missing cards and brings stale
// ones to their request's newest version, sends queued thread lines and follows the audit log
// into the audit channel. Every channel has its own worker, so channels are served in
// parallel while each stays in order; card updates share one worker under the workspace's
// Tier 3 limit. Slack trouble is retried for as long as it lasts (a DR event is exactly when
// Slack is slow); only a permanent answer ends an attempt, and that is recorded in the store.
type delivery struct {
	st           deliveryStore
	api          SlackAPI
	log          *slog.Logger
	met          *Metrics
	now          func() time.Time
	auditChannel string
	workspaceURL string
	respond      func(ctx context.Context, responseURL, text string) error
	ephemeral    func(channel, user, text string)
	timeout      time.Duration
	// onChange is told of every store change delivery sees (the App Home follows them).
	onChange func()
	// approvers names who can still approve a request, for its card (mentions).
	approvers func(r *store.Request) string
	// leads reports whether this instance delivers: only the leader does (Options.Leader).
	leads func() bool

	ctx context.Context
	// sctx is for store calls: a write records what Slack already did, so shutdown must not
	// cancel it half way.
	sctx   context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	kick   chan struct{}

	postRate    rate.Limit
	postBurst   int
	backoffBase time.Duration
	updates     *rate.Limiter

	mu        sync.Mutex
	limiters  map[string]*rate.Limiter
	running   map[string]bool // worker keys: a channel ID, or updateWorker
	again     map[string]bool // work arrived while the worker ran
	mine      map[string]bool // requests created by this process: their card was never posted
	uncertain map[string]bool // card posts whose answer was lost: Slack may hold the card
	progress  chan struct{}   // closed and replaced after each step, for flush
}

const updateWorker = "\x00updates"

func newDelivery(b *Bot) *delivery {
	ctx, cancel := context.WithCancel(context.Background())
	d := &delivery{
		st: b.st, api: b.api, log: b.log, met: b.met, now: b.now,
		auditChannel: b.opt.AuditChannel, workspaceURL: b.opt.WorkspaceURL,
		respond: b.opt.Responder, ephemeral: b.out.Ephemeral, timeout: b.opt.SlackTimeout,
		approvers: func(r *store.Request) string { return b.core.ApproversFor(r) },
		leads:     b.core.Leads,
		ctx:       ctx, sctx: context.WithoutCancel(ctx), cancel: cancel, kick: make(chan struct{}, 1),
		postRate: rate.Limit(postsPerSecond), postBurst: 1,
		updates:  rate.NewLimiter(rate.Limit(float64(updatesPerMinute)/60), 1),
		limiters: map[string]*rate.Limiter{}, running: map[string]bool{}, again: map[string]bool{},
		mine: map[string]bool{}, uncertain: map[string]bool{}, progress: make(chan struct{}),
	}
	d.backoffBase = 250 * time.Millisecond
	if b.opt.SlackBackoff > 0 {
		d.backoffBase = b.opt.SlackBackoff
	}
	if b.opt.PostRate > 0 {
		d.postRate = rate.Limit(b.opt.PostRate)
	}
	if b.opt.UpdateRate > 0 {
		d.updates = rate.NewLimiter(rate.Limit(b.opt.UpdateRate), 1)
	}
	return d
}

// start runs the dispatcher until stop.
func (d *delivery) start() {
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		safety := time.NewTicker(2 * time.Second) // a missed signal costs at most this
		defer safety.Stop()
		for {
			if d.leads() {
				d.dispatch()
			}
			select {
			case <-d.ctx.Done():
				return
			case <-d.st.Changed():
				if d.onChange != nil {
					d.onChange()
				}
			case <-d.kick:
			case <-safety.C:
			}
			// Let a burst of commits settle into one look at the store.
			select {
			case <-d.ctx.Done():
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
}

// created tells delivery that this process created the request: its card was certainly never
// posted, so there is no need to look for it in the channel first.
func (d *delivery) created(id string) {
	d.mu.Lock()
	d.mine[id] = true
	d.mu.Unlock()
	d.nudge()
}

func (d *delivery) nudge() {
	select {
	case d.kick <- struct{}{}:
	default:
	}
}

// dispatch starts a worker for every channel with something owed, and the update worker
// when cards are stale.
func (d *delivery) dispatch() {
	unposted, err := d.st.UnpostedChannels(d.sctx)
	if err != nil {
		d.log.Error("slack delivery: reading due cards failed", "error", err)
		return
	}
	stale, err := d.st.StaleCards(d.sctx, 1)
	if err != nil {
		d.log.Error("slack delivery: reading stale cards failed", "error", err)
		return
	}
	chans := map[string]bool{}
	for _, ch := range unposted {
		chans[ch] = true
	}
	updates := len(stale) > 0
	oc, err := d.st.OutboxChannels(d.sctx)
	if err != nil {
		d.log.Error("slack delivery: reading the outbox failed", "error", err)
		return
	}
	for _, ch := range oc {
		chans[ch] = true
	}
	if d.auditChannel != "" {
		chans[d.auditChannel] = true
	}
	for ch := range chans {
		d.spawn(ch, func() bool { return d.channelStep(ch) })
	}
	if updates {
		d.spawn(updateWorker, d.updateStep)
	}
}

// spawn runs step until it finds nothing to do, in one goroutine per key.
func (d *delivery) spawn(key string, step func() bool) {
	d.mu.Lock()
	if d.running[key] {
		d.again[key] = true
		d.mu.Unlock()
		return
	}
	d.running[key] = true
	d.mu.Unlock()
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		for {
			did := d.ctx.Err() == nil && step()
			d.mu.Lock()
			if !did && (!d.again[key] || d.ctx.Err() != nil) {
				delete(d.running, key)
				delete(d.again, key)
				d.stepped()
				d.mu.Unlock()
				return
			}
			if !did {
				delete(d.again, key)
			}
			d.stepped()
			d.mu.Unlock()
		}
	}()
}

// stepped wakes flush; d.mu is held.
func (d *delivery) stepped() {
	close(d.progress)
	d.progress = make(chan struct{})
}

func (d *delivery) limiter(channel string) *rate.Limiter {
	d.mu.Lock()
	defer d.mu.Unlock()
	l := d.limiters[channel]
	if l == nil {
		l = rate.NewLimiter(d.postRate, d.postBurst)
		d.limiters[channel] = l
	}
	return l
}

// channelStep does the next thing owed in channel: post a missing card first (its thread
// lines need it), then queued messages in order, then audit events. It reports whether it did
// anything.
func (d *delivery) channelStep(ch string) bool {
	cards, err := d.st.UnpostedCards(d.sctx, ch, 1)
	if err != nil {
		return d.storeTrouble("reading due cards", err)
	}
	if len(cards) > 0 {
		d.postCard(cards[0])
		return true
	}
	msgs, err := d.st.Outbox(d.sctx, ch, 50)
	if err != nil {
		return d.storeTrouble("reading the outbox", err)
	}
	if len(msgs) > 0 {
		d.postQueued(ch, msgs)
		return true
	}
	if ch == d.auditChannel {
		return d.postAudit()
	}
	return false
}

func (d *delivery) storeTrouble(what string, err error) bool {
	if errors.Is(err, store.ErrFenced) || !d.leads() {
		// The leadership ended: what is left is the next leader's to deliver.
		d.log.Info("slack delivery: stopped, this instance no longer leads", "while", what)
		return false
	}
	d.log.Error("slack delivery: "+what+" failed", "error", err)
	d.wait(time.Second)
	return d.ctx.Err() == nil
}

// slackOutcome classifies a Slack call's error.
type slackOutcome int

const (
	delivered slackOutcome = iota
	transient              // 429, transport, 5xx: try again
	permanent              // Slack refused for good: the channel, the token or the content
	gone                   // the message or thread no longer exists
)

func classify(err error) (slackOutcome, time.Duration) {
	if err == nil {
		return delivered, 0
	}
	var rl *slack.RateLimitedError
	if errors.As(err, &rl) {
		wait := rl.RetryAfter
		if wait <= 0 {
			wait = time.Second
		}
		return transient, wait
	}
	var se slack.SlackErrorResponse
	if errors.As(err, &se) {
		switch se.Err {
		case "message_not_found", "cant_update_message", "thread_not_found":
			return gone, 0
		case "ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout", "team_added_to_org":
			return transient, 0
		}
		return permanent, 0
	}
	return transient, 0
}

// slackErrorText is Slack's error code when there is one, for audit details and people.
func slackErrorText(err error) string {
	var se slack.SlackErrorResponse
	if errors.As(err, &se) {
		return se.Err
	}
	return err.Error()
}

// call makes one Slack call under the channel's (or the workspace's update) limit.
func (d *delivery) call(lim *rate.Limiter, method string, fn func(ctx context.Context) (string, error)) (string, error) {
	if err := lim.Wait(d.ctx); err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(d.ctx, d.timeout)
	defer cancel()
	start := time.Now()
	ts, err := fn(ctx)
	observeSlack(d.met, method, err, time.Since(start))
	var rl *slack.RateLimitedError
	if errors.As(err, &rl) {
		d.met.SlackRateLimited.Inc()
	}
	return ts, err
}

// backoff waits before attempt+1: Slack's Retry-After, or a capped exponential delay.
func (d *delivery) backoff(attempt int, hint time.Duration) {
	wait := hint
	if wait <= 0 {
		wait = min(time.Duration(1<<min(attempt, 6))*d.backoffBase, maxBackoff)
	}
	d.wait(wait)
}

func (d *delivery) wait(dur time.Duration) {
	t := time.NewTimer(dur)
	defer t.Stop()
	select {
	case <-t.C:
	case <-d.ctx.Done():
	}
}

func msgOptions(text string, blocks []slack.Block, requestID string) []slack.MsgOption {
	opts := []slack.MsgOption{slack.MsgOptionText(text, false)}
	if len(blocks) > 0 {
		opts = append(opts, slack.MsgOptionBlocks(blocks...))
	}
	if requestID != "" {
		opts = append(opts, slack.MsgOptionMetadata(slack.SlackMetadata{EventType: cardEventType,
			EventPayload: map[string]any{"request_id": requestID}}))
	}
	return opts
}

// postCard posts a card that Slack does not show yet, retrying for as long as Slack has
// trouble. A card whose earlier post may have reached Slack (the answer was lost, or another
// process posted it before a crash) is looked for in the channel first, so it is adopted
// rather than posted twice.
func (d *delivery) postCard(c store.Card) {
	r := c.Request
	log := d.log.With("request", r.ID, "channel", r.Channel)
	lim := d.limiter(r.Channel)
	for attempt := 1; d.ctx.Err() == nil; attempt++ {
		if d.mayExist(r.ID) {
			if ts := d.findCard(r); ts != "" {
				// The found card shows an unknown version: record it as unrendered, so the
				// update worker brings it to the current one.
				if _, err := d.st.SetMessage(d.sctx, r.ID, r.Channel, ts, 0); err != nil {
					log.Error("slack delivery: recording an adopted card failed", "error", err)
					if d.refusedByStore(r, err) {
						return
					}
					d.wait(time.Second)
					continue
				}
				log.Info("adopted a card Slack already had", "ts", ts)
				d.settled(r.ID)
				return
			}
		}
		version := r.Version
		ts, err := d.call(lim, "chat.postMessage", func(ctx context.Context) (string, error) {
			_, ts, err := d.api.PostMessageContext(ctx, r.Channel, msgOptions(core.CardText(r), cardBlocks(r, d.approvers(r)), r.ID)...)
			return ts, err
		})
		outcome, hint := classify(err)
		switch outcome {
		case delivered:
			if _, err := d.st.SetMessage(d.sctx, r.ID, r.Channel, ts, version); err != nil {
				// Slack has the card but the store does not know where: look for it next time.
				log.Error("slack delivery: recording the card's position failed", "error", err, "ts", ts)
				if d.refusedByStore(r, err) {
					return
				}
				d.markUncertain(r.ID)
				d.wait(time.Second)
				continue
			}
			d.settled(r.ID)
			return
		case permanent, gone:
			d.cardRefused(r, err)
			return
		}
		if d.ctx.Err() != nil {
			return
		}
		if !isSlackAnswer(err) {
			d.markUncertain(r.ID) // Slack may have stored it before the connection failed
		}
		log.Warn("slack delivery: card not posted yet; retrying", "attempt", attempt, "error", err)
		if attempt == delayNoticeAfter && !c.DelayNotified {
			d.tellDelayed(r, err)
		}
		d.backoff(attempt, hint)
		if fresh, err := d.st.Get(d.sctx, r.ID); err == nil {
			r = fresh // post the newest render
		}
	}
}

// refusedByStore handles a card position the store will never accept (it names another
// request's message): retrying cannot help and would stall the channel, so the card is
// abandoned with the reason in the audit log.
func (d *delivery) refusedByStore(r *store.Request, err error) bool {
	if !errors.Is(err, store.ErrInvalid) {
		return false
	}
	if _, aerr := d.st.AbandonCard(d.sctx, r.ID, "the card's position could not be recorded: "+err.Error()); aerr != nil {
		d.log.Error("slack delivery: abandoning a card failed", "request", r.ID, "error", aerr)
		return false
	}
	d.settled(r.ID)
	return true
}

// isSlackAnswer says Slack answered (a 429 or an error document): nothing was stored.
func isSlackAnswer(err error) bool {
	var rl *slack.RateLimitedError
	var se slack.SlackErrorResponse
	return errors.As(err, &rl) || errors.As(err, &se)
}

func (d *delivery) mayExist(id string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.uncertain[id] || !d.mine[id]
}

func (d *delivery) markUncertain(id string) {
	d.mu.Lock()
	d.uncertain[id] = true
	d.mu.Unlock()
}

func (d *delivery) settled(id string) {
	d.mu.Lock()
	delete(d.uncertain, id)
	delete(d.mine, id)
	d.mu.Unlock()
}

// findCard looks in the channel's recent history (its newest 1,000 messages) for the card of
// r, by its metadata. No time bound is given: Slack's ts is Slack's clock, not ours.
func (d *delivery) findCard(r *store.Request) string {
	params := &slack.GetConversationHistoryParameters{ChannelID: r.Channel, IncludeAllMetadata: true, Limit: 200}
	for page := 0; page < 5; page++ {
		var resp *slack.GetConversationHistoryResponse
		_, err := d.call(d.limiter("history:"+r.Channel), "conversations.history", func(ctx context.Context) (string, error) {
			var err error
			resp, err = d.api.GetConversationHistoryContext(ctx, params)
			return "", err
		})
		if err != nil {
			d.log.Warn("slack delivery: could not look for an earlier card; posting a new one", "request", r.ID, "error", err)
			return ""
		}
		for _, m := range resp.Messages {
			if m.Metadata.EventType == cardEventType && fmt.Sprint(m.Metadata.EventPayload["request_id"]) == r.ID {
				return m.Timestamp
			}
		}
		if !resp.HasMore || resp.ResponseMetaData.NextCursor == "" {
			return ""
		}
		params.Cursor = resp.ResponseMetaData.NextCursor
	}
	return ""
}

// tellDelayed tells the requester, once, that Slack is not taking their card yet.
func (d *delivery) tellDelayed(r *store.Request, cause error) {
	if r.ResponseURL == "" || d.now().Sub(r.CreatedAt) >= responseURLLife || d.respond == nil {
		return
	}
	text := fmt.Sprintf("The approval card for *%s* is delayed: Slack is not taking it right now (%s). The request is recorded and nothing has been sent to Enterprise Manager; the card will appear in <#%s> as soon as Slack accepts it. There is no need to ask again.",
		r.ID, slackTrouble(cause), r.Channel)
	ctx, cancel := context.WithTimeout(d.ctx, d.timeout)
	defer cancel()
	if err := d.respond(ctx, r.ResponseURL, text); err != nil {
		d.log.Warn("slack delivery: could not tell the requester that the card is delayed", "request", r.ID, "error", err)
		return
	}
	if err := d.st.CardDelayNotified(ctx, r.ID); err != nil {
		d.log.Warn("slack delivery: recording the delay notice failed", "request", r.ID, "error", err)
	}
}

func slackTrouble(err error) string {
	var rl *slack.RateLimitedError
	if errors.As(err, &rl) {
		return "rate-limited"
	}
	return "unreachable"
}

// cardRefused handles a permanent refusal of a card: a pending request is withdrawn (nobody
// could approve it) and its requester told; any other request keeps going without a card.
func (d *delivery) cardRefused(r *store.Request, err error) {
	why := "Slack refused the card: " + slackErrorText(err)
	d.log.Error("slack delivery: card refused for good", "request", r.ID, "channel", r.Channel, "error", err)
	d.settled(r.ID)
	if r.State == store.Pending {
		if _, werr := d.st.WithdrawUndeliverable(d.sctx, r.ID, why); werr == nil {
			d.met.Requests.WithLabelValues("withdrawn").Inc()
			d.tellRefused(r, err)
			return
		}
	}
	if _, aerr := d.st.AbandonCard(d.sctx, r.ID, why); aerr != nil {
		d.log.Error("slack delivery: recording an undeliverable card failed", "request", r.ID, "error", aerr)
		d.wait(time.Second)
	}
}

func (d *delivery) tellRefused(r *store.Request, err error) {
	text := fmt.Sprintf("I could not post the approval card for %s: Slack answered `%s`. The request is withdrawn and nothing was sent to Enterprise Manager. If the bot is not in <#%s>, invite it with `/invite` and ask again.",
		r.ID, slackErrorText(err), r.Channel)
	if r.ResponseURL != "" && d.now().Sub(r.CreatedAt) < responseURLLife && d.respond != nil {
		ctx, cancel := context.WithTimeout(d.ctx, d.timeout)
		defer cancel()
		if d.respond(ctx, r.ResponseURL, text) == nil {
			return
		}
	}
	d.ephemeral(r.Channel, r.Requester, text)
}

// postQueued sends the oldest queued messages of channel: consecutive lines for the same
// thread share one message (a backlog after an outage becomes a few messages, not one per
// line), and each is removed from the outbox only after Slack took it.
func (d *delivery) postQueued(ch string, msgs []store.Outgoing) {
	first := msgs[0]
	batch := []store.Outgoing{first}
	text := first.Text
	for _, m := range msgs[1:] {
		if first.RequestID == "" || m.RequestID != first.RequestID || len(text)+1+len(m.Text) > maxMergedText {
			break
		}
		batch = append(batch, m)
		text += "\n" + m.Text
	}
	if len(batch) > 1 {
		d.met.SlackCoalesced.Add(float64(len(batch) - 1))
	}
	thread := ""
	if first.RequestID != "" {
		r, err := d.st.Get(d.sctx, first.RequestID)
		switch {
		case err != nil:
			d.log.Warn("slack delivery: queued line for an unreadable request; posting it in the channel", "request", first.RequestID, "error", err)
			text = "*" + first.RequestID + "*: " + text
		case r.MessageTS == "":
			text = "*" + r.ID + "*: " + text // the card was never shown: say which request
		default:
			thread = r.MessageTS
		}
	}
	lim := d.limiter(ch)
	for attempt := 1; d.ctx.Err() == nil; attempt++ {
		_, err := d.call(lim, "chat.postMessage", func(ctx context.Context) (string, error) {
			opts := []slack.MsgOption{slack.MsgOptionText(text, false)}
			if thread != "" {
				opts = append(opts, slack.MsgOptionTS(thread))
			}
			_, ts, err := d.api.PostMessageContext(ctx, ch, opts...)
			return ts, err
		})
		outcome, hint := classify(err)
		switch outcome {
		case gone:
			if thread != "" {
				d.log.Warn("slack delivery: the card's thread is gone; posting in the channel", "channel", ch, "thread", thread)
				thread, text = "", "*"+first.RequestID+"*: "+text
				continue
			}
			fallthrough
		case permanent:
			d.log.Error("slack delivery: message refused for good and dropped", "channel", ch, "error", err,
				"lines", len(batch), "text", core.Truncate(text, 200))
			d.met.SlackErrors.WithLabelValues("dropped", slackErrorText(err)).Inc()
			fallthrough
		case delivered:
			seqs := make([]uint64, len(batch))
			for i, m := range batch {
				seqs[i] = m.Seq
			}
			for d.ctx.Err() == nil {
				if err := d.st.Delivered(d.sctx, ch, seqs...); err == nil {
					return
				} else {
					d.log.Error("slack delivery: recording a delivery failed", "channel", ch, "error", err)
					d.wait(time.Second)
				}
			}
			return
		}
		d.log.Warn("slack delivery: message not delivered yet; retrying", "channel", ch, "attempt", attempt, "error", err)
		d.backoff(attempt, hint)
	}
}

var errBatchFull = errors.New("batch full")

// postAudit sends the next audit events after the cursor: one message for one event, a batch
// when a backlog exists. It reports whether the cursor moved.
func (d *delivery) postAudit() bool {
	cursor, err := d.st.AuditCursor(d.sctx, d.auditChannel)
	if err != nil {
		return d.storeTrouble("reading the audit cursor", err)
	}
	var lines []string
	size, last := 0, cursor
	links := map[string]string{}
	err = d.st.Events(d.sctx, cursor, time.Time{}, func(e store.Event) error {
		if !core.ShowInAuditChannel(e) {
			last = e.Seq
			return nil
		}
		link, ok := links[e.RequestID]
		if !ok {
			if r, err := d.st.Get(d.sctx, e.RequestID); err == nil {
				link = core.Permalink(d.workspaceURL, r.Channel, r.MessageTS)
			}
			links[e.RequestID] = link
		}
		line := core.AuditLine(e, link)
		if len(lines) > 0 && (len(lines) == maxAuditBatch || size+1+len(line) > maxMergedText) {
			return errBatchFull
		}
		lines, size, last = append(lines, line), size+1+len(line), e.Seq
		return nil
	})
	if err != nil && !errors.Is(err, errBatchFull) {
		return d.storeTrouble("reading the audit log", err)
	}
	if last == cursor {
		return false
	}
	if len(lines) > 0 {
		text := strings.Join(lines, "\n")
		lim := d.limiter(d.auditChannel)
		for attempt := 1; ; attempt++ {
			if d.ctx.Err() != nil {
				return false
			}
			_, err := d.call(lim, "chat.postMessage", func(ctx context.Context) (string, error) {
				_, ts, err := d.api.PostMessageContext(ctx, d.auditChannel, slack.MsgOptionText(text, false))
				return ts, err
			})
			outcome, hint := classify(err)
			if outcome == delivered {
				break
			}
			if outcome != transient {
				// The events stay in the audit log; the channel cannot take them.
				d.log.Error("slack delivery: audit channel refused events; they remain in the audit log", "channel", d.auditChannel, "error", err, "events", len(lines))
				d.met.SlackErrors.WithLabelValues("dropped", slackErrorText(err)).Inc()
				break
			}
			d.log.Warn("slack delivery: audit events not delivered yet; retrying", "attempt", attempt, "error", err)
			d.backoff(attempt, hint)
		}
		if len(lines) > 1 {
			d.met.SlackCoalesced.Add(float64(len(lines) - 1))
		}
	}
	for d.ctx.Err() == nil {
		if err := d.st.SetAuditCursor(d.sctx, d.auditChannel, last); err == nil {
			return true
		} else {
			d.log.Error("slack delivery: moving the audit cursor failed", "error", err)
			d.wait(time.Second)
		}
	}
	return false
}

// updateStep brings the stalest card that Slack shows to its request's newest version, under
// the workspace's chat.update limit. Changes made while it waits are coalesced: only the
// newest render is sent.
func (d *delivery) updateStep() bool {
	cards, err := d.st.StaleCards(d.sctx, 1)
	if err != nil {
		return d.storeTrouble("reading stale cards", err)
	}
	if len(cards) == 0 {
		return false
	}
	c := &cards[0]
	if err := d.updates.Wait(d.ctx); err != nil {
		return false
	}
	// Read again after the wait: the request may have changed (coalesced into this render).
	r, err := d.st.Get(d.sctx, c.Request.ID)
	if err != nil {
		return d.storeTrouble("reading a request", err)
	}
	_, err = d.call(rate.NewLimiter(rate.Inf, 1), "chat.update", func(ctx context.Context) (string, error) {
		_, ts, _, err := d.api.UpdateMessageContext(ctx, r.Channel, r.MessageTS, msgOptions(core.CardText(r), cardBlocks(r, d.approvers(r)), r.ID)...)
		return ts, err
	})
	outcome, hint := classify(err)
	switch outcome {
	case delivered:
		if err := d.st.CardRendered(d.sctx, r.ID, r.Version); err != nil {
			return d.storeTrouble("recording a card render", err)
		}
	case gone:
		// Someone deleted the card: post it again, so the request keeps one live card.
		d.log.Warn("slack delivery: card deleted in Slack; posting it again", "request", r.ID, "ts", r.MessageTS)
		d.repostCard(r)
	case permanent:
		d.cardRefused(r, err)
	case transient:
		d.log.Warn("slack delivery: card update not delivered yet; retrying", "request", r.ID, "error", err)
		d.backoff(1, hint)
	}
	return true
}

// repostCard replaces a card deleted in Slack with a new one.
func (d *delivery) repostCard(r *store.Request) {
	lim := d.limiter(r.Channel)
	for attempt := 1; d.ctx.Err() == nil; attempt++ {
		ts, err := d.call(lim, "chat.postMessage", func(ctx context.Context) (string, error) {
			_, ts, err := d.api.PostMessageContext(ctx, r.Channel, msgOptions(core.CardText(r), cardBlocks(r, d.approvers(r)), r.ID)...)
			return ts, err
		})
		outcome, hint := classify(err)
		switch outcome {
		case delivered:
			if _, err := d.st.SetMessage(d.sctx, r.ID, r.Channel, ts, r.Version); err != nil {
				d.log.Error("slack delivery: recording the reposted card failed", "request", r.ID, "error", err)
			}
			return
		case permanent, gone:
			d.cardRefused(r, err)
			return
		}
		d.backoff(attempt, hint)
	}
}

// backlog counts what Slack is still owed.
func (d *delivery) backlog() (int, error) {
	m, c, e, err := d.st.Backlog(d.sctx, d.auditChannel, core.ShowInAuditChannel)
	return m + c + e, err
}

// flush waits until Slack has everything the store holds for it, or ctx ends.
func (d *delivery) flush(ctx context.Context) error {
	if !d.leads() {
		return nil // a standby delivers nothing, so it has nothing to wait for
	}
	for {
		d.mu.Lock()
		busy := len(d.running) > 0
		progress := d.progress
		d.mu.Unlock()
		if !busy {
			n, err := d.backlog()
			if err != nil {
				return err
			}
			if n == 0 {
				return nil
			}
			d.nudge()
		}
		select {
		case <-progress:
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
			n, _ := d.backlog()
			return fmt.Errorf("slack delivery: %d messages still owed: %w", n, ctx.Err())
		}
	}
}

// stop delivers what it can until ctx ends, then stops the workers. What remains stays in
// the store for the next start; stopping never withdraws or fails anything.
func (d *delivery) stop(ctx context.Context) {
	if !d.leads() {
		// A standby delivers nothing: what Slack is owed is the leader's.
		d.cancel()
		d.wg.Wait()
		return
	}
	err := d.flush(ctx)
	d.cancel()
	d.wg.Wait()
	if err == nil {
		d.log.Info("slack delivery: everything delivered")
		return
	}
	m, c, e, berr := d.st.Backlog(d.sctx, d.auditChannel, core.ShowInAuditChannel)
	if berr != nil {
		d.log.Warn("slack delivery stopped; the backlog could not be counted", "error", berr)
		return
	}
	d.log.Warn("slack delivery stopped with messages still owed; they are delivered at the next start",
		"remaining", m+c+e, "messages", m, "cards", c, "audit_events", e)
}
