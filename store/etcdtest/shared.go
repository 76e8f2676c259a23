package etcdtest

import (
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
)

// shared is the test binary's shared etcd, started by the first Shared call.
var shared struct {
	mu  sync.Mutex
	c   *cluster
	err error // why it could not start; every later Shared fails with it
}

// Shared returns the test binary's shared single-member etcd, starting it on first use; a test
// keeps to its own keys with Prefix. The shared cluster cannot be stopped, killed, paused or
// restarted (those methods fail the test): a test that needs that starts its own with Start.
// It lives until Main or Run returns, or until the test binary exits; without Main or Run its
// data directory stays behind in $TMPDIR. When t fails, t's log gets what etcd wrote during t.
func Shared(t testing.TB) *Cluster {
	t.Helper()
	c, err := sharedCluster()
	if err != nil {
		t.Fatal(err)
	}
	m := c.members[0]
	c.mu.Lock()
	p := m.proc
	c.mu.Unlock()
	select {
	case <-p.done:
		t.Fatalf("etcdtest: the shared etcd has exited (%v); the end of its output:\n%s", p.err, m.readLog(0, 16<<10))
	default:
	}
	from := c.logSizes()
	t.Cleanup(func() {
		if t.Failed() {
			c.dumpLogs(t, from)
		}
	})
	return &Cluster{tb: t, shared: true, c: c}
}

func sharedCluster() (*cluster, error) {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.c != nil || shared.err != nil {
		return shared.c, shared.err
	}
	shared.c, shared.err = startShared()
	return shared.c, shared.err
}

func startShared() (*cluster, error) {
	bin, err := findEtcd()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "etcdtest-shared-")
	if err != nil {
		return nil, fmt.Errorf("etcdtest: %w", err)
	}
	c := newCluster(bin, dir, config{members: 1, ports: freePorts})
	if err := c.boot(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return c, nil
}

// stopShared kills the shared etcd, if it was started, and removes its data.
func stopShared() {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.c != nil {
		shared.c.killAll()
		os.RemoveAll(shared.c.dir)
		shared.c = nil
	}
}

// Run runs the tests, then kills the shared etcd and removes its data, and returns m.Run's
// exit code; it is for a TestMain that does more than Main:
//
//	func TestMain(m *testing.M) { setup(); code := etcdtest.Run(m); teardown(); os.Exit(code) }
func Run(m *testing.M) int {
	code := m.Run()
	stopShared()
	return code
}

// Main is a whole TestMain: func TestMain(m *testing.M) { etcdtest.Main(m) }.
func Main(m *testing.M) { os.Exit(Run(m)) }

var prefixSeq atomic.Int64

// Prefix returns a key prefix no other call in this test binary returns, naming t for whoever
// reads the keys: "etcdtest/7/TestWatch/prefix/". The number comes first, so no prefix is a
// prefix of another's keys, whatever the test names.
func Prefix(t testing.TB) string {
	return fmt.Sprintf("etcdtest/%d/%s/", prefixSeq.Add(1), t.Name())
}
