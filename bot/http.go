package bot

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/failover-bot/failover-bot/bot/core"
	"github.com/slack-go/slack"
)

// maxSlackBody bounds what the bot reads from Slack before verifying the signature. Slash
// commands are a few hundred bytes; interaction payloads carry the whole message, a few tens of KB.
const maxSlackBody = 1 << 20

// HTTPHandlers serves Slack's HTTP-mode endpoints. Every request's signature is verified before
// anything is parsed; a bad one gets 401 and nothing else happens.
type HTTPHandlers struct {
	Bot           *Bot
	SigningSecret string
	Now           func() time.Time // signature freshness; default time.Now
}

// Register adds POST /slack/commands and POST /slack/interactions to mux.
func (h *HTTPHandlers) Register(mux *http.ServeMux) {
	mux.HandleFunc("POST /slack/commands", h.commands)
	mux.HandleFunc("POST /slack/interactions", h.interactions)
}

func (h *HTTPHandlers) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

// verified reads and verifies the body, answering the failure itself.
func (h *HTTPHandlers) verified(w http.ResponseWriter, r *http.Request) (url.Values, bool) {
	body, err := ReadVerified(r, h.SigningSecret, h.now(), maxSlackBody)
	if err != nil {
		h.Bot.met.Refusals.WithLabelValues("signature").Inc()
		if errors.Is(err, ErrBodyTooLarge) {
			http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
			return nil, false
		}
		h.Bot.log.Warn("slack request refused: bad signature", "path", r.URL.Path, "remote", r.RemoteAddr, "error", err)
		http.Error(w, "invalid signature", http.StatusUnauthorized)
		return nil, false
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		http.Error(w, "malformed form body", http.StatusBadRequest)
		return nil, false
	}
	return form, true
}

func (h *HTTPHandlers) commands(w http.ResponseWriter, r *http.Request) {
	form, ok := h.verified(w, r)
	if !ok {
		return
	}
	sc := slack.SlashCommand{
		TeamID: form.Get("team_id"), ChannelID: form.Get("channel_id"), UserID: form.Get("user_id"),
		Command: form.Get("command"), Text: form.Get("text"), ResponseURL: form.Get("response_url"),
		TriggerID: form.Get("trigger_id"), APIAppID: form.Get("api_app_id"),
	}
	ctx, cancel := context.WithTimeout(r.Context(), ackBudget)
	defer cancel()
	writeJSON(w, h.Bot.HandleCommand(ctx, sc))
}

func (h *HTTPHandlers) interactions(w http.ResponseWriter, r *http.Request) {
	form, ok := h.verified(w, r)
	if !ok {
		return
	}
	var cb slack.InteractionCallback
	if err := json.Unmarshal([]byte(form.Get("payload")), &cb); err != nil {
		http.Error(w, "malformed interaction payload", http.StatusBadRequest)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), ackBudget)
	defer cancel()
	if resp := h.Bot.HandleInteraction(ctx, cb); resp != nil {
		writeJSON(w, resp)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// ackBudget leaves Slack's 3-second window some room for the network.
const ackBudget = 2500 * time.Millisecond

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// Health reports whether the bot can do its job. The store must be writable (else 503); EM and
// Slack reachability are reported but do not fail the check, because a restart would not fix them.
type Health struct {
	Bot       *Bot
	SlackPing func(ctx context.Context) error
}

// ServeHTTP answers GET /healthz with a small JSON document.
func (h *Health) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	res := struct {
		Status string `json:"status"`
		Store  string `json:"store"`
		EM     string `json:"em"`
		Slack  string `json:"slack"`
	}{Status: "ok", Store: "ok", EM: "ok", Slack: "ok"}
	code := http.StatusOK
	if err := h.Bot.st.Writable(ctx); err != nil {
		res.Status, res.Store, code = "unhealthy", err.Error(), http.StatusServiceUnavailable
	}
	if err := h.Bot.core.PingEM(ctx); err != nil {
		res.EM = core.Describe(err)
	}
	if h.SlackPing != nil {
		if err := h.SlackPing(ctx); err != nil {
			res.Slack = err.Error()
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(res)
}
