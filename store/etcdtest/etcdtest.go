// Package etcdtest runs real etcd servers for tests: Debian's etcd-server (etcd 3.4.23 in CI) or
// any etcd binary, as child processes listening on loopback ports, with their data in the test's
// temporary directory.
//
// A test that needs a cluster of its own, to kill, stop, pause or restart members, starts one:
//
//	c := etcdtest.Start(t, etcdtest.Members(3))
//	cli := c.Client(t)
//	c.Kill(c.Leader())
//
// Tests that only need a working etcd share one single-member server per test binary, each under
// its own key prefix, rather than pay for a process, a data directory and a start each:
//
//	func TestMain(m *testing.M) { etcdtest.Main(m) }
//
//	func TestSomething(t *testing.T) {
//		cli := etcdtest.Shared(t).Client(t)
//		pfx := etcdtest.Prefix(t)
//		…
//	}
//
// The binary is $ETCD_BIN, else etcd on PATH. Without one the test fails, it never skips: a
// backend whose tests silently skip is a backend nobody tests.
//
// Every member runs with --max-txn-ops 4096 and --max-request-bytes 8388608 (the store commits a
// request of many VMs, with its audit events and outbox, in one transaction), fast elections
// (--heartbeat-interval 50, --election-timeout 500, --pre-vote; 10 and 100 for a lone member)
// and error-level logging. A member's output goes to a file in the temporary directory and is
// written to the test's log when the test fails. Members are killed at the test's cleanup, and with the test binary if
// it dies first (Linux).
//
// The methods of Cluster that start, stop or signal members fail the test on error, so they
// must be called from the test's goroutine, one at a time.
package etcdtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
)

// Limits every member is started with. A production etcd for the bot needs at least these.
const (
	// MaxTxnOps is --max-txn-ops: the most compares, or operations in one branch, of a
	// transaction (etcd's default is 128).
	MaxTxnOps = 4096
	// MaxRequestBytes is --max-request-bytes: the largest request etcd accepts, in bytes
	// (etcd's default is 1.5 MiB).
	MaxRequestBytes = 8 << 20
	// MaxCallSendMsgSize is the send limit of the clients Client makes:
	// MaxRequestBytes plus the 512 KiB etcd allows for gRPC framing, so a request too large
	// is refused by the server with rpctypes.ErrRequestTooLarge rather than by the client
	// (whose default limit is 2 MiB).
	MaxCallSendMsgSize = MaxRequestBytes + 512<<10
	// DialTimeout is the clients' dial timeout.
	DialTimeout = 5 * time.Second
)

// Raft timing of the members, in milliseconds. In a cluster of several members: small enough
// that an election after a kill takes well under a second, large enough (and with pre-vote, so
// a member that was starved of CPU cannot depose a healthy leader) for a loaded 2-core machine
// running tests with -race. A lone member contends with no one, and waits one election timeout
// before it elects itself, so it starts faster with a shorter one.
const (
	heartbeatMillis     = 50
	electionMillis      = 500
	loneHeartbeatMillis = 10
	loneElectionMillis  = 100
)

const (
	// healthTimeout bounds the wait for members to be healthy after a start.
	healthTimeout = 20 * time.Second
	// stopTimeout bounds the wait for a member to exit after SIGTERM.
	stopTimeout = 10 * time.Second
	// portAttempts bounds the starts that fail because a port was taken by someone else.
	portAttempts = 5
)

const notFound = "etcd not found: install Debian's etcd-server (apt-get install etcd-server) or set ETCD_BIN"

// errAddrInUse matches the exit of a member that could not bind one of its ports.
var errAddrInUse = errors.New("address already in use")

// Option configures Start.
type Option func(*config)

type config struct {
	members int
	args    []string
	// ports returns n loopback ports that look free; a test replaces it to force a clash.
	ports func(n int) ([]int, error)
	// onAddrInUse is called when a member exits because a port was taken.
	onAddrInUse func(member string)
}

// Members sets the number of members (default 1). Three members survive the loss of one.
func Members(n int) Option { return func(c *config) { c.members = n } }

// Args adds flags to every member's command line after the package's own, so a flag given
// here wins (etcd keeps the last value of a repeated flag): Args("--max-txn-ops=128") runs
// with etcd's default limit.
func Args(args ...string) Option {
	return func(c *config) { c.args = append(c.args, args...) }
}

// Cluster is a running etcd cluster, owned by the test that started it (or shared by every
// test of the binary, see Shared).
type Cluster struct {
	tb     testing.TB
	shared bool
	c      *cluster
}

// Start starts a cluster (one member unless Members says otherwise) and waits until every
// member is healthy: it answers Status with a leader and serves a linearizable read. The
// members are killed at t's cleanup. Start fails t if etcd is not installed, if a member
// exits or if the cluster is not healthy within 20 s.
func Start(t testing.TB, opts ...Option) *Cluster {
	t.Helper()
	cfg := config{members: 1, ports: freePorts}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.members < 1 {
		t.Fatalf("etcdtest: Members(%d): a cluster needs at least one member", cfg.members)
	}
	bin, err := findEtcd()
	if err != nil {
		t.Fatal(err)
	}
	c := newCluster(bin, t.TempDir(), cfg)
	// Registered after TempDir's, so it runs first: the members are dead before their
	// directory is removed.
	t.Cleanup(func() {
		c.killAll()
		if t.Failed() {
			c.dumpLogs(t, nil)
		}
	})
	if err := c.boot(); err != nil {
		t.Fatal(err)
	}
	return &Cluster{tb: t, c: c}
}

// findEtcd returns the etcd binary: $ETCD_BIN if set, else etcd on PATH.
func findEtcd() (string, error) {
	if bin := os.Getenv("ETCD_BIN"); bin != "" {
		path, err := exec.LookPath(bin)
		if err != nil {
			var ee *exec.Error
			if errors.As(err, &ee) {
				err = ee.Err
			}
			return "", fmt.Errorf("etcd not found at ETCD_BIN=%s (%v): install Debian's etcd-server (apt-get install etcd-server) or set ETCD_BIN", bin, err)
		}
		return path, nil
	}
	path, err := exec.LookPath("etcd")
	if err != nil {
		return "", errors.New(notFound)
	}
	return path, nil
}

// Size is the number of members.
func (c *Cluster) Size() int { return len(c.c.members) }

// Endpoints are the members' client URLs, in member order.
func (c *Cluster) Endpoints() []string {
	eps := make([]string, len(c.c.members))
	for i, m := range c.c.members {
		eps[i] = m.clientURL()
	}
	return eps
}

// Endpoint is member i's client URL.
func (c *Cluster) Endpoint(i int) string { return c.member(i).clientURL() }

// Client returns a client of the given members, or of every member if none is given, closed
// at t's cleanup. Its warnings go to t's log; it sends requests up to MaxCallSendMsgSize and
// uses a member that comes back within a second (see clientConfig). A client of one member
// shows that member's own copy of the data in serializable reads and watches. A client whose
// endpoints include a paused member may send it a request, which then waits until its context
// ends: the connection to a hung process stays open, and this client sends no keep-alive pings
// that would notice.
func (c *Cluster) Client(t testing.TB, members ...int) *clientv3.Client {
	t.Helper()
	eps := c.Endpoints()
	if len(members) > 0 {
		eps = nil
		for _, i := range members {
			eps = append(eps, c.Endpoint(i))
		}
	}
	return newClient(t, eps)
}

func newClient(t testing.TB, eps []string) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientConfig(eps, testLogger(t)))
	if err != nil {
		t.Fatalf("etcdtest: client of %s: %v", strings.Join(eps, ","), err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// clientConfig is the configuration of every client the package makes. Its reconnection
// backoff is short (50 ms growing to 1 s, where gRPC's default grows from 1 s to 2 min), so a
// member that comes back is used again within a second, not after a backoff that grew while
// it was down.
func clientConfig(eps []string, log *zap.Logger) clientv3.Config {
	return clientv3.Config{
		Endpoints:          eps,
		DialTimeout:        DialTimeout,
		MaxCallSendMsgSize: MaxCallSendMsgSize,
		Logger:             log,
		DialOptions: []grpc.DialOption{grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 50 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second},
			MinConnectTimeout: DialTimeout,
		})},
	}
}

// testLogger sends a client's warnings to t's log until t's cleanup and drops them after: the
// client's goroutines may still log then, and t.Log after the test has finished panics.
func testLogger(t testing.TB) *zap.Logger {
	w := &tbWriter{tb: t}
	t.Cleanup(w.stop) // registered before the client's Close, so it runs after it
	enc := zapcore.NewConsoleEncoder(zap.NewDevelopmentEncoderConfig())
	return zap.New(zapcore.NewCore(enc, zapcore.AddSync(w), zapcore.WarnLevel))
}

type tbWriter struct {
	mu      sync.Mutex
	tb      testing.TB
	stopped bool
}

func (w *tbWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.stopped {
		w.tb.Log("etcd client: " + strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func (w *tbWriter) stop() {
	w.mu.Lock()
	w.stopped = true
	w.mu.Unlock()
}

// Stop stops member i with SIGTERM and waits for it to exit (it is killed after 10 s).
func (c *Cluster) Stop(i int) {
	c.tb.Helper()
	m := c.faultable("Stop", i)
	if err := c.c.stop(m); err != nil {
		c.tb.Fatal(err)
	}
}

// Kill kills member i with SIGKILL and waits for it to exit: a crash, or a power cut.
func (c *Cluster) Kill(i int) {
	c.tb.Helper()
	m := c.faultable("Kill", i)
	if err := c.c.kill(m); err != nil {
		c.tb.Fatal(err)
	}
}

// Restart starts member i again with its data directory and ports (stopping it first with
// SIGTERM if it runs) and waits until it is healthy, which needs a quorum of the cluster
// running: after StopAll, use StartAll.
func (c *Cluster) Restart(i int) {
	c.tb.Helper()
	m := c.faultable("Restart", i)
	c.c.mu.Lock()
	defer c.c.mu.Unlock()
	if m.proc != nil {
		if err := c.c.stopLocked(m); err != nil {
			c.tb.Fatal(err)
		}
	}
	if err := c.c.startLocked([]*member{m}); err != nil {
		c.tb.Fatal(err)
	}
}

// Pause stops member i with SIGSTOP: it keeps its ports and connections but answers nothing,
// like a machine that hangs. Resume continues it.
func (c *Cluster) Pause(i int) {
	c.tb.Helper()
	m := c.faultable("Pause", i)
	if err := c.c.pause(m); err != nil {
		c.tb.Fatal(err)
	}
}

// Resume continues member i, paused by Pause, with SIGCONT, and waits until it is healthy
// (which needs a quorum running).
func (c *Cluster) Resume(i int) {
	c.tb.Helper()
	m := c.faultable("Resume", i)
	if err := c.c.resume(m); err != nil {
		c.tb.Fatal(err)
	}
}

// StopAll stops every running member with SIGTERM and waits for them to exit: a whole-cluster
// outage. The followers go first, then the leader, which would otherwise spend seconds trying
// to hand its leadership to a follower that is stopping.
func (c *Cluster) StopAll() {
	c.tb.Helper()
	c.faultable("StopAll", 0)
	if err := c.c.stopAll(); err != nil {
		c.tb.Fatal(err)
	}
}

// StartAll starts every member that is not running, resumes every paused one, and waits until
// all are healthy.
func (c *Cluster) StartAll() {
	c.tb.Helper()
	c.faultable("StartAll", 0)
	c.c.mu.Lock()
	defer c.c.mu.Unlock()
	for _, m := range c.c.members {
		if m.paused {
			if err := c.c.resumeLocked(m); err != nil {
				c.tb.Fatal(err)
			}
		}
	}
	if err := c.c.startLocked(c.c.members); err != nil {
		c.tb.Fatal(err)
	}
}

// Leader returns the index of the member that leads the cluster, as the running, unpaused
// members report it, waiting up to 20 s for a leader that runs and is not paused: after Kill,
// Stop or Pause of the leader, the others name it until their election timeout and elect
// another after. Write after Leader returns: a write sent before the others noticed the loss
// is forwarded to the lost leader and fails after etcd's request timeout (5 s plus two
// election timeouts) with "etcdserver: request timed out", though the cluster is back sooner.
func (c *Cluster) Leader() int {
	c.tb.Helper()
	i, err := c.c.leader()
	if err != nil {
		c.tb.Fatal(err)
	}
	return i
}

// member returns member i, failing the test for an index out of range.
func (c *Cluster) member(i int) *member {
	c.tb.Helper()
	if i < 0 || i >= len(c.c.members) {
		c.tb.Fatalf("etcdtest: no member %d in a cluster of %d", i, len(c.c.members))
	}
	return c.c.members[i]
}

// faultable returns member i for op, refusing the shared cluster: stopping it would break
// every other test of the binary.
func (c *Cluster) faultable(op string, i int) *member {
	c.tb.Helper()
	if c.shared {
		c.tb.Fatalf("etcdtest: %s on the shared cluster would break every other test of the binary: start a cluster of your own with Start", op)
	}
	return c.member(i)
}

// waitContext returns a context that ends at the earlier of d from now and deadline.
func waitContext(d time.Duration, deadline time.Time) (context.Context, context.CancelFunc) {
	if until := time.Until(deadline); until < d {
		d = max(until, time.Millisecond)
	}
	return context.WithTimeout(context.Background(), d)
}

// quorumHint explains a member that is not healthy because too few members run.
func (c *cluster) quorumHint() string {
	running := 0
	for _, m := range c.members {
		if m.proc != nil && !m.paused {
			running++
		}
	}
	if quorum := len(c.members)/2 + 1; running < quorum {
		return fmt.Sprintf(" (%d of %d members run and unpaused, fewer than the quorum of %d: a member cannot be healthy without one)", running, len(c.members), quorum)
	}
	return ""
}

// names lists the members' names.
func names(ms []*member) string {
	var s []string
	for _, m := range ms {
		s = append(s, m.name)
	}
	return strings.Join(s, ", ")
}

// signal sends sig to member m's process.
func signal(m *member, sig syscall.Signal) error {
	if err := m.proc.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("etcdtest: %s to %s: %w", sig, m.name, err)
	}
	return nil
}
