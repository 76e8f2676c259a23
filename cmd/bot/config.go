package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"
	"github.com/robfig/cron/v3"

	"github.com/failover-bot/failover-bot/emapi"

	"github.com/failover-bot/failover-bot/bot/core"
	"github.com/failover-bot/failover-bot/bot/plans"
)

// Secret is a configuration value that must never be printed or logged: its String,
// GoString and LogValue say only whether it is set. Use Value to read it.
type Secret string

const redacted = "[REDACTED]"

// Value returns the secret itself, for the one place that needs it (a client constructor).
func (s Secret) Value() string { return string(s) }

// String hides the secret from fmt's %v and %s.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return redacted
}

// GoString hides the secret from fmt's %#v.
func (s Secret) GoString() string { return `"` + s.String() + `"` }

// LogValue hides the secret from log/slog.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalText hides the secret from encoders (JSON, YAML) that would otherwise print it.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Config is the bot's configuration, read from the environment (see the README's table).
// Every Secret may also come from a file named by NAME_FILE (Docker and Kubernetes
// secrets), with its trailing newline trimmed.
type Config struct {
	SlackBotToken      Secret `env:"SLACK_BOT_TOKEN"`
	SlackSigningSecret Secret `env:"SLACK_SIGNING_SECRET"`
	// SlackAppToken, when set, selects Socket Mode; otherwise the bot serves HTTP endpoints.
	SlackAppToken Secret `env:"SLACK_APP_TOKEN"`
	// SlackAPIURL always ends with "/", as slack.OptionAPIURL requires.
	SlackAPIURL string `env:"SLACK_API_URL" envDefault:"https://slack.com/api/"`
	ListenAddr  string `env:"LISTEN_ADDR" envDefault:":8080"`

	// EMURL is optional in console mode: without it the embedded EM simulator is used.
	EMURL                string        `env:"EM_URL"`
	EMUsername           string        `env:"EM_USERNAME"`
	EMPassword           Secret        `env:"EM_PASSWORD"`
	EMCAFile             string        `env:"EM_CA_FILE"`
	EMInsecureSkipVerify bool          `env:"EM_INSECURE_SKIP_VERIFY" envDefault:"false"`
	EMFormat             string        `env:"EM_FORMAT" envDefault:"xml"` // "xml" or "json", lower-cased
	EMTimeout            time.Duration `env:"EM_TIMEOUT" envDefault:"30s"`
	// EMMaxConcurrentFailovers caps failover POSTs in flight to EM at once.
	EMMaxConcurrentFailovers int `env:"EM_MAX_CONCURRENT_FAILOVERS" envDefault:"8"`
	// MaxTargets is the most targets (VMs, vApps) one request may hold.
	MaxTargets int `env:"MAX_TARGETS" envDefault:"500"`
	// PlansFile is the recovery-plans YAML file (PLANS_FILE); "" for none.
	PlansFile string `env:"PLANS_FILE"`
	// SubmitRetryFor is how long an approved failover that cannot reach EM is retried.
	SubmitRetryFor time.Duration `env:"SUBMIT_RETRY_FOR" envDefault:"15m"`
	// EMPointInTimeElement names the point-in-time element of failover bodies; read it from
	// the server's RestAPI.xsd (README, troubleshooting).
	EMPointInTimeElement string `env:"EM_POINT_IN_TIME_ELEMENT" envDefault:"RestoreAtPointinTime"`
	// OutcomeGrace is how long EM may give no readable outcome before a request is unknown.
	OutcomeGrace time.Duration `env:"OUTCOME_GRACE" envDefault:"10m"`
	// StopApprovals is how many people confirm a stop: 1, or 2 for a second person.
	StopApprovals int `env:"STOP_APPROVALS" envDefault:"1"`

	// DBPath defaults to failover-bot.db, except in console mode where empty means a
	// temporary store.
	DBPath string `env:"DB_PATH"`

	// Store is the backend: "bbolt" (one instance, DB_PATH) or "etcd" (several instances on
	// one etcd cluster, one leader doing the work; the settings below, etcdconfig.go).
	Store string `env:"STORE" envDefault:"bbolt"`
	// EtcdEndpoints are the etcd members: http(s)://host:port or host:port each.
	EtcdEndpoints []string `env:"ETCD_ENDPOINTS" envSeparator:","`
	// EtcdPrefix is the directory every key of this deployment lives under; it always ends
	// with "/".
	EtcdPrefix      string        `env:"ETCD_PREFIX" envDefault:"/failover-bot/"`
	EtcdCAFile      string        `env:"ETCD_CA_FILE"`
	EtcdCertFile    string        `env:"ETCD_CERT_FILE"`
	EtcdKeyFile     string        `env:"ETCD_KEY_FILE"`
	EtcdUsername    string        `env:"ETCD_USERNAME"`
	EtcdPassword    Secret        `env:"ETCD_PASSWORD"`
	EtcdDialTimeout time.Duration `env:"ETCD_DIAL_TIMEOUT" envDefault:"5s"`
	// LeaderTTL is the leader's lease (whole seconds): how long a standby may wait after
	// the leader dies before it takes over.
	LeaderTTL time.Duration `env:"LEADER_TTL" envDefault:"10s"`

	Approvers       []string `env:"APPROVERS" envSeparator:","`
	ApproverGroup   string   `env:"APPROVER_GROUP"`
	Requesters      []string `env:"REQUESTERS" envSeparator:","`       // empty: anyone
	AllowedChannels []string `env:"ALLOWED_CHANNELS" envSeparator:","` // empty: any
	AuditChannel    string   `env:"AUDIT_CHANNEL"`                     // empty: no audit posts
	// AllowedTeams adds workspaces (T…) or an Enterprise Grid organisation (E…) whose
	// commands are acted on, beside the bot token's own workspace.
	AllowedTeams []string `env:"ALLOWED_TEAMS" envSeparator:","`

	// PollSchedule defaults to "@every 15s", or "@every 1s" in console mode so a demo moves.
	PollSchedule      string        `env:"POLL_SCHEDULE"`
	RequestTTL        time.Duration `env:"REQUEST_TTL" envDefault:"1h"`
	ApprovalsRequired int           `env:"APPROVALS_REQUIRED" envDefault:"1"`
	// Reminders are when the approvers are reminded of a pending request: percentages of
	// REQUEST_TTL elapsed ("50%") or durations before expiry ("10m"); "none" for none.
	Reminders []string `env:"REMINDERS" envSeparator:"," envDefault:"50%,90%"`
	// NotifyRequester is how the requester hears of decisions and the outcome: "thread" (a
	// mention in the card's thread) or "dm" (a direct message from the app).
	NotifyRequester string `env:"NOTIFY_REQUESTER" envDefault:"thread"`

	// LogFormat is "json", "text" or "" (unset: text on a terminal, JSON otherwise; see
	// EffectiveLogFormat).
	LogFormat       string        `env:"LOG_FORMAT"`
	LogLevel        slog.Level    `env:"LOG_LEVEL" envDefault:"info"`
	ShutdownTimeout time.Duration `env:"SHUTDOWN_TIMEOUT" envDefault:"30s"`
	// ReadinessGrace is how long EM or Slack may fail every readiness check before /readyz
	// answers 503.
	ReadinessGrace time.Duration `env:"READINESS_GRACE" envDefault:"30s"`
}

// Defaults that depend on the mode.
const (
	defaultDBPath       = "failover-bot.db"
	defaultPollSchedule = "@every 15s"
	consolePollSchedule = "@every 1s"
	maxRequestTTL       = 7 * 24 * time.Hour
	secretFileSuffix    = "_FILE"
	secretFileMaxBytes  = 64 << 10
)

// ConfigError lists every problem found, each starting with the variable it is about.
// Error joins them on one line so the bot stops with one line in its log.
type ConfigError struct {
	Problems []string
}

func (e *ConfigError) Error() string {
	return "configuration: " + strings.Join(e.Problems, "; ")
}

func (e *ConfigError) add(format string, a ...any) {
	e.Problems = append(e.Problems, fmt.Sprintf(format, a...))
}

func (e *ConfigError) err() error {
	if len(e.Problems) == 0 {
		return nil
	}
	return e
}

// LoadConfig reads the configuration through lookup (os.LookupEnv in production, a map in
// tests), resolves NAME_FILE secrets, applies mode-dependent defaults and normalises lists
// and URLs. It does not validate: call Validate.
func LoadConfig(lookup func(string) (string, bool), console bool) (Config, error) {
	var cfg Config
	environ := map[string]string{}
	for _, key := range envKeys(reflect.TypeFor[Config]()) {
		if v, ok := lookup(key); ok {
			environ[key] = v
		}
	}
	problems := &ConfigError{}
	// A secret from NAME_FILE is placed in the environment map before parsing, so the rest
	// of the code sees one value whatever its source.
	for _, key := range secretKeys() {
		fileKey := key + secretFileSuffix
		path, ok := lookup(fileKey)
		if !ok || path == "" {
			continue
		}
		if v, set := environ[key]; set && v != "" {
			problems.add("%s and %s are both set: set only one", key, fileKey)
			continue
		}
		v, err := readSecretFile(path)
		if err != nil {
			problems.add("%s: %v", fileKey, err)
			continue
		}
		environ[key] = v
	}
	if err := env.ParseWithOptions(&cfg, env.Options{Environment: environ,
		FuncMap: map[reflect.Type]env.ParserFunc{reflect.TypeFor[time.Duration](): parseDuration}}); err != nil {
		for _, e := range unwrapEnvErrors(err) {
			problems.add("%s", e)
		}
	}
	if err := problems.err(); err != nil {
		return Config{}, err
	}

	cfg.Approvers = cleanList(cfg.Approvers)
	cfg.Requesters = cleanList(cfg.Requesters)
	cfg.AllowedChannels = cleanList(cfg.AllowedChannels)
	cfg.AllowedTeams = cleanList(cfg.AllowedTeams)
	cfg.ApproverGroup = strings.TrimSpace(cfg.ApproverGroup)
	cfg.AuditChannel = strings.TrimSpace(cfg.AuditChannel)
	cfg.EMFormat = strings.ToLower(strings.TrimSpace(cfg.EMFormat))
	cfg.LogFormat = strings.ToLower(strings.TrimSpace(cfg.LogFormat))
	if cfg.SlackAPIURL != "" && !strings.HasSuffix(cfg.SlackAPIURL, "/") {
		cfg.SlackAPIURL += "/"
	}
	if cfg.DBPath == "" && !console {
		cfg.DBPath = defaultDBPath
	}
	if cfg.PollSchedule == "" {
		cfg.PollSchedule = defaultPollSchedule
		if console {
			cfg.PollSchedule = consolePollSchedule
		}
	}
	cfg.normaliseEtcd()
	return cfg, nil
}

// readSecretFile reads a secret file, dropping the trailing newline editors and
// `echo` add. The error names the file but never its content.
func readSecretFile(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	if fi.Size() > secretFileMaxBytes {
		return "", fmt.Errorf("%s is larger than %d bytes; it should hold only the secret", path, secretFileMaxBytes)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	v := strings.TrimRight(string(b), "\r\n")
	if v == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return v, nil
}

// envKeys lists the env tag names of t's fields.
func envKeys(t reflect.Type) []string {
	var keys []string
	for f := range t.Fields() {
		if k, _, _ := strings.Cut(f.Tag.Get("env"), ","); k != "" {
			keys = append(keys, k)
		}
	}
	return keys
}

// secretKeys lists the variables whose fields are Secrets.
func secretKeys() []string {
	var keys []string
	t := reflect.TypeFor[Config]()
	for f := range t.Fields() {
		if f.Type == reflect.TypeFor[Secret]() {
			k, _, _ := strings.Cut(f.Tag.Get("env"), ",")
			keys = append(keys, k)
		}
	}
	return keys
}

// unwrapEnvErrors turns env's aggregate error into one message per variable, naming the
// variable rather than the Go field.
func unwrapEnvErrors(err error) []string {
	var agg env.AggregateError
	if !errors.As(err, &agg) {
		return []string{err.Error()}
	}
	var out []string
	for _, e := range agg.Errors {
		var pe env.ParseError
		if errors.As(e, &pe) {
			key := pe.Name
			if f, ok := reflect.TypeFor[Config]().FieldByName(pe.Name); ok {
				key, _, _ = strings.Cut(f.Tag.Get("env"), ",")
			}
			out = append(out, fmt.Sprintf("%s: %v", key, pe.Err))
			continue
		}
		out = append(out, e.Error())
	}
	return out
}

func cleanList(in []string) []string {
	var out []string
	for _, s := range in {
		if s = strings.TrimSpace(s); s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// HTTPMode reports whether the bot receives Slack events over HTTP (no app token).
func (c Config) HTTPMode() bool { return c.SlackAppToken == "" }

// EffectiveLogFormat resolves an unset LOG_FORMAT: text for a person at a terminal, JSON
// for log collectors.
func (c Config) EffectiveLogFormat(terminal bool) string {
	if c.LogFormat != "" {
		return c.LogFormat
	}
	if terminal {
		return "text"
	}
	return "json"
}

// isTerminal reports whether f is a character device (a terminal), without a dependency
// on x/term.
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// Slack ID shapes: users U… or W… (Enterprise Grid), public C… and private G… channels,
// user groups S…. IDs are upper-case letters and digits.
var (
	userIDPattern    = regexp.MustCompile(`^[UW][A-Z0-9]+$`)
	channelIDPattern = regexp.MustCompile(`^[CG][A-Z0-9]+$`)
	groupIDPattern   = regexp.MustCompile(`^S[A-Z0-9]+$`)
	teamIDPattern    = regexp.MustCompile(`^[TE][A-Z0-9]+$`)
)

// Validate checks the configuration for one mode. In console mode Slack and EM settings
// are optional (a terminal replaces Slack, the embedded simulator replaces EM) and the
// approver lists may be empty (the console supplies its demo people); whatever is set is
// still checked. Each problem names its variable and never contains a secret.
func (c Config) Validate(console bool) error {
	p := &ConfigError{}
	if c.PlansFile != "" {
		// The loader's error is one line naming the file, the line and the problem.
		if _, err := plans.Load(c.PlansFile); err != nil {
			p.add("PLANS_FILE: %v", err)
		}
	}

	switch {
	case c.SlackBotToken == "" && !console:
		p.add("SLACK_BOT_TOKEN is required (the bot token, xoxb-…)")
	case c.SlackBotToken != "" && strings.HasPrefix(string(c.SlackBotToken), "xapp-"):
		p.add("SLACK_BOT_TOKEN holds an app-level token (xapp-…); it belongs in SLACK_APP_TOKEN, and SLACK_BOT_TOKEN needs the bot token (xoxb-…)")
	case c.SlackBotToken != "" && !strings.HasPrefix(string(c.SlackBotToken), "xoxb-"):
		p.add("SLACK_BOT_TOKEN must be a bot token starting with xoxb-")
	}
	if c.SlackAppToken != "" && !strings.HasPrefix(string(c.SlackAppToken), "xapp-") {
		p.add("SLACK_APP_TOKEN must be an app-level token starting with xapp- (unset it to use HTTP mode)")
	}
	if c.HTTPMode() && !console && c.SlackSigningSecret == "" {
		p.add("SLACK_SIGNING_SECRET is required in HTTP mode (set SLACK_APP_TOKEN to use Socket Mode instead)")
	}
	if err := checkHTTPURL(c.SlackAPIURL); err != nil {
		p.add("SLACK_API_URL %v", err)
	}
	if _, _, err := net.SplitHostPort(c.ListenAddr); err != nil {
		p.add("LISTEN_ADDR must be host:port or :port, e.g. :8080")
	}

	switch {
	case c.EMURL == "" && !console:
		p.add("EM_URL is required, e.g. https://em.example.com:9398/api/")
	case c.EMURL != "":
		if err := checkHTTPURL(c.EMURL); err != nil {
			p.add("EM_URL %v, e.g. https://em.example.com:9398/api/", err)
		}
		if c.EMUsername == "" {
			p.add("EM_USERNAME is required with EM_URL")
		}
		if c.EMPassword == "" {
			p.add("EM_PASSWORD is required with EM_URL (or EM_PASSWORD_FILE)")
		}
	}
	if c.EMCAFile != "" && c.EMInsecureSkipVerify {
		p.add("EM_INSECURE_SKIP_VERIFY=true contradicts EM_CA_FILE: certificate checks are either off or use the CA file, not both")
	}
	if c.EMFormat != "xml" && c.EMFormat != "json" {
		p.add("EM_FORMAT must be xml or json")
	}
	if c.MaxTargets < 1 || c.MaxTargets > 5000 {
		p.add("MAX_TARGETS must be between 1 and 5000 (targets one request may hold)")
	}
	if c.EMMaxConcurrentFailovers < 1 || c.EMMaxConcurrentFailovers > 64 {
		p.add("EM_MAX_CONCURRENT_FAILOVERS must be between 1 and 64 (failover POSTs in flight to EM at once)")
	}
	if c.SubmitRetryFor <= 0 {
		p.add("SUBMIT_RETRY_FOR must be a positive duration, e.g. 15m")
	}
	if err := emapi.ValidPointInTimeElement(c.EMPointInTimeElement); err != nil {
		p.add("EM_POINT_IN_TIME_ELEMENT: %v (read the spelling from the server's RestAPI.xsd)", err)
	}
	if c.OutcomeGrace <= 0 {
		p.add("OUTCOME_GRACE must be a positive duration, e.g. 10m")
	}
	if c.StopApprovals != 1 && c.StopApprovals != 2 {
		p.add("STOP_APPROVALS must be 1 (the person who confirms the stop dialog) or 2 (a second person confirms too)")
	}
	if c.EMTimeout <= 0 {
		p.add("EM_TIMEOUT must be a positive duration, e.g. 30s")
	}

	if len(c.Approvers) == 0 && c.ApproverGroup == "" && !console {
		p.add("APPROVERS or APPROVER_GROUP is required: name who may approve failovers")
	}
	checkIDs(p, "APPROVERS", c.Approvers, userIDPattern, "user IDs like U012AB3CD")
	checkIDs(p, "REQUESTERS", c.Requesters, userIDPattern, "user IDs like U012AB3CD")
	checkIDs(p, "ALLOWED_CHANNELS", c.AllowedChannels, channelIDPattern, "channel IDs like C012AB3CD")
	checkIDs(p, "ALLOWED_TEAMS", c.AllowedTeams, teamIDPattern, "workspace IDs like T012AB3CD or an organisation ID like E012AB3CD")
	if c.ApproverGroup != "" {
		checkIDs(p, "APPROVER_GROUP", []string{c.ApproverGroup}, groupIDPattern, "a user group ID like S012AB3CD")
	}
	if c.AuditChannel != "" {
		checkIDs(p, "AUDIT_CHANNEL", []string{c.AuditChannel}, channelIDPattern, "a channel ID like C012AB3CD")
	}

	if _, err := cron.ParseStandard(c.PollSchedule); err != nil {
		p.add("POLL_SCHEDULE %q is not a cron spec (e.g. \"@every 15s\" or \"*/1 * * * *\"): %v", c.PollSchedule, err)
	} else if every, ok := strings.CutPrefix(strings.TrimSpace(c.PollSchedule), "@every "); ok {
		if d, err := time.ParseDuration(strings.TrimSpace(every)); err == nil && d < time.Second {
			p.add("POLL_SCHEDULE %q is faster than once a second: every cycle reads every running task from EM, and the scheduler cannot run more often; use at least \"@every 1s\" (15s is the default)", c.PollSchedule)
		}
	}
	switch {
	case c.RequestTTL <= 0:
		p.add("REQUEST_TTL must be a positive duration, e.g. 1h")
	case c.RequestTTL > maxRequestTTL:
		p.add("REQUEST_TTL %v is longer than 7 days (168h); an approval that old no longer reflects the situation", c.RequestTTL)
	}
	if _, err := core.ParseReminders(c.Reminders, c.RequestTTL); err != nil {
		p.add("REMINDERS: %v", err)
	}
	switch c.NotifyRequester {
	case core.NotifyThread, core.NotifyDM:
	default:
		p.add("NOTIFY_REQUESTER %q must be thread (a mention in the card's thread) or dm (a direct message)", c.NotifyRequester)
	}
	if c.ApprovalsRequired < 1 {
		p.add("APPROVALS_REQUIRED must be at least 1 (the two-person rule)")
	} else if c.ApproverGroup == "" && len(c.Approvers) > 0 {
		c.checkFeasible(p)
	}

	if c.LogFormat != "" && c.LogFormat != "json" && c.LogFormat != "text" {
		p.add("LOG_FORMAT must be json or text")
	}
	switch c.LogLevel {
	case slog.LevelDebug, slog.LevelInfo, slog.LevelWarn, slog.LevelError:
	default:
		p.add("LOG_LEVEL must be debug, info, warn or error")
	}
	if c.ShutdownTimeout <= 0 {
		p.add("SHUTDOWN_TIMEOUT must be a positive duration, e.g. 30s")
	}
	if c.ReadinessGrace <= 0 {
		p.add("READINESS_GRACE must be a positive duration, e.g. 30s (how long EM or Slack may fail every check before /readyz answers 503)")
	}
	c.validateEtcd(p, time.Now())
	return p.err()
}

// checkFeasible refuses a static approver list that could never approve some requester's
// request: approvers never approve their own, so each requester needs APPROVALS_REQUIRED
// approvers other than themselves. With REQUESTERS empty the requester is anyone, and
// someone who is not an approver needs APPROVALS_REQUIRED approvers.
// Warnings lists configurations that work but will surprise someone: with REQUESTERS empty every
// approver may also request, and an approver's own request needs APPROVALS_REQUIRED approvers
// other than them. The bot logs these at start and refuses such a request when it is made.
func (c Config) Warnings() []string {
	warnings := c.etcdWarnings()
	if c.ApproverGroup != "" || len(c.Requesters) > 0 || len(c.Approvers) == 0 || len(c.Approvers)-1 >= c.ApprovalsRequired {
		return warnings
	}
	return append(warnings, fmt.Sprintf("APPROVERS: with REQUESTERS empty an approver may also request, but with %d approver(s) and APPROVALS_REQUIRED=%d no approver's own request could be approved (%s); add an approver or set APPROVER_GROUP",
		len(c.Approvers), c.ApprovalsRequired, strings.Join(c.Approvers, ", ")))
}

func (c Config) checkFeasible(p *ConfigError) {
	need := c.ApprovalsRequired
	if len(c.Requesters) == 0 {
		if n := len(c.Approvers); n < need {
			p.add("APPROVERS lists %d approver(s) but APPROVALS_REQUIRED=%d; no request could ever be approved (add approvers, set APPROVER_GROUP or lower APPROVALS_REQUIRED)", n, need)
		}
		return
	}
	for _, r := range c.Requesters {
		others := 0
		for _, a := range c.Approvers {
			if a != r {
				others++
			}
		}
		if others >= need {
			continue
		}
		if others == 0 && len(c.Approvers) == 1 {
			p.add("APPROVERS: %s is the only approver and also a requester; no one could approve %s's requests (APPROVALS_REQUIRED=%d)", r, r, need)
		} else {
			p.add("APPROVERS: only %d approver(s) besides requester %s; %s's requests could never get APPROVALS_REQUIRED=%d approvals", others, r, r, need)
		}
		return // one example is enough to fix the list
	}
}

func checkIDs(p *ConfigError, key string, ids []string, pattern *regexp.Regexp, what string) {
	var bad []string
	for _, id := range ids {
		if !pattern.MatchString(id) {
			bad = append(bad, fmt.Sprintf("%q", truncateValue(id)))
		}
	}
	if len(bad) > 0 {
		p.add("%s must hold %s; not valid: %s", key, what, strings.Join(bad, ", "))
	}
}

func truncateValue(s string) string {
	if len(s) > 30 {
		return s[:30] + "…"
	}
	return s
}

func checkHTTPURL(raw string) error {
	u, err := url.Parse(raw)
	switch {
	case raw == "":
		return errors.New("is empty")
	case err != nil:
		return errors.New("is not a valid URL")
	case u.Scheme != "http" && u.Scheme != "https":
		return errors.New("must be an absolute http:// or https:// URL")
	case u.Host == "":
		return errors.New("has no host")
	case u.User != nil:
		return errors.New("must not contain credentials (use the dedicated variables)")
	}
	return nil
}

// String prints the configuration with secrets redacted, for `-h` output and debugging.
func (c Config) String() string {
	var b strings.Builder
	for i, a := range c.attrs() {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s=%v", a.Key, a.Value)
	}
	return b.String()
}

// GoString keeps %#v from printing the struct's secrets.
func (c Config) GoString() string { return "main.Config{" + c.String() + "}" }

// LogValue logs the configuration at start with secrets redacted.
func (c Config) LogValue() slog.Value { return slog.GroupValue(c.attrs()...) }

func (c Config) attrs() []slog.Attr {
	list := func(s []string) string { return strings.Join(s, ",") }
	attrs := []slog.Attr{
		slog.String("SLACK_BOT_TOKEN", c.SlackBotToken.String()),
		slog.String("SLACK_SIGNING_SECRET", c.SlackSigningSecret.String()),
		slog.String("SLACK_APP_TOKEN", c.SlackAppToken.String()),
		slog.String("SLACK_API_URL", c.SlackAPIURL),
		slog.String("LISTEN_ADDR", c.ListenAddr),
		slog.String("EM_URL", c.EMURL),
		slog.String("EM_USERNAME", c.EMUsername),
		slog.String("EM_PASSWORD", c.EMPassword.String()),
		slog.String("EM_CA_FILE", c.EMCAFile),
		slog.Bool("EM_INSECURE_SKIP_VERIFY", c.EMInsecureSkipVerify),
		slog.String("EM_FORMAT", c.EMFormat),
		slog.Duration("EM_TIMEOUT", c.EMTimeout),
		slog.Int("EM_MAX_CONCURRENT_FAILOVERS", c.EMMaxConcurrentFailovers),
		slog.Int("MAX_TARGETS", c.MaxTargets),
		slog.String("PLANS_FILE", c.PlansFile),
		slog.Duration("SUBMIT_RETRY_FOR", c.SubmitRetryFor),
		slog.String("EM_POINT_IN_TIME_ELEMENT", c.EMPointInTimeElement),
		slog.Duration("OUTCOME_GRACE", c.OutcomeGrace),
		slog.Int("STOP_APPROVALS", c.StopApprovals),
		slog.String("DB_PATH", c.DBPath),
		slog.String("APPROVERS", list(c.Approvers)),
		slog.String("APPROVER_GROUP", c.ApproverGroup),
		slog.String("REQUESTERS", list(c.Requesters)),
		slog.String("ALLOWED_CHANNELS", list(c.AllowedChannels)),
		slog.String("ALLOWED_TEAMS", list(c.AllowedTeams)),
		slog.String("AUDIT_CHANNEL", c.AuditChannel),
		slog.String("POLL_SCHEDULE", c.PollSchedule),
		slog.Duration("REQUEST_TTL", c.RequestTTL),
		slog.Int("APPROVALS_REQUIRED", c.ApprovalsRequired),
		slog.String("REMINDERS", list(c.Reminders)),
		slog.String("NOTIFY_REQUESTER", c.NotifyRequester),
		slog.String("LOG_FORMAT", c.LogFormat),
		slog.String("LOG_LEVEL", c.LogLevel.String()),
		slog.Duration("SHUTDOWN_TIMEOUT", c.ShutdownTimeout),
		slog.Duration("READINESS_GRACE", c.ReadinessGrace),
	}
	return append(attrs, c.etcdAttrs()...)
}

// parseDuration reads a duration variable the way the bot writes durations everywhere: a Go
// duration (90s, 15m, 1h30m) or a number of days (2d, 1.5d) (core.ParseDuration).
func parseDuration(v string) (any, error) {
	d, ok := core.ParseDuration(v)
	if !ok {
		return nil, fmt.Errorf("%q is not a duration: write e.g. 90s, 15m, 1h30m or 2d", strings.TrimSpace(v))
	}
	return d, nil
}
