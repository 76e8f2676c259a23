package bot

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"time"

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

// Register adds POST /slack/commands, POST /slack/interactions and POST /slack/events (the
// Events API: the App Home) to mux.
func (h *HTTPHandlers) Register(mux *http.ServeMux) {
	mux.HandleFunc("POST /slack/commands", h.commands)
	mux.HandleFunc("POST /slack/interactions", h.interactions)
	mux.HandleFunc("POST /slack/events", h.events)
}

func (h *HTTPHandlers) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

// signedBody reads and verifies the body, answering the failure itself.
func (h *HTTPHandlers) signedBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
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
	return body, true
}

// verified reads and verifies a form body, answering the failure itself.
func (h *HTTPHandlers) verified(w http.ResponseWriter, r *http.Request) (url.Values, bool) {
	body, ok := h.signedBody(w, r)
	if !ok {
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
		TeamID: form.Get("team_id"), ChannelID: form.Get("channel_id"), UserID: form.Get("user_id"), UserName: form.Get("user_name"),
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
