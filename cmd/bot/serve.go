package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"

	"github.com/failover-bot/failover-bot/bot"
	"github.com/failover-bot/failover-bot/bot/core"
	"github.com/failover-bot/failover-bot/bot/plans"
	"github.com/failover-bot/failover-bot/emapi"
	"github.com/failover-bot/failover-bot/store"
)

// app is everything a running bot owns, in the order it is built and the reverse order it is
// closed.
type app struct {
	log      *slog.Logger
	reg      *prometheus.Registry
	met      *bot.Metrics
	st       *store.Bolt // STORE=bbolt; nil with etcd
	etcd     *store.Etcd // STORE=etcd; nil with bbolt
	store    store.Store // whichever is open
	em       *emapi.Client
	bot      *bot.Bot
	stopPoll func(context.Context) error
	audit    *auditCheck // the start-up verification of the audit log's hash chain
	lead     *leadership // STORE=etcd: the campaign for the leadership
}

// newMetrics creates the process's registry and the bot's series; the EM client reports into them
// from its first call, so they exist before anything is opened.
func newMetrics() (*prometheus.Registry, *bot.Metrics) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg, bot.NewMetrics(reg)
}

// open builds store → bot around the EM client and starts the poller. api is Slack (or the
// console).
func open(cfg Config, log *slog.Logger, reg *prometheus.Registry, met *bot.Metrics, api bot.SlackAPI, em *emapi.Client, extra bot.Options) (*app, error) {
	for _, w := range cfg.Warnings() {
		log.Warn(w)
	}
	a := &app{log: log, reg: reg, met: met, em: em}
	// The audit log records display names beside user IDs: the edge learns them, the store
	// reads them when it writes an event.
	names := bot.NewNames(0, 0, nil)
	sopt := store.Options{LockTimeout: 2 * time.Second, ApprovalsRequired: cfg.ApprovalsRequired, Thread: bot.ThreadLine,
		Requester: bot.RequesterNotes(cfg.NotifyRequester), Names: names.Name}
	st, err := openStore(cfg, sopt)
	if err != nil {
		return nil, err
	}
	a.store = st
	switch s := st.(type) {
	case *store.Bolt:
		a.st = s
		a.met.Leader.Set(1) // one instance: it always leads
	case *store.Etcd:
		a.etcd = s
		a.lead = newLeadership(s, cfg, log, a.met)
	}
	opt := extra
	if a.lead != nil {
		opt.Leader, opt.Forward = a.lead.current, a.lead.forward
	}
	opt.Names = names
	opt.Approvers, opt.ApproverGroup = cfg.Approvers, cfg.ApproverGroup
	opt.Requesters, opt.AllowedChannels = cfg.Requesters, cfg.AllowedChannels
	if opt.AuditChannel == "" {
		opt.AuditChannel = cfg.AuditChannel
	}
	opt.RequestTTL, opt.EMTimeout = cfg.RequestTTL, cfg.EMTimeout
	opt.MaxConcurrentFailovers, opt.SubmitRetryFor = cfg.EMMaxConcurrentFailovers, cfg.SubmitRetryFor
	opt.MaxTargets = cfg.MaxTargets
	if cfg.PlansFile != "" && opt.Plans == nil { // the console may have loaded it already
		f, err := plans.Load(cfg.PlansFile)
		if err != nil {
			st.Close()
			return nil, fmt.Errorf("PLANS_FILE: %w", err)
		}
		opt.Plans = f
	}
	if opt.Plans != nil {
		names := make([]string, len(opt.Plans.Plans))
		for i, p := range opt.Plans.Plans {
			names[i] = p.Name
		}
		log.Info("recovery plans loaded", "file", opt.Plans.Path, "count", len(names), "plans", names)
	}
	opt.OutcomeGrace, opt.StopApprovals = cfg.OutcomeGrace, cfg.StopApprovals
	opt.ApprovalsRequired = cfg.ApprovalsRequired
	if opt.Reminders, err = core.ParseReminders(cfg.Reminders, cfg.RequestTTL); err != nil {
		st.Close()
		return nil, fmt.Errorf("REMINDERS: %w", err)
	}
	opt.Logger, opt.Metrics = log, a.met
	b, err := bot.New(em, st, api, opt)
	if err != nil {
		st.Close()
		return nil, err
	}
	a.bot = b
	// Every instance runs the poller; a cycle on an instance that does not lead does nothing.
	if a.stopPoll, err = b.StartPoller(cfg.PollSchedule); err != nil {
		a.close(context.Background())
		return nil, err
	}
	if a.lead != nil {
		a.lead.start(b)
	} else {
		b.PollSoon() // resume at once after a restart instead of waiting for the first tick
	}
	a.audit = startAuditCheck(st, log)
	return a, nil
}

// close shuts down in order: the poller (waiting for a running cycle), background work and the
// Slack outbox, the EM logon session, the store.
func (a *app) close(ctx context.Context) error {
	var errs []error
	if a.stopPoll != nil {
		errs = append(errs, a.stopPoll(ctx))
	}
	if a.bot != nil {
		errs = append(errs, a.bot.Close(ctx))
	}
	// Delivered what it could as the leader; now hand over at once rather than after the TTL.
	a.lead.stop()
	a.audit.stop()
	if a.em != nil {
		if err := a.em.Close(ctx); err != nil {
			a.log.Warn("EM logout failed", "error", err)
		}
	}
	if a.store != nil {
		errs = append(errs, a.store.Close())
	}
	return errors.Join(errs...)
}

func newEMClient(cfg Config, log *slog.Logger, observe func(string, int, time.Duration)) (*emapi.Client, error) {
	format := emapi.FormatXML
	if cfg.EMFormat == "json" {
		format = emapi.FormatJSON
	}
	c, err := emapi.New(emapi.Config{
		BaseURL: cfg.EMURL, Username: cfg.EMUsername, Password: cfg.EMPassword.Value(),
		CAFile: cfg.EMCAFile, InsecureSkipVerify: cfg.EMInsecureSkipVerify,
		Timeout: cfg.EMTimeout, Format: format, Logger: log, Observe: observe,
		PointInTimeElement: cfg.EMPointInTimeElement,
	})
	if err != nil {
		return nil, fmt.Errorf("EM_URL: %w", err)
	}
	return c, nil
}

// serve runs the bot against Slack until ctx is cancelled (the first SIGINT/SIGTERM).
func serve(ctx context.Context, cfg Config, log *slog.Logger) error {
	socketMode := !cfg.HTTPMode()
	opts := []slack.Option{slack.OptionAPIURL(cfg.SlackAPIURL)}
	if socketMode {
		opts = append(opts, slack.OptionAppLevelToken(cfg.SlackAppToken.Value()))
	}
	api := slack.New(cfg.SlackBotToken.Value(), opts...)
	actx, cancel := context.WithTimeout(ctx, 15*time.Second)
	who, err := api.AuthTestContext(actx)
	cancel()
	if err != nil {
		return fmt.Errorf("SLACK_BOT_TOKEN: Slack's auth.test failed (%v); check the token and SLACK_API_URL", err)
	}
	log.Info("connected to Slack", "team", who.Team, "bot_user", who.UserID)

	reg, met := newMetrics()
	em, err := newEMClient(cfg, log, met.ObserveEM)
	if err != nil {
		return err
	}
	// Commands and clicks are acted on only from the bot token's own workspace (and the
	// others ALLOWED_TEAMS names, for Enterprise Grid).
	teams := append([]string{who.TeamID}, cfg.AllowedTeams...)
	a, err := open(cfg, log, reg, met, api, em, bot.Options{WorkspaceURL: who.URL, Teams: teams})
	if err != nil {
		return err
	}

	errs := make(chan error, 4)
	mux := http.NewServeMux()
	// /healthz (liveness) and /readyz (EM and Slack, from background checks) never call out.
	ready, err := bot.NewReadiness(a.bot, api, bot.ReadinessOptions{Grace: cfg.ReadinessGrace})
	if err != nil {
		a.close(context.Background())
		return err
	}
	mux.Handle("GET /healthz", &bot.Health{Store: a.store, Leader: a.lead.leading})
	mux.Handle("GET /readyz", ready)
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.reg, promhttp.HandlerOpts{}))
	if !socketMode {
		(&bot.HTTPHandlers{Bot: a.bot, SigningSecret: cfg.SlackSigningSecret.Value()}).Register(mux)
	}
	srv := &http.Server{Addr: cfg.ListenAddr, Handler: mux,
		ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute}
	l, err := net.Listen("tcp", cfg.ListenAddr)
	if err != nil {
		a.close(context.Background())
		return fmt.Errorf("LISTEN_ADDR %s: %w", cfg.ListenAddr, err)
	}
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errs <- fmt.Errorf("HTTP listener: %w", err)
		}
	}()
	rctx, stopReady := context.WithCancel(context.Background())
	readyDone := make(chan struct{})
	go func() { defer close(readyDone); ready.Run(rctx) }()
	var admin *http.Server
	if a.st != nil { // etcd has no file lock: the CLI reads it directly
		if admin, err = listenAdmin(cfg.DBPath, a.st, errs); err != nil {
			log.Warn("backup and audit export while running are unavailable", "error", err)
		}
	}

	sctx, stopSocket := context.WithCancel(context.Background())
	socketDone := make(chan struct{})
	if socketMode {
		smc := socketmode.New(api)
		go func() {
			if err := smc.RunContext(sctx); err != nil && !errors.Is(err, context.Canceled) {
				errs <- fmt.Errorf("socket mode: %w", err)
			}
		}()
		go func() {
			defer close(socketDone)
			_ = a.bot.ServeSocketMode(sctx, smc, smc.Events)
		}()
	} else {
		close(socketDone)
	}
	mode := "HTTP"
	if socketMode {
		mode = "Socket Mode"
	}
	where := []any{"db", cfg.DBPath}
	if a.etcd != nil {
		where = []any{"etcd", strings.Join(cfg.EtcdEndpoints, ","), "prefix", cfg.EtcdPrefix, "instance", a.lead.instance}
	}
	log.Info("failover-bot running", append([]any{"mode", mode, "listen", l.Addr().String(), "poll", cfg.PollSchedule, "version", version}, where...)...)

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errs:
		log.Error("stopping after a fatal error", "error", runErr)
	}

	// Graceful shutdown: stop accepting, finish in-flight handlers, stop cron and wait for the
	// running cycle, drain background work and the outbox, log out of EM, close the store.
	sh, cancelSh := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancelSh()
	if err := srv.Shutdown(sh); err != nil {
		log.Warn("HTTP shutdown", "error", err)
	}
	stopSocket()
	<-socketDone
	stopReady() // before the store closes: the checks read it
	<-readyDone
	if admin != nil {
		_ = admin.Shutdown(sh)
	}
	if err := a.close(sh); err != nil {
		log.Error("shutdown incomplete", "error", err)
		if runErr == nil {
			runErr = err
		}
	}
	log.Info("failover-bot stopped")
	return runErr
}
