package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/failover-bot/failover-bot/bot"
	"github.com/failover-bot/failover-bot/store"
)

// The running bot holds bbolt's exclusive file lock, so a second process cannot open the store.
// The bot therefore serves backup and audit over a Unix socket beside the database, readable only
// by its owner (0600, like the database). The CLI opens the file directly when no bot runs, and
// uses the socket when the file is locked.
func adminSocketPath(dbPath string) string { return dbPath + ".admin.sock" }

// auditLog is what audit export and audit verify read: the hash-chained log, of either backend.
type auditLog interface {
	Events(ctx context.Context, sinceSeq uint64, since time.Time, fn func(store.Event) error) error
	Verify(ctx context.Context) error
}

// adminStore is what the admin socket serves: a consistent copy and the audit log.
type adminStore interface {
	auditLog
	Backup(ctx context.Context, w io.Writer) (int64, error)
}

// adminHandler serves the store's backup and audit log to the CLI.
func adminHandler(st adminStore) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /backup", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		if _, err := st.Backup(r.Context(), w); err != nil {
			// Headers are gone once bytes flowed; the CLI sees a short body and a trailer-less
			// close, and reports a failed backup.
			panic(http.ErrAbortHandler)
		}
	})
	mux.HandleFunc("GET /audit/export", func(w http.ResponseWriter, r *http.Request) {
		opts := exportOptions{format: r.URL.Query().Get("format")}
		if s := r.URL.Query().Get("since"); s != "" {
			t, err := time.Parse(time.RFC3339Nano, s)
			if err != nil {
				http.Error(w, "since: "+err.Error(), http.StatusBadRequest)
				return
			}
			opts.since = t
		}
		if err := writeEvents(r.Context(), st, opts, w); err != nil {
			panic(http.ErrAbortHandler)
		}
	})
	mux.HandleFunc("GET /audit/verify", func(w http.ResponseWriter, r *http.Request) {
		n, err := verifyStore(r.Context(), st)
		if err != nil {
			http.Error(w, err.Error(), http.StatusConflict)
			return
		}
		fmt.Fprintf(w, "%d", n)
	})
	return mux
}

// listenAdmin serves adminHandler on the socket until the returned server is shut down.
func listenAdmin(dbPath string, st *store.Bolt, errs chan<- error) (*http.Server, error) {
	path := adminSocketPath(dbPath)
	_ = os.Remove(path) // a stale socket from a killed process; the store lock proves we own it
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("admin socket %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, fmt.Errorf("admin socket %s: %w", path, err)
	}
	srv := &http.Server{Handler: adminHandler(st), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errs <- fmt.Errorf("admin socket: %w", err)
		}
	}()
	return srv, nil
}

// auditCheck is the verification of the audit log's hash chain that a starting bot runs in the
// background: a long history takes a while to verify (600,000 events, 100,000 requests' worth,
// about a second on two cores), and a restart during an outage must resume the failovers at
// once, not after reading the whole log.
type auditCheck struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// startAuditCheck verifies st's hash chain in the background and logs the verdict: one WARN line
// naming the first bad event and how to investigate, when the chain does not hold. The bot keeps
// running either way: the chain is evidence for people, not a precondition for failing over.
func startAuditCheck(st interface{ Verify(context.Context) error }, log *slog.Logger) *auditCheck {
	ctx, cancel := context.WithCancel(context.Background())
	c := &auditCheck{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		start := time.Now()
		err := st.Verify(ctx)
		var ce *store.ChainError
		switch {
		case err == nil:
			log.Info("audit log hash chain verified", "took", time.Since(start).Round(time.Millisecond))
		case errors.As(err, &ce):
			log.Warn(fmt.Sprintf("the audit log's hash chain does not verify at event %d (%s): events may have been altered or removed. "+
				"The bot keeps running and appending. Investigate with `failover-bot audit verify` and `failover-bot audit export`, "+
				"and compare with a backup", ce.Seq, ce.Reason), "event", ce.Seq, "reason", ce.Reason)
		case ctx.Err() != nil:
			// Stopped before the end: no verdict.
		default:
			log.Warn("could not verify the audit log's hash chain at start; run `failover-bot audit verify`", "error", err)
		}
	}()
	return c
}

// stop ends the verification, if still running, and waits for it: the store must not close
// under its read transaction.
func (c *auditCheck) stop() {
	if c == nil {
		return
	}
	c.cancel()
	<-c.done
}

// lockProbeTimeout is how long a command waits for the bbolt file lock before concluding that a
// running bot holds it: the bot holds it for its whole life, so waiting longer never helps.
const lockProbeTimeout = 300 * time.Millisecond

// withStore runs direct when the store can be opened, else remote through the running bot.
func withStore(dbPath string, direct func(*store.Bolt) error, remote func(*http.Client) error) error {
	if _, err := os.Stat(dbPath); err != nil {
		return fmt.Errorf("no store at %s (set DB_PATH): %w", dbPath, err)
	}
	st, err := store.Open(dbPath, store.Options{LockTimeout: lockProbeTimeout})
	switch {
	case err == nil:
		defer st.Close()
		return direct(st)
	case errors.Is(err, store.ErrLocked):
		sock := adminSocketPath(dbPath)
		c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		}}}
		if err := remote(c); err != nil {
			return fmt.Errorf("the store is in use by a running bot, and its admin socket %s failed: %w", sock, err)
		}
		return nil
	default:
		return err
	}
}

func adminGet(c *http.Client, path string) (*http.Response, error) {
	resp, err := c.Get("http://failover-bot" + path)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		return nil, errors.New(strings.TrimSpace(string(b)))
	}
	return resp, nil
}

// backup writes a consistent copy of the store to path (via a temporary file and a rename, so a
// failed backup never leaves a truncated file under the final name).
func backup(dbPath, path string) (int64, error) {
	var n int64
	err := withStore(dbPath, func(st *store.Bolt) error {
		if err := st.BackupFile(context.Background(), path); err != nil {
			return err
		}
		fi, err := os.Stat(path)
		if err == nil {
			n = fi.Size()
		}
		return err
	}, func(c *http.Client) error {
		resp, err := adminGet(c, "/backup")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		tmp, err := os.CreateTemp(dirOf(path), ".failover-bot-backup-*")
		if err != nil {
			return err
		}
		defer os.Remove(tmp.Name())
		if n, err = io.Copy(tmp, resp.Body); err != nil {
			tmp.Close()
			return fmt.Errorf("backup interrupted after %d bytes: %w", n, err)
		}
		if err := tmp.Chmod(0o600); err != nil {
			tmp.Close()
			return err
		}
		if err := tmp.Sync(); err != nil {
			tmp.Close()
			return err
		}
		if err := tmp.Close(); err != nil {
			return err
		}
		// Prove the copy opens as a store before it takes the final name.
		chk, err := store.Open(tmp.Name(), store.Options{LockTimeout: time.Second})
		if err != nil {
			return fmt.Errorf("the copy does not open as a store: %w", err)
		}
		chk.Close()
		return os.Rename(tmp.Name(), path)
	})
	return n, err
}

func dirOf(path string) string {
	if i := strings.LastIndexByte(path, '/'); i >= 0 {
		return path[:i+1]
	}
	return "."
}

type exportOptions struct {
	since  time.Time
	format string // jsonl (default) or csv
}

func parseExportFlags(args []string, stderr io.Writer) (exportOptions, error) {
	fs := flag.NewFlagSet("audit export", flag.ContinueOnError)
	fs.SetOutput(stderr)
	since := fs.String("since", "", "only events at or after this RFC 3339 time (no offset means UTC)")
	format := fs.String("format", "jsonl", "jsonl or csv")
	if err := fs.Parse(args); err != nil {
		return exportOptions{}, err
	}
	if fs.NArg() > 0 {
		return exportOptions{}, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	opts := exportOptions{format: *format}
	if opts.format != "jsonl" && opts.format != "csv" {
		return opts, fmt.Errorf("--format %q: use jsonl or csv", *format)
	}
	if *since != "" {
		t, err := parseSince(*since)
		if err != nil {
			return opts, err
		}
		opts.since = t
	}
	return opts, nil
}

func parseSince(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("--since %q is not a time: use RFC 3339, e.g. 2026-11-23T14:00:00Z", s)
}

func auditExport(dbPath string, opts exportOptions, w io.Writer) error {
	return withStore(dbPath, func(st *store.Bolt) error {
		return writeEvents(context.Background(), st, opts, w)
	}, func(c *http.Client) error {
		q := "/audit/export?format=" + opts.format
		if !opts.since.IsZero() {
			q += "&since=" + opts.since.Format(time.RFC3339Nano)
		}
		resp, err := adminGet(c, q)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		_, err = io.Copy(w, resp.Body)
		return err
	})
}

// exportEvent is the export's stable shape: field names are part of the format auditors script.
// ActorName is the actor's display name captured when the event was written ("" when the event
// predates names or its actor is the bot itself); it is a new field, so in CSV it is the last
// column and every earlier column keeps its position.
type exportEvent struct {
	Seq       uint64    `json:"seq"`
	Time      time.Time `json:"time"`
	Actor     string    `json:"actor"`
	ActorName string    `json:"actor_name"`
	RequestID string    `json:"request_id"`
	Action    string    `json:"action"`
	From      string    `json:"from"`
	To        string    `json:"to"`
	Details   string    `json:"details"`
	Prev      string    `json:"prev_hash"`
	Hash      string    `json:"hash"`
}

var csvHeader = []string{"seq", "time", "actor", "request_id", "action", "from", "to", "details", "prev_hash", "hash", "actor_name"}

func writeEvents(ctx context.Context, st auditLog, opts exportOptions, w io.Writer) error {
	var (
		enc = json.NewEncoder(w)
		cw  *csv.Writer
	)
	if opts.format == "csv" {
		cw = csv.NewWriter(w)
		if err := cw.Write(csvHeader); err != nil {
			return err
		}
	}
	err := st.Events(ctx, 0, opts.since, func(e store.Event) error {
		x := exportEvent{Seq: e.Seq, Time: e.Time.UTC(), Actor: e.Actor, ActorName: e.ActorName, RequestID: e.RequestID, Action: e.Action,
			From: string(e.From), To: string(e.To), Details: e.Details, Prev: e.Prev, Hash: e.Hash}
		if cw != nil {
			return cw.Write([]string{strconv.FormatUint(x.Seq, 10), x.Time.Format(time.RFC3339Nano), x.Actor, x.RequestID,
				x.Action, x.From, x.To, x.Details, x.Prev, x.Hash, x.ActorName})
		}
		return enc.Encode(x)
	})
	if cw != nil {
		cw.Flush()
		if err == nil {
			err = cw.Error()
		}
	}
	return err
}

func verifyStore(ctx context.Context, st auditLog) (int, error) {
	if err := st.Verify(ctx); err != nil {
		return 0, err
	}
	n := 0
	err := st.Events(ctx, 0, time.Time{}, func(store.Event) error { n++; return nil })
	return n, err
}

func auditVerify(dbPath string) (int, error) {
	var n int
	err := withStore(dbPath, func(st *store.Bolt) error {
		var err error
		n, err = verifyStore(context.Background(), st)
		return err
	}, func(c *http.Client) error {
		resp, err := adminGet(c, "/audit/verify")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		n, err = strconv.Atoi(strings.TrimSpace(string(b)))
		return err
	})
	return n, err
}

// parseHealthcheckFlags reads `healthcheck [--ready]`.
func parseHealthcheckFlags(args []string, stderr io.Writer) (ready bool, err error) {
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	r := fs.Bool("ready", false, "ask /readyz (Enterprise Manager and Slack answer) instead of /healthz (the process and its store)")
	if err := fs.Parse(args); err != nil {
		return false, err
	}
	if fs.NArg() > 0 {
		return false, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return *r, nil
}

// healthcheck asks the running bot's /healthz, or /readyz when ready is set, for container
// HEALTHCHECKs and scripts (the runtime image has no curl). Anything but 200 is an error of one
// line saying why.
func healthcheck(listenAddr string, ready bool) error {
	host, port, err := net.SplitHostPort(listenAddr)
	if err != nil {
		return fmt.Errorf("LISTEN_ADDR %q: %w", listenAddr, err)
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	path := "/healthz"
	if ready {
		path = "/readyz"
	}
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + net.JoinHostPort(host, port) + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<10))
	if resp.StatusCode == http.StatusOK {
		return nil
	}
	if ready {
		var rep bot.ReadinessReport
		if json.Unmarshal(b, &rep) == nil && rep.Status != "" {
			return errors.New(oneLine(rep.Summary()))
		}
	} else {
		var h struct{ Status, Store string }
		if json.Unmarshal(b, &h) == nil && h.Store != "" {
			return fmt.Errorf("%s (%s): store: %s", h.Status, resp.Status, oneLine(h.Store))
		}
	}
	return fmt.Errorf("%s answered %s: %s", path, resp.Status, oneLine(string(b)))
}

// With STORE=etcd, backup and audit read the etcd store directly: etcd has no file lock, so
// they work the same whether bots run or not, and the admin socket is bbolt's alone.

// adminUsesEtcd reports whether STORE selects etcd for backup and audit.
func adminUsesEtcd(cfg Config) (bool, error) {
	switch cfg.Store {
	case storeEtcd:
		return true, nil
	case "", storeBbolt:
		return false, nil
	}
	return false, &ConfigError{Problems: []string{fmt.Sprintf("STORE %q must be bbolt (the DB_PATH file) or etcd (ETCD_ENDPOINTS)", truncateValue(cfg.Store))}}
}

// adminExitCode is the exit code of a failed admin command: 2 for configuration, as for a bot
// that refuses to start, 1 for everything else.
func adminExitCode(err error) int {
	var ce *ConfigError
	if errors.As(err, &ce) {
		return exitConfig
	}
	return exitFail
}

// backupCommand is `failover-bot backup <path>`: a consistent copy of the store STORE names, as
// a bbolt file either way, and the line that says what was copied where.
func backupCommand(cfg Config, path string) (string, error) {
	if onEtcd, err := adminUsesEtcd(cfg); err != nil {
		return "", err
	} else if !onEtcd {
		n, err := backup(cfg.DBPath, path)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("wrote a consistent copy of %s to %s (%d bytes)", cfg.DBPath, path, n), nil
	}
	var line string
	err := withEtcd(cfg, func(ctx context.Context, st *store.Etcd, side etcdSide) error {
		if err := st.BackupFile(ctx, path); err != nil {
			return err
		}
		// The backup is only worth what a restore gets from it: prove it opens as a bbolt
		// store and that its chain verifies, as the bot's start and `audit verify` will.
		chk, err := store.Open(path, store.Options{LockTimeout: time.Second})
		if err != nil {
			return fmt.Errorf("the backup %s does not open as a store (do not restore from it): %w", path, err)
		}
		defer chk.Close()
		n, err := verifyStore(ctx, chk)
		if err != nil {
			return fmt.Errorf("the backup %s does not verify (do not restore from it): %w", path, err)
		}
		fi, err := os.Stat(path)
		if err != nil {
			return err
		}
		line = fmt.Sprintf("wrote a consistent copy of %s to %s (%d bytes, a bbolt file; %d audit events, hash chain verified)", side, path, fi.Size(), n)
		return nil
	})
	return line, err
}

// auditExportCommand is `failover-bot audit export` on the store STORE names.
func auditExportCommand(cfg Config, opts exportOptions, w io.Writer) error {
	if onEtcd, err := adminUsesEtcd(cfg); err != nil {
		return err
	} else if !onEtcd {
		return auditExport(cfg.DBPath, opts, w)
	}
	return withEtcd(cfg, func(ctx context.Context, st *store.Etcd, _ etcdSide) error {
		return writeEvents(ctx, st, opts, w)
	})
}

// auditVerifyCommand is `failover-bot audit verify` on the store STORE names; it returns the
// number of events verified.
func auditVerifyCommand(cfg Config) (int, error) {
	if onEtcd, err := adminUsesEtcd(cfg); err != nil {
		return 0, err
	} else if !onEtcd {
		return auditVerify(cfg.DBPath)
	}
	var n int
	err := withEtcd(cfg, func(ctx context.Context, st *store.Etcd, _ etcdSide) error {
		var err error
		n, err = verifyStore(ctx, st)
		return err
	})
	return n, err
}

// etcdAdminReadTimeout bounds a command's first read of etcd once the client has logged on
// (ETCD_DIAL_TIMEOUT bounds the logon): one range read, or the store's schema check.
const etcdAdminReadTimeout = 5 * time.Second

// etcdSide is the etcd store an operator command reads or writes, from the ETCD_* settings
// whatever STORE says (migrate uses them under STORE=bbolt too).
type etcdSide struct {
	cfg    Config // with Store = etcd
	client clientv3.Config
}

// etcdSideOf checks the ETCD_* settings as a starting bot does and builds the client's
// configuration. Its errors are *ConfigError, without the password.
func etcdSideOf(cfg Config) (etcdSide, error) {
	cfg.Store = storeEtcd
	cc, err := cfg.etcdClientConfig()
	if err != nil {
		return etcdSide{}, err
	}
	return etcdSide{cfg: cfg, client: cc}, nil
}

// String names the store for people: "etcd https://etcd1:2379,https://etcd2:2379 prefix /failover-bot/".
func (e etcdSide) String() string {
	eps := make([]string, len(e.cfg.EtcdEndpoints))
	for i, ep := range e.cfg.EtcdEndpoints {
		eps[i] = displayEndpoint(ep)
	}
	return "etcd " + strings.Join(eps, ",") + " prefix " + e.cfg.EtcdPrefix
}

// timeout bounds reaching etcd: the logon, then one read.
func (e etcdSide) timeout() time.Duration { return e.cfg.EtcdDialTimeout + etcdAdminReadTimeout }

// keys counts every key under the prefix, whatever wrote it, without opening the store: opening
// stamps an empty prefix with the schema version, and a command pointed at a mistyped
// ETCD_PREFIX must say so rather than create a store there.
func (e etcdSide) keys(ctx context.Context) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, e.timeout())
	defer cancel()
	cc := e.client
	cc.Context = ctx // bounds the logon too
	cli, err := clientv3.New(cc)
	if err != nil {
		// With ETCD_USERNAME the client logs on here, within ETCD_DIAL_TIMEOUT.
		return 0, e.failed(err, fmt.Sprintf("ETCD_DIAL_TIMEOUT, %v, for the logon", e.cfg.EtcdDialTimeout))
	}
	defer cli.Close()
	resp, err := cli.Get(ctx, e.cfg.EtcdPrefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		return 0, e.failed(err, fmt.Sprintf("%v, ETCD_DIAL_TIMEOUT + %v", e.timeout(), etcdAdminReadTimeout))
	}
	return resp.Count, nil
}

// failed names the store and, when etcd did not answer within limit, what to check. etcd's
// own messages carry no secrets; the endpoints were checked to hold no credentials.
func (e etcdSide) failed(err error, limit string) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: no answer within %s (is etcd reachable at ETCD_ENDPOINTS?): %w", e, limit, err)
	}
	return fmt.Errorf("%s: %w", e, err)
}

// open opens the store. Its errors name the endpoints and the prefix.
func (e etcdSide) open(ctx context.Context) (*store.Etcd, error) {
	ctx, cancel := context.WithTimeout(ctx, e.timeout())
	defer cancel()
	return store.OpenEtcd(ctx, e.client, e.cfg.EtcdPrefix, store.Options{})
}

// mustHoldStore refuses a prefix without keys: an empty backup or export of a mistyped
// ETCD_PREFIX would look like an empty store.
func (e etcdSide) mustHoldStore(ctx context.Context) error {
	n, err := e.keys(ctx)
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("%s holds no failover-bot store (no key under the prefix): check ETCD_PREFIX and ETCD_ENDPOINTS", e)
	}
	return nil
}

// commandContext is the context of an operator command on etcd: SIGINT or SIGTERM (Ctrl-C,
// timeout(1), a Kubernetes Job's deadline) cancels it, so the command removes its temporary
// files, or its partial copy, before it exits. A second signal ends the process at once.
func commandContext() (context.Context, context.CancelFunc) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	context.AfterFunc(ctx, stop)
	return ctx, stop
}

// withEtcd opens the etcd store ETCD_* names, for a command that reads it, and runs fn.
func withEtcd(cfg Config, fn func(context.Context, *store.Etcd, etcdSide) error) error {
	side, err := etcdSideOf(cfg)
	if err != nil {
		return err
	}
	ctx, stop := commandContext()
	defer stop()
	if err := side.mustHoldStore(ctx); err != nil {
		return err
	}
	st, err := side.open(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	return fn(ctx, st, side)
}
