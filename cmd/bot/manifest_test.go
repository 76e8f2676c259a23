package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"

	"github.com/failover-bot/failover-bot/bot"
)

const (
	manifestPath       = "../../manifest.yaml"
	manifestSchemaPath = "testdata/slack-manifest.schema.json"
)

// goRegexpEquivalents maps the schema's patterns that Go's RE2 engine cannot compile (they
// use a negative lookahead) to equivalent RE2 patterns, so the schema is checked in full
// rather than with those patterns skipped.
var goRegexpEquivalents = map[string]string{
	// unfurl_domains, outgoing_domains: no leading dot or dash, at least two characters,
	// ending with a letter or digit.
	`^(?![\.\-])([-a-z0-9\.])+([a-z0-9])$`: `^[a-z0-9][-a-z0-9.]*[a-z0-9]$`,
}

func compileGoRegexp(s string) (jsonschema.Regexp, error) {
	if eq, ok := goRegexpEquivalents[s]; ok {
		return regexp.Compile(eq)
	}
	return regexp.Compile(s)
}

// manifestSchema compiles Slack's app manifest schema (copied from Slack's published
// schema into testdata).
func manifestSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	f, err := os.Open(manifestSchemaPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatalf("parse %s: %v", manifestSchemaPath, err)
	}
	c := jsonschema.NewCompiler()
	c.UseRegexpEngine(compileGoRegexp)
	c.AssertFormat()
	if err := c.AddResource("slack-manifest.schema.json", doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("slack-manifest.schema.json")
	if err != nil {
		t.Fatalf("compile the manifest schema: %v", err)
	}
	return sch
}

// loadManifest parses manifest.yaml and returns it as JSON-shaped data (maps, slices,
// json.Number), which is what the schema validator expects.
func loadManifest(t *testing.T) map[string]any {
	t.Helper()
	raw, err := os.ReadFile(manifestPath)
	if err != nil {
		t.Fatal(err)
	}
	var y any
	// yaml.v3 rejects duplicate keys, which Slack would also reject.
	if err := yaml.Unmarshal(raw, &y); err != nil {
		t.Fatalf("parse %s: %v", manifestPath, err)
	}
	return toJSONShape(t, y).(map[string]any)
}

func toJSONShape(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("manifest is not representable as JSON: %v", err)
	}
	out, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestManifestValidAgainstSlackSchema(t *testing.T) {
	sch := manifestSchema(t)
	m := loadManifest(t)
	if err := sch.Validate(m); err != nil {
		t.Fatalf("manifest.yaml does not satisfy Slack's manifest schema:\n%v", err)
	}
}

// TestManifestMatchesTheBot checks what the schema cannot: that the manifest describes this
// bot (its command, endpoints and least-privilege scopes).
func TestManifestMatchesTheBot(t *testing.T) {
	m := loadManifest(t)
	get := func(path ...any) any {
		t.Helper()
		var cur any = m
		for _, p := range path {
			switch k := p.(type) {
			case string:
				cur = cur.(map[string]any)[k]
			case int:
				cur = cur.([]any)[k]
			}
			if cur == nil {
				t.Fatalf("manifest lacks %v", path)
			}
		}
		return cur
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"command", get("features", "slash_commands", 0, "command"), "/failover"},
		{"command URL", get("features", "slash_commands", 0, "url"), "https://failover-bot.example.com/slack/commands"},
		{"should_escape off: names arrive as typed", get("features", "slash_commands", 0, "should_escape"), false},
		{"interactivity on", get("settings", "interactivity", "is_enabled"), true},
		{"interactivity URL", get("settings", "interactivity", "request_url"), "https://failover-bot.example.com/slack/interactions"},
		{"HTTP mode by default", get("settings", "socket_mode_enabled"), false},
		{"org deploy off", get("settings", "org_deploy_enabled"), false},
		{"token rotation off", get("settings", "token_rotation_enabled"), false},
		{"one slash command", len(get("features", "slash_commands").([]any)), 1},
		{"Home tab on", get("features", "app_home", "home_tab_enabled"), true},
		{"events URL", get("settings", "event_subscriptions", "request_url"), "https://failover-bot.example.com/slack/events"},
		{"one bot event", len(get("settings", "event_subscriptions", "bot_events").([]any)), 1},
		{"the Home's event", get("settings", "event_subscriptions", "bot_events", 0), "app_home_opened"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: got %v, want %v", c.name, c.got, c.want)
		}
	}
	for _, field := range []string{"description", "usage_hint"} {
		if s, _ := get("features", "slash_commands", 0, field).(string); strings.TrimSpace(s) == "" {
			t.Errorf("slash command %s is empty", field)
		}
	}
	if s, _ := get("features", "bot_user", "display_name").(string); s == "" {
		t.Error("bot_user.display_name is empty")
	}
	var scopes []string
	for _, s := range get("oauth_config", "scopes", "bot").([]any) {
		scopes = append(scopes, s.(string))
	}
	slices.Sort(scopes)
	if want := []string{"channels:history", "chat:write", "commands", "groups:history", "usergroups:read", "users:read"}; !slices.Equal(scopes, want) {
		t.Errorf("bot scopes = %v, want exactly %v (least privilege)", scopes, want)
	}
	if _, ok := m["oauth_config"].(map[string]any)["scopes"].(map[string]any)["user"]; ok {
		t.Error("the manifest asks for user scopes; the bot needs none")
	}
}

// TestManifestSchemaRejects shows the schema check has teeth: each row breaks the real
// manifest in one way Slack would refuse.
func TestManifestSchemaRejects(t *testing.T) {
	sch := manifestSchema(t)
	tests := []struct {
		name   string
		mutate func(m map[string]any)
		want   string // a fragment of the validation error
	}{
		{"name too long", func(m map[string]any) {
			obj(m, "display_information")["name"] = strings.Repeat("F", 36)
		}, "/display_information/name"},
		{"empty name", func(m map[string]any) {
			obj(m, "display_information")["name"] = ""
		}, "/display_information/name"},
		{"no display_information", func(m map[string]any) {
			delete(m, "display_information")
		}, "display_information"},
		{"unknown top-level key", func(m map[string]any) {
			m["permissions"] = map[string]any{}
		}, "permissions"},
		{"unknown settings key", func(m map[string]any) {
			obj(m, "settings")["socket_mode"] = true
		}, "socket_mode"},
		{"unknown slash command key", func(m map[string]any) {
			command(m)["escape"] = false
		}, "escape"},
		{"command without slash", func(m map[string]any) {
			command(m)["command"] = "failover"
		}, "/features/slash_commands/0/command"},
		{"command too long", func(m map[string]any) {
			command(m)["command"] = "/" + strings.Repeat("f", 32)
		}, "/features/slash_commands/0/command"},
		{"command without description", func(m map[string]any) {
			delete(command(m), "description")
		}, "description"},
		{"empty usage hint", func(m map[string]any) {
			command(m)["usage_hint"] = ""
		}, "/features/slash_commands/0/usage_hint"},
		{"command URL not http", func(m map[string]any) {
			command(m)["url"] = "failover-bot.example.com/slack/commands"
		}, "/features/slash_commands/0/url"},
		{"should_escape not a boolean", func(m map[string]any) {
			command(m)["should_escape"] = "no"
		}, "/features/slash_commands/0/should_escape"},
		{"bot user without display name", func(m map[string]any) {
			delete(obj(m, "features", "bot_user"), "display_name")
		}, "display_name"},
		{"interactivity without is_enabled", func(m map[string]any) {
			delete(obj(m, "settings", "interactivity"), "is_enabled")
		}, "is_enabled"},
		{"scope not a string", func(m map[string]any) {
			obj(m, "oauth_config", "scopes")["bot"] = []any{"commands", 7}
		}, "/oauth_config/scopes/bot/1"},
		{"unknown app_home key", func(m map[string]any) {
			obj(m, "features", "app_home")["home_tab"] = true
		}, "home_tab"},
		{"home_tab_enabled not a boolean", func(m map[string]any) {
			obj(m, "features", "app_home")["home_tab_enabled"] = "yes"
		}, "/features/app_home/home_tab_enabled"},
		{"events URL not http", func(m map[string]any) {
			obj(m, "settings", "event_subscriptions")["request_url"] = "failover-bot.example.com/slack/events"
		}, "/settings/event_subscriptions/request_url"},
		{"bot event listed twice", func(m map[string]any) {
			obj(m, "settings", "event_subscriptions")["bot_events"] = []any{"app_home_opened", "app_home_opened"}
		}, "/settings/event_subscriptions/bot_events"},
		{"unknown event_subscriptions key", func(m map[string]any) {
			obj(m, "settings", "event_subscriptions")["events"] = []any{"app_home_opened"}
		}, "events"},
		{"bad unfurl domain (lookahead pattern)", func(m map[string]any) {
			obj(m, "features")["unfurl_domains"] = []any{".example.com"}
		}, "/features/unfurl_domains/0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := loadManifest(t)
			tt.mutate(m)
			err := sch.Validate(toJSONShape(t, m))
			if err == nil {
				t.Fatal("Validate accepted the broken manifest")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error does not mention %q:\n%v", tt.want, err)
			}
		})
	}

	// The RE2 translation of the lookahead pattern must accept what Slack accepts.
	m := loadManifest(t)
	obj(m, "features")["unfurl_domains"] = []any{"failover-bot.example.com"}
	if err := sch.Validate(toJSONShape(t, m)); err != nil {
		t.Errorf("a good unfurl domain was rejected: %v", err)
	}
}

// TestManifestURLsAreServed: every URL the manifest gives Slack is a route the bot's HTTP mode
// serves (a manifest pointing events at a path nobody serves fails Slack's url_verification).
func TestManifestURLsAreServed(t *testing.T) {
	m := loadManifest(t)
	mux := http.NewServeMux()
	(&bot.HTTPHandlers{}).Register(mux)
	for _, u := range []string{
		command(m)["url"].(string),
		obj(m, "settings", "interactivity")["request_url"].(string),
		obj(m, "settings", "event_subscriptions")["request_url"].(string),
	} {
		req := httptest.NewRequest(http.MethodPost, u, nil)
		if _, pattern := mux.Handler(req); pattern == "" {
			t.Errorf("the manifest sends Slack to %s, which the bot does not serve", u)
		}
	}
}

// TestManifestSocketModeVariant: the manifest edited for Socket Mode as its header says (the
// three URLs deleted, socket_mode_enabled on) is still one Slack accepts, and still subscribes
// to the Home's event: Socket Mode receives events without a request URL.
func TestManifestSocketModeVariant(t *testing.T) {
	raw, err := os.ReadFile(manifestPath)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(raw), "delete the three url/request_url lines") {
		t.Fatal("manifest.yaml no longer says how to switch to Socket Mode; update this test with it")
	}
	m := loadManifest(t)
	delete(command(m), "url")
	delete(obj(m, "settings", "interactivity"), "request_url")
	delete(obj(m, "settings", "event_subscriptions"), "request_url")
	obj(m, "settings")["socket_mode_enabled"] = true
	if err := manifestSchema(t).Validate(toJSONShape(t, m)); err != nil {
		t.Fatalf("the Socket Mode manifest does not satisfy Slack's schema:\n%v", err)
	}
	urls := 0
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				if k == "url" || k == "request_url" {
					urls++
				}
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(m)
	if urls != 0 {
		t.Errorf("the Socket Mode manifest still has %d URLs; the header's instructions miss some", urls)
	}
	if ev := obj(m, "settings", "event_subscriptions")["bot_events"].([]any); len(ev) != 1 || ev[0] != "app_home_opened" {
		t.Errorf("Socket Mode bot_events = %v, want [app_home_opened]", ev)
	}
}

func TestManifestYAMLRejectsDuplicateKeys(t *testing.T) {
	var v any
	err := yaml.Unmarshal([]byte("settings:\n  socket_mode_enabled: false\n  socket_mode_enabled: true\n"), &v)
	if err == nil {
		t.Fatal("duplicate keys were accepted; a manifest edit could silently override a setting")
	}
}

func obj(m map[string]any, path ...string) map[string]any {
	cur := m
	for _, p := range path {
		cur = cur[p].(map[string]any)
	}
	return cur
}

func command(m map[string]any) map[string]any {
	return obj(m, "features")["slash_commands"].([]any)[0].(map[string]any)
}
