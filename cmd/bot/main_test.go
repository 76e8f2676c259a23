package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/failover-bot/failover-bot/bot/slackfake"
	"github.com/failover-bot/failover-bot/emapi"
	"github.com/failover-bot/failover-bot/emapi/emsim"
	"github.com/failover-bot/failover-bot/store"
	"github.com/failover-bot/failover-bot/store/etcdtest"
)

// childEnv makes the test binary run main's run() instead of the tests, so a test can signal a
// real process. The child's own arguments (e.g. -console) go to run.
const childEnv = "FAILOVER_BOT_TEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.LookupEnv))
	}
	// etcdtest.Run stops the shared etcd the etcd tests start (admin_etcd_test.go, migrate_test.go).
	os.Exit(etcdtest.Run(m))
}

func envOf(kv ...string) func(string) (string, bool) {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

// runCLI runs the command line with args and returns exit code, stdout and stderr.
func runCLI(t *testing.T, lookup func(string) (string, bool), stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, strings.NewReader(stdin), &out, &errb, lookup)
	return code, out.String(), errb.String()
}

// TestConsoleTranscript drives console mode with piped input through a full story: a request,
// the requester's own approval refused (two-person rule), a second person's approval, and the
// failover finishing in the embedded EM simulator.
func TestConsoleTranscript(t *testing.T) {
	script := strings.Join([]string{
		"/as bob",
		`/failover vm CDP-Finance fin-db01 --reason "site A lost power"`,
		"approve FO-1",
		"/as carol",
		"approve FO-1",
		"/failover status FO-1",
	}, "\n")
	code, out, errs := runCLI(t, envOf(), script, "-console")
	if code != 0 {
		t.Fatalf("exit %d; stderr:\n%s\nstdout:\n%s", code, errs, out)
	}
	steps := []string{
		"Embedded Enterprise Manager simulator",
		"@bob> /failover vm CDP-Finance fin-db01",
		"Recorded FO-1",
		"== Failover request FO-1 ==",
		"[Approve] [Reject]",
		"@bob> approve FO-1",
		"You requested FO-1, so you cannot approve it: a second person must (two-person rule).",
		"@carol> approve FO-1",
		"Enterprise Manager accepted the failover: task task-1 is Running.",
		"Failover succeeded — EM task task-1",
	}
	wantInOrder(t, "transcript", out, steps)
	// The audit channel has its own worker, so its lines interleave freely with the card's
	// channel; each event appears once, in the log's order.
	audit := []string{"FO-1 requested by @bob", "FO-1 approved by @carol (pending → approved): 1 of 1 approvals",
		"FO-1 submitted by em", "FO-1 EM reported succeeded"}
	wantInOrder(t, "the audit channel", out, audit)
	if strings.Count(out, "accepted the failover") != 1 {
		t.Errorf("the failover was submitted %d times, want once", strings.Count(out, "accepted the failover"))
	}
}

// TestConsolePlanTranscript: the console's built-in plans and scripted failure show a plan run
// halting on the failing critical VM, Continue refused to the requester and accepted from an
// approver, and the run finishing group by group.
func TestConsolePlanTranscript(t *testing.T) {
	script := strings.Join([]string{
		"/failover plans",
		`/failover plan site-b --reason "DR drill"`,
		"/as bob",
		"approve FO-1",
		"wait",
		"/as alice",
		"continue FO-1",
		"/as carol",
		"continue FO-1",
	}, "\n")
	code, out, errs := runCLI(t, envOf(), script, "-console")
	if code != 0 {
		t.Fatalf("exit %d; stderr:\n%s\nstdout:\n%s", code, errs, out)
	}
	wantInOrder(t, "transcript", out, []string{
		"Recovery plans (built in",
		"site-b — 3 groups",
		"Recorded FO-1",
		"@bob> approve FO-1",
		"Started group 1 of 3 (databases)",
		"crm-db01 (critical: the run halts after its group) failed",
		"Halted after group 1 of 3 (databases)",
		"@alice> continue FO-1",
		"You requested FO-1, so you cannot continue it past a failed critical item",
		"@carol> continue FO-1",
		"continued the run despite crm-db01",
		"Started group 2 of 3 (apps)",
		"Started group 3 of 3 (web)",
		"FO-1 finished: partly failed",
	})
	// The halted card's buttons: its update is paced, so it may print after the next line typed.
	if i := strings.Index(out, "Halted after group 1 of 3 (databases)"); i < 0 || !strings.Contains(out[i:], "[Continue] [Stop run…]") {
		t.Errorf("the halted card's buttons were not shown")
	}
}

// seedStore writes a store with a few requests through their lives and returns its path and
// event count.
func seedStore(t *testing.T) (string, int) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "bot.db")
	now := time.Date(2026, 11, 23, 14, 0, 0, 0, time.UTC)
	st, err := store.Open(path, store.Options{Now: func() time.Time { now = now.Add(time.Minute); return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for i := range 3 {
		// A VM each: one active request per target.
		r, err := st.Create(context.Background(), store.NewRequest{Kind: store.KindVM, Target: store.Target{ReplicaID: "r1", ReplicaName: "CDP-Finance", ID: fmt.Sprint("v", i), Name: fmt.Sprint("fin-db0", i)},
			Intent: store.IntentLatest, Reason: "reason, with \"quotes\"", Requester: "U0REQ", Channel: "C0DR", TTL: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			if _, err := st.Reject(context.Background(), r.ID, "U0APP", "not now"); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if _, err := st.Approve(context.Background(), r.ID, "U0APP", r.Digest); err != nil {
			t.Fatal(err)
		}
	}
	n := 0
	if err := st.Events(context.Background(), 0, time.Time{}, func(store.Event) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return path, n
}

func TestAuditExportAndVerify(t *testing.T) {
	path, n := seedStore(t)
	lookup := envOf("DB_PATH", path)

	code, out, errs := runCLI(t, lookup, "", "audit", "export")
	if code != 0 {
		t.Fatalf("export: exit %d: %s", code, errs)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != n {
		t.Fatalf("export has %d lines, want %d events", len(lines), n)
	}
	var first exportEvent
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil || first.Seq != 1 || first.RequestID != "FO-1" || first.Hash == "" {
		t.Fatalf("first line %q decodes to %+v (%v)", lines[0], first, err)
	}

	code, out, _ = runCLI(t, lookup, "", "audit", "export", "--format", "csv", "--since", "2026-11-23T14:05:00Z")
	if code != 0 {
		t.Fatalf("csv export: exit %d", code)
	}
	rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil {
		t.Fatalf("csv: %v", err)
	}
	if strings.Join(rows[0], ",") != strings.Join(csvHeader, ",") || len(rows) < 2 || len(rows) > n {
		t.Fatalf("csv rows %d, header %v", len(rows), rows[0])
	}
	for _, r := range rows[1:] {
		if ts, _ := time.Parse(time.RFC3339Nano, r[1]); ts.Before(time.Date(2026, 11, 23, 14, 5, 0, 0, time.UTC)) {
			t.Errorf("--since let through an event at %s", r[1])
		}
	}

	code, out, _ = runCLI(t, lookup, "", "audit", "verify")
	if code != 0 || !strings.Contains(out, "intact") {
		t.Fatalf("verify of a clean store: exit %d, %q", code, out)
	}

	// Tamper with a copy: flip one byte of event 3's stored value.
	tampered := filepath.Join(t.TempDir(), "tampered.db")
	copyFile(t, path, tampered)
	db, err := bolt.Open(tampered, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("audit"))
		k := make([]byte, 8)
		k[7] = 3
		v := append([]byte(nil), b.Get(k)...)
		v[len(v)/2] ^= 0x20
		return b.Put(k, v)
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	code, _, errs = runCLI(t, envOf("DB_PATH", tampered), "", "audit", "verify")
	if code != 1 || !strings.Contains(errs, "3") || strings.Count(strings.TrimSpace(errs), "\n") != 0 {
		t.Fatalf("verify of a tampered copy: exit %d, stderr %q; want exit 1 naming event 3 on one line", code, errs)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestBackupAndExportWhileRunning: the running bot holds the file lock; the CLI goes through the
// admin socket and still gets a consistent copy that opens as a store.
func TestBackupAndExportWhileRunning(t *testing.T) {
	path, n := seedStore(t)
	st, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	errc := make(chan error, 1)
	admin, err := listenAdmin(path, st, errc)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if fi, err := os.Stat(adminSocketPath(path)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("admin socket mode %v (%v), want 0600", fi.Mode().Perm(), err)
	}

	dst := filepath.Join(t.TempDir(), "copy.db")
	code, out, errs := runCLI(t, envOf("DB_PATH", path), "", "backup", dst)
	if code != 0 {
		t.Fatalf("backup while running: exit %d: %s", code, errs)
	}
	if !strings.Contains(out, dst) {
		t.Errorf("backup output %q does not name the copy", out)
	}
	cp, err := store.Open(dst, store.Options{})
	if err != nil {
		t.Fatalf("the copy does not open: %v", err)
	}
	if err := cp.Verify(context.Background()); err != nil {
		t.Fatalf("the copy's audit chain: %v", err)
	}
	if _, err := cp.Get(context.Background(), "FO-3"); err != nil {
		t.Fatalf("the copy lacks FO-3: %v", err)
	}
	cp.Close()
	if fi, _ := os.Stat(dst); fi.Mode().Perm() != 0o600 {
		t.Errorf("backup mode %v, want 0600", fi.Mode().Perm())
	}

	code, out, _ = runCLI(t, envOf("DB_PATH", path), "", "audit", "export")
	if code != 0 || len(strings.Split(strings.TrimSpace(out), "\n")) != n {
		t.Fatalf("export while running: exit %d, %d lines, want %d", code, len(strings.Split(strings.TrimSpace(out), "\n")), n)
	}
	code, out, _ = runCLI(t, envOf("DB_PATH", path), "", "audit", "verify")
	if code != 0 || !strings.Contains(out, "intact") {
		t.Fatalf("verify while running: exit %d %q", code, out)
	}
}

// TestCommandLineErrors: every mistake exits non-zero with one readable line.
func TestCommandLineErrors(t *testing.T) {
	cases := []struct {
		name   string
		lookup func(string) (string, bool)
		args   []string
		code   int
		want   string
	}{
		{"missing configuration", envOf(), nil, 2, "SLACK_BOT_TOKEN"},
		{"unknown command", envOf(), []string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{"backup without path", envOf(), []string{"backup"}, 2, "usage: failover-bot backup <path>"},
		{"audit without verb", envOf(), []string{"audit"}, 2, "usage"},
		{"audit bad format", envOf(), []string{"audit", "export", "--format", "xml"}, 2, "--format"},
		{"audit bad since", envOf(), []string{"audit", "export", "--since", "yesterday"}, 2, "--since"},
		{"no store", envOf("DB_PATH", "/nonexistent/x.db"), []string{"audit", "verify"}, 1, "no store at /nonexistent/x.db"},
		{"healthcheck with nothing listening", envOf("LISTEN_ADDR", "127.0.0.1:1"), []string{"healthcheck"}, 1, "healthcheck"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errs := runCLI(t, tc.lookup, "", tc.args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d; stderr %q", code, tc.code, errs)
			}
			if !strings.Contains(errs, tc.want) {
				t.Errorf("stderr %q does not contain %q", errs, tc.want)
			}
			if lines := strings.Count(strings.TrimRight(errs, "\n"), "\n") + 1; lines != 1 {
				t.Errorf("stderr has %d lines, want one:\n%s", lines, errs)
			}
		})
	}
}

func TestHelpAndVersion(t *testing.T) {
	code, errs, stderr := runCLI(t, envOf(), "", "-h")
	if code != 0 || stderr != "" {
		t.Fatalf("-h exit %d, stderr %q: help goes to stdout", code, stderr)
	}
	for _, want := range []string{"-console", "audit export", "backup <path>", "SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN",
		"EM_URL", "EM_CA_FILE", "DB_PATH", "APPROVERS", "APPROVER_GROUP", "REQUESTERS", "ALLOWED_CHANNELS", "AUDIT_CHANNEL",
		"POLL_SCHEDULE", "REQUEST_TTL", "APPROVALS_REQUIRED", "LOG_FORMAT", "NAME_FILE", "plans check [file]", "PLANS_FILE"} {
		if !strings.Contains(errs, want) {
			t.Errorf("-h lacks %q", want)
		}
	}
	code, out, _ := runCLI(t, envOf(), "", "version")
	if code != 0 || !strings.HasPrefix(out, "failover-bot ") {
		t.Fatalf("version: exit %d %q", code, out)
	}
}

// TestShutdownDuringPollCycle starts the real binary in HTTP mode against the EM simulator and
// the Slack fake, with running failovers in its store, sends SIGTERM while a poll cycle waits on
// EM, and checks the process exits cleanly and leaves the store consistent.
func TestShutdownDuringPollCycle(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a process")
	}
	sim := emsim.New(emsim.Config{Username: "svc", Password: "pw", AllowRepeatFailover: true}, emsim.DemoInventory())
	sim.SetDefaultScript(emsim.Script{Running: time.Hour})
	emSrv := httptest.NewServer(sim)
	defer emSrv.Close()
	sl := slackfake.New(t)

	// A store with five running failovers whose tasks exist in EM.
	path := filepath.Join(t.TempDir(), "bot.db")
	st, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := emapi.New(emapi.Config{BaseURL: emSrv.URL + "/api/", Username: "svc", Password: "pw"})
	if err != nil {
		t.Fatal(err)
	}
	inv := emsim.DemoInventory()
	type target struct {
		rep emsim.Replica
		vm  emsim.VM
	}
	var targets []target // a VM each: one active request per target
	for _, rep := range inv.Replicas {
		for _, vm := range rep.VMs {
			targets = append(targets, target{rep, vm})
		}
	}
	for i := range 5 {
		rep, vm := targets[i].rep, targets[i].vm
		r, err := st.Create(context.Background(), store.NewRequest{Kind: store.KindVM, Target: store.Target{ReplicaID: rep.ID, ReplicaName: rep.Name, ID: vm.ID, Name: vm.Name},
			Intent: store.IntentLatest, Reason: "test", Requester: "U0REQ", Channel: "C0DR", TTL: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		r, err = st.Approve(context.Background(), r.ID, "U0APP", r.Digest)
		if err != nil {
			t.Fatal(err)
		}
		if r, err = st.Transition(context.Background(), store.Change{ID: r.ID, To: store.Submitting, Actor: "bot"}); err != nil {
			t.Fatal(err)
		}
		task, err := c.StartVMFailover(context.Background(), rep.ID, vm.ID, emapi.RestoreIntent{Kind: emapi.IntentLatest})
		if err != nil {
			t.Fatal(err)
		}
		if _, err = st.Transition(context.Background(), store.Change{ID: r.ID, To: store.Running, Actor: "em", Apply: func(q *store.Item) { q.TaskID, q.EMSession = task.ID, task.LogonSession }}); err != nil {
			t.Fatal(err)
		}
	}
	st.Close()
	sim.SetLatency(400 * time.Millisecond) // every poll call now waits on EM

	cmd := exec.Command(os.Args[0])
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.Env = append(os.Environ(), childEnv+"=1",
		"SLACK_BOT_TOKEN=xoxb-child", "SLACK_SIGNING_SECRET=child-secret", "SLACK_API_URL="+sl.APIURL(),
		"EM_URL="+emSrv.URL+"/api/", "EM_USERNAME=svc", "EM_PASSWORD=pw", "DB_PATH="+path,
		"APPROVERS=U0APP", "LISTEN_ADDR=127.0.0.1:0", "POLL_SCHEDULE=@every 1h", "LOG_FORMAT=json")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()

	// The boot-time poll cycle looks for the failovers' restore sessions (their tasks belong to
	// the seeding's logon session, so the child never reads them); signal once EM has received
	// one of its calls.
	deadline := time.After(20 * time.Second)
	for sim.Count(http.MethodGet, "/query") == 0 {
		select {
		case err := <-done:
			t.Fatalf("the bot exited before polling: %v\n%s", err, stderr.String())
		case <-deadline:
			t.Fatalf("no poll reached EM\n%s", stderr.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, stderr.String())
		}
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("the bot did not stop within 30 s of SIGTERM\n%s", stderr.String())
	}
	if !strings.Contains(stderr.String(), "failover-bot stopped") {
		t.Errorf("no clean-stop log line:\n%s", stderr.String())
	}

	st, err = store.Open(path, store.Options{LockTimeout: time.Second})
	if err != nil {
		t.Fatalf("reopen after shutdown: %v", err)
	}
	defer st.Close()
	if err := st.Verify(context.Background()); err != nil {
		t.Fatalf("audit chain after shutdown: %v", err)
	}
	active, err := st.Active(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 5; i++ {
		r, err := st.Get(context.Background(), "FO-"+string(rune('0'+i)))
		if err != nil {
			t.Fatal(err)
		}
		if r.State != store.Running || r.Items[0].TaskID == "" {
			t.Errorf("%s is %s (task %q) after shutdown, want still running with its task", r.ID, r.State, r.Items[0].TaskID)
		}
	}
	if len(active) != 5 {
		t.Errorf("%d active after shutdown, want 5", len(active))
	}
	if got := sim.Count(http.MethodPost, "action=failover"); got != 5 {
		t.Errorf("EM received %d failovers, want the 5 the test started (none from the bot)", got)
	}
}

// wantInOrder fails unless every one of wants appears in got, in that order.
func wantInOrder(t *testing.T, what, got string, wants []string) {
	t.Helper()
	rest := got
	for _, w := range wants {
		i := strings.Index(rest, w)
		if i < 0 {
			t.Fatalf("%s lacks %q (in order):\n%s", what, w, got)
		}
		rest = rest[i+len(w):]
	}
}
