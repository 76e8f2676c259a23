package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/failover-bot/failover-bot/bot"
	"github.com/failover-bot/failover-bot/emapi/emsim"
)

// TestHealthcheckCommand: `healthcheck` asks /healthz and `healthcheck --ready` asks /readyz;
// 200 exits 0 with nothing printed, anything else exits 1 with one line saying why, and a bad
// flag exits 2.
func TestHealthcheckCommand(t *testing.T) {
	since := time.Date(2026, 11, 23, 14, 0, 15, 0, time.UTC)
	notReady, _ := json.Marshal(bot.ReadinessReport{Status: "not ready",
		EM:    bot.DependencyReport{Status: bot.DependencyDown, Error: "The bot could not reach Enterprise Manager (network error).", FailingSince: since, LastCheck: since.Add(45 * time.Second)},
		Slack: bot.DependencyReport{Status: bot.DependencyOK, LastCheck: since.Add(45 * time.Second)}, Grace: "30s", Interval: "15s"})
	ready, _ := json.Marshal(bot.ReadinessReport{Status: "ready", EM: bot.DependencyReport{Status: bot.DependencyOK}, Slack: bot.DependencyReport{Status: bot.DependencyFailing, Error: "Slack did not answer in time"}})

	type answer struct {
		code int
		body string
	}
	tests := []struct {
		name     string
		healthz  answer
		readyz   answer
		args     []string
		wantCode int
		wantErr  string // substring of the one line on stderr; "" for no output
	}{
		{"live", answer{200, `{"status":"ok","store":"ok"}`}, answer{503, string(notReady)}, nil, 0, ""},
		{"ready", answer{503, `{}`}, answer{200, string(ready)}, []string{"--ready"}, 0, ""},
		{"not ready", answer{200, `{"status":"ok","store":"ok"}`}, answer{503, string(notReady)}, []string{"--ready"}, 1,
			"failover-bot healthcheck: not ready: Enterprise Manager down since 2026-11-23 14:00:15 UTC: The bot could not reach Enterprise Manager (network error)."},
		{"store not writable", answer{503, `{"status":"unhealthy","store":"database not writable: disk full"}`}, answer{200, string(ready)}, nil, 1,
			"unhealthy (503 Service Unavailable): store: database not writable: disk full"},
		{"a proxy's error page", answer{200, ``}, answer{502, "<html>\n<h1>Bad Gateway</h1>\n</html>"}, []string{"--ready"}, 1,
			"/readyz answered 502 Bad Gateway: <html> <h1>Bad Gateway</h1> </html>"},
		{"unknown flag", answer{200, ``}, answer{200, ``}, []string{"--readiness"}, 2, "flag provided but not defined"},
		{"stray argument", answer{200, ``}, answer{200, ``}, []string{"now"}, 2, `unexpected argument "now"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mux := http.NewServeMux()
			for path, a := range map[string]answer{"/healthz": tt.healthz, "/readyz": tt.readyz} {
				mux.HandleFunc("GET "+path, func(w http.ResponseWriter, _ *http.Request) {
					w.WriteHeader(a.code)
					io.WriteString(w, a.body)
				})
			}
			srv := httptest.NewServer(mux)
			defer srv.Close()
			code, out, errs := runCLI(t, envOf("LISTEN_ADDR", strings.TrimPrefix(srv.URL, "http://")), "", append([]string{"healthcheck"}, tt.args...)...)
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d; stderr %q", code, tt.wantCode, errs)
			}
			if out != "" {
				t.Errorf("stdout %q, want nothing", out)
			}
			switch {
			case tt.wantErr == "" && errs != "":
				t.Errorf("stderr %q, want nothing", errs)
			case tt.wantErr != "" && !strings.Contains(errs, tt.wantErr):
				t.Errorf("stderr %q does not contain %q", errs, tt.wantErr)
			case tt.wantCode == 1 && strings.Count(strings.TrimRight(errs, "\n"), "\n") != 0:
				t.Errorf("stderr has more than one line:\n%s", errs)
			}
		})
	}
}

// TestProbesOfTheRunningBot runs the real bot twice. Against a working EM, /healthz and /readyz
// answer 200, both checks read ok, the gauges say so and both healthcheck forms exit 0. With EM
// unreachable and READINESS_GRACE=1ms, the first failed check makes /readyz answer 503 and
// `healthcheck --ready` exit 1 naming EM, while liveness stays 200: a restart would not bring
// EM back.
func TestProbesOfTheRunningBot(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	get := func(url string) (int, string) {
		t.Helper()
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	readiness := func(p *botProcess) (int, bot.ReadinessReport) {
		t.Helper()
		code, body := get(p.url + "/readyz")
		var rep bot.ReadinessReport
		if err := json.Unmarshal([]byte(body), &rep); err != nil {
			t.Fatalf("/readyz: %v: %s", err, body)
		}
		return code, rep
	}
	addr := func(p *botProcess) func(string) (string, bool) {
		return envOf("LISTEN_ADDR", strings.TrimPrefix(p.url, "http://"))
	}

	_, _, emURL := crashEM(t, emsim.DemoInventory())
	_, _, env := crashSetup(t, emURL)
	p := startBot(t, env)
	waitUntil(t, "the first readiness check", 20*time.Second, func() bool {
		_, rep := readiness(p)
		return rep.EM.Status == bot.DependencyOK && rep.Slack.Status == bot.DependencyOK
	}, p.stderr.String)
	if code, body := get(p.url + "/healthz"); code != 200 || !strings.Contains(body, `"store":"ok"`) {
		t.Fatalf("/healthz: %d %s", code, body)
	}
	for _, args := range [][]string{{"healthcheck"}, {"healthcheck", "--ready"}} {
		if code, _, errs := runCLI(t, addr(p), "", args...); code != 0 {
			t.Errorf("%v: exit %d: %s", args, code, errs)
		}
	}
	_, metrics := get(p.url + "/metrics")
	mustContain(t, "/metrics", metrics, "failover_bot_em_up 1", "failover_bot_slack_up 1",
		`failover_bot_slack_backlog{kind="messages"}`, `failover_bot_oldest_active_request_seconds{state="pending"} 0`)
	p.term(20 * time.Second)

	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close() // nothing listens there any more
	_, _, env = crashSetup(t, dead.URL, "READINESS_GRACE=1ms")
	p = startBot(t, env)
	waitUntil(t, "/readyz to answer 503", 30*time.Second, func() bool { code, _ := readiness(p); return code == 503 }, p.stderr.String)
	if _, rep := readiness(p); rep.EM.Status != bot.DependencyDown || rep.Slack.Status != bot.DependencyOK ||
		!strings.Contains(rep.EM.Error, "could not reach Enterprise Manager") {
		t.Fatalf("/readyz with EM unreachable: %+v", rep)
	}
	code, _, errs := runCLI(t, addr(p), "", "healthcheck", "--ready")
	if code != 1 || !strings.Contains(errs, "not ready: Enterprise Manager down since") {
		t.Fatalf("healthcheck --ready: exit %d, stderr %q", code, errs)
	}
	if code, _, errs := runCLI(t, addr(p), "", "healthcheck"); code != 0 {
		t.Fatalf("liveness failed because EM is down: exit %d %s", code, errs)
	}
	p.term(20 * time.Second)
	mustContain(t, "logs", p.stderr.String(), "has failed every check; /readyz answers 503")
}
