package bot

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/slack-go/slack/slackevents"
)

// Slack retries an Events API delivery it did not see acknowledged (at once, after a minute,
// after five), carrying X-Slack-Retry-Num and X-Slack-Retry-Reason, or retry_attempt in Socket
// Mode. A delivery whose event_id was already handled is acknowledged and dropped; a retry of
// one never seen (the first attempt did not reach this process) is handled.
const (
	headerRetryNum    = "X-Slack-Retry-Num"
	headerRetryReason = "X-Slack-Retry-Reason"
	// eventSeenFor is how long an event_id is remembered: longer than Slack's retries last.
	eventSeenFor = 15 * time.Minute
	// maxSeenEvents bounds the memory of event IDs (a few hundred bytes each).
	maxSeenEvents = 10000
)

// errNotJSON is an events payload that is not even JSON: Slack never sends one.
var errNotJSON = errors.New("events payload is not JSON")

// parseEventsPayload parses a verified Events API body with slack-go's slackevents. The
// verification token is not checked: it is deprecated, and the request signature (HTTP mode)
// or the app-level token's connection (Socket Mode) already proved the sender. A body that is
// not JSON is errNotJSON; JSON slack-go cannot read (an event type it does not know) is
// another error, which the caller acknowledges all the same so that Slack does not retry it.
func parseEventsPayload(body []byte) (slackevents.EventsAPIEvent, error) {
	if !json.Valid(body) {
		return slackevents.EventsAPIEvent{}, errNotJSON
	}
	return slackevents.ParseEvent(json.RawMessage(body), slackevents.OptionNoVerifyToken())
}

// events serves POST /slack/events: it verifies the signature, answers Slack's url_verification
// challenge, and acknowledges every event at once; the work an event causes (publishing a Home
// view) happens in the background.
func (h *HTTPHandlers) events(w http.ResponseWriter, r *http.Request) {
	body, ok := h.signedBody(w, r)
	if !ok {
		return
	}
	ev, err := parseEventsPayload(body)
	if errors.Is(err, errNotJSON) {
		http.Error(w, "malformed event payload", http.StatusBadRequest)
		return
	}
	if err != nil {
		// Signed by Slack but not understood (an event type slack-go does not know): a retry
		// would not be understood either.
		h.Bot.log.Info("ignoring an event that could not be parsed", "error", err)
		w.WriteHeader(http.StatusOK)
		return
	}
	if ev.Type == slackevents.URLVerification {
		uv, ok := ev.Data.(*slackevents.EventsAPIURLVerificationEvent)
		if !ok || uv.Challenge == "" {
			http.Error(w, "url_verification without a challenge", http.StatusBadRequest)
			return
		}
		writeJSON(w, map[string]string{"challenge": uv.Challenge})
		return
	}
	retry, _ := strconv.Atoi(r.Header.Get(headerRetryNum))
	if retry > 0 {
		h.Bot.log.Debug("slack retried an event delivery", "attempt", retry, "reason", r.Header.Get(headerRetryReason))
	}
	h.Bot.handleEvent(ev)
	w.WriteHeader(http.StatusOK)
}

// handleEvent acts on one Events API event, from HTTP mode or Socket Mode, without blocking: the
// caller acknowledges it right after. Only app_home_opened is subscribed to (see manifest.yaml);
// anything else is logged and dropped.
func (b *Bot) handleEvent(ev slackevents.EventsAPIEvent) {
	switch ev.Type {
	case slackevents.CallbackEvent:
	case slackevents.AppRateLimited:
		// Slack stopped delivering events for a minute: Home tabs refresh on the next opening.
		b.log.Warn("slack rate-limited this app's events for a minute; Home tabs may be stale until reopened")
		return
	default:
		b.log.Debug("ignoring an events payload", "type", ev.Type)
		return
	}
	if !b.teamAllowed(ev.TeamID, ev.EnterpriseID) {
		b.met.Refusals.WithLabelValues("team").Inc()
		b.log.Warn("event from another workspace ignored", "team", ev.TeamID, "type", ev.InnerEvent.Type)
		return
	}
	if cb, ok := ev.Data.(*slackevents.EventsAPICallbackEvent); ok && cb.EventID != "" && b.events.seen(cb.EventID, b.now()) {
		b.log.Debug("ignoring a redelivered event", "event_id", cb.EventID)
		return
	}
	var opened *slackevents.AppHomeOpenedEvent
	switch e := ev.InnerEvent.Data.(type) {
	case *slackevents.AppHomeOpenedEvent:
		opened = e
	case slackevents.AppHomeOpenedEvent:
		opened = &e
	default:
		b.log.Debug("ignoring an event the bot does not subscribe to", "type", ev.InnerEvent.Type)
		return
	}
	// The same event reports the Messages tab; only the Home tab is the bot's to draw.
	if opened.Tab != "home" || opened.User == "" {
		return
	}
	if b.home == nil {
		b.log.Debug("app_home_opened ignored: this Slack connection cannot publish views")
		return
	}
	b.home.opened(opened.User, opened.View != nil)
}

// eventIDs remembers the event IDs handled recently, in arrival order, to drop Slack's
// redeliveries.
type eventIDs struct {
	mu    sync.Mutex
	at    map[string]time.Time
	order []string
}

// seen reports whether id was handled within eventSeenFor, and remembers it.
func (s *eventIDs) seen(id string, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.at == nil {
		s.at = map[string]time.Time{}
	}
	for len(s.order) > 0 {
		old := s.order[0]
		if t, ok := s.at[old]; ok && now.Sub(t) < eventSeenFor && len(s.order) < maxSeenEvents {
			break
		}
		delete(s.at, old)
		s.order = s.order[1:]
	}
	if t, ok := s.at[id]; ok && now.Sub(t) < eventSeenFor {
		return true
	}
	s.at[id] = now
	s.order = append(s.order, id)
	return false
}
