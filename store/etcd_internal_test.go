package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/failover-bot/failover-bot/store/etcdtest"
)

// The store's tests share one etcd per test binary; tests that stop or kill etcd start their own.
func TestMain(m *testing.M) { etcdtest.Main(m) }

// etcdConfig is a client configuration for endpoints, with the limits the test servers allow.
func etcdConfig(endpoints []string) clientv3.Config {
	return clientv3.Config{Endpoints: endpoints, DialTimeout: etcdtest.DialTimeout,
		MaxCallSendMsgSize: etcdtest.MaxCallSendMsgSize}
}

// openEtcdAt opens a store under prefix on endpoints with a fake clock (unless opt has one) and
// closes it at cleanup.
func openEtcdAt(t testing.TB, endpoints []string, prefix string, opt Options) *Etcd {
	t.Helper()
	if opt.Now == nil {
		opt.Now = newClock().Now
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := OpenEtcd(ctx, etcdConfig(endpoints), prefix, opt)
	if err != nil {
		t.Fatalf("OpenEtcd: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func openSharedEtcd(t testing.TB, opt Options) *Etcd {
	t.Helper()
	return openEtcdAt(t, etcdtest.Shared(t).Endpoints(), etcdtest.Prefix(t), opt)
}

// TestEtcdCursorMatchesBolt runs the same random transactions — puts, deletes and cursor walks
// in every direction, across pages and over the transaction's own writes — on bbolt and on etcd
// and requires the same answers: the etcd cursor merges a paged snapshot with buffered writes,
// and every index of the store (active, finished, outbox) walks through it.
func TestEtcdCursorMatchesBolt(t *testing.T) {
	old := etcdPage
	etcdPage = 3 // many page boundaries in a few keys
	t.Cleanup(func() { etcdPage = old })
	b := mustOpenStore(t, Options{})
	e := openSharedEtcd(t, Options{})
	rng := rand.New(rand.NewPCG(7, 13))
	key := func() []byte { return []byte{byte('a' + rng.IntN(12)), byte('a' + rng.IntN(3))} }
	for round := range 60 {
		// Each round is one write transaction on both: a few writes, then walks.
		type op struct {
			kind int
			k, v []byte
		}
		var ops []op
		for range 1 + rng.IntN(8) {
			ops = append(ops, op{kind: rng.IntN(3), k: key(), v: []byte(fmt.Sprint(round, rng.IntN(100)))})
		}
		seeks := [][]byte{key(), key(), {0}, {0xff}}
		run := func(tx kvTx) (string, error) {
			bk := tx.Bucket(bucketHealth)
			var log strings.Builder
			for _, o := range ops {
				var err error
				if o.kind == 0 {
					err = bk.Delete(o.k)
				} else {
					err = bk.Put(o.k, o.v)
				}
				if err != nil {
					return "", err
				}
			}
			walk := func(name string, k, v []byte, step func() ([]byte, []byte)) {
				fmt.Fprintf(&log, "%s:", name)
				for n := 0; k != nil && n < 100; n++ {
					fmt.Fprintf(&log, " %s=%s", k, v)
					k, v = step()
				}
				log.WriteString("\n")
			}
			c := bk.Cursor()
			k, v := c.First()
			walk("first/next", k, v, c.Next)
			k, v = c.Last()
			walk("last/prev", k, v, c.Prev)
			for _, s := range seeks {
				k, v = c.Seek(s)
				walk("seek "+string(s)+"/next", k, v, c.Next)
				k, v = c.Seek(s)
				walk("seek "+string(s)+"/prev", k, v, c.Prev)
			}
			// A zig-zag: Next then Prev must come back.
			k, _ = c.First()
			k2, _ := c.Next()
			k3, _ := c.Prev()
			fmt.Fprintf(&log, "zigzag: %s %s %s\n", k, k2, k3)
			return log.String(), nil
		}
		var fromBolt, fromEtcd string
		if err := b.kvStore.update(context.Background(), func(tx kvTx) (err error) { fromBolt, err = run(tx); return }); err != nil {
			t.Fatal(err)
		}
		if err := e.kvStore.update(context.Background(), func(tx kvTx) (err error) { fromEtcd, err = run(tx); return }); err != nil {
			t.Fatal(err)
		}
		if fromBolt != fromEtcd {
			t.Fatalf("round %d: bbolt and etcd cursors differ\nbbolt:\n%s\netcd:\n%s", round, fromBolt, fromEtcd)
		}
		// And a read-only walk of what was committed.
		if vb, ve := committed(t, b.kvStore), committed(t, e.kvStore); vb != ve {
			t.Fatalf("round %d: committed contents differ\nbbolt: %s\netcd:  %s", round, vb, ve)
		}
	}
}

// committed lists the health bucket as a read-only transaction sees it.
func committed(t *testing.T, s *kvStore) string {
	t.Helper()
	var sb strings.Builder
	err := s.view(context.Background(), func(tx kvTx) error {
		c := tx.Bucket(bucketHealth).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			fmt.Fprintf(&sb, "%s=%s ", k, v)
		}
		n, err := tx.Bucket(bucketHealth).Count()
		fmt.Fprintf(&sb, "(%d keys)", n)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return sb.String()
}

// TestEtcdInstancesShareOneStore: two instances (two clients) on one prefix, writing at once,
// give gapless unique IDs, one holder per target and one audit chain that verifies.
func TestEtcdInstancesShareOneStore(t *testing.T) {
	eps, pfx := etcdtest.Shared(t).Endpoints(), etcdtest.Prefix(t)
	a := openEtcdAt(t, eps, pfx, Options{})
	b := openEtcdAt(t, eps, pfx, Options{})
	shared := validNewRequest().Target
	const each = 15
	var mu sync.Mutex
	var ids []string
	winners := 0
	var wg sync.WaitGroup
	for i, s := range []*Etcd{a, b, a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range each {
				nr := validNewRequest()
				if j == 0 {
					nr.Target = shared // everyone wants the same VM once
				}
				nr.Reason = fmt.Sprintf("writer %d request %d", i, j)
				r, err := s.Create(context.Background(), nr)
				var ce *ConflictError
				switch {
				case j == 0 && errors.As(err, &ce) && ce.Reason == ReasonTargetBusy:
					continue
				case err != nil:
					t.Errorf("Create: %v", err)
					return
				}
				mu.Lock()
				ids = append(ids, r.ID)
				if j == 0 {
					winners++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if winners != 1 {
		t.Fatalf("%d requests hold the shared target, want 1", winners)
	}
	slices.SortFunc(ids, func(x, y string) int { return mustSeq(t, x) - mustSeq(t, y) })
	for i, id := range ids {
		if want := fmt.Sprintf("FO-%d", i+1); id != want {
			t.Fatalf("IDs %v: position %d is %s, want %s (gapless, unique)", ids, i, id, want)
		}
	}
	for _, s := range []*Etcd{a, b} {
		if err := s.Verify(context.Background()); err != nil {
			t.Fatalf("Verify: %v", err)
		}
		var n int
		if err := s.Events(context.Background(), 0, time.Time{}, func(Event) error { n++; return nil }); err != nil {
			t.Fatal(err)
		}
		if n != len(ids) {
			t.Fatalf("%d audit events, want one per request (%d)", n, len(ids))
		}
	}
}

func mustSeq(t testing.TB, id string) int {
	t.Helper()
	var n int
	if _, err := fmt.Sscanf(id, "FO-%d", &n); err != nil {
		t.Fatalf("ID %q: %v", id, err)
	}
	return n
}

// TestEtcdFence: a write under a fence commits while the leader key has the fence's create
// revision, and is refused, writing nothing, once the key is gone or was created again.
func TestEtcdFence(t *testing.T) {
	s := openSharedEtcd(t, Options{})
	cli := s.Client()
	ctx := context.Background()
	leaderKey := s.Prefix() + EtcdLeaderPart + "test"
	put, err := cli.Put(ctx, leaderKey, "instance-1")
	if err != nil {
		t.Fatal(err)
	}
	fence := Fence{Key: leaderKey, Rev: put.Header.Revision}
	r, err := s.Create(ctx, validNewRequest())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Note(WithFence(ctx, fence), r.ID, "bot", "note", "while leading", ""); err != nil {
		t.Fatalf("fenced write while leading: %v", err)
	}
	for _, tc := range []struct {
		name   string
		depose func()
	}{
		{"key deleted", func() { _, _ = cli.Delete(ctx, leaderKey) }},
		{"key created again by a new leader", func() { _, _ = cli.Put(ctx, leaderKey, "instance-2") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.depose()
			before := s.get(t, r.ID)
			_, err := s.Note(WithFence(ctx, fence), r.ID, "bot", "note", "after losing the lease", "a line")
			if !errors.Is(err, ErrFenced) {
				t.Fatalf("fenced write after deposition: %v, want ErrFenced", err)
			}
			if after := s.get(t, r.ID); after.Version != before.Version {
				t.Fatalf("the refused write changed the request: version %d -> %d", before.Version, after.Version)
			}
			if n, _, _, err := s.Backlog(ctx, "", nil); err != nil || n != 0 {
				t.Fatalf("the refused write queued %d messages (%v)", n, err)
			}
		})
	}
	if _, err := s.Note(ctx, r.ID, "U1", "note", "an unfenced write still works", ""); err != nil {
		t.Fatal(err)
	}
}

func (s *Etcd) get(t testing.TB, id string) *Request {
	t.Helper()
	r, err := s.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestEtcdChangedOnOtherInstancesWrite: a change committed by one instance wakes another's
// Changed (so the leader delivers what a standby recorded).
func TestEtcdChangedOnOtherInstancesWrite(t *testing.T) {
	eps, pfx := etcdtest.Shared(t).Endpoints(), etcdtest.Prefix(t)
	a := openEtcdAt(t, eps, pfx, Options{})
	b := openEtcdAt(t, eps, pfx, Options{})
	// Drain what opening signalled.
	for drained := false; !drained; {
		select {
		case <-b.Changed():
		case <-time.After(200 * time.Millisecond):
			drained = true
		}
	}
	if _, err := a.Create(context.Background(), validNewRequest()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-b.Changed():
	case <-time.After(10 * time.Second):
		t.Fatal("the other instance's Changed was not signalled within 10 s of a commit")
	}
}

// seedForCopy writes a bit of everything into s: requests in several states, queued messages,
// a card, a replay key and the audit chain they make.
func seedForCopy(t *testing.T, s Store) {
	t.Helper()
	ctx := context.Background()
	for i := range 5 {
		r, err := s.Create(ctx, validNewRequest())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.SetMessage(ctx, r.ID, "C1", fmt.Sprintf("1700000000.%06d", i), r.Version); err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			if _, err := s.Approve(ctx, r.ID, "U200", r.Digest); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := s.Enqueue(ctx, "C9", "hello"); err != nil {
		t.Fatal(err)
	}
	if err := s.Remember(ctx, "replay-key", time.Hour); err != nil {
		t.Fatal(err)
	}
}

// TestCopyBetweenBackends: bbolt → etcd → (backup) bbolt keeps every record, the sequences and
// the audit chain; a copy into a store that is not empty is refused.
func TestCopyBetweenBackends(t *testing.T) {
	ctx := context.Background()
	src := mustOpenStore(t, Options{})
	seedForCopy(t, src)
	e := openSharedEtcd(t, Options{})
	rep, err := Copy(ctx, e, src)
	if err != nil {
		t.Fatalf("Copy bbolt → etcd: %v", err)
	}
	if rep.Requests != 5 || rep.Events == 0 {
		t.Fatalf("report %+v, want 5 requests and the events", rep)
	}
	if _, err := Copy(ctx, e, src); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("copy into a store that is not empty: %v", err)
	}
	// IDs go on where the source stopped.
	r, err := e.Create(ctx, validNewRequest())
	if err != nil || r.ID != "FO-6" {
		t.Fatalf("next request on etcd: %v, %v; want FO-6", r, err)
	}
	path := filepath.Join(t.TempDir(), "backup.db")
	if err := e.BackupFile(ctx, path); err != nil {
		t.Fatalf("BackupFile: %v", err)
	}
	back := mustOpenStoreAt(t, path, Options{})
	if err := back.Verify(ctx); err != nil {
		t.Fatalf("the backup's chain: %v", err)
	}
	if err := sameBuckets(ctx, back.kvStore, e.kvStore); err != nil {
		t.Fatalf("the backup differs from etcd: %v", err)
	}
	for _, id := range []string{"FO-1", "FO-3", "FO-6"} {
		a, b := e.get(t, id), back.get(t, id)
		if !bytes.Equal(mustJSON(t, a), mustJSON(t, b)) {
			t.Fatalf("%s differs in the backup", id)
		}
	}
}

func mustJSON(t testing.TB, r *Request) []byte {
	t.Helper()
	data, err := encodeRequest(r)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestEtcdUnavailable: with etcd down a write fails within its caller's deadline saying etcd
// cannot be reached, and nothing is half-written; when etcd returns, writing goes on where it
// stopped.
func TestEtcdUnavailable(t *testing.T) {
	c := etcdtest.Start(t)
	s := openEtcdAt(t, c.Endpoints(), "/failover-bot/", Options{})
	ctx := context.Background()
	if _, err := s.Create(ctx, validNewRequest()); err != nil {
		t.Fatal(err)
	}
	c.StopAll()
	for _, op := range []struct {
		name string
		do   func(ctx context.Context) error
	}{
		{"create", func(ctx context.Context) error { _, err := s.Create(ctx, validNewRequest()); return err }},
		{"approve", func(ctx context.Context) error { _, err := s.Approve(ctx, "FO-1", "U200", "x"); return err }},
		{"remember", func(ctx context.Context) error { return s.Remember(ctx, "k", time.Minute) }},
		{"active", func(ctx context.Context) error { _, err := s.Active(ctx); return err }},
	} {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		start := time.Now()
		err := op.do(ctx)
		cancel()
		if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "etcd") {
			t.Fatalf("%s with etcd down: %v, want ErrUnavailable naming etcd", op.name, err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("%s with etcd down took %v; the caller's 2 s deadline must bound it", op.name, d)
		}
	}
	c.StartAll()
	r, err := s.Create(ctx, validNewRequest())
	if err != nil || r.ID != "FO-2" {
		t.Fatalf("create after etcd returned: %v, %v; want FO-2 (nothing half-written before)", r, err)
	}
	if err := s.Verify(ctx); err != nil {
		t.Fatal(err)
	}
}

// leadingInstance runs Lead for an instance of the store under pfx and reports its terms.
type leadingInstance struct {
	s      *Etcd
	terms  chan Fence    // a fence per term won
	ended  chan struct{} // a value per term ended
	cancel context.CancelFunc
	done   chan error
}

func startLeading(t *testing.T, eps []string, pfx, name string) *leadingInstance {
	t.Helper()
	li := &leadingInstance{s: openEtcdAt(t, eps, pfx, Options{}), terms: make(chan Fence, 10), ended: make(chan struct{}, 10), done: make(chan error, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	li.cancel = cancel
	go func() {
		li.done <- li.s.Lead(ctx, LeadOptions{Instance: name, TTL: 2 * time.Second, Retry: 50 * time.Millisecond,
			Work: func(ctx context.Context, f Fence) {
				li.terms <- f
				<-ctx.Done()
				li.ended <- struct{}{}
			}})
	}()
	t.Cleanup(func() { cancel(); <-li.done })
	return li
}

func waitTerm(t *testing.T, li *leadingInstance, what string) Fence {
	t.Helper()
	select {
	case f := <-li.terms:
		return f
	case <-time.After(15 * time.Second):
		t.Fatalf("%s: no term within 15 s", what)
		return Fence{}
	}
}

// TestEtcdLead: one of two instances leads; the standby's leader-only writes are refused while
// its edge writes are not; a leader that stops hands over at once; a leader whose key is gone
// has its next leader-only write refused and its term ended, and the other takes over.
func TestEtcdLead(t *testing.T) {
	eps, pfx := etcdtest.Shared(t).Endpoints(), etcdtest.Prefix(t)
	a := startLeading(t, eps, pfx, "a")
	fa := waitTerm(t, a, "first instance")
	b := startLeading(t, eps, pfx, "b")
	ctx := context.Background()
	r, err := b.s.Create(ctx, validNewRequest()) // the edge: any instance
	if err != nil {
		t.Fatalf("standby Create: %v", err)
	}
	if _, err := b.s.Note(ctx, r.ID, "poller", "em-state", "x", ""); !errors.Is(err, ErrFenced) {
		t.Fatalf("standby leader-only write: %v, want ErrFenced", err)
	}
	if _, err := b.s.Expire(ctx, r.ID); !errors.Is(err, ErrFenced) {
		t.Fatalf("standby Expire: %v, want ErrFenced", err)
	}
	if _, err := a.s.Note(ctx, r.ID, "poller", "em-state", "x", ""); err != nil {
		t.Fatalf("leader's leader-only write: %v", err)
	}
	if name, err := b.s.Leader(ctx); err != nil || name != "a" {
		t.Fatalf("Leader() = %q, %v; want a", name, err)
	}
	if !a.s.Leading() || b.s.Leading() {
		t.Fatalf("Leading: a %v, b %v", a.s.Leading(), b.s.Leading())
	}

	// A leader that stops resigns: the other leads at once, not after the TTL.
	start := time.Now()
	a.cancel()
	<-a.ended
	fb := waitTerm(t, b, "standby after the leader stopped")
	if d := time.Since(start); d > time.Second {
		t.Fatalf("takeover after a resignation took %v", d)
	}
	if fb == fa {
		t.Fatal("the new term has the old fence")
	}

	// The key of b's term disappears (as when its lease expired while b was paused): b's next
	// leader-only write is refused, and that refusal ends b's term.
	c := startLeading(t, eps, pfx, "c")
	if _, err := b.s.Client().Delete(ctx, fb.Key); err != nil {
		t.Fatal(err)
	}
	if _, err := b.s.Note(ctx, r.ID, "poller", "em-state", "late", ""); !errors.Is(err, ErrFenced) {
		t.Fatalf("deposed leader's write: %v, want ErrFenced", err)
	}
	select {
	case <-b.ended:
	case <-time.After(5 * time.Second):
		t.Fatal("a refused fenced write did not end the term")
	}
	waitTerm(t, c, "third instance after the deposition")
	if err := c.s.Verify(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestEtcdGroupCommit: concurrent writes of one instance share etcd transactions (each
// transaction is one revision), and a write that fails inside a group fails alone.
func TestEtcdGroupCommit(t *testing.T) {
	s := openSharedEtcd(t, Options{})
	ctx := context.Background()
	rev := func() int64 {
		resp, err := s.Client().Get(ctx, "/")
		if err != nil {
			t.Fatal(err)
		}
		return resp.Header.Revision
	}
	const n = 200
	before := rev()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			if i%50 == 7 {
				// Fails inside whatever group it lands in: a replay.
				if err := s.Remember(ctx, "dup", time.Hour); err != nil && !errors.Is(err, ErrReplay) {
					errs <- err
				}
				return
			}
			if err := s.Remember(ctx, fmt.Sprintf("key-%d", i), time.Hour); err != nil {
				errs <- fmt.Errorf("write %d: %w", i, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	txns := rev() - before
	for i := range n {
		if i%50 == 7 {
			continue
		}
		if seen, err := s.Seen(ctx, fmt.Sprintf("key-%d", i)); err != nil || !seen {
			t.Fatalf("key-%d not remembered (%v)", i, err)
		}
	}
	t.Logf("%d writes in %d etcd transactions", n, txns)
	if txns >= n-3 {
		t.Fatalf("%d writes took %d etcd transactions: they were not grouped", n, txns)
	}
}

// sameBuckets checks that a holds what b holds in every bucket but the health probe's.
func sameBuckets(ctx context.Context, a, b *kvStore) error {
	var want []bucketSum
	err := b.view(ctx, func(tx kvTx) error {
		for _, name := range allBuckets {
			if bytes.Equal(name, bucketHealth) {
				continue
			}
			sum, err := sumBucket(tx, name)
			if err != nil {
				return err
			}
			want = append(want, sum)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return holdsAsRead(ctx, a, want)
}
