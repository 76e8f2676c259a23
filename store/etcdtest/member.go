package etcdtest

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// cluster is the state behind a Cluster: its members and how to start them.
type cluster struct {
	bin     string
	dir     string
	cfg     config
	token   string
	initial string // --initial-cluster: every member's name and peer URL

	mu      sync.Mutex // serialises starting and signalling members
	members []*member
}

// member is one etcd server: fixed name, data directory and log; ports fixed once the cluster
// has booted; a process while it runs.
type member struct {
	name       string
	dataDir    string
	logPath    string
	clientPort int
	peerPort   int
	starts     int

	proc   *process // nil when not running
	paused bool
}

// process is one run of a member.
type process struct {
	cmd     *exec.Cmd
	logFrom int64         // offset in the member's log where this run's output starts
	done    chan struct{} // closed when the process has exited
	err     error         // cmd.Wait's result, set before done is closed
}

func (m *member) clientURL() string { return "http://127.0.0.1:" + strconv.Itoa(m.clientPort) }
func (m *member) peerURL() string   { return "http://127.0.0.1:" + strconv.Itoa(m.peerPort) }

var clusterSeq atomic.Int64

func newCluster(bin, dir string, cfg config) *cluster {
	c := &cluster{bin: bin, dir: dir, cfg: cfg}
	for i := range cfg.members {
		name := "m" + strconv.Itoa(i)
		c.members = append(c.members, &member{
			name:    name,
			dataDir: filepath.Join(dir, name+".etcd"),
			logPath: filepath.Join(dir, name+".log"),
		})
	}
	return c
}

// boot starts a new cluster on fresh ports. A port another process takes between freePorts
// and etcd's bind makes a member exit at once; the whole cluster then starts again on new
// ports, since every member's --initial-cluster names every peer port.
func (c *cluster) boot() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for attempt := 1; ; attempt++ {
		ports, err := c.cfg.ports(2 * len(c.members))
		if err != nil {
			return fmt.Errorf("etcdtest: choosing ports: %w", err)
		}
		var initial []string
		for i, m := range c.members {
			m.clientPort, m.peerPort = ports[2*i], ports[2*i+1]
			initial = append(initial, m.name+"="+m.peerURL())
			// A failed attempt may have left a member's data: the new one is a new cluster.
			if err := os.RemoveAll(m.dataDir); err != nil {
				return fmt.Errorf("etcdtest: %w", err)
			}
		}
		// A token of its own per attempt, so no member of a failed attempt can join this one.
		c.token = fmt.Sprintf("etcdtest-%d-%d", os.Getpid(), clusterSeq.Add(1))
		c.initial = strings.Join(initial, ",")
		for _, m := range c.members {
			if err = c.spawn(m); err != nil {
				break
			}
		}
		if err == nil {
			err = c.waitHealthy(c.members)
		}
		if err == nil {
			return nil
		}
		c.killAllLocked()
		if !errors.Is(err, errAddrInUse) || attempt == portAttempts {
			return err
		}
		c.addrInUse(err)
	}
}

// startLocked starts the members of ms that are not running (with their data and ports) and
// waits until every one of ms is healthy. A member whose port was taken while it was down (by
// an outgoing connection of any process: the ports are in the ephemeral range) is started again
// after a pause, a few times.
func (c *cluster) startLocked(ms []*member) error {
	for _, m := range ms {
		if m.proc == nil {
			if err := c.spawn(m); err != nil {
				return err
			}
		}
	}
	for retries := 0; ; retries++ {
		err := c.waitHealthy(ms)
		var ee *exitError
		if !errors.As(err, &ee) || !ee.addrInUse || retries == portAttempts {
			return err
		}
		c.addrInUse(err)
		time.Sleep(time.Duration(retries+1) * 100 * time.Millisecond) // for the other process to let go of the port
		if err := c.spawn(ee.m); err != nil {
			return err
		}
	}
}

func (c *cluster) addrInUse(err error) {
	var ee *exitError
	if c.cfg.onAddrInUse != nil && errors.As(err, &ee) {
		c.cfg.onAddrInUse(ee.m.name)
	}
}

// flags is member m's command line; a restarted member, which has data, ignores the --initial-*
// flags and keeps its ports.
func (c *cluster) flags(m *member) []string {
	heartbeat, election := heartbeatMillis, electionMillis
	if len(c.members) == 1 {
		heartbeat, election = loneHeartbeatMillis, loneElectionMillis
	}
	f := []string{
		"--name=" + m.name,
		"--data-dir=" + m.dataDir,
		"--listen-client-urls=" + m.clientURL(),
		"--advertise-client-urls=" + m.clientURL(),
		"--listen-peer-urls=" + m.peerURL(),
		"--initial-advertise-peer-urls=" + m.peerURL(),
		"--initial-cluster=" + c.initial,
		"--initial-cluster-state=new",
		"--initial-cluster-token=" + c.token,
		"--heartbeat-interval=" + strconv.Itoa(heartbeat),
		"--election-timeout=" + strconv.Itoa(election),
		"--pre-vote=true",
		"--max-txn-ops=" + strconv.Itoa(MaxTxnOps),
		"--max-request-bytes=" + strconv.Itoa(MaxRequestBytes),
		"--logger=zap",
		"--log-outputs=stderr",
		"--log-level=error",
	}
	return append(f, c.cfg.args...)
}

// spawn starts member m's process, its output appended to its log.
func (c *cluster) spawn(m *member) error {
	log, err := os.OpenFile(m.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("etcdtest: %w", err)
	}
	defer log.Close() // the child has its own descriptor
	m.starts++
	fmt.Fprintf(log, "=== etcdtest: %s start %d (client %s, peer %s) at %s ===\n",
		m.name, m.starts, m.clientURL(), m.peerURL(), time.Now().UTC().Format(time.RFC3339Nano))
	from, err := log.Seek(0, io.SeekEnd)
	if err != nil {
		return fmt.Errorf("etcdtest: %w", err)
	}
	cmd := exec.Command(c.bin, c.flags(m)...)
	cmd.Dir = c.dir
	cmd.Env = childEnv(os.Environ())
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = sysProcAttr()
	if err := startProcess(cmd); err != nil {
		return fmt.Errorf("etcdtest: starting %s (%s): %w", m.name, c.bin, err)
	}
	p := &process{cmd: cmd, logFrom: from, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	m.proc, m.paused = p, false
	return nil
}

// childEnv is env without etcd's own variables: etcd 3.4 reads every ETCD_* variable as a
// flag, and a test's environment may hold ETCD_BIN or the bot's ETCD_ENDPOINTS. It keeps
// ETCD_UNSUPPORTED_ARCH, without which etcd 3.4 refuses to run on arm64.
func childEnv(env []string) []string {
	var out []string
	for _, kv := range env {
		if strings.HasPrefix(kv, "ETCD_UNSUPPORTED_ARCH=") ||
			!strings.HasPrefix(kv, "ETCD_") && !strings.HasPrefix(kv, "ETCDCTL_") {
			out = append(out, kv)
		}
	}
	return out
}

// spawner starts every member from one goroutine locked to its OS thread, which it never
// leaves. Linux sends Pdeathsig when the thread that started a child ends, not the process;
// this thread ends only with the test binary, so the members die with it even when it is
// killed (a -timeout panic, SIGKILL) before any cleanup runs.
var spawner struct {
	once sync.Once
	reqs chan spawnReq
}

type spawnReq struct {
	cmd *exec.Cmd
	err chan error
}

func startProcess(cmd *exec.Cmd) error {
	spawner.once.Do(func() {
		spawner.reqs = make(chan spawnReq)
		go func() {
			runtime.LockOSThread()
			for r := range spawner.reqs {
				r.err <- r.cmd.Start()
			}
		}()
	})
	errc := make(chan error, 1)
	spawner.reqs <- spawnReq{cmd: cmd, err: errc}
	return <-errc
}

// exitError is a member that exited when it should have been running.
type exitError struct {
	m         *member
	err       error
	log       string
	addrInUse bool
}

func (e *exitError) Error() string {
	return fmt.Sprintf("etcdtest: %s exited before it was healthy (%v); the end of its output:\n%s", e.m.name, e.err, e.log)
}

func (e *exitError) Is(target error) bool { return target == errAddrInUse && e.addrInUse }

// exited returns an *exitError if member m's process has exited, and forgets the process.
func (m *member) exited() error {
	select {
	case <-m.proc.done:
	default:
		return nil
	}
	out := m.readLog(m.proc.logFrom, 4<<10)
	e := &exitError{m: m, err: m.proc.err, log: out, addrInUse: strings.Contains(out, "address already in use")}
	m.proc, m.paused = nil, false
	return e
}

// readLog returns member m's log from offset from, at most its last limit bytes.
func (m *member) readLog(from, limit int64) string {
	b, err := os.ReadFile(m.logPath)
	if err != nil {
		return fmt.Sprintf("(reading %s: %v)", m.logPath, err)
	}
	if from > int64(len(b)) {
		from = int64(len(b))
	}
	b = b[from:]
	if int64(len(b)) > limit {
		b = append([]byte("…"), b[int64(len(b))-limit:]...)
	}
	return string(b)
}

func (m *member) logSize() int64 {
	fi, err := os.Stat(m.logPath)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// healthKey is read, never written, to prove a member serves linearizable reads.
const healthKey = "etcdtest-health"

// waitHealthy waits until every member of ms is healthy: it answers Status naming a leader,
// with no alarm, and serves a linearizable read (which needs the leader and a quorum). It
// returns an *exitError as soon as one of them exits.
func (c *cluster) waitHealthy(ms []*member) error {
	deadline := time.Now().Add(healthTimeout)
	clients := map[*member]*clientv3.Client{}
	defer func() {
		for _, cli := range clients {
			cli.Close()
		}
	}()
	pending := ms
	last := map[*member]error{}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		var still []*member
		for _, m := range pending {
			if m.proc == nil {
				return fmt.Errorf("etcdtest: %s is not running", m.name)
			}
			if err := m.exited(); err != nil {
				return err
			}
			cli, ok := clients[m]
			if !ok {
				var err error
				cli, err = clientv3.New(clientConfig([]string{m.clientURL()}, zap.NewNop()))
				if err != nil {
					return fmt.Errorf("etcdtest: client of %s: %w", m.name, err)
				}
				clients[m] = cli
			}
			if err := healthy(cli, m, deadline); err != nil {
				last[m] = err
				still = append(still, m)
			}
		}
		if len(still) == 0 {
			return nil
		}
		pending = still
		if time.Now().After(deadline) {
			var why []string
			for _, m := range pending {
				why = append(why, fmt.Sprintf("%s: %v", m.name, last[m]))
			}
			return fmt.Errorf("etcdtest: %s not healthy within %s%s: %s", names(pending), healthTimeout, c.quorumHint(), strings.Join(why, "; "))
		}
		<-tick.C
	}
}

func healthy(cli *clientv3.Client, m *member, deadline time.Time) error {
	ctx, cancel := waitContext(time.Second, deadline)
	defer cancel()
	// A member that exits ends the wait at once: what holds its port may accept connections
	// and never answer.
	go func(done <-chan struct{}) {
		select {
		case <-done:
			cancel()
		case <-ctx.Done():
		}
	}(m.proc.done)
	st, err := cli.Status(ctx, m.clientURL())
	if err != nil {
		return err
	}
	if st.Leader == 0 {
		return errors.New("no leader")
	}
	if len(st.Errors) > 0 {
		return fmt.Errorf("errors: %s", strings.Join(st.Errors, "; "))
	}
	_, err = cli.Get(ctx, healthKey)
	return err
}

// stop stops member m with SIGTERM.
func (c *cluster) stop(m *member) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stopLocked(m)
}

func (c *cluster) stopLocked(m *member) error {
	if err := c.sigterm(m); err != nil {
		return err
	}
	return c.reap(m, true)
}

// sigterm sends SIGTERM to member m, and SIGCONT if it is paused: a stopped process only acts
// on SIGTERM once continued.
func (c *cluster) sigterm(m *member) error {
	if m.proc == nil {
		return fmt.Errorf("etcdtest: %s is not running", m.name)
	}
	if err := signal(m, syscall.SIGTERM); err != nil {
		return err
	}
	if m.paused {
		return signal(m, syscall.SIGCONT)
	}
	return nil
}

// reap waits for member m to exit, killing it if it has not within stopTimeout after a
// SIGTERM (graceful).
func (c *cluster) reap(m *member, graceful bool) error {
	p := m.proc
	var err error
	select {
	case <-p.done:
	case <-time.After(stopTimeout):
		_ = p.cmd.Process.Kill()
		<-p.done
		if graceful {
			err = fmt.Errorf("etcdtest: %s did not exit within %s of SIGTERM, so it was killed", m.name, stopTimeout)
		}
	}
	m.proc, m.paused = nil, false
	return err
}

func (c *cluster) kill(m *member) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if m.proc == nil {
		return fmt.Errorf("etcdtest: %s is not running", m.name)
	}
	if err := signal(m, syscall.SIGKILL); err != nil {
		return err
	}
	return c.reap(m, false)
}

// stopAll stops every running member: the followers at once, then the leader. A leader that
// gets SIGTERM hands its leadership to a connected follower first, and waits for that up to
// etcd's request timeout (6 s here) when the followers are stopping too; alone, it just stops.
func (c *cluster) stopAll() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	leader := -1
	for _, m := range c.members {
		if m.proc != nil && !m.paused {
			if i, err := c.leaderSeenBy(m, time.Now().Add(time.Second)); err == nil {
				leader = i
				break
			}
		}
	}
	var errs []error
	for _, last := range []bool{false, true} {
		var stopping []*member
		for i, m := range c.members {
			if m.proc == nil || (i == leader) != last {
				continue
			}
			if err := c.sigterm(m); err != nil {
				return err
			}
			stopping = append(stopping, m)
		}
		for _, m := range stopping {
			errs = append(errs, c.reap(m, true))
		}
	}
	return errors.Join(errs...)
}

func (c *cluster) pause(m *member) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if m.proc == nil {
		return fmt.Errorf("etcdtest: %s is not running", m.name)
	}
	if m.paused {
		return nil
	}
	if err := signal(m, syscall.SIGSTOP); err != nil {
		return err
	}
	m.paused = true
	return waitStopped(m.proc.cmd.Process.Pid)
}

// resume continues member m and waits until it is healthy: a leader that was paused still
// believes it leads until it hears from the others, and a write it takes in that moment is
// lost (the client sees etcd's request timeout), so it is back only once it serves a
// linearizable read through the current leader.
func (c *cluster) resume(m *member) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.resumeLocked(m); err != nil {
		return err
	}
	return c.waitHealthy([]*member{m})
}

func (c *cluster) resumeLocked(m *member) error {
	if m.proc == nil || !m.paused {
		return fmt.Errorf("etcdtest: %s is not paused", m.name)
	}
	if err := signal(m, syscall.SIGCONT); err != nil {
		return err
	}
	m.paused = false
	return nil
}

// leader returns the index of the leading member as the running, unpaused members see it.
func (c *cluster) leader() (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	deadline := time.Now().Add(healthTimeout)
	var last error = errors.New("no member runs")
	for {
		for _, m := range c.members {
			if m.proc == nil || m.paused {
				continue
			}
			i, err := c.leaderSeenBy(m, deadline)
			if err == nil {
				return i, nil
			}
			last = err
		}
		if time.Now().After(deadline) {
			return -1, fmt.Errorf("etcdtest: no leader within %s%s: %v", healthTimeout, c.quorumHint(), last)
		}
		time.Sleep(50 * time.Millisecond) // an election is under way
	}
}

// leaderSeenBy returns the index of the member m reports as leader.
func (c *cluster) leaderSeenBy(m *member, deadline time.Time) (int, error) {
	cli, err := clientv3.New(clientConfig([]string{m.clientURL()}, zap.NewNop()))
	if err != nil {
		return -1, err
	}
	defer cli.Close()
	ctx, cancel := waitContext(time.Second, deadline)
	defer cancel()
	st, err := cli.Status(ctx, m.clientURL())
	if err != nil {
		return -1, fmt.Errorf("%s: %w", m.name, err)
	}
	if st.Leader == 0 {
		return -1, fmt.Errorf("%s knows no leader", m.name)
	}
	ml, err := cli.MemberList(ctx)
	if err != nil {
		return -1, fmt.Errorf("%s: %w", m.name, err)
	}
	for _, mm := range ml.Members {
		if mm.ID != st.Leader {
			continue
		}
		for i, o := range c.members {
			if o.name != mm.Name {
				continue
			}
			// Followers name a leader that was killed, stopped or paused until their
			// election timeout: an election is yet to come.
			if o.proc == nil || o.paused {
				return -1, fmt.Errorf("%s still names %s, which is down, as leader", m.name, o.name)
			}
			return i, nil
		}
	}
	return -1, fmt.Errorf("%s names leader %x, not a member of this cluster", m.name, st.Leader)
}

// killAll kills every running member and waits for it; paused ones too (SIGKILL needs no
// SIGCONT).
func (c *cluster) killAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.killAllLocked()
}

func (c *cluster) killAllLocked() {
	for _, m := range c.members {
		if m.proc != nil {
			_ = signal(m, syscall.SIGKILL)
		}
	}
	for _, m := range c.members {
		if m.proc != nil {
			_ = c.reap(m, false)
		}
	}
}

// dumpLogs writes every member's log to t's log, from the offsets in from (nil: from the start),
// at most the last 64 KiB of each.
func (c *cluster) dumpLogs(t testing.TB, from []int64) {
	t.Helper()
	for i, m := range c.members {
		var off int64
		if from != nil {
			off = from[i]
		}
		if out := m.readLog(off, 64<<10); out != "" {
			t.Logf("etcdtest: output of %s (%s):\n%s", m.name, m.logPath, out)
		}
	}
}

func (c *cluster) logSizes() []int64 {
	var s []int64
	for _, m := range c.members {
		s = append(s, m.logSize())
	}
	return s
}

// freePorts returns n distinct loopback ports free a moment ago. All n listeners are held until
// every port is chosen, so the ports are distinct; another process may still take one before
// etcd binds it, which boot and startLocked handle by starting again.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
