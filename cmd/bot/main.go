// Command failover-bot serves the /failover Slack command: two-person-approved Veeam CDP
// failovers through Enterprise Manager's REST API. main only wires: configuration → store → EM
// client → bot → run, plus the operator subcommands (audit, backup, doctor, healthcheck, migrate,
// plans, version).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/failover-bot/failover-bot/bot/plans"
)

// version is set at build time: -ldflags "-X main.version=v1.2.3".
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.LookupEnv))
}

// Exit codes: 0 success, 1 runtime failure, 2 bad usage or configuration.
const (
	exitOK     = 0
	exitFail   = 1
	exitConfig = 2
)

// run is main without process globals, so tests can drive every path.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer, lookup func(string) (string, bool)) int {
	fs := flag.NewFlagSet("failover-bot", flag.ContinueOnError)
	// Help that was asked for goes to stdout (so `failover-bot -h | less` works); usage after a
	// mistake goes to stderr with the error.
	helpOut := stderr
	for _, a := range args {
		if a == "--" || !strings.HasPrefix(a, "-") {
			break
		}
		if a == "-h" || a == "-help" || a == "--help" || a == "--h" {
			helpOut = stdout
		}
	}
	fs.SetOutput(helpOut)
	console := fs.Bool("console", false, "run the whole flow in this terminal: a text chat in place of Slack and, unless EM_URL is set, an embedded EM simulator")
	fs.Usage = func() { usage(helpOut, fs) }
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitConfig
	}
	rest := fs.Args()
	fail := func(code int, err error) int {
		fmt.Fprintf(stderr, "failover-bot: %v\n", err)
		return code
	}
	if len(rest) > 0 {
		return subcommand(rest, stdout, stderr, lookup)
	}

	cfg, err := LoadConfig(lookup, *console)
	if err == nil {
		err = cfg.Validate(*console)
	}
	if err != nil {
		return fail(exitConfig, err)
	}
	terminal := false
	if f, ok := stderr.(*os.File); ok {
		terminal = isTerminal(f)
	}
	_, levelSet := lookup("LOG_LEVEL")
	logger := newLogger(stderr, cfg, terminal, *console && !levelSet)

	ctx, stop := signalContext(logger)
	defer stop()
	if *console {
		err = runConsole(ctx, cfg, stdin, stdout, logger)
	} else {
		err = serve(ctx, cfg, logger)
	}
	if err != nil {
		return fail(exitFail, err)
	}
	return exitOK
}

// newLogger builds the process logger. quiet (console mode without LOG_LEVEL) keeps the
// terminal for the transcript and logs only trouble.
func newLogger(w io.Writer, cfg Config, terminal, quiet bool) *slog.Logger {
	level := cfg.LogLevel
	if quiet {
		level = slog.LevelWarn
	}
	opts := &slog.HandlerOptions{Level: level}
	if cfg.EffectiveLogFormat(terminal) == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// signalContext is cancelled by the first SIGINT or SIGTERM, which starts a graceful shutdown;
// a second signal exits at once.
func signalContext(logger *slog.Logger) (context.Context, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		select {
		case s := <-sigs:
			logger.Warn("shutting down gracefully; send the signal again to exit at once", "signal", s.String())
			cancel()
		case <-ctx.Done():
			return
		}
		<-sigs
		logger.Error("second signal: exiting now")
		os.Exit(exitFail)
	}()
	return ctx, func() { signal.Stop(sigs); cancel() }
}

func subcommand(args []string, stdout, stderr io.Writer, lookup func(string) (string, bool)) int {
	fail := func(code int, err error) int {
		fmt.Fprintf(stderr, "failover-bot %s: %v\n", args[0], err)
		return code
	}
	if args[0] == "plans" {
		// Offline and about one file: the rest of the environment does not matter here.
		fromEnv, _ := lookup("PLANS_FILE")
		return plansCommand(args[1:], stdout, stderr, fromEnv)
	}
	cfg, err := LoadConfig(lookup, false)
	if err != nil {
		return fail(exitConfig, err)
	}
	switch args[0] {
	case "version":
		fmt.Fprintf(stdout, "failover-bot %s\n", version)
		return exitOK
	case "healthcheck":
		ready, err := parseHealthcheckFlags(args[1:], stderr)
		if err != nil {
			return fail(exitConfig, err)
		}
		if err := healthcheck(cfg.ListenAddr, ready); err != nil {
			return fail(exitFail, err)
		}
		return exitOK
	case "doctor":
		vm, timeout, err := parseDoctorFlags(args[1:], stderr)
		if err != nil {
			return fail(exitConfig, err)
		}
		// Slack settings do not matter here; EM's are checked as the bot would.
		if err := cfg.Validate(true); err != nil {
			return fail(exitConfig, err)
		}
		if cfg.EMURL == "" {
			return fail(exitConfig, errors.New("EM_URL is required: doctor checks that Enterprise Manager"))
		}
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		if n := runDoctor(ctx, cfg, vm, stdout, time.Now); n > 0 {
			return fail(exitFail, fmt.Errorf("%d check(s) failed", n))
		}
		return exitOK
	case "backup":
		if len(args) != 2 {
			return fail(exitConfig, errors.New("usage: failover-bot backup <path>"))
		}
		line, err := backupCommand(cfg, args[1])
		if err != nil {
			return fail(adminExitCode(err), err)
		}
		fmt.Fprintln(stdout, line)
		return exitOK
	case "migrate":
		return migrateCommand(cfg, args[1:], stdout, stderr)
	case "audit":
		if len(args) < 2 {
			return fail(exitConfig, errors.New("usage: failover-bot audit export [--since <time>] [--format jsonl|csv] | failover-bot audit verify"))
		}
		switch args[1] {
		case "export":
			opts, err := parseExportFlags(args[2:], stderr)
			if err != nil {
				return fail(exitConfig, err)
			}
			if err := auditExportCommand(cfg, opts, stdout); err != nil {
				return fail(adminExitCode(err), err)
			}
			return exitOK
		case "verify":
			n, err := auditVerifyCommand(cfg)
			if err != nil {
				return fail(adminExitCode(err), err)
			}
			fmt.Fprintf(stdout, "audit log intact: %d events, hash chain verified\n", n)
			return exitOK
		}
		return fail(exitConfig, fmt.Errorf("unknown audit command %q: use export or verify", args[1]))
	}
	return fail(exitConfig, fmt.Errorf("unknown command %q (commands: version, healthcheck, doctor, plans, backup, audit, migrate; run with -h for help)", args[0]))
}

func usage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintf(w, `failover-bot %s — Slack /failover for Veeam CDP replicas, with two-person approval.

Usage:
  failover-bot                      serve Slack (HTTP mode, or Socket Mode when SLACK_APP_TOKEN is set)
  failover-bot -console             the whole flow in this terminal, no accounts needed
  failover-bot audit export [--since <RFC 3339 time>] [--format jsonl|csv]
  failover-bot audit verify         check the audit log's hash chain; exit 1 naming the first bad event
  failover-bot doctor [--vm <replica>/<vm>]  read-only checks of EM: logon, role, inventory,
                                    intervals, restore-session query, clock; one line each
  failover-bot backup <path>        write a consistent copy of the store (works while the bot runs);
                                    a bbolt file, with STORE=etcd too (read at one etcd revision)
  failover-bot migrate --from bbolt:<file> --to etcd | --from etcd --to bbolt:<new file>
                                    copy a whole store between backends and verify it (bots stopped;
                                    the etcd side is ETCD_*, whatever STORE says)
  failover-bot plans check [file]   validate a recovery-plans file offline (default: $PLANS_FILE)
  failover-bot healthcheck [--ready]  GET /healthz (liveness: process and store) or, with --ready,
                                    /readyz (EM and Slack answer) on LISTEN_ADDR; exit 0 on 200
  failover-bot version

Flags:
`, version)
	fs.PrintDefaults()
	fmt.Fprint(w, `
Environment (every secret also accepts NAME_FILE, read from a file):
  SLACK_BOT_TOKEN          bot token xoxb-… (required)
  SLACK_SIGNING_SECRET     verifies HTTP-mode requests (required in HTTP mode)
  SLACK_APP_TOKEN          app token xapp-…; when set, Socket Mode is used
  SLACK_API_URL            Slack Web API base URL            default https://slack.com/api/
  LISTEN_ADDR              HTTP listener (Slack endpoints, /healthz, /readyz, /metrics)   default :8080
  EM_URL                   Enterprise Manager, e.g. https://em:9398/api/ (required)
  EM_USERNAME, EM_PASSWORD EM account with the Portal Administrator role (required)
  EM_CA_FILE               PEM CA bundle for EM's certificate  default system roots
  EM_INSECURE_SKIP_VERIFY  skip TLS verification (logged loudly)  default false
  EM_FORMAT                xml or json body format             default xml
  EM_TIMEOUT               per-call timeout                    default 30s
  EM_MAX_CONCURRENT_FAILOVERS  failover POSTs in flight at once  default 8
  MAX_TARGETS                  targets one request may hold      default 500
  PLANS_FILE               recovery-plans YAML file, validated at start (check it: plans check)
  EM_POINT_IN_TIME_ELEMENT point-in-time element name (see RestAPI.xsd)  default RestoreAtPointinTime
  SUBMIT_RETRY_FOR         retry a failover EM never received for  default 15m
  OUTCOME_GRACE            wait this long for an outcome EM does not give  default 10m
  STOP_APPROVALS           people who confirm a stop: 1 or 2     default 1
  DB_PATH                  bbolt file                          default failover-bot.db
  STORE                    bbolt (one instance, DB_PATH) or etcd (several, one leader)  default bbolt
  ETCD_ENDPOINTS           every etcd member, comma-separated: https://host:2379 or host:2379 (required with STORE=etcd)
  ETCD_PREFIX              key directory of this deployment (a final / is added)  default /failover-bot/
  ETCD_CA_FILE             PEM CA bundle for etcd's certificate  default system roots
  ETCD_CERT_FILE, ETCD_KEY_FILE  PEM client certificate and its unencrypted key (both or neither)
  ETCD_USERNAME, ETCD_PASSWORD   etcd user and password (both or neither)
  ETCD_DIAL_TIMEOUT        etcd logon and first lease keep-alive limit  default 5s
  LEADER_TTL               leader lease, whole seconds 2s-5m: how long a standby waits after a crash  default 10s
  APPROVERS                comma-separated Slack user IDs allowed to approve
  APPROVER_GROUP           Slack user group ID whose members may approve
  REQUESTERS               user IDs allowed to request (empty: anyone in an allowed channel)
  ALLOWED_CHANNELS         channel IDs where /failover works (empty: any)
  ALLOWED_TEAMS            more workspace IDs (T…) or an org ID (E…) whose commands are acted on
  AUDIT_CHANNEL            channel ID that receives every audit event
  POLL_SCHEDULE            robfig/cron spec for the task poller  default @every 15s
  REQUEST_TTL              how long a request waits for approval default 1h
  APPROVALS_REQUIRED       approvers needed besides the requester default 1
  REMINDERS                approver reminders: 50% of REQUEST_TTL, 10m before expiry, none   default 50%,90%
  NOTIFY_REQUESTER         the requester hears of decisions and the outcome: thread or dm   default thread
  LOG_FORMAT, LOG_LEVEL    json|text (default: text on a terminal), debug|info|warn|error
  SHUTDOWN_TIMEOUT         graceful shutdown limit             default 30s
  READINESS_GRACE          EM or Slack failing every check this long: /readyz 503   default 30s
`)
}

// oneLine keeps an error on one line for the command line.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// plansCommand runs `failover-bot plans check [file]`: the start-up validation of a plans file,
// offline (no EM, no Slack, no store).
func plansCommand(args []string, stdout, stderr io.Writer, fromEnv string) int {
	const use = "usage: failover-bot plans check [file] (file defaults to $PLANS_FILE)"
	if len(args) == 0 || args[0] != "check" || len(args) > 2 {
		fmt.Fprintln(stderr, "failover-bot plans: "+use)
		return exitConfig
	}
	path := fromEnv
	if len(args) == 2 {
		path = args[1]
	}
	if path == "" {
		fmt.Fprintln(stderr, "failover-bot plans check: no file given and PLANS_FILE is unset; "+use)
		return exitConfig
	}
	f, err := plans.Load(path)
	if err != nil {
		fmt.Fprintf(stderr, "failover-bot plans check: %v\n", err)
		return exitFail
	}
	fmt.Fprintf(stdout, "%s: OK, %d plans\n%s\n", path, len(f.Plans), f.Summary())
	return exitOK
}
