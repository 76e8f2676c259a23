package main

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/slack-go/slack"
	bolt "go.etcd.io/bbolt"

	"github.com/failover-bot/failover-bot/bot/console"
	"github.com/failover-bot/failover-bot/bot/slackfake"
	"github.com/failover-bot/failover-bot/emapi/emsim"
	"github.com/failover-bot/failover-bot/store"
)

// TestConsoleReplicaTable drives the README's demo of many: a replica less one VM under one
// approval, its card's item table following the failovers to the outcome in the demo site.
func TestConsoleReplicaTable(t *testing.T) {
	script := strings.Join([]string{
		`/failover replica CDP-Web --except web04 --reason "site A lost power"`,
		"/as bob",
		"approve FO-1",
	}, "\n")
	code, out, errs := runCLI(t, envOf(), script, "-console")
	if code != 0 {
		t.Fatalf("exit %d; stderr:\n%s\nstdout:\n%s", code, errs, out)
	}
	steps := []string{
		"Embedded Enterprise Manager simulator",
		"CDP-Web      web01, web02, web03, web04, web05, web06\n",
		"CDP-Crm      crm-app01, crm-db01, crm-web01\n",
		"vApps        erp-vapp, hr-vapp\n",
		"@alice> /failover replica CDP-Web --except web04",
		"Recorded FO-1: fail over 5 VMs of CDP-Web",
		"== Failover request FO-1 ==",
		"Asked for: replica CDP-Web except web04",
		"[Approve] [Reject]",
		"@bob> approve FO-1",
		"Items (5): 5 running\n",
		"\n        web06            running",
		"All 5 failovers succeeded\n      Items (5): 5 succeeded\n        web01            succeeded",
	}
	wantInOrder(t, "transcript", out, steps)
	if strings.Contains(out, "        web04 ") {
		t.Errorf("the item table lists web04, which the request leaves out:\n%s", out)
	}
	if n := strings.Count(out, "sending the failover to Enterprise Manager"); n != 5 {
		t.Errorf("%d failovers sent, want 5:\n%s", n, out)
	}
}

// consoleProcess is the real binary in console mode (this test binary re-executed as main),
// typed into through a pipe that stays open, as a person at a terminal would.
type consoleProcess struct {
	t              *testing.T
	cmd            *exec.Cmd
	stdin          io.WriteCloser
	stdout, stderr *syncBuffer
	done           chan error
	exited         bool
}

func startConsole(t *testing.T, env ...string) *consoleProcess {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a process")
	}
	p := &consoleProcess{t: t, stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan error, 1)}
	p.cmd = exec.Command(os.Args[0], "-console")
	p.cmd.Env = append(os.Environ(), append([]string{childEnv + "=1", "SHUTDOWN_TIMEOUT=10s"}, env...)...)
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	var err error
	if p.stdin, err = p.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		if !p.exited {
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
	p.waitOut("failover-bot console. You are @alice", 30*time.Second)
	return p
}

func (p *consoleProcess) logs() string {
	return "stdout:\n" + p.stdout.String() + "\nstderr:\n" + p.stderr.String()
}

// typeLine types one line into the console.
func (p *consoleProcess) typeLine(line string) {
	p.t.Helper()
	if _, err := io.WriteString(p.stdin, line+"\n"); err != nil {
		p.t.Fatalf("typing %q: %v\n%s", line, err, p.logs())
	}
}

func (p *consoleProcess) waitOut(want string, within time.Duration) {
	p.t.Helper()
	waitUntil(p.t, fmt.Sprintf("%q on the console", want), within, func() bool { return strings.Contains(p.stdout.String(), want) }, p.logs)
}

// exit waits for the process to end within d and returns its exit code.
func (p *consoleProcess) exit(d time.Duration) int {
	p.t.Helper()
	select {
	case err := <-p.done:
		p.exited = true
		var ee *exec.ExitError
		switch {
		case err == nil:
			return 0
		case errors.As(err, &ee):
			return ee.ExitCode()
		default:
			p.t.Fatalf("waiting for the console: %v", err)
		}
	case <-time.After(d):
		p.t.Fatalf("the console did not exit within %s\n%s", d, p.logs())
	}
	return -1
}

// TestConsoleStopsOnSignal: SIGTERM or SIGINT stops a console waiting for input at once (it does
// not wait for a line), closes the bot cleanly (the store is released, its chain verifies, the
// running failover is kept, sent once) and exits 0, as serve does.
func TestConsoleStopsOnSignal(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			db := filepath.Join(t.TempDir(), "console.db")
			p := startConsole(t, "DB_PATH="+db)
			for _, line := range []string{"/as bob", `/failover vm CDP-Finance fin-db01 --reason "drill"`, "/as carol", "approve FO-1"} {
				p.typeLine(line)
			}
			p.waitOut("accepted the failover", 30*time.Second)
			if err := p.cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			if code := p.exit(15 * time.Second); code != 0 {
				t.Fatalf("exit %d after %s, want 0\n%s", code, sig, p.logs())
			}
			mustContain(t, "the console", p.stdout.String(), "stopping (signal)")
			mustContain(t, "the log", p.stderr.String(), "shutting down gracefully")

			st, err := store.Open(db, store.Options{LockTimeout: time.Second})
			if err != nil {
				t.Fatalf("the store after %s: %v", sig, err)
			}
			defer st.Close()
			if err := st.Verify(t.Context()); err != nil {
				t.Fatalf("audit chain after %s: %v", sig, err)
			}
			r, err := st.Get(t.Context(), "FO-1")
			if err != nil {
				t.Fatal(err)
			}
			switch r.State {
			case store.Running:
				mustContain(t, "the console", p.stdout.String(), "stopping (signal): 1 failover is still running; the store (DB_PATH) keeps it for the next start.")
			case store.Succeeded: // a slow machine: it finished before the signal
			default:
				t.Fatalf("FO-1 is %s after %s, want running (or succeeded)", r.State, sig)
			}
			submitted := 0
			_ = st.Events(t.Context(), 0, time.Time{}, func(e store.Event) error {
				if e.Action == "submitted" {
					submitted++
				}
				return nil
			})
			if submitted != 1 {
				t.Errorf("%d failovers submitted, want 1", submitted)
			}
		})
	}
}

// TestConsoleServesAdminSocket: a console on a DB_PATH store serves the admin socket as the bot
// does, says so in its banner, and failover-bot backup, audit verify and audit export work while
// it runs; the export names the person who typed the request.
func TestConsoleServesAdminSocket(t *testing.T) {
	db := filepath.Join(t.TempDir(), "console.db")
	p := startConsole(t, "DB_PATH="+db)
	mustContain(t, "the banner", p.stdout.String(), "Store: "+db+" (DB_PATH), kept after quit.", "failover-bot backup <file>, failover-bot audit verify and failover-bot audit export work",
		"admin socket "+adminSocketPath(db))
	p.typeLine(`/failover vm CDP-Finance fin-db01 --reason "drill"`)
	p.waitOut("Recorded FO-1", 30*time.Second)

	lookup := envOf("DB_PATH", db)
	dst := filepath.Join(t.TempDir(), "copy.db")
	if code, out, errs := runCLI(t, lookup, "", "backup", dst); code != 0 || !strings.Contains(out, dst) {
		t.Fatalf("backup while the console runs: exit %d, %q, %s", code, out, errs)
	}
	cp, err := store.Open(dst, store.Options{LockTimeout: time.Second})
	if err != nil {
		t.Fatalf("the copy does not open: %v", err)
	}
	if _, err := cp.Get(t.Context(), "FO-1"); err != nil {
		t.Errorf("the copy lacks FO-1: %v", err)
	}
	if err := cp.Verify(t.Context()); err != nil {
		t.Errorf("the copy's chain: %v", err)
	}
	cp.Close()
	if code, out, errs := runCLI(t, lookup, "", "audit", "verify"); code != 0 || !strings.Contains(out, "audit log intact") {
		t.Fatalf("audit verify while the console runs: exit %d, %q, %s", code, out, errs)
	}
	code, out, errs := runCLI(t, lookup, "", "audit", "export")
	if code != 0 {
		t.Fatalf("audit export while the console runs: exit %d: %s", code, errs)
	}
	var first exportEvent
	if err := json.Unmarshal([]byte(strings.SplitN(out, "\n", 2)[0]), &first); err != nil {
		t.Fatal(err)
	}
	if first.Action != "requested" || first.Actor != "U0ALICE00" || first.ActorName != "alice" {
		t.Errorf("first event %+v, want requested by U0ALICE00 named alice", first)
	}

	p.typeLine("quit") // FO-1 waits for approval: nothing runs, quit quits
	if code := p.exit(15 * time.Second); code != 0 {
		t.Fatalf("exit %d after quit\n%s", code, p.logs())
	}
}

// TestConsoleQuitOnTemporaryStore: without DB_PATH the banner says the store is temporary, and
// quit while a failover runs warns and does not quit; a second quit does.
func TestConsoleQuitOnTemporaryStore(t *testing.T) {
	start := []string{"/as bob", `/failover vm CDP-Finance fin-db01 --reason "drill"`, "/as carol", "approve FO-1"}
	tests := []struct {
		name    string
		then    []string
		want    []string
		notWant string
	}{
		{"one quit: warned, and the script goes on to the outcome", []string{"quit"},
			[]string{"1 failover is still running, and this console's store is temporary", "Type quit again (or quit!)", "Failover succeeded"}, ""},
		{"quit twice: quits", []string{"quit", "quit"},
			[]string{"1 failover is still running, and this console's store is temporary"}, "Failover succeeded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errs := runCLI(t, envOf(), strings.Join(append(append([]string(nil), start...), tt.then...), "\n"), "-console")
			if code != 0 {
				t.Fatalf("exit %d; stderr:\n%s\nstdout:\n%s", code, errs, out)
			}
			wantInOrder(t, "transcript", out, append([]string{"Store: temporary, deleted when the console ends. Set DB_PATH=<file> to keep it", "accepted the failover"}, tt.want...))
			if tt.notWant != "" && strings.Contains(out, tt.notWant) {
				t.Errorf("the transcript has %q:\n%s", tt.notWant, out)
			}
		})
	}
}

// brokenChainStore writes a store at path with three pending requests (three audit events) and
// alters the second event, as someone editing the file would.
func brokenChainStore(t *testing.T, path, channel string) {
	t.Helper()
	st, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		_, err := st.Create(t.Context(), store.NewRequest{Kind: store.KindVM, Intent: store.IntentLatest, Reason: "drill",
			Target:    store.Target{ReplicaID: "r-old", ReplicaName: "CDP-Old", ID: fmt.Sprint("v-old-", i), Name: fmt.Sprint("old0", i)},
			Requester: "U0ALICE00", Channel: channel, TTL: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("audit"))
		k := []byte{0, 0, 0, 0, 0, 0, 0, 2}
		v := append([]byte(nil), b.Get(k)...)
		v[len(v)/2] ^= 0x20
		return b.Put(k, v)
	}); err != nil {
		t.Fatal(err)
	}
}

// chainWarning is the start-up log line about a broken chain: it names the first bad event and
// how to investigate.
var chainWarning = regexp.MustCompile(`(?m)^.*WARN.*hash chain does not verify at event 2 .*failover-bot audit verify.*$`)

// TestConsoleWarnsOnBrokenAuditChain: a console on a store whose audit chain is broken logs one
// WARN line naming the first bad event and saying how to investigate, and keeps working.
func TestConsoleWarnsOnBrokenAuditChain(t *testing.T) {
	db := filepath.Join(t.TempDir(), "console.db")
	brokenChainStore(t, db, console.Channel)
	p := startConsole(t, "DB_PATH="+db)
	waitUntil(t, "the chain warning", 30*time.Second, func() bool { return chainWarning.MatchString(p.stderr.String()) }, p.logs)
	if n := len(chainWarning.FindAllString(p.stderr.String(), -1)); n != 1 {
		t.Errorf("%d chain warnings, want 1:\n%s", n, p.stderr.String())
	}
	p.typeLine(`/failover vm CDP-Finance fin-db01 --reason "drill"`)
	p.waitOut("Recorded FO-4", 30*time.Second)
	p.typeLine("quit")
	if code := p.exit(15 * time.Second); code != 0 {
		t.Fatalf("exit %d after quit\n%s", code, p.logs())
	}
}

// TestServeWarnsOnBrokenAuditChain: the bot serving Slack does the same at start: one WARN line
// (JSON, with the event's number), and it goes on serving.
func TestServeWarnsOnBrokenAuditChain(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a process")
	}
	_, _, emURL := crashEM(t, emsim.DemoInventory())
	sl, path, env := crashSetup(t, emURL)
	brokenChainStore(t, path, crashChannel)
	p := startBot(t, env)
	defer p.term(30 * time.Second)
	waitUntil(t, "the chain warning", 30*time.Second, func() bool { return chainWarning.MatchString(p.stderr.String()) }, p.stderr.String)
	line := chainWarning.FindString(p.stderr.String())
	var rec struct {
		Level  string `json:"level"`
		Event  uint64 `json:"event"`
		Reason string `json:"reason"`
	}
	if err := json.Unmarshal([]byte(line), &rec); err != nil || rec.Level != "WARN" || rec.Event != 2 || rec.Reason == "" {
		t.Errorf("warning %s decodes to %+v (%v), want WARN naming event 2 and why", line, rec, err)
	}
	mustContain(t, "the answer", p.command(sl, `vm CDP-Finance fin-db01 --reason "site A down"`), "Recorded *FO-4*")
}

// TestAuditExportNamesPeople drives the real binary through Slack's HTTP edge: the requester's
// name comes from the slash command's user_name, the approver's from users.info (which approval
// asks anyway), and audit export, run while the bot serves, prints both beside the IDs; the bot's
// own events carry none.
func TestAuditExportNamesPeople(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a process")
	}
	_, _, emURL := crashEM(t, emsim.DemoInventory())
	sl, path, env := crashSetup(t, emURL)
	approver := slack.User{ID: crashApprove, Name: "alex"}
	approver.Profile.DisplayName = "Alex Approver"
	sl.AddUser(approver)
	p := startBot(t, env)
	defer p.term(30 * time.Second)
	triggers++
	mustContain(t, "the answer", p.post("/slack/commands", url.Values{"team_id": {slackfake.TeamID}, "channel_id": {crashChannel},
		"user_id": {crashUser}, "user_name": {"rita.ops"}, "command": {"/failover"}, "text": {`vm CDP-Finance fin-db01 --reason "site A down"`},
		"response_url": {sl.ResponseURL("cmd")}, "trigger_id": {fmt.Sprintf("names-cmd-%d", triggers)}}), "Recorded *FO-1*")
	waitUntil(t, "FO-1's card", 20*time.Second, func() bool { return len(sl.LiveCards("FO-1")) == 1 }, p.stderr.String)
	p.approve(sl, "FO-1")
	waitUntil(t, "the approval in the audit channel", 20*time.Second, func() bool { return strings.Contains(auditText(sl), "FO-1 approved") }, p.stderr.String)

	code, out, errs := runCLI(t, envOf("DB_PATH", path), "", "audit", "export", "--format", "csv")
	if code != 0 {
		t.Fatalf("export while running: exit %d: %s", code, errs)
	}
	rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(rows[0], ","); got != "seq,time,actor,request_id,action,from,to,details,prev_hash,hash,actor_name" {
		t.Fatalf("header %s: the earlier columns must keep their places, actor_name last", got)
	}
	names := map[string]string{} // action -> actor (name)
	for _, r := range rows[1:] {
		names[r[4]] = r[2] + " (" + r[10] + ")"
	}
	for action, want := range map[string]string{"requested": crashUser + " (rita.ops)", "approved": crashApprove + " (Alex Approver)", "card-posted": "bot ()"} {
		if names[action] != want {
			t.Errorf("%s by %q, want %q", action, names[action], want)
		}
	}
}
