package main

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/failover-bot/failover-bot/emapi/emsim"
)

// goodPlansFile is one plan of two groups; the bad files below are it with one mistake each,
// so every error's line number is known.
const goodPlansFile = `plans:
  site-b:
    description: Site B, databases first
    groups:
      - name: databases
        concurrency: 2
        delay_after: 2m
        targets:
          - replica: CDP-Finance
      - name: apps
        targets:
          - vapp: erp-vapp
            criticality: optional
`

const goodPlansSummary = "site-b: 2 groups (databases: 1 target, concurrency 2, then 2m; apps: 1 target) — Site B, databases first"

// The bad variants of goodPlansFile and the problem the loader reports for each, after
// "<path>:".
var (
	plansUnknownKey = strings.Replace(goodPlansFile, "concurrency: 2", "concurency: 2", 1)
	unknownKeyError = `6: unknown key "concurency" in group "databases" (known: name, concurrency, delay_after, targets); did you mean "concurrency"?`

	plansDuplicate = goodPlansFile + "          - replica: CDP-Finance\n"
	duplicateError = `14: replica CDP-Finance is already in group "databases" (line 9) of plan "site-b"; a target may appear once per plan`

	plansBadDelay = strings.Replace(goodPlansFile, "delay_after: 2m", "delay_after: soon", 1)
	badDelayError = `7: delay_after "soon" is not a duration (write e.g. 90s, 2m, 1h30m)`

	plansNoTargets = strings.Replace(goodPlansFile, "        targets:\n          - vapp: erp-vapp\n            criticality: optional\n", "        targets: []\n", 1)
	noTargetsError = `11: group "apps" of plan "site-b" has no targets`
)

// writePlans writes a plans file into the test's directory and returns its path.
func writePlans(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestPlansCheckCommand: `failover-bot plans check [file]` validates offline: OK and the
// summary on stdout, or exactly one line on stderr naming file and line for a bad file, and a
// usage line for a bad call.
func TestPlansCheckCommand(t *testing.T) {
	good := writePlans(t, "plans.yaml", goodPlansFile)
	unknownKey := writePlans(t, "unknown.yaml", plansUnknownKey)
	duplicate := writePlans(t, "dup.yaml", plansDuplicate)
	badDelay := writePlans(t, "delay.yaml", plansBadDelay)
	missing := filepath.Join(t.TempDir(), "nope.yaml")
	dir := t.TempDir()
	const checkErr = "failover-bot plans check: "
	const use = "usage: failover-bot plans check [file] (file defaults to $PLANS_FILE)"
	okOut := good + ": OK, 1 plans\n" + goodPlansSummary + "\n"
	tests := []struct {
		name     string
		env      []string
		args     []string
		code     int
		out, err string // exact stdout and stderr
	}{
		{"good file", nil, []string{"plans", "check", good}, exitOK, okOut, ""},
		{"file from PLANS_FILE", []string{"PLANS_FILE", good}, []string{"plans", "check"}, exitOK, okOut, ""},
		{"argument over PLANS_FILE", []string{"PLANS_FILE", unknownKey}, []string{"plans", "check", good}, exitOK, okOut, ""},
		{"offline: EM and Slack settings do not matter", []string{"EM_TIMEOUT", "soon", "EM_URL", "ftp://x", "SLACK_BOT_TOKEN", "nope"},
			[]string{"plans", "check", good}, exitOK, okOut, ""},
		{"unknown key", nil, []string{"plans", "check", unknownKey}, exitFail, "", checkErr + unknownKey + ":" + unknownKeyError + "\n"},
		{"duplicate target", nil, []string{"plans", "check", duplicate}, exitFail, "", checkErr + duplicate + ":" + duplicateError + "\n"},
		{"bad duration", []string{"PLANS_FILE", badDelay}, []string{"plans", "check"}, exitFail, "", checkErr + badDelay + ":" + badDelayError + "\n"},
		{"missing file", nil, []string{"plans", "check", missing}, exitFail, "", checkErr + missing + ": cannot read plans file: no such file or directory\n"},
		{"a directory", nil, []string{"plans", "check", dir}, exitFail, "", checkErr + dir + ": cannot read plans file: is a directory\n"},
		{"no file, no env", nil, []string{"plans", "check"}, exitConfig, "", checkErr + "no file given and PLANS_FILE is unset; " + use + "\n"},
		{"no file, empty env", []string{"PLANS_FILE", ""}, []string{"plans", "check"}, exitConfig, "", checkErr + "no file given and PLANS_FILE is unset; " + use + "\n"},
		{"no subcommand", nil, []string{"plans"}, exitConfig, "", "failover-bot plans: " + use + "\n"},
		{"unknown subcommand", nil, []string{"plans", "list"}, exitConfig, "", "failover-bot plans: " + use + "\n"},
		{"two files", nil, []string{"plans", "check", good, good}, exitConfig, "", "failover-bot plans: " + use + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runCLI(t, envOf(tt.env...), "", tt.args...)
			if code != tt.code || out != tt.out || errOut != tt.err {
				t.Fatalf("exit %d (want %d)\nstdout %q\n  want %q\nstderr %q\n  want %q", code, tt.code, out, tt.out, errOut, tt.err)
			}
		})
	}
}

// countingServer stands in for Slack and EM and records every request it gets.
type countingServer struct {
	*httptest.Server
	mu   sync.Mutex
	seen []string
}

func newCountingServer(t *testing.T) *countingServer {
	t.Helper()
	c := &countingServer{}
	c.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		c.seen = append(c.seen, r.Method+" "+r.URL.Path)
		c.mu.Unlock()
		http.Error(w, "not expected", http.StatusTeapot)
	}))
	t.Cleanup(c.Close)
	return c
}

func (c *countingServer) requests() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.seen...)
}

// runBinary runs the real failover-bot (this test binary re-executed as main) with args and
// only env (nothing inherited), and returns its exit code, stdout and stderr.
func runBinary(t *testing.T, args, env []string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	cmd.Env = append([]string{childEnv + "=1"}, env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, out.String(), errb.String()
	case errors.As(err, &exit) && ctx.Err() == nil:
		return exit.ExitCode(), out.String(), errb.String()
	}
	t.Fatalf("running the bot: %v\nstderr:\n%s", err, errb.String())
	return 0, "", ""
}

// TestBadPlansFileStopsTheBot: the real binary started with a bad PLANS_FILE, in each mode,
// exits 2 at once with exactly one line on stderr naming the variable, the file and the line,
// and serves nothing: no stdout, no request to Slack or EM, no store file, no console temp dir.
func TestBadPlansFileStopsTheBot(t *testing.T) {
	noTargets := writePlans(t, "plans.yaml", plansNoTargets)
	unknownKey := writePlans(t, "unknown.yaml", plansUnknownKey)
	duplicate := writePlans(t, "dup.yaml", plansDuplicate)
	badDelay := writePlans(t, "delay.yaml", plansBadDelay)
	missing := filepath.Join(t.TempDir(), "nope.yaml")
	tests := []struct {
		name    string
		console bool
		extra   []string // besides PLANS_FILE, TMPDIR, and DB_PATH and Slack (serve) and EM (unless noEM)
		noEM    bool     // console mode with its embedded simulator
		file    string
		problem string // after "<file>:"
	}{
		{"HTTP mode, group without targets", false, nil, false, noTargets, noTargetsError},
		{"Socket Mode, unknown key", false, []string{"SLACK_APP_TOKEN=xapp-1-A111-APPSECRETVALUE"}, false, unknownKey, unknownKeyError},
		{"HTTP mode, missing file", false, nil, false, missing, " cannot read plans file: no such file or directory"},
		{"console against EM, bad duration", true, nil, false, badDelay, badDelayError},
		{"console with its simulator, duplicate target", true, nil, true, duplicate, duplicateError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			upstream := newCountingServer(t)
			dir, tmp := t.TempDir(), t.TempDir()
			db := filepath.Join(dir, "bot.db")
			// The console makes its store in TMPDIR when DB_PATH is unset.
			env := []string{"PLANS_FILE=" + tt.file, "TMPDIR=" + tmp, "LISTEN_ADDR=127.0.0.1:0", "LOG_FORMAT=json"}
			if !tt.console {
				env = append(env, "DB_PATH="+db, "SLACK_BOT_TOKEN="+testBotToken, "SLACK_SIGNING_SECRET="+testSigning,
					"SLACK_API_URL="+upstream.URL+"/slack/", "APPROVERS=U0AAA1,U0AAA2")
			}
			if !tt.noEM {
				env = append(env, "EM_URL="+upstream.URL+"/api/", "EM_USERNAME=svc", "EM_PASSWORD="+testPassword)
			}
			var args []string
			if tt.console {
				args = []string{"-console"}
			}
			code, out, errOut := runBinary(t, args, append(env, tt.extra...))

			want := "failover-bot: configuration: PLANS_FILE: " + tt.file + ":" + tt.problem + "\n"
			if code != exitConfig || out != "" || errOut != want {
				t.Fatalf("exit %d (want %d)\nstdout %q (want none)\nstderr %q\n  want %q", code, exitConfig, out, errOut, want)
			}
			assertNoSecrets(t, "stderr", errOut)
			if got := upstream.requests(); len(got) > 0 {
				t.Errorf("the bot called Slack or EM before refusing: %v", got)
			}
			if _, err := os.Stat(db); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the store %s was opened (stat: %v)", db, err)
			}
			if ents, _ := os.ReadDir(tmp); len(ents) > 0 {
				t.Errorf("the bot left %d entries in TMPDIR, e.g. %s", len(ents), ents[0].Name())
			}
		})
	}
}

// TestPlansFileAtStart: a good PLANS_FILE reaches the use cases — the start-up log names its
// plans and /failover plans lists them — and without it the bot has no plans (Plans is nil).
func TestPlansFileAtStart(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	good := writePlans(t, "plans.yaml", goodPlansFile)
	tests := []struct {
		name     string
		plans    string
		logged   bool
		listWant string
	}{
		{"with PLANS_FILE", good, true, "site-b"},
		{"without PLANS_FILE", "", false, "No recovery plans are configured"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			emSrv := httptest.NewServer(emsim.New(emsim.Config{Username: "svc", Password: "pw"}, emsim.DemoSite()))
			defer emSrv.Close()
			sl, _, env := crashSetup(t, emSrv.URL, "PLANS_FILE="+tt.plans)
			p := startBot(t, env)
			reply := p.command(sl, "plans")
			p.term(20 * time.Second)
			logs := p.stderr.String()
			if !strings.Contains(reply, tt.listWant) {
				t.Errorf("/failover plans: %q, want %q", reply, tt.listWant)
			}
			var loaded string
			for line := range strings.Lines(logs) {
				if strings.Contains(line, `"msg":"recovery plans loaded"`) {
					loaded = line
				}
			}
			switch {
			case tt.logged && !strings.Contains(loaded, `"file":"`+good+`","count":1,"plans":["site-b"]`):
				t.Errorf("start-up log of the plans: %q\nlogs:\n%s", loaded, logs)
			case !tt.logged && loaded != "":
				t.Errorf("plans logged without PLANS_FILE: %q", loaded)
			}
			if strings.Contains(logs, "Site B, databases first") || strings.Contains(logs, "CDP-Finance") {
				t.Errorf("the log holds the file's contents beyond plan names:\n%s", logs)
			}
		})
	}
}

// TestConsoleWithPlansFile: in console mode a PLANS_FILE replaces the built-in plans, and the
// terminal names them at start.
func TestConsoleWithPlansFile(t *testing.T) {
	good := writePlans(t, "plans.yaml", goodPlansFile)
	code, out, errs := runCLI(t, envOf("PLANS_FILE", good), "/failover plans\n", "-console")
	if code != 0 {
		t.Fatalf("exit %d; stderr:\n%s\nstdout:\n%s", code, errs, out)
	}
	wantInOrder(t, "transcript", out, []string{"Recovery plans from " + good + ": site-b.", "/failover plans", "site-b"})
	if strings.Contains(out, "built in") || strings.Contains(out, "mail-only") {
		t.Errorf("the built-in plans are in use despite PLANS_FILE:\n%s", out)
	}
}
