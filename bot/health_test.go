package bot_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/failover-bot/failover-bot/bot"
)

func getJSON(t *testing.T, url string) (int, map[string]string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]string
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("healthz body: %v", err)
	}
	return resp.StatusCode, body
}

// TestHealthz: 200 while the store is writable, with EM and Slack reachability reported; EM or
// Slack trouble is reported without failing the check (a restart would not fix them); a store
// that cannot be written fails it.
func TestHealthz(t *testing.T) {
	h := newHarness(t)
	slackErr := error(nil)
	srv := httptest.NewServer(&bot.Health{Bot: h.bot, SlackPing: func(context.Context) error { return slackErr }})
	defer srv.Close()

	code, body := getJSON(t, srv.URL)
	if code != http.StatusOK || body["status"] != "ok" || body["store"] != "ok" || body["em"] != "ok" || body["slack"] != "ok" {
		t.Fatalf("healthy bot: %d %v", code, body)
	}

	h.emSrv.Close() // EM unreachable
	slackErr = errors.New("invalid_auth")
	code, body = getJSON(t, srv.URL)
	if code != http.StatusOK || !strings.Contains(body["em"], "could not reach Enterprise Manager") || body["slack"] != "invalid_auth" {
		t.Fatalf("EM and Slack down: %d %v", code, body)
	}

	if err := h.st.Close(); err != nil { // the store is gone: the process must be restarted
		t.Fatal(err)
	}
	code, body = getJSON(t, srv.URL)
	if code != http.StatusServiceUnavailable || body["status"] != "unhealthy" {
		t.Fatalf("closed store: %d %v", code, body)
	}
	// Shut the rest down here: the harness would close the store a second time.
	h.srv.Close()
	if err := h.bot.Close(context.Background()); err != nil {
		t.Error(err)
	}
	h.bot = nil
}

// TestMetrics: the flow's series reach /metrics.
func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	h := newHarness(t, func(c *harnessConfig) { c.opt.Metrics = bot.NewMetrics(reg) })
	h.command(Requester, `vm CDP-Finance fin-db01 --reason "site down"`)
	h.idle()
	h.approve(Approver1, "FO-1")
	h.idle()
	h.command(Outsider, `vm CDP-Finance nosuch --reason "typo"`)
	h.poll()

	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	mustContain(t, "/metrics", string(b),
		`failover_bot_requests_total{outcome="requested"} 1`,
		`failover_bot_requests_total{outcome="approved"} 1`,
		`failover_bot_requests_total{outcome="submitted"} 1`,
		`failover_bot_approvals_total 1`,
		`failover_bot_refusals_total{reason="unknown-name"} 1`,
		`failover_bot_slack_request_duration_seconds_count{method="chat.postMessage",result="ok"}`,
		`failover_bot_poll_cycle_seconds_count 1`,
		`failover_bot_active_requests 1`)
}
