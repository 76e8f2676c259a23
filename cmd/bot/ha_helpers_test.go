package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"

	"github.com/failover-bot/failover-bot/bot"
	"github.com/failover-bot/failover-bot/bot/core"
	"github.com/failover-bot/failover-bot/bot/slackfake"
	"github.com/failover-bot/failover-bot/emapi/emsim"
	"github.com/failover-bot/failover-bot/store"
	"github.com/failover-bot/failover-bot/store/etcdtest"
	"github.com/failover-bot/failover-bot/store/failover/fakeclock"
)

// The settings every HA test's instances run with: a lease short enough that a takeover is
// quick, and a poll every second, so a takeover is done within haTTL + haPoll.
const (
	haTTL    = 2 * time.Second
	haPoll   = time.Second
	haPrefix = "/failover-bot-ha/"
	// haSlack is what a takeover may take beyond haTTL + haPoll on a loaded 2-core CI machine
	// running the race detector: etcd's lease expiry runs every 500 ms, the standby's campaign
	// answers through a watch, and the machine may be busy with other tests.
	haSlack = 3 * time.Second
)

// haInventory is the HA tests' site: CDP-Big with 50 VMs for the takeover under load, and two
// small replicas for the tests that need a second, later piece of work.
func haInventory() emsim.Inventory {
	replica := func(r int, name string, n int) emsim.Replica {
		rep := emsim.Replica{ID: fmt.Sprintf("5a1e0000-0000-4000-8000-%012d", r), Name: name, PolicyName: "CDP Policy " + name}
		for i := range n {
			rep.VMs = append(rep.VMs, emsim.VM{ID: fmt.Sprintf("5a1e%04d-0000-4000-8000-%012d", r, i), Name: fmt.Sprintf("%s-vm%02d", strings.ToLower(strings.TrimPrefix(name, "CDP-")), i)})
		}
		return rep
	}
	return emsim.Inventory{Replicas: []emsim.Replica{replica(1, "CDP-Big", 50), replica(2, "CDP-Small", 6), replica(3, "CDP-Late", 4)}}
}

// emGate stands in front of the EM simulator and can hold the answers of chosen requests: the
// simulator serves a held request in full (a held failover POST starts the failover) and the
// answer waits until Release, as an answer does that dies with the process waiting for it, or
// that a slow EM gives late. Unlike the simulator's DelayResponses, which takes whatever
// requests come next, it holds only the requests it is told to, so the poller's GETs cannot use
// up the fault.
type emGate struct {
	sim *emsim.Server

	mu      sync.Mutex
	match   func(*http.Request) bool // which requests Hold is about
	skip    int                      // matching requests still let through before holding starts
	hold    int                      // matching requests still to hold
	held    int                      // matching requests held so far
	release chan struct{}            // closed by Release
	changed chan struct{}            // closed and replaced when held changes
}

// failoverPOST matches a failover POST.
func failoverPOST(r *http.Request) bool {
	return r.Method == http.MethodPost && strings.Contains(r.URL.RawQuery, "action=failover")
}

// restorePoints matches a pre-flight's read of a VM's restore points.
func restorePoints(r *http.Request) bool {
	return r.Method == http.MethodPost && strings.Contains(r.URL.RawQuery, "action=intervals")
}

func (g *emGate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	holdThis := false
	if g.match != nil && g.match(r) {
		switch {
		case g.skip > 0:
			g.skip--
		case g.hold > 0:
			g.hold--
			holdThis = true
		}
	}
	release := g.release
	g.mu.Unlock()
	if !holdThis {
		g.sim.ServeHTTP(w, r)
		return
	}
	rec := httptest.NewRecorder()
	g.sim.ServeHTTP(rec, r)
	g.mu.Lock()
	g.held++
	close(g.changed)
	g.changed = make(chan struct{})
	g.mu.Unlock()
	select {
	case <-release:
	case <-r.Context().Done(): // the bot died waiting
		return
	}
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())
}

// Hold lets skip more requests that match through and holds the answers of the n after them.
func (g *emGate) Hold(match func(*http.Request) bool, skip, n int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.match, g.skip, g.hold, g.held, g.release = match, skip, n, 0, make(chan struct{})
}

// Release sends the held answers and holds nothing more.
func (g *emGate) Release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.match, g.skip, g.hold = nil, 0, 0
	select {
	case <-g.release:
	default:
		close(g.release)
	}
}

// WaitHeld waits until n answers are held, failing t after within.
func (g *emGate) WaitHeld(t *testing.T, n int, within time.Duration, logs func() string) {
	t.Helper()
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	for {
		g.mu.Lock()
		held, changed := g.held, g.changed
		g.mu.Unlock()
		if held >= n {
			return
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("%d answers held after %v, want %d\n%s", held, within, n, logs())
		}
	}
}

// haRig is what an HA test runs: its own etcd, the EM simulator behind a gate on a fake clock,
// the Slack fake, and bot instances sharing one ETCD_PREFIX, each on its own port.
type haRig struct {
	t     *testing.T
	etcd  *etcdtest.Cluster
	clock *fakeclock.Clock
	sim   *emsim.Server
	gate  *emGate
	sl    *slackfake.Server
	env   []string

	bots []*haBot
	st   *store.Etcd // the test's own view of the store, opened on first use
}

// haBot is one instance; exited says its process has been waited for.
type haBot struct {
	*botProcess
	name   string // "bot1", "bot2", … in start order
	exited bool
	paused bool
}

// newHARig starts a single-member etcd, the EM simulator (failovers run 10 minutes on the fake
// clock) and the Slack fake, and prepares the instances' environment; extra adds settings.
func newHARig(t *testing.T, extra ...string) *haRig {
	t.Helper()
	r := &haRig{t: t, etcd: etcdtest.Start(t)}
	r.clock = fakeclock.New(time.Now().UTC())
	r.sim = emsim.New(emsim.Config{Username: "svc", Password: "pw", Now: r.clock.Now}, haInventory())
	r.sim.SetDefaultScript(emsim.Script{Running: 10 * time.Minute, Collect: time.Minute})
	r.gate = &emGate{sim: r.sim, release: make(chan struct{}), changed: make(chan struct{})}
	srv := httptest.NewServer(r.gate)
	t.Cleanup(srv.Close)
	t.Cleanup(r.gate.Release) // before srv.Close: held answers must not keep Close waiting
	sl, _, env := crashSetup(t, srv.URL)
	r.sl = sl
	for _, kv := range env {
		if !strings.HasPrefix(kv, "DB_PATH=") {
			r.env = append(r.env, kv)
		}
	}
	r.env = append(r.env, "STORE=etcd", "ETCD_ENDPOINTS="+strings.Join(r.etcd.Endpoints(), ","), "ETCD_PREFIX="+haPrefix,
		"LEADER_TTL="+haTTL.String(), "ETCD_DIAL_TIMEOUT=1s", fmt.Sprintf("POLL_SCHEDULE=@every %v", haPoll))
	r.env = append(r.env, extra...)
	t.Cleanup(r.stopAll)
	return r
}

// start starts one more instance.
func (r *haRig) start() *haBot {
	r.t.Helper()
	b := &haBot{botProcess: startBot(r.t, r.env), name: fmt.Sprintf("bot%d", len(r.bots)+1)}
	r.bots = append(r.bots, b)
	return b
}

// stopAll kills every instance still running (the test's cleanup).
func (r *haRig) stopAll() {
	for _, b := range r.bots {
		if !b.exited {
			b.kill()
		}
	}
}

// kill is kill -9 of b.
func (b *haBot) kill() {
	if b.exited {
		return
	}
	b.botProcess.kill()
	b.exited = true
}

// term stops b with SIGTERM, failing the test if it does not exit cleanly.
func (b *haBot) term(within time.Duration) {
	b.t.Helper()
	b.botProcess.term(within)
	b.exited = true
}

// pause is SIGSTOP: the process holds its sockets but runs nothing, like a hung machine.
func (b *haBot) pause() {
	b.t.Helper()
	if err := b.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		b.t.Fatalf("SIGSTOP %s: %v", b.name, err)
	}
	b.paused = true
}

// resume is SIGCONT.
func (b *haBot) resume() {
	b.t.Helper()
	if err := b.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		b.t.Fatalf("SIGCONT %s: %v", b.name, err)
	}
	b.paused = false
}

// role asks b's /healthz which part it plays: "leader", "standby", or "" when it does not
// answer within a second (killed, paused).
func (b *haBot) role() string {
	if b.exited || b.paused {
		return ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, b.url+"/healthz", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	var h struct{ Status, Role string }
	if json.NewDecoder(resp.Body).Decode(&h) != nil {
		return ""
	}
	return h.Role
}

// live lists the instances that run and are not paused.
func (r *haRig) live() []*haBot {
	var out []*haBot
	for _, b := range r.bots {
		if !b.exited && !b.paused {
			out = append(out, b)
		}
	}
	return out
}

// waitLeader waits until exactly one live instance says it leads and every other live one
// says standby, and returns the leader.
func (r *haRig) waitLeader(within time.Duration) *haBot {
	r.t.Helper()
	var leader *haBot
	waitUntil(r.t, "exactly one leader among "+r.names(r.live()), within, func() bool {
		leader = nil
		for _, b := range r.live() {
			switch b.role() {
			case "leader":
				if leader != nil {
					return false
				}
				leader = b
			case "standby":
			default:
				return false
			}
		}
		return leader != nil
	}, r.logs)
	return leader
}

// takeover waits for one of the live instances to say it leads (the others may not have
// noticed anything yet) and returns it with the time since from.
func (r *haRig) takeover(from time.Time, within time.Duration) (*haBot, time.Duration) {
	r.t.Helper()
	var leader *haBot
	var took time.Duration
	waitUntil(r.t, "a standby to take over", within, func() bool {
		for _, b := range r.live() {
			if b.role() == "leader" {
				leader, took = b, time.Since(from)
				return true
			}
		}
		return false
	}, r.logs)
	return leader, took
}

func (r *haRig) names(bs []*haBot) string {
	var n []string
	for _, b := range bs {
		n = append(n, b.name)
	}
	return strings.Join(n, ", ")
}

// logs is every instance's output so far, each under its name.
func (r *haRig) logs() string {
	var s strings.Builder
	for _, b := range r.bots {
		fmt.Fprintf(&s, "--- %s ---\n%s", b.name, b.stderr.String())
	}
	return s.String()
}

// store is the test's own client of the instances' store; it never campaigns and never
// writes.
func (r *haRig) store() *store.Etcd {
	r.t.Helper()
	if r.st != nil {
		return r.st
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// A short reconnection backoff, so that the test finds etcd again at once after an outage.
	st, err := store.OpenEtcd(ctx, clientv3.Config{Endpoints: r.etcd.Endpoints(), DialTimeout: etcdtest.DialTimeout,
		MaxCallSendMsgSize: etcdtest.MaxCallSendMsgSize, DialOptions: []grpc.DialOption{grpc.WithConnectParams(grpc.ConnectParams{
			Backoff: backoff.Config{BaseDelay: 50 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second}, MinConnectTimeout: etcdtest.DialTimeout})},
	}, haPrefix, store.Options{})
	if err != nil {
		r.t.Fatalf("opening the instances' etcd store from the test: %v", err)
	}
	r.t.Cleanup(func() { st.Close() })
	r.st = st
	return st
}

// request reads id from the store.
func (r *haRig) request(id string) *store.Request {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := r.store().Get(ctx, id)
	if err != nil {
		r.t.Fatalf("reading %s: %v", id, err)
	}
	return req
}

// finished reports whether id succeeded and its thread says so: the summary of a request of
// several items, the outcome of a request of one.
func (r *haRig) finished(id string) bool {
	req := r.request(id)
	if req.State != store.Succeeded || req.MessageTS == "" {
		return false
	}
	thread := threadOf(r.sl, req.MessageTS)
	if len(req.Items) == 1 {
		return strings.Contains(thread, "Failover succeeded")
	}
	return strings.Contains(thread, id+" finished: succeeded")
}

// failoverPOSTs counts the failover POSTs EM received, per VM path.
func (r *haRig) failoverPOSTs() map[string]int {
	perVM := map[string]int{}
	for _, rq := range r.sim.Requests() {
		if rq.Method == http.MethodPost && strings.Contains(rq.RawQuery, "action=failover") {
			perVM[rq.Path]++
		}
	}
	return perVM
}

// checkOnePOSTPerVM fails unless EM received exactly one failover POST for each of want VMs.
func (r *haRig) checkOnePOSTPerVM(want int) {
	r.t.Helper()
	perVM := r.failoverPOSTs()
	if len(perVM) != want {
		r.t.Errorf("failover POSTs went to %d VMs, want %d", len(perVM), want)
	}
	for vm, n := range perVM {
		if n != 1 {
			r.t.Errorf("%s got %d failover POSTs, want exactly 1", vm, n)
		}
	}
}

var cardSuffix = regexp.MustCompile(` — <[^|>]+\|card>$`)

// auditDelivery compares the audit channel with the audit log: missing lists the events meant
// for the channel that it does not show; repeats counts the channel's messages that repeat a
// line an earlier message already showed (what a leader that died between posting and moving
// its cursor leaves behind: the next leader posts that batch again).
func (r *haRig) auditDelivery() (missing []string, repeats, events int) {
	r.t.Helper()
	want := map[string]int{}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := r.store().Events(ctx, 0, time.Time{}, func(e store.Event) error {
		if core.ShowInAuditChannel(e) {
			want[core.AuditLine(e, "")]++
			events++
		}
		return nil
	})
	if err != nil {
		r.t.Fatalf("reading the audit log: %v", err)
	}
	seen := map[string]int{}
	for _, m := range r.sl.Posted(crashAudit) {
		repeat := false
		for _, line := range strings.Split(m.Text, "\n") {
			line = cardSuffix.ReplaceAllString(line, "")
			seen[line]++
			if seen[line] > want[line] {
				repeat = true
			}
		}
		if repeat {
			repeats++
		}
	}
	for line, n := range want {
		if seen[line] < n {
			missing = append(missing, line)
		}
	}
	slices.Sort(missing)
	return missing, repeats, events
}

// threadRepeats counts the messages in the thread of ts that repeat an earlier one word for word.
func (r *haRig) threadRepeats(ts string) (repeats int, lines []string) {
	seen := map[string]bool{}
	for _, m := range r.sl.Thread(crashChannel, ts) {
		if seen[m.Text] {
			repeats++
			lines = append(lines, m.Text)
		}
		seen[m.Text] = true
	}
	return repeats, lines
}

// checkDelivered waits until the audit channel shows every event of the audit log meant for it,
// then checks that at most maxRepeats of its messages, and of id's thread's messages, repeat
// an earlier one.
func (r *haRig) checkDelivered(id string, maxRepeats int) {
	r.t.Helper()
	var missing []string
	deadline := time.Now().Add(60 * time.Second)
	for {
		missing, _, _ = r.auditDelivery()
		if len(missing) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond) // the audit channel is another process's work: nothing to wait on
	}
	missing, repeats, events := r.auditDelivery()
	for _, l := range missing {
		r.t.Errorf("the audit channel lacks %q", l)
	}
	if repeats > maxRepeats {
		r.t.Errorf("%d audit channel messages repeat lines already posted, want at most %d (one per crash)\n%s", repeats, maxRepeats, auditText(r.sl))
	}
	req := r.request(id)
	treps, tlines := r.threadRepeats(req.MessageTS)
	if treps > maxRepeats {
		r.t.Errorf("%d messages of %s's thread repeat an earlier one, want at most %d (one per crash): %q", treps, id, maxRepeats, tlines)
	}
	r.t.Logf("%s: %d audit events shown in %d audit channel messages, %d of them repeats; %d thread messages, %d repeats %q (at most %d allowed)",
		id, events, len(r.sl.Posted(crashAudit)), repeats, len(r.sl.Thread(crashChannel, req.MessageTS)), treps, tlines, maxRepeats)
}

// verifyChain checks the audit log's hash chain in etcd.
func (r *haRig) verifyChain() {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.store().Verify(ctx); err != nil {
		r.t.Errorf("audit chain in etcd: %v", err)
	}
}

var recordedID = regexp.MustCompile(`Recorded \*(FO-\d+)\*`)

// recorded returns the ID the bot recorded for a command answered with ack, waiting for the
// answer at the response_url resp when the pre-flight outlasted the acknowledgement.
func (r *haRig) recorded(ack, resp string) string {
	r.t.Helper()
	if m := recordedID.FindStringSubmatch(ack); m != nil {
		return m[1]
	}
	if !strings.Contains(ack, "Checking") {
		r.t.Fatalf("the command was answered %q, want it recorded", ack)
	}
	var id string
	waitUntil(r.t, "the request recorded (answer at the response_url)", 60*time.Second, func() bool {
		for _, text := range r.responses(resp) {
			if m := recordedID.FindStringSubmatch(text); m != nil {
				id = m[1]
				return true
			}
		}
		return false
	}, r.logs)
	return id
}

// signedCommand is one slash command as Slack sends it: a body and its signature headers, which a
// test may deliver more than once, to more than one instance.
type signedCommand struct {
	body, ts, sig string
}

// slashCommand signs /failover text from the requester, answered at the response_url named resp.
func (r *haRig) slashCommand(text, resp string) signedCommand {
	triggers++
	body := url.Values{"team_id": {slackfake.TeamID}, "channel_id": {crashChannel},
		"user_id": {crashUser}, "command": {"/failover"}, "text": {text},
		"response_url": {r.sl.ResponseURL(resp)}, "trigger_id": {fmt.Sprintf("ha-cmd-%d", triggers)}}.Encode()
	ts, sig := bot.Sign(crashSecret, time.Now(), []byte(body))
	return signedCommand{body: body, ts: ts, sig: sig}
}

// send posts c to b's /slack/commands and returns the answer's text.
func (b *haBot) send(c signedCommand) string {
	b.t.Helper()
	status, text, err := b.trySend(c)
	if err != nil {
		b.t.Fatalf("POST /slack/commands to %s: %v\n%s", b.name, err, b.stderr.String())
	}
	if status != http.StatusOK {
		b.t.Fatalf("POST /slack/commands to %s: %d %s", b.name, status, text)
	}
	return text
}

// trySend posts c to b's /slack/commands and returns the status and the answer's text.
func (b *haBot) trySend(c signedCommand) (int, string, error) {
	req, _ := http.NewRequest(http.MethodPost, b.url+"/slack/commands", strings.NewReader(c.body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set(bot.HeaderSlackTimestamp, c.ts)
	req.Header.Set(bot.HeaderSlackSignature, c.sig)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var answer struct{ Text string }
	if resp.StatusCode == http.StatusOK && json.Unmarshal(raw, &answer) == nil {
		return resp.StatusCode, answer.Text, nil
	}
	return resp.StatusCode, string(raw), nil
}

// responses returns the texts the bot sent to the response_url named resp.
func (r *haRig) responses(resp string) []string {
	var out []string
	for _, c := range r.sl.CallsTo("response_url:" + resp) {
		if s, ok := c.JSON["text"].(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// unattributed reports whether a change of key under the prefix may be made by any instance
// at any time: the liveness probe's scratch key (every /healthz) and the election's keys (every
// instance campaigns, a standby too).
func unattributed(key string) bool {
	return key == haPrefix+"b/health/probe" || strings.HasPrefix(key, haPrefix+store.EtcdLeaderPart)
}

// quiet waits until no key under the prefix but the unattributed ones has changed for quietFor
// (watching etcd), and returns etcd's revision then.
func (r *haRig) quiet(quietFor, within time.Duration) int64 {
	r.t.Helper()
	cli := r.etcd.Client(r.t)
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	wch := cli.Watch(ctx, haPrefix, clientv3.WithPrefix())
	timer := time.NewTimer(quietFor)
	defer timer.Stop()
	last := ""
	for {
		select {
		case wr, ok := <-wch:
			if !ok || wr.Err() != nil {
				r.t.Fatalf("the store did not become quiet within %v (last change %s): %v\n%s", within, last, wr.Err(), r.logs())
			}
			for _, ev := range wr.Events {
				if !unattributed(string(ev.Kv.Key)) {
					last = string(ev.Kv.Key)
					timer.Reset(quietFor)
				}
			}
		case <-timer.C:
			// Any read answers with etcd's current revision in its header.
			resp, err := cli.Get(ctx, haPrefix+"b/meta/", clientv3.WithPrefix(), clientv3.WithCountOnly())
			if err != nil {
				r.t.Fatal(err)
			}
			return resp.Header.Revision
		}
	}
}

// changesSince lists the changes (put or delete, and key) etcd made under the prefix after
// revision rev, the unattributed ones left out.
func (r *haRig) changesSince(rev int64) []string {
	r.t.Helper()
	cli := r.etcd.Client(r.t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := cli.Get(ctx, haPrefix+"b/meta/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		r.t.Fatal(err)
	}
	now := resp.Header.Revision
	var out []string
	if now == rev {
		return nil
	}
	for wr := range cli.Watch(ctx, haPrefix, clientv3.WithPrefix(), clientv3.WithRev(rev+1)) {
		if err := wr.Err(); err != nil {
			r.t.Fatalf("reading etcd's history after revision %d: %v", rev, err)
		}
		for _, ev := range wr.Events {
			if ev.Kv.ModRevision > now {
				return out
			}
			if !unattributed(string(ev.Kv.Key)) {
				out = append(out, fmt.Sprintf("%s %s (revision %d)", ev.Type, ev.Kv.Key, ev.Kv.ModRevision))
			}
			if ev.Kv.ModRevision == now {
				return out
			}
		}
	}
	r.t.Fatalf("etcd's history after revision %d ended early", rev)
	return nil
}
