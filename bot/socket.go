package bot

import (
	"context"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"
	"github.com/slack-go/slack/socketmode"
)

// SocketClient is what the Socket Mode loop needs from *socketmode.Client.
type SocketClient interface {
	Ack(req socketmode.Request, payload ...any) error
}

// ServeSocketMode handles Socket Mode events until events closes or ctx ends. Each envelope is
// acknowledged with the same answer the HTTP endpoints would give, before any slow work (that runs
// in the background, as in HTTP mode).
func (b *Bot) ServeSocketMode(ctx context.Context, client SocketClient, events <-chan socketmode.Event) error {
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case evt, ok := <-events:
			if !ok {
				return nil
			}
			b.socketEvent(ctx, client, evt)
		}
	}
}

func (b *Bot) socketEvent(ctx context.Context, client SocketClient, evt socketmode.Event) {
	switch evt.Type {
	case socketmode.EventTypeSlashCommand:
		sc, ok := evt.Data.(slack.SlashCommand)
		if !ok || evt.Request == nil {
			b.log.Warn("socket mode: malformed slash command envelope")
			return
		}
		actx, cancel := context.WithTimeout(ctx, ackBudget)
		resp := b.HandleCommand(actx, sc)
		cancel()
		if err := client.Ack(*evt.Request, resp); err != nil {
			b.log.Error("socket mode: ack failed", "error", err)
		}
	case socketmode.EventTypeInteractive:
		cb, ok := evt.Data.(slack.InteractionCallback)
		if !ok || evt.Request == nil {
			b.log.Warn("socket mode: malformed interaction envelope")
			return
		}
		actx, cancel := context.WithTimeout(ctx, ackBudget)
		resp := b.HandleInteraction(actx, cb)
		cancel()
		var err error
		if resp != nil {
			err = client.Ack(*evt.Request, resp)
		} else {
			err = client.Ack(*evt.Request)
		}
		if err != nil {
			b.log.Error("socket mode: ack failed", "error", err)
		}
	case socketmode.EventTypeEventsAPI:
		// Ack first: an unacked envelope is redelivered. handleEvent only records the event;
		// what it causes (a Home view) is published in the background.
		if evt.Request != nil {
			if err := client.Ack(*evt.Request); err != nil {
				b.log.Error("socket mode: ack failed", "error", err)
			}
			if evt.Request.RetryAttempt > 0 {
				b.log.Debug("slack retried an event delivery", "attempt", evt.Request.RetryAttempt, "reason", evt.Request.RetryReason)
			}
		}
		if ev, ok := evt.Data.(slackevents.EventsAPIEvent); ok {
			b.handleEvent(ev)
		}
	case socketmode.EventTypeConnecting, socketmode.EventTypeConnected, socketmode.EventTypeHello:
		b.log.Info("socket mode: " + string(evt.Type))
	case socketmode.EventTypeConnectionError, socketmode.EventTypeInvalidAuth, socketmode.EventTypeDisconnect:
		b.log.Warn("socket mode: "+string(evt.Type), "data", evt.Data)
	}
}
