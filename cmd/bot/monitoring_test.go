package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.yaml.in/yaml/v3"
)

// The monitoring files an operator loads into Prometheus and Grafana (README, Monitoring).
const (
	alertsFile     = "monitoring/alerts.yaml"
	alertTestsFile = "monitoring/alerts_test.yaml"
	dashboardFile  = "monitoring/dashboard.json"
)

type alertRules struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

type alertTests struct {
	Tests []struct {
		Name        string `yaml:"name"`
		InputSeries []struct {
			Series string `yaml:"series"`
		} `yaml:"input_series"`
		AlertRuleTest []struct {
			Alertname string `yaml:"alertname"`
			ExpAlerts []any  `yaml:"exp_alerts"`
		} `yaml:"alert_rule_test"`
	} `yaml:"tests"`
}

type dashboard struct {
	UID           string `json:"uid"`
	Title         string `json:"title"`
	SchemaVersion int    `json:"schemaVersion"`
	Templating    struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
	Panels []struct {
		ID         int    `json:"id"`
		Type       string `json:"type"`
		Title      string `json:"title"`
		Datasource struct {
			Type string `json:"type"`
			UID  string `json:"uid"`
		} `json:"datasource"`
		GridPos struct{ X, Y, W, H int } `json:"gridPos"`
		Targets []struct {
			RefID string `json:"refId"`
			Expr  string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
}

func readAlertRules(t *testing.T) alertRules {
	t.Helper()
	var r alertRules
	readYAML(t, alertsFile, &r, true) // a misspelt key (anotations:) would silently drop text
	return r
}

// readYAML decodes path into v; strict refuses keys v does not have.
func readYAML(t *testing.T, path string, v any, strict bool) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(strict)
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func readDashboard(t *testing.T) (dashboard, []byte) {
	t.Helper()
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s is not JSON: %v", dashboardFile, err)
	}
	return d, b
}

// metricName finds the names of series the bot exports in PromQL or series notation: ours, and
// the Go and process collectors' (up is Prometheus's own).
var metricName = regexp.MustCompile(`\b(?:failover_bot|process|go)_[a-zA-Z0-9_]+\b`)

var fqName = regexp.MustCompile(`fqName: "([^"]+)"`)

// servedNames is every series name the bot's /metrics can show: the registry cmd/bot serves,
// read through its collectors' descriptions, so a vector with no series yet counts too. A
// histogram or summary brings its _bucket, _sum and _count.
func servedNames(t *testing.T) map[string]bool {
	t.Helper()
	reg, met := newMetrics()
	names := map[string]bool{}
	withParts := func(name string, distribution bool) {
		names[name] = true
		if distribution {
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				names[name+s] = true
			}
		}
	}
	v := reflect.ValueOf(met).Elem()
	for i := range v.NumField() {
		c, ok := v.Field(i).Interface().(prometheus.Collector)
		if !ok || v.Field(i).IsNil() {
			continue
		}
		field := v.Type().Field(i).Name
		// Registering again proves that newMetrics registered it: the registry refuses a twin.
		var are prometheus.AlreadyRegisteredError
		if err := reg.Register(c); !errors.As(err, &are) {
			t.Errorf("Metrics.%s is not registered with the served registry (Register: %v)", field, err)
			continue
		}
		ch := make(chan *prometheus.Desc, 8)
		go func() { c.Describe(ch); close(ch) }()
		for d := range ch {
			m := fqName.FindStringSubmatch(d.String())
			if m == nil {
				t.Fatalf("cannot read the name of %s", d)
			}
			switch c.(type) {
			case prometheus.Histogram, *prometheus.HistogramVec:
				withParts(m[1], true)
			default:
				withParts(m[1], false)
			}
		}
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		typ := mf.GetType().String()
		withParts(mf.GetName(), typ == "HISTOGRAM" || typ == "SUMMARY")
	}
	return names
}

// unknownNames lists the metric names in exprs that are not in served, sorted.
func unknownNames(served map[string]bool, exprs ...string) []string {
	var out []string
	for _, e := range exprs {
		for _, n := range metricName.FindAllString(e, -1) {
			if !served[n] && !slices.Contains(out, n) {
				out = append(out, n)
			}
		}
	}
	sort.Strings(out)
	return out
}

// TestMonitoringUsesServedMetrics: every metric name in the alert rules, their unit tests and the
// dashboard is one the bot serves, so a renamed or unregistered series fails here rather than
// silencing an alert during an outage.
func TestMonitoringUsesServedMetrics(t *testing.T) {
	served := servedNames(t)
	for _, want := range []string{"failover_bot_em_up", "failover_bot_requests_total", "failover_bot_poll_cycle_seconds_bucket",
		"failover_bot_slack_backlog", "process_start_time_seconds"} {
		if !served[want] {
			t.Fatalf("served names lack %s: the reading of the registry is broken", want)
		}
	}
	if got := unknownNames(served, `rate(failover_bot_poll_cycle_secs_bucket[5m]) > failover_bot_em_up`); !slices.Equal(got, []string{"failover_bot_poll_cycle_secs_bucket"}) {
		t.Fatalf("a renamed metric is not caught: %v", got)
	}

	rules := readAlertRules(t)
	var alertExprs []string
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			alertExprs = append(alertExprs, r.Expr)
		}
	}
	var tests alertTests
	readYAML(t, alertTestsFile, &tests, false)
	var series []string
	for _, tc := range tests.Tests {
		for _, s := range tc.InputSeries {
			series = append(series, s.Series)
		}
	}
	d, _ := readDashboard(t)
	var panelExprs []string
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			panelExprs = append(panelExprs, tg.Expr)
		}
	}
	for _, v := range d.Templating.List {
		if q, ok := v.Query.(map[string]any); ok {
			panelExprs = append(panelExprs, fmt.Sprint(q["query"]))
		}
	}

	for _, c := range []struct {
		what  string
		exprs []string
		uses  []string // what the brief asks each to cover
	}{
		{alertsFile, alertExprs, []string{"failover_bot_em_seconds_since_ok", "failover_bot_slack_seconds_since_ok",
			"failover_bot_slack_oldest_undelivered_seconds", "failover_bot_oldest_active_request_seconds", "failover_bot_poll_cycle_seconds_bucket"}},
		{alertTestsFile, series, []string{"failover_bot_em_seconds_since_ok", "failover_bot_poll_cycle_seconds_count"}},
		{dashboardFile, panelExprs, []string{"failover_bot_em_up", "failover_bot_slack_up", "failover_bot_oldest_active_request_seconds",
			"failover_bot_slack_backlog", "failover_bot_slack_oldest_undelivered_seconds", "failover_bot_poll_cycle_seconds_bucket",
			"failover_bot_requests_total"}},
	} {
		if bad := unknownNames(served, c.exprs...); len(bad) > 0 {
			t.Errorf("%s uses metrics the bot does not serve: %s", c.what, strings.Join(bad, ", "))
		}
		all := strings.Join(c.exprs, "\n")
		for _, u := range c.uses {
			if !regexp.MustCompile(`\b` + u + `\b`).MatchString(all) {
				t.Errorf("%s does not use %s", c.what, u)
			}
		}
	}
}

// TestAlertRulesShape: every rule is named, has a severity a pager routes on and says what to
// do; and every alert is exercised by a unit test that expects it to fire.
func TestAlertRulesShape(t *testing.T) {
	rules := readAlertRules(t)
	var tests alertTests
	readYAML(t, alertTestsFile, &tests, false)
	fires := map[string]bool{}
	for _, tc := range tests.Tests {
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				fires[a.Alertname] = true
			}
		}
	}
	seen := map[string]bool{}
	n := 0
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			n++
			switch {
			case !strings.HasPrefix(r.Alert, "FailoverBot"):
				t.Errorf("rule %q: alert names start with FailoverBot", r.Alert)
			case seen[r.Alert]:
				t.Errorf("alert %s is defined twice", r.Alert)
			case r.Labels["severity"] != "critical" && r.Labels["severity"] != "warning":
				t.Errorf("%s: severity %q, want critical or warning", r.Alert, r.Labels["severity"])
			case r.Annotations["summary"] == "" || r.Annotations["description"] == "":
				t.Errorf("%s: summary and description are required", r.Alert)
			case strings.TrimSpace(r.Expr) == "":
				t.Errorf("%s: no expr", r.Alert)
			case !fires[r.Alert]:
				t.Errorf("%s: no test in %s expects it to fire", r.Alert, alertTestsFile)
			}
			seen[r.Alert] = true
		}
	}
	if n < 5 {
		t.Fatalf("%d rules, want the stuck-request, EM, Slack-backlog and poll-cycle alerts at least", n)
	}
}

// TestDashboardJSON: the dashboard is Grafana JSON that imports as it is: a schema version,
// panels with unique IDs on a 24-column grid without overlaps, each on the datasource variable
// with queries, and the variables the queries use.
func TestDashboardJSON(t *testing.T) {
	d, raw := readDashboard(t)
	if d.SchemaVersion < 36 || d.UID == "" || d.Title == "" {
		t.Fatalf("schemaVersion %d, uid %q, title %q: want a current schema, a uid and a title", d.SchemaVersion, d.UID, d.Title)
	}
	vars := map[string]string{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v.Type
	}
	if vars["datasource"] != "datasource" || vars["instance"] != "query" {
		t.Fatalf("templating %v: want a datasource variable and an instance query variable", vars)
	}
	if strings.Contains(string(raw), "DS_PROMETHEUS") {
		t.Error("the dashboard names an exported data source; it uses the datasource variable")
	}
	ids := map[int]bool{}
	type rect struct{ x, y, w, h int }
	var placed []rect
	for _, p := range d.Panels {
		name := fmt.Sprintf("panel %d %q", p.ID, p.Title)
		if p.ID <= 0 || ids[p.ID] {
			t.Errorf("%s: IDs must be positive and unique", name)
		}
		ids[p.ID] = true
		if p.Type != "stat" && p.Type != "timeseries" {
			t.Errorf("%s: type %q", name, p.Type)
		}
		if p.Title == "" {
			t.Errorf("%s: no title", name)
		}
		if p.Datasource.Type != "prometheus" || p.Datasource.UID != "${datasource}" {
			t.Errorf("%s: datasource %+v, want the datasource variable", name, p.Datasource)
		}
		g := p.GridPos
		if g.W <= 0 || g.H <= 0 || g.X < 0 || g.Y < 0 || g.X+g.W > 24 {
			t.Errorf("%s: gridPos %+v is off the 24-column grid", name, g)
		}
		r := rect{g.X, g.Y, g.W, g.H}
		for _, o := range placed {
			if r.x < o.x+o.w && o.x < r.x+r.w && r.y < o.y+o.h && o.y < r.y+r.h {
				t.Errorf("%s: gridPos %+v overlaps another panel", name, g)
			}
		}
		placed = append(placed, r)
		if len(p.Targets) == 0 {
			t.Errorf("%s: no queries", name)
		}
		refs := map[string]bool{}
		for _, tg := range p.Targets {
			if tg.RefID == "" || refs[tg.RefID] || strings.TrimSpace(tg.Expr) == "" {
				t.Errorf("%s: query %q %q: each needs its own refId and an expr", name, tg.RefID, tg.Expr)
			}
			refs[tg.RefID] = true
			if strings.Count(tg.Expr, "(") != strings.Count(tg.Expr, ")") || strings.Count(tg.Expr, "{") != strings.Count(tg.Expr, "}") {
				t.Errorf("%s: unbalanced query %q", name, tg.Expr)
			}
			for _, v := range regexp.MustCompile(`\$(\w+)`).FindAllStringSubmatch(tg.Expr, -1) {
				if _, ok := vars[v[1]]; !ok && !strings.HasPrefix(v[1], "__") {
					t.Errorf("%s: query uses $%s, which is not a dashboard variable", name, v[1])
				}
			}
		}
	}
	if len(d.Panels) < 5 {
		t.Fatalf("%d panels, want EM and Slack, stuck requests, the Slack backlog, the poller and request outcomes", len(d.Panels))
	}
}

// TestAlertRulesWithPromtool runs Prometheus's own checks when promtool is installed (Debian's
// prometheus package has it): the rules load, their unit tests pass, and every dashboard query
// parses as PromQL (each becomes a recording rule of a scratch file, Grafana's variables filled).
func TestAlertRulesWithPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool is not installed (apt-get install prometheus provides it): the alert rules' unit tests in " + alertTestsFile + " did not run")
	}
	run := func(args ...string) {
		t.Helper()
		cmd := exec.Command(promtool, args...)
		cmd.Dir = "monitoring"
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	run("check", "rules", filepath.Base(alertsFile))
	run("test", "rules", filepath.Base(alertTestsFile))

	d, _ := readDashboard(t)
	fill := strings.NewReplacer("$__rate_interval", "5m", "$instance", ".*")
	type rule struct {
		Record string `yaml:"record"`
		Expr   string `yaml:"expr"`
	}
	var recs []rule
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			recs = append(recs, rule{Record: fmt.Sprintf("dashboard:panel%d:%s", p.ID, strings.ToLower(tg.RefID)), Expr: fill.Replace(tg.Expr)})
		}
	}
	b, err := yaml.Marshal(map[string]any{"groups": []any{map[string]any{"name": "dashboard", "rules": recs}}})
	if err != nil {
		t.Fatal(err)
	}
	scratch := filepath.Join(t.TempDir(), "dashboard-queries.yaml")
	if err := os.WriteFile(scratch, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(promtool, "check", "rules", scratch).CombinedOutput(); err != nil {
		t.Errorf("a dashboard query is not PromQL: %v\n%s", err, out)
	}
}
