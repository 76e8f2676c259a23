package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// Secrets used in tests; no error or printed config may contain them.
const (
	testBotToken = "xoxb-1111-2222-BOTSECRETVALUE"
	testSigning  = "SIGNINGSECRETVALUE0123456789ab"
	testAppToken = "xapp-1-A111-APPSECRETVALUE"
	testPassword = "EMPASSWORDSECRETVALUE"
)

var allSecrets = []string{testBotToken, testSigning, testAppToken, testPassword, "BOTSECRETVALUE", "APPSECRETVALUE"}

// validEnv is a complete HTTP-mode configuration.
func validEnv() map[string]string {
	return map[string]string{
		"SLACK_BOT_TOKEN":      testBotToken,
		"SLACK_SIGNING_SECRET": testSigning,
		"EM_URL":               "https://em.example.com:9398/api/",
		"EM_USERNAME":          "svc-failover",
		"EM_PASSWORD":          testPassword,
		"APPROVERS":            "U0AAA1,U0AAA2",
	}
}

func lookupFrom(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

func with(m map[string]string, kv ...string) map[string]string {
	out := maps.Clone(m)
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == "<unset>" {
			delete(out, kv[i])
			continue
		}
		out[kv[i]] = kv[i+1]
	}
	return out
}

func assertNoSecrets(t *testing.T, what, s string) {
	t.Helper()
	for _, secret := range allSecrets {
		if strings.Contains(s, secret) {
			t.Errorf("%s contains a secret (%q…): %s", what, secret[:6], s)
		}
	}
}

func TestLoadConfigDefaults(t *testing.T) {
	cfg, err := LoadConfig(lookupFrom(validEnv()), false)
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(false); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	want := Config{
		SlackBotToken:            testBotToken,
		SlackSigningSecret:       testSigning,
		SlackAPIURL:              "https://slack.com/api/",
		ListenAddr:               ":8080",
		EMURL:                    "https://em.example.com:9398/api/",
		EMUsername:               "svc-failover",
		EMPassword:               testPassword,
		EMFormat:                 "xml",
		EMTimeout:                30 * time.Second,
		EMMaxConcurrentFailovers: 8,
		MaxTargets:               500,
		SubmitRetryFor:           15 * time.Minute,
		EMPointInTimeElement:     "RestoreAtPointinTime",
		OutcomeGrace:             10 * time.Minute,
		StopApprovals:            1,
		DBPath:                   "failover-bot.db",
		Store:                    "bbolt",
		EtcdPrefix:               "/failover-bot/",
		EtcdDialTimeout:          5 * time.Second,
		LeaderTTL:                10 * time.Second,
		Approvers:                []string{"U0AAA1", "U0AAA2"},
		PollSchedule:             "@every 15s",
		RequestTTL:               time.Hour,
		ApprovalsRequired:        1,
		Reminders:                []string{"50%", "90%"},
		NotifyRequester:          "thread",
		LogLevel:                 slog.LevelInfo,
		ShutdownTimeout:          30 * time.Second,
		ReadinessGrace:           30 * time.Second,
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("LoadConfig defaults\n got %s\nwant %s", cfg, want)
	}
	if !cfg.HTTPMode() {
		t.Error("HTTPMode() = false without SLACK_APP_TOKEN")
	}
}

func TestLoadConfigConsoleDefaults(t *testing.T) {
	cfg, err := LoadConfig(lookupFrom(nil), true)
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(true); err != nil {
		t.Fatalf("an empty environment must be valid in console mode: %v", err)
	}
	if cfg.DBPath != "" {
		t.Errorf("console DBPath = %q, want empty (temporary store)", cfg.DBPath)
	}
	if cfg.PollSchedule != consolePollSchedule {
		t.Errorf("console PollSchedule = %q, want %q", cfg.PollSchedule, consolePollSchedule)
	}
	cfg, err = LoadConfig(lookupFrom(map[string]string{"DB_PATH": "x.db", "POLL_SCHEDULE": "@every 5s"}), true)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DBPath != "x.db" || cfg.PollSchedule != "@every 5s" {
		t.Errorf("console mode overrode DB_PATH/POLL_SCHEDULE: %q %q", cfg.DBPath, cfg.PollSchedule)
	}
}

func TestLoadConfigParsesEverything(t *testing.T) {
	env := with(validEnv(),
		"SLACK_APP_TOKEN", testAppToken,
		"SLACK_API_URL", "https://slack.example.gov/api",
		"LISTEN_ADDR", "127.0.0.1:9090",
		"EM_CA_FILE", "/etc/em-ca.pem",
		"EM_FORMAT", "JSON",
		"EM_TIMEOUT", "45s",
		"DB_PATH", "/data/fb.db",
		"APPROVERS", " U0AAA1 , U0AAA2,,U0AAA1 ",
		"APPROVER_GROUP", "S0GRP",
		"REQUESTERS", "U0REQ1,W0REQ2",
		"ALLOWED_CHANNELS", "C0OPS,G0PRIV",
		"AUDIT_CHANNEL", "C0AUDIT",
		"POLL_SCHEDULE", "*/1 * * * *",
		"REQUEST_TTL", "2h30m",
		"APPROVALS_REQUIRED", "2",
		"LOG_FORMAT", "Text",
		"LOG_LEVEL", "DEBUG",
		"SHUTDOWN_TIMEOUT", "10s",
	)
	cfg, err := LoadConfig(lookupFrom(env), false)
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(false); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"SlackAPIURL gets a trailing slash", cfg.SlackAPIURL, "https://slack.example.gov/api/"},
		{"HTTPMode with app token", cfg.HTTPMode(), false},
		{"EMFormat lower-cased", cfg.EMFormat, "json"},
		{"EMTimeout", cfg.EMTimeout, 45 * time.Second},
		{"Approvers trimmed and deduplicated", cfg.Approvers, []string{"U0AAA1", "U0AAA2"}},
		{"Requesters", cfg.Requesters, []string{"U0REQ1", "W0REQ2"}},
		{"AllowedChannels", cfg.AllowedChannels, []string{"C0OPS", "G0PRIV"}},
		{"RequestTTL", cfg.RequestTTL, 150 * time.Minute},
		{"ApprovalsRequired", cfg.ApprovalsRequired, 2},
		{"LogFormat", cfg.LogFormat, "text"},
		{"LogLevel", cfg.LogLevel, slog.LevelDebug},
		{"ShutdownTimeout", cfg.ShutdownTimeout, 10 * time.Second},
		{"ListenAddr", cfg.ListenAddr, "127.0.0.1:9090"},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestLoadConfigSecretFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	botFile := write("bot", testBotToken+"\n")
	signFile := write("sign", testSigning+"\r\n")
	appFile := write("app", testAppToken)
	pwFile := write("pw", testPassword+"\n")
	emptyFile := write("empty", "\n")
	bigFile := write("big", strings.Repeat("x", secretFileMaxBytes+1))

	t.Run("every secret from a file, newline trimmed", func(t *testing.T) {
		env := with(validEnv(),
			"SLACK_BOT_TOKEN", "<unset>", "SLACK_BOT_TOKEN_FILE", botFile,
			"SLACK_SIGNING_SECRET", "<unset>", "SLACK_SIGNING_SECRET_FILE", signFile,
			"SLACK_APP_TOKEN_FILE", appFile,
			"EM_PASSWORD", "", "EM_PASSWORD_FILE", pwFile, // set but empty counts as unset
		)
		cfg, err := LoadConfig(lookupFrom(env), false)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.SlackBotToken != testBotToken || cfg.SlackSigningSecret != testSigning ||
			cfg.SlackAppToken != testAppToken || cfg.EMPassword != testPassword {
			t.Errorf("secrets from files not loaded exactly: %q %q %q %q", cfg.SlackBotToken.Value(),
				cfg.SlackSigningSecret.Value(), cfg.SlackAppToken.Value(), cfg.EMPassword.Value())
		}
		if err := cfg.Validate(false); err != nil {
			t.Errorf("Validate: %v", err)
		}
	})

	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"both set", with(validEnv(), "SLACK_BOT_TOKEN_FILE", botFile), "SLACK_BOT_TOKEN and SLACK_BOT_TOKEN_FILE are both set"},
		{"both set password", with(validEnv(), "EM_PASSWORD_FILE", pwFile), "EM_PASSWORD and EM_PASSWORD_FILE are both set"},
		{"missing file", with(validEnv(), "SLACK_SIGNING_SECRET", "<unset>", "SLACK_SIGNING_SECRET_FILE", filepath.Join(dir, "nope")), "SLACK_SIGNING_SECRET_FILE: "},
		{"empty file", with(validEnv(), "EM_PASSWORD", "<unset>", "EM_PASSWORD_FILE", emptyFile), "EM_PASSWORD_FILE: " + emptyFile + " is empty"},
		{"huge file", with(validEnv(), "EM_PASSWORD", "<unset>", "EM_PASSWORD_FILE", bigFile), "is larger than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadConfig(lookupFrom(tt.env), false)
			if err == nil {
				t.Fatalf("LoadConfig succeeded, want error containing %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want it to contain %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error spans lines: %q", err)
			}
			assertNoSecrets(t, "error", err.Error())
		})
	}
}

func TestLoadConfigParseErrors(t *testing.T) {
	tests := []struct{ key, value string }{
		{"EM_TIMEOUT", "thirty"},
		{"REQUEST_TTL", "1 hour"},
		{"APPROVALS_REQUIRED", "two"},
		{"EM_INSECURE_SKIP_VERIFY", "maybe"},
		{"LOG_LEVEL", "verbose"},
		{"SHUTDOWN_TIMEOUT", "10"},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			_, err := LoadConfig(lookupFrom(with(validEnv(), tt.key, tt.value)), false)
			if err == nil {
				t.Fatalf("LoadConfig with %s=%q succeeded", tt.key, tt.value)
			}
			if !strings.Contains(err.Error(), tt.key+":") {
				t.Errorf("error %q does not name %s", err, tt.key)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error spans lines: %q", err)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		console bool
		want    string // "" = valid; else a substring of the (one-line) error
	}{
		{"valid HTTP mode", validEnv(), false, ""},
		{"valid Socket Mode without signing secret", with(validEnv(), "SLACK_SIGNING_SECRET", "<unset>", "SLACK_APP_TOKEN", testAppToken), false, ""},
		{"valid group only", with(validEnv(), "APPROVERS", "<unset>", "APPROVER_GROUP", "S0GRP", "APPROVALS_REQUIRED", "3"), false, ""},
		{"valid http EM URL", with(validEnv(), "EM_URL", "http://em:9399/api/"), false, ""},
		{"valid @every schedule", with(validEnv(), "POLL_SCHEDULE", "@every 30s"), false, ""},
		{"valid 7 day TTL", with(validEnv(), "REQUEST_TTL", "168h"), false, ""},
		{"bot token missing", with(validEnv(), "SLACK_BOT_TOKEN", "<unset>"), false, "SLACK_BOT_TOKEN is required"},
		{"bot token wrong prefix", with(validEnv(), "SLACK_BOT_TOKEN", "xoxp-user-token-SECRET"), false, "SLACK_BOT_TOKEN must be a bot token starting with xoxb-"},
		{"bot token is an app token", with(validEnv(), "SLACK_BOT_TOKEN", testAppToken), false, "belongs in SLACK_APP_TOKEN"},
		{"signing secret missing in HTTP mode", with(validEnv(), "SLACK_SIGNING_SECRET", "<unset>"), false, "SLACK_SIGNING_SECRET is required in HTTP mode"},
		{"app token wrong prefix", with(validEnv(), "SLACK_APP_TOKEN", testBotToken), false, "SLACK_APP_TOKEN must be an app-level token starting with xapp-"},
		{"Slack API URL not absolute", with(validEnv(), "SLACK_API_URL", "slack.com/api"), false, "SLACK_API_URL must be an absolute"},
		{"listen addr", with(validEnv(), "LISTEN_ADDR", "8080"), false, "LISTEN_ADDR must be host:port"},
		{"EM URL missing", with(validEnv(), "EM_URL", "<unset>"), false, "EM_URL is required"},
		{"EM URL relative", with(validEnv(), "EM_URL", "/api/"), false, "EM_URL must be an absolute http:// or https:// URL"},
		{"EM URL ftp", with(validEnv(), "EM_URL", "ftp://em/api/"), false, "EM_URL must be an absolute"},
		{"EM URL no host", with(validEnv(), "EM_URL", "https:///api/"), false, "EM_URL has no host"},
		{"EM URL with credentials", with(validEnv(), "EM_URL", "https://admin:"+testPassword+"@em/api/"), false, "EM_URL must not contain credentials"},
		{"EM username missing", with(validEnv(), "EM_USERNAME", "<unset>"), false, "EM_USERNAME is required"},
		{"EM password missing", with(validEnv(), "EM_PASSWORD", "<unset>"), false, "EM_PASSWORD is required"},
		{"EM CA file and insecure", with(validEnv(), "EM_CA_FILE", "/ca.pem", "EM_INSECURE_SKIP_VERIFY", "true"), false, "EM_INSECURE_SKIP_VERIFY=true contradicts EM_CA_FILE"},
		{"EM format", with(validEnv(), "EM_FORMAT", "yaml"), false, "EM_FORMAT must be xml or json"},
		{"EM timeout zero", with(validEnv(), "EM_TIMEOUT", "0s"), false, "EM_TIMEOUT must be a positive"},
		{"submit retry zero", with(validEnv(), "SUBMIT_RETRY_FOR", "0s"), false, "SUBMIT_RETRY_FOR must be a positive"},
		{"max targets zero", with(validEnv(), "MAX_TARGETS", "0"), false, "MAX_TARGETS must be between 1 and 5000"},
		{"EM concurrent failovers zero", with(validEnv(), "EM_MAX_CONCURRENT_FAILOVERS", "0"), false, "EM_MAX_CONCURRENT_FAILOVERS must be between 1 and 64"},
		{"EM concurrent failovers too many", with(validEnv(), "EM_MAX_CONCURRENT_FAILOVERS", "200"), false, "EM_MAX_CONCURRENT_FAILOVERS must be between 1 and 64"},
		{"point-in-time element, the example's spelling", with(validEnv(), "EM_POINT_IN_TIME_ELEMENT", "RestoreAtPointInTime"), false, ""},
		{"point-in-time element not a name", with(validEnv(), "EM_POINT_IN_TIME_ELEMENT", "RestoreAt<PointInTime>"), false, "EM_POINT_IN_TIME_ELEMENT: point-in-time element"},
		{"point-in-time element unrelated", with(validEnv(), "EM_POINT_IN_TIME_ELEMENT", "PointInTime"), false, "read the spelling from the server's RestAPI.xsd"},
		{"outcome grace zero", with(validEnv(), "OUTCOME_GRACE", "0s"), false, "OUTCOME_GRACE must be a positive"},
		{"stop approvals three", with(validEnv(), "STOP_APPROVALS", "3"), false, "STOP_APPROVALS must be 1"},
		{"stop approvals two", with(validEnv(), "STOP_APPROVALS", "2"), false, ""},
		{"no approvers", with(validEnv(), "APPROVERS", "<unset>"), false, "APPROVERS or APPROVER_GROUP is required"},
		{"approvers only commas", with(validEnv(), "APPROVERS", " , "), false, "APPROVERS or APPROVER_GROUP is required"},
		{"approver not a user ID", with(validEnv(), "APPROVERS", "U0AAA1,alice"), false, `APPROVERS must hold user IDs like U012AB3CD; not valid: "alice"`},
		{"approver lower case", with(validEnv(), "APPROVERS", "u0aaa1,U0AAA2"), false, `not valid: "u0aaa1"`},
		{"approver is a channel", with(validEnv(), "APPROVERS", "C0AAA1,U0AAA2"), false, `APPROVERS must hold user IDs`},
		{"requester not a user ID", with(validEnv(), "REQUESTERS", "<@U0AAA1>"), false, "REQUESTERS must hold user IDs"},
		{"channel not a channel ID", with(validEnv(), "ALLOWED_CHANNELS", "#ops"), false, `ALLOWED_CHANNELS must hold channel IDs like C012AB3CD; not valid: "#ops"`},
		{"DM is not an allowed channel", with(validEnv(), "ALLOWED_CHANNELS", "D0DM1"), false, "ALLOWED_CHANNELS must hold channel IDs"},
		{"audit channel is a user", with(validEnv(), "AUDIT_CHANNEL", "U0AAA1"), false, "AUDIT_CHANNEL must hold a channel ID"},
		{"group not a group ID", with(validEnv(), "APPROVER_GROUP", "@dr-team"), false, "APPROVER_GROUP must hold a user group ID"},
		{"poll schedule", with(validEnv(), "POLL_SCHEDULE", "every 15s"), false, "POLL_SCHEDULE \"every 15s\" is not a cron spec"},
		{"poll schedule seconds field", with(validEnv(), "POLL_SCHEDULE", "*/15 * * * * *"), false, "POLL_SCHEDULE"},
		{"TTL zero", with(validEnv(), "REQUEST_TTL", "0s"), false, "REQUEST_TTL must be a positive duration"},
		{"TTL negative", with(validEnv(), "REQUEST_TTL", "-1h"), false, "REQUEST_TTL must be a positive duration"},
		{"TTL over 7 days", with(validEnv(), "REQUEST_TTL", "169h"), false, "REQUEST_TTL 169h0m0s is longer than 7 days"},
		{"approvals zero", with(validEnv(), "APPROVALS_REQUIRED", "0"), false, "APPROVALS_REQUIRED must be at least 1"},
		{"only approver is the only requester", with(validEnv(), "APPROVERS", "U1", "REQUESTERS", "U1"), false,
			"APPROVERS: U1 is the only approver and also a requester; no one could approve U1's requests (APPROVALS_REQUIRED=1)"},
		{"requester among two approvers needs two", with(validEnv(), "APPROVERS", "U1,U2", "REQUESTERS", "U3,U2", "APPROVALS_REQUIRED", "2"), false,
			"APPROVERS: only 1 approver(s) besides requester U2; U2's requests could never get APPROVALS_REQUIRED=2 approvals"},
		{"requester among three approvers needing two", with(validEnv(), "APPROVERS", "U1,U2,U3", "REQUESTERS", "U1,U2", "APPROVALS_REQUIRED", "2"), false, ""},
		{"anyone needs more approvers", with(validEnv(), "APPROVERS", "U1", "APPROVALS_REQUIRED", "2"), false,
			"APPROVERS lists 1 approver(s) but APPROVALS_REQUIRED=2"},
		{"anyone with one approver", with(validEnv(), "APPROVERS", "U1"), false, ""},
		{"group makes a static list feasible", with(validEnv(), "APPROVERS", "U1", "REQUESTERS", "U1", "APPROVER_GROUP", "S0GRP"), false, ""},
		{"log format", with(validEnv(), "LOG_FORMAT", "xml"), false, "LOG_FORMAT must be json or text"},
		{"log level offset", with(validEnv(), "LOG_LEVEL", "info+2"), false, "LOG_LEVEL must be debug, info, warn or error"},
		{"shutdown timeout", with(validEnv(), "SHUTDOWN_TIMEOUT", "0s"), false, "SHUTDOWN_TIMEOUT must be a positive"},
		{"console: nothing set", map[string]string{}, true, ""},
		{"console: EM URL with credentials missing", map[string]string{"EM_URL": "https://em/api/"}, true, "EM_USERNAME is required with EM_URL"},
		{"console: bad bot token still checked", map[string]string{"SLACK_BOT_TOKEN": "nope-SECRET"}, true, "SLACK_BOT_TOKEN must be a bot token"},
		{"console: infeasible approvers still checked", map[string]string{"APPROVERS": "U1", "REQUESTERS": "U1"}, true, "no one could approve U1's requests"},
		{"several problems on one line", with(validEnv(), "EM_URL", "<unset>", "REQUEST_TTL", "0s"), false, "EM_URL is required, e.g. https://em.example.com:9398/api/; REQUEST_TTL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := LoadConfig(lookupFrom(tt.env), tt.console)
			if err != nil {
				t.Fatalf("LoadConfig: %v", err)
			}
			err = cfg.Validate(tt.console)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate: %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate succeeded, want error containing %q", tt.want)
			}
			msg := err.Error()
			if !strings.Contains(msg, tt.want) {
				t.Errorf("Validate error\n got %q\nwant it to contain %q", msg, tt.want)
			}
			if strings.ContainsAny(msg, "\r\n") {
				t.Errorf("error spans lines: %q", msg)
			}
			assertNoSecrets(t, "error", msg)
			if strings.Contains(msg, "SECRET") && !strings.Contains(msg, "SLACK_SIGNING_SECRET") {
				t.Errorf("error echoes a secret-looking value: %q", msg)
			}
		})
	}
}

func TestConfigNeverPrintsSecrets(t *testing.T) {
	env := with(validEnv(), "SLACK_APP_TOKEN", testAppToken)
	cfg, err := LoadConfig(lookupFrom(env), false)
	if err != nil {
		t.Fatal(err)
	}
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("config", "config", cfg, "token", cfg.SlackBotToken)
	var text bytes.Buffer
	slog.New(slog.NewTextHandler(&text, nil)).Info("config", "config", cfg)
	js, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	outputs := map[string]string{
		"String()":    cfg.String(),
		"%v":          fmt.Sprintf("%v", cfg),
		"%+v":         fmt.Sprintf("%+v", cfg),
		"%#v":         fmt.Sprintf("%#v", cfg),
		"%s of token": fmt.Sprintf("%s", cfg.SlackBotToken),
		"slog JSON":   logged.String(),
		"slog text":   text.String(),
		"json":        string(js),
	}
	for name, out := range outputs {
		assertNoSecrets(t, name, out)
	}
	for _, want := range []string{"EM_URL=https://em.example.com:9398/api/", "SLACK_BOT_TOKEN=[REDACTED]", "APPROVERS=U0AAA1,U0AAA2"} {
		if !strings.Contains(cfg.String(), want) {
			t.Errorf("String() = %q, want it to contain %q", cfg.String(), want)
		}
	}
	if !strings.Contains(logged.String(), `"EM_PASSWORD":"[REDACTED]"`) {
		t.Errorf("slog output lacks the redacted password: %s", logged.String())
	}
	if got := (Config{}).String(); !strings.Contains(got, "SLACK_BOT_TOKEN= ") {
		t.Errorf("an unset secret should print empty: %q", got)
	}
}

func TestEffectiveLogFormat(t *testing.T) {
	tests := []struct {
		set      string
		terminal bool
		want     string
	}{
		{"", true, "text"},
		{"", false, "json"},
		{"json", true, "json"},
		{"text", false, "text"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q terminal=%v", tt.set, tt.terminal), func(t *testing.T) {
			if got := (Config{LogFormat: tt.set}).EffectiveLogFormat(tt.terminal); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestConfigWarnings(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
		want string
	}{
		{"sole approver may request", Config{Approvers: []string{"U1"}, ApprovalsRequired: 1}, "no approver's own request could be approved (U1)"},
		{"two approvers", Config{Approvers: []string{"U1", "U2"}, ApprovalsRequired: 1}, ""},
		{"restricted requesters are checked by Validate instead", Config{Approvers: []string{"U1"}, Requesters: []string{"U9"}, ApprovalsRequired: 1}, ""},
		{"group", Config{Approvers: []string{"U1"}, ApproverGroup: "S1", ApprovalsRequired: 1}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := strings.Join(tc.cfg.Warnings(), "\n")
			if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
				t.Fatalf("warnings %q, want %q", got, tc.want)
			}
		})
	}
}

// TestDurationsInDaysAndPollFloor: every duration variable accepts days ("2d"), a duration that
// cannot be read says how to write one, and a poll schedule faster than once a second is refused.
func TestDurationsInDaysAndPollFloor(t *testing.T) {
	tests := []struct {
		name, key, value string
		ttl              time.Duration
		err              string
	}{
		{"days", "REQUEST_TTL", "2d", 48 * time.Hour, ""},
		{"decimal days", "REQUEST_TTL", "1.5d", 36 * time.Hour, ""},
		{"Go duration", "REQUEST_TTL", "90m", 90 * time.Minute, ""},
		{"words", "REQUEST_TTL", "2 days", 0, `REQUEST_TTL: "2 days" is not a duration: write e.g. 90s, 15m, 1h30m or 2d`},
		{"too long in days", "REQUEST_TTL", "8d", 0, "REQUEST_TTL"},
		{"poll every 500ms", "POLL_SCHEDULE", "@every 500ms", 0, `POLL_SCHEDULE "@every 500ms" is faster than once a second`},
		{"poll every 1s", "POLL_SCHEDULE", "@every 1s", time.Hour, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := LoadConfig(lookupFrom(with(validEnv(), tt.key, tt.value)), false)
			if err == nil {
				err = cfg.Validate(false)
			}
			switch {
			case tt.err == "" && err != nil:
				t.Fatalf("%s=%q: %v", tt.key, tt.value, err)
			case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
				t.Fatalf("%s=%q: error %v, want one containing %q", tt.key, tt.value, err, tt.err)
			case tt.err == "" && cfg.RequestTTL != tt.ttl:
				t.Fatalf("REQUEST_TTL %s, want %s", cfg.RequestTTL, tt.ttl)
			}
		})
	}
}
