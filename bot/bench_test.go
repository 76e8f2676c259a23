package bot_test

// Benchmarks for the figures issue 4 asks for. Run them without -race, a few times each (the
// machine is shared), and take medians:
//
//	go test -run '^$' -bench 'Ack' -benchtime 3000x -count 3 ./bot/
//	go test -run '^$' -bench 'PollCycle' -benchtime 3x -count 3 ./bot/
//	go test -run '^$' -bench 'Memory100k' -benchtime 1x -count 3 ./bot/
//	go test -run '^$' -bench 'Active' -count 3 ./store/   (listing at 0/10k/100k finished)
//
// Every benchmark drives the real HTTP handlers, store, EM simulator and Slack fake through the
// end-to-end harness; only the "bare" baseline bypasses the bot.

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/failover-bot/failover-bot/bot"
	"github.com/failover-bot/failover-bot/emapi"
	"github.com/failover-bot/failover-bot/emapi/emsim"
	"github.com/failover-bot/failover-bot/store"
	"github.com/failover-bot/failover-bot/store/etcdtest"
	"github.com/failover-bot/failover-bot/store/failover/fakeclock"
)

// benchSenders is how many Slack requests are in flight at once in the ack benchmarks: a DR
// event where a whole team types /failover together.
const benchSenders = 50

// benchHTTPClient keeps a connection per sender alive, so the benchmark measures the handler and
// not TCP handshakes (http.DefaultClient keeps only two idle connections per host).
func benchHTTPClient(b *testing.B) *http.Client {
	tr := &http.Transport{MaxIdleConns: 2 * benchSenders, MaxIdleConnsPerHost: 2 * benchSenders}
	b.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// signedCommand is a slash command body with Slack's signature headers, signed once: every
// sender repeats the same bytes, so signing is not part of what is measured.
type signedCommand struct {
	url, body, ts, sig string
}

func newSignedCommand(baseURL string, now time.Time, text string, h *harness) signedCommand {
	return newSignedCommandN(baseURL, now, text, h, 0)
}

// newSignedCommandN is the n-th distinct invocation of a command: its own trigger_id, as Slack
// gives every invocation (the bot refuses a repeated one as a replay).
func newSignedCommandN(baseURL string, now time.Time, text string, h *harness, n int) signedCommand {
	responseURL := "https://hooks.slack.invalid/commands/bench"
	if h != nil {
		responseURL = h.slack.ResponseURL("bench")
	}
	body := url.Values{
		"team_id": {"T0FAKE"}, "channel_id": {Channel}, "user_id": {Requester}, "command": {"/failover"},
		"text": {text}, "response_url": {responseURL}, "trigger_id": {fmt.Sprintf("trig-bench-%d", n)},
	}.Encode()
	ts, sig := bot.Sign(secret, now, []byte(body))
	return signedCommand{url: baseURL + "/slack/commands", body: body, ts: ts, sig: sig}
}

// send posts the command once and returns the status and body.
func (c signedCommand) send(hc *http.Client) (int, string, error) {
	req, err := http.NewRequest(http.MethodPost, c.url, strings.NewReader(c.body))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set(bot.HeaderSlackTimestamp, c.ts)
	req.Header.Set(bot.HeaderSlackSignature, c.sig)
	resp, err := hc.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

// runSenders sends n requests from benchSenders goroutines, each waiting for its answer before
// the next (closed loop), and returns every request's latency. check validates each answer.
func runSenders(b *testing.B, hc *http.Client, n int, cmd signedCommand, check func(code int, body string) error) []time.Duration {
	b.Helper()
	return runSendersOf(b, hc, n, func(int) signedCommand { return cmd }, check)
}

// runSendersOf is runSenders with the i-th request's command from cmdOf (signed beforehand, so
// signing is not measured).
func runSendersOf(b *testing.B, hc *http.Client, n int, cmdOf func(i int) signedCommand, check func(code int, body string) error) []time.Duration {
	b.Helper()
	cmds := make([]signedCommand, n)
	for i := range cmds {
		cmds[i] = cmdOf(i)
	}
	var next atomic.Int64
	lat := make([][]time.Duration, benchSenders)
	var wg sync.WaitGroup
	var failed atomic.Bool
	for s := range benchSenders {
		wg.Go(func() {
			for i := next.Add(1); i <= int64(n) && !failed.Load(); i = next.Add(1) {
				start := time.Now()
				code, body, err := cmds[i-1].send(hc)
				lat[s] = append(lat[s], time.Since(start))
				if err == nil {
					err = check(code, body)
				}
				if err != nil {
					if failed.CompareAndSwap(false, true) {
						b.Errorf("sender %d: %v", s, err)
					}
					return
				}
			}
		})
	}
	wg.Wait()
	if failed.Load() {
		b.FailNow()
	}
	return slices.Concat(lat...)
}

// reportLatency reports nearest-rank percentiles in milliseconds.
func reportLatency(b *testing.B, lat []time.Duration) {
	b.Helper()
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	pct := func(q float64) time.Duration {
		i := int(q*float64(len(lat))+0.999999) - 1
		return lat[min(max(i, 0), len(lat)-1)]
	}
	b.ReportMetric(float64(pct(0.50))/1e6, "p50-ms")
	b.ReportMetric(float64(pct(0.99))/1e6, "p99-ms")
	b.ReportMetric(float64(lat[len(lat)-1])/1e6, "max-ms")
	b.ReportMetric(float64(len(lat))/b.Elapsed().Seconds(), "req/s")
}

func wantAnswer(wants ...string) func(int, string) error {
	return func(code int, body string) error {
		if code != http.StatusOK {
			return fmt.Errorf("status %d: %s", code, body)
		}
		for _, w := range wants {
			if !strings.Contains(body, w) {
				return fmt.Errorf("answer lacks %q: %s", w, body)
			}
		}
		return nil
	}
}

// BenchmarkAck measures how long Slack waits for the acknowledgement of a slash command with 50
// concurrent senders:
//
//   - bare: an http handler that only verifies the signature (bot.ReadVerified) and writes 200,
//     the floor for any handler on this machine;
//   - help: the bot's handler for a command that needs nothing but the parser;
//   - vm: a valid request, resolved through the (cached) inventory and stored durably (an fsynced
//     bbolt commit) before it is acknowledged; the card is posted in the background meanwhile.
//
// Targets: help p99 within 1.5x of bare; vm p99 within 2x of help.
func BenchmarkAck(b *testing.B) {
	b.Run("bare", func(b *testing.B) {
		now := time.Date(2026, 11, 23, 14, 0, 0, 0, time.UTC)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if _, err := bot.ReadVerified(r, secret, now, 1<<20); err != nil {
				http.Error(w, "invalid signature", http.StatusUnauthorized)
				return
			}
			w.WriteHeader(http.StatusOK)
		}))
		defer srv.Close()
		hc := benchHTTPClient(b)
		cmd := newSignedCommand(srv.URL, now, "help", nil)
		runSenders(b, hc, benchSenders, cmd, wantAnswer()) // open the connections
		b.ResetTimer()
		reportLatency(b, runSenders(b, hc, b.N, cmd, wantAnswer()))
	})
	b.Run("help", func(b *testing.B) {
		h := newHarness(b)
		hc := benchHTTPClient(b)
		cmd := newSignedCommand(h.srv.URL, h.clock.Now(), "help", h)
		runSenders(b, hc, benchSenders, cmd, wantAnswer("/failover vm"))
		b.ResetTimer()
		reportLatency(b, runSenders(b, hc, b.N, cmd, wantAnswer("/failover vm")))
	})
	b.Run("vm", func(b *testing.B) { benchAckVM(b) })
	// The same stored request on a three-member etcd cluster on loopback (STORE=etcd): the
	// acknowledgement waits for a Raft commit of the request instead of an fsync of the file.
	b.Run("vm-etcd3", func(b *testing.B) { benchAckVM(b, onEtcd3(b)) })
}

// onEtcd3 starts a three-member etcd cluster on loopback and puts the harness's store in it,
// under a prefix of its own.
func onEtcd3(b *testing.B) func(*harnessConfig) {
	b.Helper()
	c := etcdtest.Start(b, etcdtest.Members(3))
	return func(hc *harnessConfig) {
		hc.etcd, hc.etcdPrefix, hc.idleFor = c.Endpoints(), fmt.Sprintf("/bench-%d/", time.Now().UnixNano()), 10*time.Minute
	}
}

// benchAckVM measures valid vm requests: each is resolved through the (cached) inventory and
// stored with what it owes Slack (its card, its audit event) in one fsynced commit before the
// answer. Delivery paces itself at Slack's real limits (one message per second per channel),
// so during the burst it posts a card a second, as it would against Slack; the benchmark then
// checks that every request was stored and owes its card.
func benchAckVM(b *testing.B, mods ...func(*harnessConfig)) {
	// A VM per request: one active request per target.
	inv := bigInventory(b.N + benchSenders)
	h := newHarness(b, append([]func(*harnessConfig){withOptions(func(o *bot.Options) { o.PostRate, o.UpdateRate = 1, 50.0/60 }),
		func(c *harnessConfig) { c.inventory = &inv }}, mods...)...)
	hc := benchHTTPClient(b)
	cmdOf := func(offset int) func(int) signedCommand {
		return func(i int) signedCommand {
			text := fmt.Sprintf(`vm CDP-Big vm-%04d --reason "primary DC down"`, offset+i)
			return newSignedCommandN(h.srv.URL, h.clock.Now(), text, h, offset+i)
		}
	}
	// Warm up: open the connections, fill the inventory cache.
	runSendersOf(b, hc, benchSenders, cmdOf(0), wantAnswer("Recorded *FO-"))
	b.ResetTimer()
	lat := runSendersOf(b, hc, b.N, cmdOf(benchSenders), wantAnswer("Recorded *FO-"))
	b.StopTimer()
	reportLatency(b, lat)
	last := fmt.Sprintf("FO-%d", b.N+benchSenders)
	if _, err := h.st.Get(context.Background(), last); err != nil {
		b.Fatalf("%s: %v", last, err)
	}
	owed, err := h.st.UnpostedCards(context.Background(), Channel, -1)
	if err != nil {
		b.Fatal(err)
	}
	posted := len(h.slack.Messages(Channel))
	if len(owed)+posted < b.N+benchSenders {
		b.Fatalf("%d cards owed + %d posted, want %d", len(owed), posted, b.N+benchSenders)
	}
}

// seedRunning puts n requests in "running", each with its own EM task, as the approval flow
// leaves them, without the flow's clicks; the bot's delivery posts their cards meanwhile, and
// seedRunning waits for them. EM answers without latency while seeding. It returns the IDs.
func seedRunning(tb testing.TB, h *harness, n int) []string {
	tb.Helper()
	defer h.idle()
	inv := demo
	if h.cfg.inventory != nil {
		inv = *h.cfg.inventory
	}
	rep := inv.Replicas[0]
	ids := make([]string, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 1)
	fail := func(err error) {
		select {
		case errs <- err:
		default:
		}
	}
	ctx := context.Background()
	for range 64 {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				vm := rep.VMs[i%len(rep.VMs)] // callers bring at least n VMs
				task, err := h.client.StartVMFailover(ctx, rep.ID, vm.ID, emapi.RestoreIntent{Kind: emapi.IntentLatest})
				if err != nil {
					fail(err)
					return
				}
				r, err := h.st.Create(ctx, store.NewRequest{Kind: store.KindVM,
					Target: store.Target{ReplicaID: rep.ID, ReplicaName: rep.Name, ID: vm.ID, Name: vm.Name},
					Intent: store.IntentLatest, Reason: "bench", Requester: Requester, Channel: Channel, TTL: time.Hour})
				if err == nil {
					r, err = h.st.Approve(ctx, r.ID, Approver1, r.Digest)
				}
				if err == nil {
					r, err = h.st.Transition(ctx, store.Change{ID: r.ID, To: store.Submitting, Actor: "bot", Action: "submitting"})
				}
				if err == nil {
					r, err = h.st.Transition(ctx, store.Change{ID: r.ID, To: store.Running, Actor: "em", Action: "submitted",
						Apply: func(q *store.Item) {
							q.TaskID, q.EMSession, q.EMState, q.RestoreSessionID = task.ID, task.LogonSession, task.State, task.RestoreSessionID
						}})
				}
				if err != nil {
					fail(err)
					return
				}
				ids[i] = r.ID
			}
		})
	}
	wg.Wait()
	select {
	case err := <-errs:
		tb.Fatalf("seeding running requests: %v", err)
	default:
	}
	return ids
}

// keepEMSession stands for the poller's regular reads, which keep the EM logon session alive
// in production: the benchmarks jump the fake clock by hours between cycles, and an expired
// session would turn every task read into a re-logon and a search by restore session.
// Seeding fails the same few VMs over many times, which EM refuses once a VM is failed over, so
// the simulator's replica-state check is off here.
// They also need a VM per running request (one active request per target): 1,000 VMs unless a
// test brings its own inventory.
func keepEMSession(c *harnessConfig) {
	c.emCfg.SessionIdle = 1 << 62
	c.emCfg.AllowRepeatFailover = true
	if c.inventory == nil {
		inv := bigInventory(1000)
		c.inventory = &inv
	}
}

// countStates counts the given requests by state.
func countStates(tb testing.TB, h *harness, ids []string) map[store.State]int {
	tb.Helper()
	out := map[store.State]int{}
	for _, id := range ids {
		out[h.get(id).State]++
	}
	return out
}

// BenchmarkPollCycle measures one poll cycle (Bot.Poll) over 1,000 running tasks while every EM
// call takes 20 ms. Target: under 1.5 s.
//
//   - steady: nothing changed since the last cycle; two EM reads per task, no writes;
//   - progress: every task's restore session progressed; one store write per task;
//   - finish: every task ended (succeeded) in this cycle; one store write per task, and a thread
//     reply, card update and audit post each (queued; the Slack outbox drains untimed).
func BenchmarkPollCycle(b *testing.B) {
	const tasks = 1000
	const latency = 20 * time.Millisecond
	b.Run("steady", func(b *testing.B) { benchPoll(b, tasks, latency, false) })
	b.Run("progress", func(b *testing.B) { benchPoll(b, tasks, latency, true) })
	b.Run("after-relogon", func(b *testing.B) { benchPollAfterRelogon(b, tasks, latency) })
	b.Run("finish", func(b *testing.B) { benchPollFinish(b, tasks, latency) })
	// The same cycles with the store on a three-member etcd cluster on loopback.
	b.Run("steady-etcd3", func(b *testing.B) { benchPoll(b, tasks, latency, false, onEtcd3(b)) })
	b.Run("progress-etcd3", func(b *testing.B) { benchPoll(b, tasks, latency, true, onEtcd3(b)) })
	b.Run("finish-etcd3", func(b *testing.B) { benchPollFinish(b, tasks, latency, onEtcd3(b)) })
}

func benchPollFinish(b *testing.B, tasks int, latency time.Duration, mods ...func(*harnessConfig)) {
	{
		h := newHarness(b, append([]func(*harnessConfig){keepEMSession}, mods...)...)
		h.em.SetDefaultScript(emsim.Script{Running: time.Hour, Collect: time.Minute})
		b.ResetTimer()
		for range b.N {
			b.StopTimer()
			h.em.SetLatency(0)
			ids := seedRunning(b, h, tasks)
			h.em.SetLatency(latency)
			h.clock.Advance(2 * time.Hour)
			b.StartTimer()
			h.bot.Poll(context.Background())
			b.StopTimer()
			h.idle()
			if got := countStates(b, h, ids); got[store.Succeeded] != tasks {
				b.Fatalf("after one cycle: %v, want %d succeeded", got, tasks)
			}
			b.StartTimer()
		}
		b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/cycle")
	}
}

// benchPollAfterRelogon measures the recovery cycle after a restart: EM's tasks belong to the old
// logon session (404 now) and no restore session ID was stored yet, so every running request must
// find its session. The cycle reads EM's restore sessions once, not once per request.
func benchPollAfterRelogon(b *testing.B, tasks int, latency time.Duration) {
	inv := emsim.Inventory{Replicas: []emsim.Replica{{ID: "7665222c-2e99-4a3f-b892-1827ba8d1eee", Name: "CDP-Big", PolicyName: "Big"}}}
	for i := range tasks {
		inv.Replicas[0].VMs = append(inv.Replicas[0].VMs, emsim.VM{ID: fmt.Sprintf("00000000-0000-4000-8000-%012d", i), Name: fmt.Sprintf("vm-%04d", i)})
	}
	h := newHarness(b, keepEMSession, func(c *harnessConfig) { c.inventory = &inv })
	h.em.SetDefaultScript(emsim.Script{Running: time.Hour, Collect: time.Minute})
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		h.em.SetLatency(0)
		ids := seedRunning(b, h, tasks)
		for _, id := range ids { // crashed before the first poll recorded a session
			r := h.get(id)
			if _, err := h.st.Transition(context.Background(), store.Change{ID: id, To: store.Running, Actor: "test", Apply: func(q *store.Item) { q.RestoreSessionID = "" }}); err != nil && r.Items[0].RestoreSessionID != "" {
				b.Fatal(err)
			}
		}
		h.restart() // new EM logon session: every stored task ID now answers 404
		h.em.SetLatency(latency)
		h.clock.Advance(2 * time.Hour)
		b.StartTimer()
		h.bot.Poll(context.Background())
		b.StopTimer()
		h.idle()
		if got := countStates(b, h, ids); got[store.Succeeded] != tasks {
			b.Fatalf("after one recovery cycle: %v, want %d succeeded", got, tasks)
		}
		b.StartTimer()
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/cycle")
}

func benchPoll(b *testing.B, tasks int, latency time.Duration, progress bool, mods ...func(*harnessConfig)) {
	h := newHarness(b, append([]func(*harnessConfig){keepEMSession}, mods...)...)
	// 1,000 hours of running: each 10-hour step moves every restore session's progress by one.
	h.em.SetDefaultScript(emsim.Script{Running: 1000 * time.Hour, Collect: time.Minute})
	ids := seedRunning(b, h, tasks)
	h.clock.Advance(200 * time.Hour) // past "Starting": progress moves from here on
	h.poll()
	h.em.SetLatency(latency)
	before := h.get(ids[0]).Version
	b.ResetTimer()
	for range b.N {
		if progress {
			h.clock.Advance(10 * time.Hour)
		}
		h.bot.Poll(context.Background())
		b.StopTimer()
		h.idle()
		b.StartTimer()
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/cycle")
	writes := 0
	for _, id := range ids {
		writes += int(h.get(id).Version - before)
	}
	b.ReportMetric(float64(writes)/float64(b.N), "writes/cycle")
	want := 0
	if progress {
		want = tasks * b.N
	}
	if writes != want {
		b.Fatalf("%d store writes in %d cycles, want %d", writes, b.N, want)
	}
}

// procStatus reads kB fields of /proc/self/status (Linux), in MiB; zero elsewhere.
func procStatus() map[string]float64 {
	out := map[string]float64{}
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return out
	}
	for line := range strings.Lines(string(data)) {
		name, rest, ok := strings.Cut(line, ":")
		f := strings.Fields(rest)
		if !ok || len(f) != 2 || f[1] != "kB" {
			continue
		}
		kb, _ := strconv.ParseFloat(f[0], 64)
		out[name] = kb / 1024
	}
	return out
}

// settle collects garbage and returns freed memory to the OS so that RSS reflects what is live.
func settle() runtime.MemStats {
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms
}

// buildHistory writes n finished requests into a new store file at path through the public
// store API, as a long-running bot accumulates them, and closes it. Each is requested and
// rejected (two audit events); writes run concurrently so that they share commits.
func buildHistory(tb testing.TB, path string, n int) {
	tb.Helper()
	c := fakeclock.New(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	st, err := store.Open(path, store.Options{Now: c.Now})
	if err != nil {
		tb.Fatalf("open history: %v", err)
	}
	rep, vm := demo.Replicas[0], demo.Replicas[0].VMs[0]
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Value
	for range 256 {
		wg.Go(func() {
			for k := next.Add(1); k <= int64(n) && failed.Load() == nil; k = next.Add(1) {
				// One active request per target: concurrent history needs a target each.
				r, err := st.Create(context.Background(), store.NewRequest{Kind: store.KindVM,
					Target: store.Target{ReplicaID: rep.ID, ReplicaName: rep.Name, ID: fmt.Sprintf("%s-%d", vm.ID, k), Name: vm.Name},
					Intent: store.IntentLatest, Reason: "quarterly DR test of the finance database",
					Requester: Requester, Channel: Channel, TTL: time.Hour})
				// As the bot leaves them: the card posted, then brought up to the rejection.
				if err == nil {
					r, err = st.SetMessage(context.Background(), r.ID, Channel, fmt.Sprintf("1600000000.%06d", r.Seq), r.Version)
				}
				if err == nil {
					r, err = st.Reject(context.Background(), r.ID, Approver1, "not during the quarter close")
				}
				if err == nil {
					err = st.CardRendered(context.Background(), r.ID, r.Version)
				}
				if err != nil {
					failed.Store(err)
				}
			}
		})
	}
	wg.Wait()
	if err := st.Close(); err != nil {
		tb.Fatalf("close history: %v", err)
	}
	if err, _ := failed.Load().(error); err != nil {
		tb.Fatalf("building history: %v", err)
	}
}

// memoryAt100k is the bot process's situation after a long life: a store file with 100,000
// finished requests and a few active ones. It opens the file as the bot does at start, runs
// poll cycles and /failover list, and returns the memory figures before opening and after.
func memoryAt100k(tb testing.TB, cycles int) (before, after map[string]float64, ms runtime.MemStats, fileMB float64) {
	tb.Helper()
	path := tb.TempDir() + "/history.db"
	buildHistory(tb, path, 100_000)
	fi, err := os.Stat(path)
	if err != nil {
		tb.Fatal(err)
	}
	settle()
	before = procStatus()

	h := newHarness(tb, keepEMSession, func(c *harnessConfig) { c.dbPath = path })
	h.em.SetDefaultScript(emsim.Script{Running: 1000 * time.Hour, Collect: time.Minute})
	seedRunning(tb, h, 5)
	for range 3 {
		h.command(Requester, `vm CDP-Finance fin-db01 --reason "primary DC down"`)
	}
	h.idle()
	// Each cycle moves the clock 10 hours: the pending requests expire in the first, every
	// running task's restore session moves on in each (a write each).
	for range cycles {
		h.clock.Advance(10 * time.Hour)
		h.poll()
		mustContain(tb, "list", h.command(Requester, "list"), "*5 pending or active", "FO-100001", "FO-100005")
	}
	ms = settle()
	after = procStatus()
	return before, after, ms, float64(fi.Size()) / (1 << 20)
}

// BenchmarkMemory100k reports the bot process's memory with 100,000 finished requests in its
// store: Go heap in use and obtained from the OS, RSS, and how RSS grew from before the file
// was opened (rss-growth-MiB) split into anonymous memory (heap, stacks) and file-backed pages
// (bbolt's mmap of the file, which the kernel can drop at will). Target: under 64 MiB.
func BenchmarkMemory100k(b *testing.B) {
	before, after, ms, fileMB := memoryAt100k(b, max(b.N, 1))
	b.ReportMetric(fileMB, "file-MiB")
	b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heap-inuse-MiB")
	b.ReportMetric(float64(ms.Sys)/(1<<20), "go-sys-MiB")
	b.ReportMetric(after["VmRSS"], "rss-MiB")
	b.ReportMetric(after["VmRSS"]-before["VmRSS"], "rss-growth-MiB")
	b.ReportMetric(after["RssAnon"]-before["RssAnon"], "anon-growth-MiB")
	b.ReportMetric(after["RssFile"]-before["RssFile"], "file-growth-MiB")
}
