package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/failover-bot/failover-bot/bot"
	"github.com/failover-bot/failover-bot/bot/console"
	"github.com/failover-bot/failover-bot/bot/plans"
	"github.com/failover-bot/failover-bot/emapi/emsim"
)

// The console's cast: one requester and two approvers, as the README's transcript shows.
var consoleCast = []console.User{
	{ID: "U0ALICE00", Name: "alice"},
	{ID: "U0BOB0000", Name: "bob"},
	{ID: "U0CAROL00", Name: "carol"},
}

// consoleScript makes the embedded EM take a few seconds per failover, so a person watches it
// progress without waiting long.
// consoleFailing is the VM the console's simulator fails when the built-in plans are in use:
// crm-db01, a critical VM of site-b's databases group, so a plan run halts for Continue or Stop.
const consoleFailing = "crm-db01"

var consoleScript = emsim.Script{Running: 4 * time.Second, Collect: time.Second, Result: emsim.ResultSuccess}

// consoleSettle is how long the console waits at end of piped input for failovers to finish.
const consoleSettle = 2 * time.Minute

// siteText lists the simulator's replicas with their VMs, and its vApps, one line each.
func siteText(site emsim.Inventory) string {
	width := len("vApps")
	for _, r := range site.Replicas {
		width = max(width, len(r.Name))
	}
	var b strings.Builder
	for _, r := range site.Replicas {
		names := make([]string, len(r.VMs))
		for i, vm := range r.VMs {
			names[i] = vm.Name
		}
		fmt.Fprintf(&b, "  %-*s  %s\n", width, r.Name, strings.Join(names, ", "))
	}
	if len(site.VApps) > 0 {
		names := make([]string, len(site.VApps))
		for i, va := range site.VApps {
			names[i] = va.Name
		}
		fmt.Fprintf(&b, "  %-*s  %s\n", width, "vApps", strings.Join(names, ", "))
	}
	return b.String()
}

// runConsole runs the real bot with a terminal in place of Slack and, unless EM_URL is set, the
// EM simulator in this process.
//
// With DB_PATH the console keeps that store and serves its admin socket, as the bot does, so
// backup and audit work while it runs; without it the store is temporary, and quitting while
// failovers run asks to be confirmed. SIGINT and SIGTERM (ctx) stop reading at once and close the
// bot as serve does; the exit code is then 0, as after quit.
func runConsole(ctx context.Context, cfg Config, stdin io.Reader, stdout io.Writer, log *slog.Logger) error {
	temporary := cfg.DBPath == ""
	if temporary {
		dir, err := os.MkdirTemp("", "failover-bot-console-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		cfg.DBPath = filepath.Join(dir, "console.db")
	}
	if len(cfg.Approvers) == 0 && cfg.ApproverGroup == "" {
		cfg.Approvers = []string{consoleCast[1].ID, consoleCast[2].ID}
	}
	if cfg.EMURL == "" {
		site := emsim.DemoSite()
		sim := emsim.New(emsim.Config{Username: "demo", Password: "demo"}, site)
		sim.SetDefaultScript(consoleScript)
		if cfg.PlansFile == "" {
			// The built-in plans' failing critical VM, so a plan run shows a halt.
			for _, r := range site.Replicas {
				for _, vm := range r.VMs {
					if vm.Name == consoleFailing {
						sc := consoleScript
						sc.Result, sc.Message = emsim.ResultFailed, "Replica disk not found on datastore ds-crm-02 (scripted by the console)"
						sim.SetScript(vm.ID, sc)
					}
				}
			}
		}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return fmt.Errorf("embedded EM simulator: %w", err)
		}
		srv := &http.Server{Handler: sim, ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = srv.Serve(l) }()
		defer srv.Close()
		cfg.EMURL = "http://" + l.Addr().String() + "/api/"
		cfg.EMUsername, cfg.EMPassword = "demo", "demo"
		fmt.Fprintf(stdout, "Embedded Enterprise Manager simulator at %s with a demo site:\n%s", cfg.EMURL, siteText(site))
	}
	reg, met := newMetrics()
	em, err := newEMClient(cfg, log, met.ObserveEM)
	if err != nil {
		return err
	}
	// The terminal is a Slack Web API on loopback, so the bot uses a genuine slack.Client.
	term := console.New(stdout, consoleCast)
	sl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("console: %w", err)
	}
	ssrv := &http.Server{Handler: term, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = ssrv.Serve(sl) }()
	defer ssrv.Close()
	api := slack.New("xoxb-console", slack.OptionAPIURL("http://"+sl.Addr().String()+"/api/"))
	// The terminal has no rate limits: pace deliveries for reading, not for Slack.
	extra := bot.Options{AuditChannel: console.AuditChannel, Teams: []string{console.TeamID}, PostRate: 200, UpdateRate: 200}
	if cfg.PlansFile == "" {
		if extra.Plans, err = console.DemoPlans(); err != nil {
			return fmt.Errorf("console: built-in plans: %w", err)
		}
		fmt.Fprintf(stdout, "Recovery plans (built in; set PLANS_FILE for your own): %s. Try /failover plans, /failover check plan site-b, /failover plan site-b --reason \"drill\".\n",
			strings.Join(planNames(extra.Plans), ", "))
	} else {
		// open logs the plans, but the console keeps its log quiet: the terminal says which
		// plans it has.
		f, err := plans.Load(cfg.PlansFile)
		if err != nil {
			return fmt.Errorf("PLANS_FILE: %w", err)
		}
		extra.Plans = f
		fmt.Fprintf(stdout, "Recovery plans from %s: %s.\n", cfg.PlansFile, strings.Join(planNames(f), ", "))
	}
	a, err := open(cfg, log, reg, met, api, em, extra)
	if err != nil {
		return err
	}
	var admin *consoleAdmin
	if temporary {
		fmt.Fprintln(stdout, "Store: temporary, deleted when the console ends. Set DB_PATH=<file> to keep it (failover-bot backup and audit then work while the console runs).")
	} else if admin, err = startConsoleAdmin(cfg.DBPath, a, log); err != nil {
		log.Warn("backup and audit while the console runs are unavailable", "error", err)
		fmt.Fprintf(stdout, "Store: %s (DB_PATH), kept after quit. Its admin socket failed, so failover-bot backup and audit need the console stopped.\n", cfg.DBPath)
	} else {
		fmt.Fprintf(stdout, "Store: %s (DB_PATH), kept after quit. While the console runs, failover-bot backup <file>, failover-bot audit verify and failover-bot audit export work with DB_PATH=%s (admin socket %s).\n",
			cfg.DBPath, cfg.DBPath, adminSocketPath(cfg.DBPath))
	}
	interactive := false
	if f, ok := stdin.(*os.File); ok {
		interactive = isTerminal(f)
	}
	runErr := term.Run(ctx, a.bot, a.st, stdin, console.Session{Interactive: interactive, Settle: consoleSettle, Temporary: temporary})
	if errors.Is(runErr, context.Canceled) {
		runErr = nil // a signal: a clean stop, as serve's
	}
	sh, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	admin.stop(sh) // before the store closes: its handlers read the store
	if err := a.close(sh); err != nil && runErr == nil {
		runErr = err
	}
	return runErr
}

// consoleAdmin is the admin socket of a console with a DB_PATH store, and the watch of its
// errors: a failure is logged and the console goes on (only backup and audit are lost).
type consoleAdmin struct {
	srv  *http.Server
	quit chan struct{}
	done chan struct{}
}

func startConsoleAdmin(dbPath string, a *app, log *slog.Logger) (*consoleAdmin, error) {
	errs := make(chan error, 1)
	srv, err := listenAdmin(dbPath, a.st, errs)
	if err != nil {
		return nil, err
	}
	c := &consoleAdmin{srv: srv, quit: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(c.done)
		select {
		case err := <-errs:
			log.Error("admin socket failed: backup and audit now need the console stopped", "error", err)
		case <-c.quit:
		}
	}()
	return c, nil
}

func (c *consoleAdmin) stop(ctx context.Context) {
	if c == nil {
		return
	}
	_ = c.srv.Shutdown(ctx)
	close(c.quit)
	<-c.done
}

func planNames(f *plans.File) []string {
	out := make([]string, len(f.Plans))
	for i, p := range f.Plans {
		out[i] = p.Name
	}
	return out
}
