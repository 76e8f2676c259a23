package etcdtest

// These tests prove that the Go client, go.etcd.io/etcd/client/v3 v3.7, works against the etcd
// the tests run (Debian's etcd-server, 3.4.23 in CI) for everything the etcd store and the
// leader election use, and that the harness starts, breaks and mends clusters as it says.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.etcd.io/etcd/api/v3/version"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// orphanEnv makes the test binary start the shared etcd, print its endpoint and wait to be
// killed, for TestMembersDieWithTestBinary.
const orphanEnv = "ETCDTEST_ORPHAN_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(orphanEnv) == "1" {
		c, err := sharedCluster()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println(c.members[0].clientURL())
		time.Sleep(time.Hour) // until the parent kills this process
		os.Exit(1)
	}
	Main(m)
}

// timeout returns a context that ends after d or at t's end.
func timeout(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

func mustPut(t *testing.T, cli *clientv3.Client, key, val string, opts ...clientv3.OpOption) *clientv3.PutResponse {
	t.Helper()
	resp, err := cli.Put(timeout(t, 10*time.Second), key, val, opts...)
	if err != nil {
		t.Fatalf("Put %s: %v", key, err)
	}
	return resp
}

func mustGet(t *testing.T, cli *clientv3.Client, key string, opts ...clientv3.OpOption) *clientv3.GetResponse {
	t.Helper()
	resp, err := cli.Get(timeout(t, 10*time.Second), key, opts...)
	if err != nil {
		t.Fatalf("Get %s: %v", key, err)
	}
	return resp
}

// kvs renders key-values as "key=value", keys relative to pfx.
func kvs(pfx string, list []*mvccpb.KeyValue) []string {
	var out []string
	for _, kv := range list {
		out = append(out, strings.TrimPrefix(string(kv.Key), pfx)+"="+string(kv.Value))
	}
	return out
}

func parseVersion(v string) (major, minor, patch int, err error) {
	parts := strings.SplitN(v, ".", 3)
	if len(parts) != 3 {
		return 0, 0, 0, fmt.Errorf("version %q is not major.minor.patch", v)
	}
	var n [3]int
	for i, p := range parts {
		if n[i], err = strconv.Atoi(p); err != nil {
			return 0, 0, 0, fmt.Errorf("version %q: %w", v, err)
		}
	}
	return n[0], n[1], n[2], nil
}

// TestServerVersion logs the server's version and checks it is an etcd 3 of at least 3.4, and
// that RejectOldCluster (which the bot must leave false) refuses a server older than 3.6.
func TestServerVersion(t *testing.T) {
	c := Shared(t)
	cli := c.Client(t)
	st, err := cli.Status(timeout(t, 10*time.Second), c.Endpoint(0))
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	t.Logf("etcd server %s (db %d bytes), client %s", st.Version, st.DbSize, version.Version)
	major, minor, _, err := parseVersion(st.Version)
	if err != nil {
		t.Fatal(err)
	}
	if major != 3 || minor < 4 {
		t.Fatalf("server version %s, want 3.4 or later", st.Version)
	}
	if st.Header.MemberId == 0 || st.Leader != st.Header.MemberId {
		t.Errorf("Status of a lone member: leader %x, member %x, want itself", st.Leader, st.Header.MemberId)
	}

	// The client's RejectOldCluster refuses servers older than its previous minor release.
	strict, err := clientv3.New(clientv3.Config{Endpoints: c.Endpoints(), DialTimeout: DialTimeout, RejectOldCluster: true, Logger: zap.NewNop()})
	if err == nil {
		strict.Close()
	}
	if wantOld := minor < 6; errors.Is(err, clientv3.ErrOldCluster) != wantOld {
		t.Errorf("client with RejectOldCluster against %s: error %v, want ErrOldCluster %t", st.Version, err, wantOld)
	}
}

// TestKV runs Put, Get, Delete and ranges; the rows run in order on the same keys.
func TestKV(t *testing.T) {
	cli := Shared(t).Client(t)
	p := Prefix(t)
	for _, k := range []string{"a/1", "a/2", "a/3"} {
		mustPut(t, cli, p+k, strings.TrimPrefix(k, "a/"))
	}
	mustPut(t, cli, p+"b/1", "x")

	tests := []struct {
		name        string
		op          clientv3.Op
		want        []string // the KVs a Get returns, the previous KVs of a Put or Delete
		wantCount   int64    // a Get's count of matches, whatever its limit
		wantMore    bool
		wantDeleted int64
	}{
		{name: "one key", op: clientv3.OpGet(p + "a/2"), want: []string{"a/2=2"}, wantCount: 1},
		{name: "a missing key", op: clientv3.OpGet(p + "zz")},
		{name: "prefix, sorted by key", op: clientv3.OpGet(p+"a/", clientv3.WithPrefix()),
			want: []string{"a/1=1", "a/2=2", "a/3=3"}, wantCount: 3},
		{name: "prefix, descending, limited",
			op:   clientv3.OpGet(p+"a/", clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend), clientv3.WithLimit(2)),
			want: []string{"a/3=3", "a/2=2"}, wantCount: 3, wantMore: true},
		{name: "range [a/2, b/)", op: clientv3.OpGet(p+"a/2", clientv3.WithRange(p+"b/")),
			want: []string{"a/2=2", "a/3=3"}, wantCount: 2},
		{name: "count only", op: clientv3.OpGet(p, clientv3.WithPrefix(), clientv3.WithCountOnly()), wantCount: 4},
		{name: "keys only", op: clientv3.OpGet(p+"b/", clientv3.WithPrefix(), clientv3.WithKeysOnly()),
			want: []string{"b/1="}, wantCount: 1},
		{name: "put returns the previous value", op: clientv3.OpPut(p+"b/1", "y", clientv3.WithPrevKV()), want: []string{"b/1=x"}},
		{name: "delete one key", op: clientv3.OpDelete(p + "a/1"), wantDeleted: 1},
		{name: "delete it again", op: clientv3.OpDelete(p + "a/1")},
		{name: "delete a prefix, returning what it deleted", op: clientv3.OpDelete(p+"a/", clientv3.WithPrefix(), clientv3.WithPrevKV()),
			want: []string{"a/2=2", "a/3=3"}, wantDeleted: 2},
		{name: "what is left", op: clientv3.OpGet(p, clientv3.WithPrefix()), want: []string{"b/1=y"}, wantCount: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := cli.Do(timeout(t, 10*time.Second), tt.op)
			if err != nil {
				t.Fatalf("Do: %v", err)
			}
			var got []string
			var count, deleted int64
			var more bool
			switch {
			case tt.op.IsGet():
				got, count, more = kvs(p, resp.Get().Kvs), resp.Get().Count, resp.Get().More
			case tt.op.IsPut():
				if prev := resp.Put().PrevKv; prev != nil {
					got = kvs(p, []*mvccpb.KeyValue{prev})
				}
			case tt.op.IsDelete():
				got, deleted = kvs(p, resp.Del().PrevKvs), resp.Del().Deleted
			}
			if !slices.Equal(got, tt.want) || count != tt.wantCount || more != tt.wantMore || deleted != tt.wantDeleted {
				t.Errorf("got %q count %d more %t deleted %d, want %q count %d more %t deleted %d",
					got, count, more, deleted, tt.want, tt.wantCount, tt.wantMore, tt.wantDeleted)
			}
		})
	}
}

// TestReadAtRevision reads keys and ranges as they were at a revision (a consistent export),
// and after compaction gets ErrCompacted for what compaction removed, from Get and Watch.
// It compacts the shared etcd, so no other test may read revisions older than its own.
func TestReadAtRevision(t *testing.T) {
	cli := Shared(t).Client(t)
	p := Prefix(t)
	r1 := mustPut(t, cli, p+"k", "v1").Header.Revision
	mustPut(t, cli, p+"other", "o1")
	r2 := mustPut(t, cli, p+"k", "v2").Header.Revision
	del, err := cli.Delete(timeout(t, 10*time.Second), p+"k")
	if err != nil {
		t.Fatalf("Delete: %v", err)
	}
	r3 := del.Header.Revision

	tests := []struct {
		name string
		key  string
		opts []clientv3.OpOption
		want []string
	}{
		{"the first version", "k", []clientv3.OpOption{clientv3.WithRev(r1)}, []string{"k=v1"}},
		{"the second version", "k", []clientv3.OpOption{clientv3.WithRev(r2)}, []string{"k=v2"}},
		{"after the delete", "k", []clientv3.OpOption{clientv3.WithRev(r3)}, nil},
		{"the latest", "k", nil, nil},
		{"a prefix at one revision", "", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithRev(r2)}, []string{"k=v2", "other=o1"}},
		{"a prefix now", "", []clientv3.OpOption{clientv3.WithPrefix()}, []string{"other=o1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := mustGet(t, cli, p+tt.key, tt.opts...)
			if got := kvs(p, resp.Kvs); !slices.Equal(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
			if resp.Header.Revision < r3 {
				t.Errorf("header revision %d, want the store's current revision (at least %d), whatever revision was read", resp.Header.Revision, r3)
			}
		})
	}

	if _, err := cli.Compact(timeout(t, 10*time.Second), r2); err != nil {
		t.Fatalf("Compact(%d): %v", r2, err)
	}
	if _, err := cli.Get(timeout(t, 10*time.Second), p+"k", clientv3.WithRev(r1)); !errors.Is(err, rpctypes.ErrCompacted) {
		t.Errorf("Get at compacted revision %d: error %v, want ErrCompacted", r1, err)
	}
	if got := kvs(p, mustGet(t, cli, p+"k", clientv3.WithRev(r2)).Kvs); !slices.Equal(got, []string{"k=v2"}) {
		t.Errorf("Get at the compaction revision %d = %q, want [k=v2]", r2, got)
	}
	wr, ok := <-cli.Watch(timeout(t, 10*time.Second), p+"k", clientv3.WithRev(r1))
	if !ok || !errors.Is(wr.Err(), rpctypes.ErrCompacted) || wr.CompactRevision != r2 {
		t.Errorf("Watch from compacted revision %d: open %t, error %v, compact revision %d; want ErrCompacted at %d", r1, ok, wr.Err(), wr.CompactRevision, r2)
	}
}

// TestTxnCompare commits transactions whose compares hold or fail, as the store's compare-and-
// swap and the election's fencing do, and checks which branch ran.
func TestTxnCompare(t *testing.T) {
	cli := Shared(t).Client(t)

	type revs struct{ create, mod int64 }
	tests := []struct {
		name   string
		cmps   func(k, absent string, r revs) []clientv3.Cmp
		wantOK bool
	}{
		{"mod revision as read", func(k, _ string, r revs) []clientv3.Cmp {
			return []clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(k), "=", r.mod)}
		}, true},
		{"mod revision stale: the key changed since it was read", func(k, _ string, r revs) []clientv3.Cmp {
			return []clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(k), "=", r.create)}
		}, false},
		{"mod revision below a bound", func(k, _ string, r revs) []clientv3.Cmp {
			return []clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(k), "<", r.mod+1)}
		}, true},
		{"create revision as read: the same incarnation (a fencing token)", func(k, _ string, r revs) []clientv3.Cmp {
			return []clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(k), "=", r.create)}
		}, true},
		{"create revision of another incarnation", func(k, _ string, r revs) []clientv3.Cmp {
			return []clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(k), "=", r.create-1)}
		}, false},
		{"create revision 0 of a missing key: create if absent", func(_, absent string, _ revs) []clientv3.Cmp {
			return []clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(absent), "=", 0)}
		}, true},
		{"create revision 0 of a key that exists", func(k, _ string, _ revs) []clientv3.Cmp {
			return []clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(k), "=", 0)}
		}, false},
		{"value as read", func(k, _ string, _ revs) []clientv3.Cmp {
			return []clientv3.Cmp{clientv3.Compare(clientv3.Value(k), "=", "v2")}
		}, true},
		{"value changed", func(k, _ string, _ revs) []clientv3.Cmp {
			return []clientv3.Cmp{clientv3.Compare(clientv3.Value(k), "=", "v1")}
		}, false},
		{"version", func(k, _ string, _ revs) []clientv3.Cmp {
			return []clientv3.Cmp{clientv3.Compare(clientv3.Version(k), "=", 2)}
		}, true},
		{"every compare holds", func(k, absent string, r revs) []clientv3.Cmp {
			return []clientv3.Cmp{
				clientv3.Compare(clientv3.ModRevision(k), "=", r.mod),
				clientv3.Compare(clientv3.CreateRevision(k), "=", r.create),
				clientv3.Compare(clientv3.CreateRevision(absent), "=", 0),
				clientv3.Compare(clientv3.Value(k), "=", "v2"),
			}
		}, true},
		{"one compare of several fails", func(k, absent string, r revs) []clientv3.Cmp {
			return []clientv3.Cmp{
				clientv3.Compare(clientv3.ModRevision(k), "=", r.mod),
				clientv3.Compare(clientv3.CreateRevision(absent), "=", 0),
				clientv3.Compare(clientv3.Value(k), "=", "v1"),
			}
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Prefix(t)
			k, absent := p+"k", p+"absent"
			r := revs{create: mustPut(t, cli, k, "v1").Header.Revision}
			r.mod = mustPut(t, cli, k, "v2").Header.Revision

			resp, err := cli.Txn(timeout(t, 10*time.Second)).
				If(tt.cmps(k, absent, r)...).
				Then(clientv3.OpPut(p+"then", "ran"), clientv3.OpPut(p+"then2", "ran"), clientv3.OpGet(k)).
				Else(clientv3.OpPut(p+"else", "ran"), clientv3.OpGet(k)).
				Commit()
			if err != nil {
				t.Fatalf("Commit: %v", err)
			}
			if resp.Succeeded != tt.wantOK {
				t.Fatalf("Succeeded = %t, want %t", resp.Succeeded, tt.wantOK)
			}
			want := []string{"else=ran", "k=v2"}
			if tt.wantOK {
				want = []string{"k=v2", "then=ran", "then2=ran"}
			}
			after := mustGet(t, cli, p, clientv3.WithPrefix())
			if got := kvs(p, after.Kvs); !slices.Equal(got, want) {
				t.Errorf("keys after the transaction: %q, want %q", got, want)
			}
			// Both branches end with a read of k at the transaction's revision: what the
			// store reports when its compare fails.
			rr := resp.Responses[len(resp.Responses)-1].GetResponseRange()
			if len(rr.Kvs) != 1 || rr.Kvs[0].ModRevision != r.mod || rr.Kvs[0].CreateRevision != r.create {
				t.Errorf("the branch's Get of k = %v, want mod revision %d, create revision %d", rr.Kvs, r.mod, r.create)
			}
			// A transaction is one revision: every key it wrote carries it.
			for _, kv := range after.Kvs {
				if string(kv.Key) != k && kv.ModRevision != resp.Header.Revision {
					t.Errorf("%s written at revision %d, the transaction's is %d", kv.Key, kv.ModRevision, resp.Header.Revision)
				}
			}
		})
	}
}

// TestTxnLimits proves the members' --max-txn-ops and --max-request-bytes, and the client's
// send limit: a request that is too large fails whole, writing nothing.
func TestTxnLimits(t *testing.T) {
	cli := Shared(t).Client(t)
	plain, err := clientv3.New(clientv3.Config{Endpoints: Shared(t).Endpoints(), DialTimeout: DialTimeout, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { plain.Close() })

	puts := func(p string, n, size int) []clientv3.Op {
		val := strings.Repeat("x", size)
		ops := make([]clientv3.Op, n)
		for i := range ops {
			ops[i] = clientv3.OpPut(fmt.Sprintf("%s%05d", p, i), val)
		}
		return ops
	}
	absent := func(p string, n int) []clientv3.Cmp {
		cmps := make([]clientv3.Cmp, n)
		for i := range cmps {
			cmps[i] = clientv3.Compare(clientv3.CreateRevision(fmt.Sprintf("%s%05d", p, i)), "=", 0)
		}
		return cmps
	}
	tests := []struct {
		name     string
		cli      *clientv3.Client
		cmps     func(p string) []clientv3.Cmp
		ops      func(p string) []clientv3.Op
		wantErr  error      // an etcd error, or
		wantCode codes.Code // a gRPC status code from the client
	}{
		{name: "1,000 puts", cli: cli, ops: func(p string) []clientv3.Op { return puts(p, 1000, 100) }},
		{name: "1,000 compares and 1,000 puts: a commit that read 1,000 keys", cli: cli,
			cmps: func(p string) []clientv3.Cmp { return absent(p, 1000) },
			ops:  func(p string) []clientv3.Op { return puts(p, 1000, 100) }},
		{name: "MaxTxnOps puts", cli: cli, ops: func(p string) []clientv3.Op { return puts(p, MaxTxnOps, 10) }},
		{name: "MaxTxnOps+1 puts", cli: cli, ops: func(p string) []clientv3.Op { return puts(p, MaxTxnOps+1, 10) },
			wantErr: rpctypes.ErrTooManyOps},
		{name: "MaxTxnOps+1 compares", cli: cli, cmps: func(p string) []clientv3.Cmp { return absent(p, MaxTxnOps+1) },
			ops: func(p string) []clientv3.Op { return puts(p, 1, 10) }, wantErr: rpctypes.ErrTooManyOps},
		{name: "7 MiB, over etcd's default 1.5 MiB", cli: cli, ops: func(p string) []clientv3.Op { return puts(p, 7, 1<<20) }},
		{name: "over MaxRequestBytes", cli: cli, ops: func(p string) []clientv3.Op { return puts(p, 1, MaxRequestBytes+64<<10) },
			wantErr: rpctypes.ErrRequestTooLarge},
		{name: "3 MiB from a client with the default 2 MiB send limit", cli: plain,
			ops: func(p string) []clientv3.Op { return puts(p, 3, 1<<20) }, wantCode: codes.ResourceExhausted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Prefix(t)
			var cmps []clientv3.Cmp
			if tt.cmps != nil {
				cmps = tt.cmps(p)
			}
			ops := tt.ops(p)
			resp, err := tt.cli.Txn(timeout(t, 20*time.Second)).If(cmps...).Then(ops...).Commit()
			t.Cleanup(func() { _, _ = cli.Delete(context.Background(), p, clientv3.WithPrefix()) })
			switch {
			case tt.wantErr != nil:
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Commit: error %v, want %v", err, tt.wantErr)
				}
			case tt.wantCode != codes.OK:
				if status.Code(err) != tt.wantCode {
					t.Fatalf("Commit: error %v (code %s), want code %s", err, status.Code(err), tt.wantCode)
				}
			case err != nil:
				t.Fatalf("Commit: %v", err)
			case !resp.Succeeded:
				t.Fatal("Commit: compares failed, want them to hold")
			}
			want := int64(len(ops))
			if tt.wantErr != nil || tt.wantCode != codes.OK {
				want = 0
			}
			if got := mustGet(t, cli, p, clientv3.WithPrefix(), clientv3.WithCountOnly()).Count; got != want {
				t.Errorf("%d keys written, want %d", got, want)
			}
		})
	}
}

// TestDefaultTxnLimit: Args overrides the package's flags; at etcd's default --max-txn-ops, a
// commit of 1,000 operations, which the store makes for a request of many VMs, is refused.
func TestDefaultTxnLimit(t *testing.T) {
	c := Start(t, Args("--max-txn-ops=128"))
	cli := c.Client(t)
	p := Prefix(t)
	tests := []struct {
		name    string
		ops     int
		wantErr error
	}{
		{"128 operations", 128, nil},
		{"129 operations", 129, rpctypes.ErrTooManyOps},
		{"1,000 operations", 1000, rpctypes.ErrTooManyOps},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ops := make([]clientv3.Op, tt.ops)
			for i := range ops {
				ops[i] = clientv3.OpPut(fmt.Sprintf("%s%d/%05d", p, tt.ops, i), "x")
			}
			if _, err := cli.Txn(timeout(t, 10*time.Second)).Then(ops...).Commit(); !errors.Is(err, tt.wantErr) {
				t.Errorf("Commit: error %v, want %v", err, tt.wantErr)
			}
		})
	}
}

// TestLease grants a lease, keeps it alive, revokes it, and lets another expire.
func TestLease(t *testing.T) {
	cli := Shared(t).Client(t)
	p := Prefix(t)
	ctx := timeout(t, 20*time.Second)

	g, err := cli.Grant(ctx, 5)
	if err != nil {
		t.Fatalf("Grant: %v", err)
	}
	if g.TTL < 5 {
		t.Errorf("granted TTL %d s, want at least 5", g.TTL)
	}
	mustPut(t, cli, p+"held", "x", clientv3.WithLease(g.ID))
	ka, err := cli.KeepAlive(ctx, g.ID)
	if err != nil {
		t.Fatalf("KeepAlive: %v", err)
	}
	if r, ok := <-ka; !ok || r.ID != g.ID || r.TTL <= 0 {
		t.Fatalf("first keep-alive: %v (open %t), want lease %x with a TTL", r, ok, g.ID)
	}
	if r, err := cli.KeepAliveOnce(ctx, g.ID); err != nil || r.TTL <= 0 {
		t.Fatalf("KeepAliveOnce: %v, %v", r, err)
	}
	ttl, err := cli.TimeToLive(ctx, g.ID, clientv3.WithAttachedKeys())
	if err != nil {
		t.Fatalf("TimeToLive: %v", err)
	}
	if ttl.TTL <= 0 || ttl.GrantedTTL != g.TTL || len(ttl.Keys) != 1 || string(ttl.Keys[0]) != p+"held" {
		t.Errorf("TimeToLive = TTL %d, granted %d, keys %q; want a TTL, granted %d, key %s", ttl.TTL, ttl.GrantedTTL, ttl.Keys, g.TTL, p+"held")
	}
	leases, err := cli.Leases(ctx)
	if err != nil {
		t.Fatalf("Leases: %v", err)
	}
	if !slices.ContainsFunc(leases.Leases, func(l clientv3.LeaseStatus) bool { return l.ID == g.ID }) {
		t.Errorf("Leases = %v, want it to list %x", leases.Leases, g.ID)
	}
	if _, err := cli.Revoke(ctx, g.ID); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	if got := mustGet(t, cli, p+"held"); got.Count != 0 {
		t.Errorf("after Revoke, Get = %v, want the key deleted with its lease", got.Kvs)
	}
	if ttl, err := cli.TimeToLive(ctx, g.ID); err != nil || ttl.TTL != -1 {
		t.Errorf("TimeToLive after Revoke = %v, %v, want TTL -1", ttl, err)
	}

	// A lease nobody keeps alive expires, and its key goes with it.
	start := time.Now()
	short, err := cli.Grant(ctx, 1)
	if err != nil {
		t.Fatalf("Grant: %v", err)
	}
	t.Logf("a 1 s lease was granted %d s (etcd's floor is 1.5 election timeouts)", short.TTL)
	rev := mustPut(t, cli, p+"expiring", "x", clientv3.WithLease(short.ID)).Header.Revision
	for wr := range cli.Watch(ctx, p+"expiring", clientv3.WithRev(rev+1)) {
		if err := wr.Err(); err != nil {
			t.Fatalf("Watch: %v", err)
		}
		if len(wr.Events) > 0 {
			if ev := wr.Events[0]; ev.Type != clientv3.EventTypeDelete {
				t.Fatalf("event %s, want the key's DELETE on expiry", ev.Type)
			}
			break
		}
	}
	if ctx.Err() != nil {
		t.Fatalf("the lease did not expire: %v", ctx.Err())
	}
	if elapsed := time.Since(start); elapsed < time.Duration(short.TTL)*time.Second {
		t.Errorf("the lease expired after %s, before its TTL of %d s", elapsed, short.TTL)
	}
}

// event renders a watch event as "PUT key=value (was value)", keys relative to pfx.
func event(pfx string, ev *clientv3.Event) string {
	s := fmt.Sprintf("%s %s", ev.Type, strings.TrimPrefix(string(ev.Kv.Key), pfx))
	if ev.Type == clientv3.EventTypePut {
		s += "=" + string(ev.Kv.Value)
	}
	if ev.PrevKv != nil {
		s += " (was " + string(ev.PrevKv.Value) + ")"
	}
	return s
}

// TestWatchPrefix watches a prefix live and from a past revision, and stops on cancel.
func TestWatchPrefix(t *testing.T) {
	cli := Shared(t).Client(t)
	p := Prefix(t)
	w := p + "w/"
	start := mustPut(t, cli, p+"before", "0").Header.Revision

	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	live := cli.Watch(ctx, w, clientv3.WithPrefix(), clientv3.WithPrevKV(), clientv3.WithCreatedNotify())
	if wr := <-live; !wr.Created {
		t.Fatalf("first response %+v, want the created notice", wr)
	}

	mustPut(t, cli, w+"a", "1")
	mustPut(t, cli, w+"b", "1")
	mustPut(t, cli, p+"outside", "1")
	mustPut(t, cli, w+"a", "2")
	if _, err := cli.Delete(ctx, w+"a"); err != nil {
		t.Fatal(err)
	}
	txn, err := cli.Txn(ctx).Then(clientv3.OpPut(w+"c", "1"), clientv3.OpPut(w+"d", "1")).Commit()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"PUT w/a=1", "PUT w/b=1", "PUT w/a=2 (was 1)", "DELETE w/a (was 2)", "PUT w/c=1", "PUT w/d=1"}

	tests := []struct {
		name string
		ch   clientv3.WatchChan
	}{
		{"live, from its created notice", live},
		{"replayed from a past revision", cli.Watch(ctx, w, clientv3.WithPrefix(), clientv3.WithPrevKV(), clientv3.WithRev(start+1))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			var revs []int64
			for len(got) < len(want) {
				wr, ok := <-tt.ch
				if !ok || wr.Err() != nil {
					t.Fatalf("watch ended after %q: open %t, error %v (context: %v)", got, ok, wr.Err(), ctx.Err())
				}
				for _, ev := range wr.Events {
					got = append(got, event(p, ev))
					revs = append(revs, ev.Kv.ModRevision)
				}
			}
			if !slices.Equal(got, want) {
				t.Errorf("events %q, want %q", got, want)
			}
			if !slices.IsSorted(revs) || revs[4] != txn.Header.Revision || revs[5] != txn.Header.Revision {
				t.Errorf("event revisions %v, want ascending and the transaction's two at %d", revs, txn.Header.Revision)
			}
		})
	}

	cancel()
	for range live { // closes once the cancel reaches it
	}
}

// TestElection elects a leader with concurrency.Election on two sessions, checks that the
// election key's create revision fences writes, and that the second candidate takes over
// however the first goes: it resigns, its session is closed, or its lease expires.
func TestElection(t *testing.T) {
	c := Shared(t)
	tests := []struct {
		name string
		// depose makes the first leader go; its minimum is how long the takeover must wait.
		depose func(t *testing.T, s *concurrency.Session, e *concurrency.Election) (minimum time.Duration)
	}{
		{"the leader resigns", func(t *testing.T, _ *concurrency.Session, e *concurrency.Election) time.Duration {
			if err := e.Resign(timeout(t, 10*time.Second)); err != nil {
				t.Fatalf("Resign: %v", err)
			}
			return 0
		}},
		{"the leader's session is closed", func(t *testing.T, s *concurrency.Session, _ *concurrency.Election) time.Duration {
			if err := s.Close(); err != nil {
				t.Fatalf("Session.Close: %v", err)
			}
			return 0
		}},
		{"the leader's lease expires (it crashed, or hangs)", func(t *testing.T, s *concurrency.Session, _ *concurrency.Election) time.Duration {
			ttl, err := s.Client().TimeToLive(timeout(t, 10*time.Second), s.Lease())
			if err != nil {
				t.Fatalf("TimeToLive: %v", err)
			}
			s.Orphan() // stop the keep-alives without revoking
			<-s.Done()
			// Keep-alives renew the lease every third of its TTL, so at least two thirds
			// of it remain when they stop: the takeover waits at least a third.
			return time.Duration(ttl.GrantedTTL) * time.Second / 3
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pfx := Prefix(t)
			ctx := timeout(t, 30*time.Second)
			session := func(cli *clientv3.Client) *concurrency.Session {
				t.Helper()
				s, err := concurrency.NewSession(cli, concurrency.WithTTL(1))
				if err != nil {
					t.Fatalf("NewSession: %v", err)
				}
				t.Cleanup(func() { s.Close() })
				return s
			}
			leader := func(e *concurrency.Election) string {
				t.Helper()
				resp, err := e.Leader(ctx)
				if err != nil {
					t.Fatalf("Leader: %v", err)
				}
				return string(resp.Kvs[0].Value)
			}
			// fenced writes as the leader whose election key and its create revision (the
			// fencing token) are f, as the bot's leader-only writes do.
			type token struct {
				key string
				rev int64
			}
			fenced := func(f token) bool {
				t.Helper()
				resp, err := c.Client(t).Txn(ctx).
					If(clientv3.Compare(clientv3.CreateRevision(f.key), "=", f.rev)).
					Then(clientv3.OpPut(pfx+"work", f.key)).Commit()
				if err != nil {
					t.Fatalf("fenced Txn: %v", err)
				}
				return resp.Succeeded
			}

			s1, s2 := session(c.Client(t)), session(c.Client(t))
			e1, e2 := concurrency.NewElection(s1, pfx+"leader"), concurrency.NewElection(s2, pfx+"leader")
			if err := e1.Campaign(ctx, "a"); err != nil {
				t.Fatalf("first Campaign: %v", err)
			}
			if got := leader(e1); got != "a" {
				t.Fatalf("Leader = %q, want a", got)
			}
			// Resign forgets the key, so the tokens are taken now.
			first := token{e1.Key(), e1.Rev()}
			if !fenced(first) {
				t.Fatal("the leader's fenced write failed")
			}
			observed := concurrency.NewElection(session(c.Client(t)), pfx+"leader").Observe(ctx)
			if o := <-observed; len(o.Kvs) != 1 || string(o.Kvs[0].Value) != "a" {
				t.Fatalf("Observe first saw %v, want a", o.Kvs)
			}

			// The second candidate queues behind the first: its key is written, and it waits.
			queued := c.Client(t).Watch(ctx, pfx+"leader", clientv3.WithPrefix(), clientv3.WithRev(e1.Rev()+1))
			won := make(chan error, 1)
			go func() { won <- e2.Campaign(ctx, "b") }()
			if wr := <-queued; len(wr.Events) != 1 || wr.Events[0].Type != clientv3.EventTypePut {
				t.Fatalf("watching the election: %+v (error %v), want the second candidate's key", wr.Events, wr.Err())
			}
			select {
			case err := <-won:
				t.Fatalf("the second Campaign returned (%v) while the first leader holds", err)
			default:
			}

			start := time.Now()
			minimum := tt.depose(t, s1, e1)
			select {
			case err := <-won:
				if err != nil {
					t.Fatalf("second Campaign: %v", err)
				}
			case <-ctx.Done():
				t.Fatal("the second candidate never took over")
			}
			if elapsed := time.Since(start); elapsed < minimum {
				t.Errorf("took over after %s, before the lease could expire (%s)", elapsed, minimum)
			}
			if got := leader(e2); got != "b" {
				t.Errorf("Leader = %q, want b", got)
			}
			for o := range observed {
				if v := string(o.Kvs[0].Value); v == "b" {
					break
				} else if v != "a" {
					t.Fatalf("Observe saw %q, want a then b", v)
				}
			}
			if fenced(first) {
				t.Error("the deposed leader's fenced write succeeded")
			}
			if !fenced(token{e2.Key(), e2.Rev()}) {
				t.Error("the new leader's fenced write failed")
			}
		})
	}
}

// TestThreeMembers breaks a three-member cluster step by step: it writes with one member lost,
// fails cleanly without a quorum, recovers when members return (each with every write), and
// survives a paused leader and a whole-cluster outage with its data.
func TestThreeMembers(t *testing.T) {
	c := Start(t, Members(3))
	cli := c.Client(t)
	p := Prefix(t)
	key := p + "k"
	var last *clientv3.PutResponse // the last write that succeeded, of lastVal
	var lastVal string
	writes := 0
	write := func(t *testing.T, cli *clientv3.Client, d time.Duration) error {
		t.Helper()
		writes++
		val := strconv.Itoa(writes)
		resp, err := cli.Put(timeout(t, d), key, val)
		if err == nil {
			last, lastVal = resp, val
		}
		return err
	}
	mustWriteWith := func(t *testing.T, cli *clientv3.Client) {
		t.Helper()
		if err := write(t, cli, 10*time.Second); err != nil {
			t.Fatalf("write: %v", err)
		}
	}
	mustWrite := func(t *testing.T) {
		t.Helper()
		mustWriteWith(t, cli)
	}
	// mustNotWrite checks that a write and a linearizable read without a quorum fail at their
	// context's deadline. The error may be the client's own, or etcd's answer to the copy of
	// the deadline it was sent ("etcdserver: request timed out"; for a read, etcd 3.4 sends a
	// bare gRPC Unknown "context deadline exceeded"), whichever arrives first; etcd's may even
	// arrive before the context's timer has marked it done. So the time, not the error's
	// shape or ctx.Err(), says it was a timeout.
	mustNotWrite := func(t *testing.T) {
		t.Helper()
		const deadline = 2 * time.Second
		calls := []struct {
			name string
			do   func(ctx context.Context) error
		}{
			{"write", func(ctx context.Context) error { _, err := cli.Put(ctx, key, "never"); return err }},
			{"linearizable read", func(ctx context.Context) error { _, err := cli.Get(ctx, key); return err }},
		}
		type result struct {
			err     error
			elapsed time.Duration
		}
		results := make([]chan result, len(calls))
		for i, call := range calls { // at once: each waits for its deadline
			results[i] = make(chan result, 1)
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), deadline)
				defer cancel()
				start := time.Now()
				err := call.do(ctx)
				results[i] <- result{err, time.Since(start)}
			}()
		}
		for i, call := range calls {
			r := <-results[i]
			// etcd's deadline is the one sent, counted from when the request arrived.
			if r.err == nil || r.elapsed < deadline-10*time.Millisecond || r.elapsed > deadline+time.Second {
				t.Errorf("%s without a quorum: error %v after %s, want a failure at the %s deadline", call.name, r.err, r.elapsed.Round(time.Millisecond), deadline)
			} else {
				t.Logf("%s without a quorum: %v", call.name, r.err)
			}
		}
	}
	// hasLast waits until member i holds the last write: a watch of member i alone from its
	// revision is answered once the member has applied it.
	hasLast := func(t *testing.T, i int) {
		t.Helper()
		rev := last.Header.Revision
		wr := <-c.Client(t, i).Watch(timeout(t, 15*time.Second), key, clientv3.WithRev(rev))
		if err := wr.Err(); err != nil || len(wr.Events) == 0 {
			t.Fatalf("m%d: watching for revision %d: %v, events %v", i, rev, err, wr.Events)
		}
		if kv := wr.Events[0].Kv; kv.ModRevision != rev || string(kv.Value) != lastVal {
			t.Fatalf("m%d: revision %d holds %q, want the last write, %q at %d", i, kv.ModRevision, kv.Value, lastVal, rev)
		}
	}
	running := func(skip ...int) []int {
		var out []int
		for i, m := range c.c.members {
			if m.proc != nil && !slices.Contains(skip, i) {
				out = append(out, i)
			}
		}
		return out
	}

	var killed, stopped, paused int
	var lease clientv3.LeaseID // a bot leader's session, kept alive by nobody
	steps := []struct {
		name string
		do   func(t *testing.T)
	}{
		{"all three members run", func(t *testing.T) {
			mustWrite(t)
			for _, i := range running() {
				hasLast(t, i)
			}
			g, err := cli.Grant(timeout(t, 10*time.Second), 30)
			if err != nil {
				t.Fatalf("Grant: %v", err)
			}
			lease = g.ID
			mustPut(t, cli, p+"session", "held", clientv3.WithLease(lease))
		}},
		{"the leader is killed: the other two elect another and write", func(t *testing.T) {
			killed = c.Leader()
			c.Kill(killed)
			if l := c.Leader(); l == killed {
				t.Fatalf("Leader = m%d, which was killed", l)
			}
			mustWrite(t)
			for _, i := range running() {
				hasLast(t, i)
			}
			// A lease outlives the etcd leader that granted it: losing an etcd member does
			// not depose the bot's leader. (The log shows etcd 3.4 restarting the countdown
			// at the full TTL under a new etcd leader.)
			ttl, err := cli.TimeToLive(timeout(t, 10*time.Second), lease, clientv3.WithAttachedKeys())
			if err != nil || ttl.TTL <= 0 || len(ttl.Keys) != 1 {
				t.Fatalf("the lease after the etcd leader's loss: %v, %v; want it alive with its key", ttl, err)
			}
			t.Logf("the 30 s lease has %d s left after the etcd leader's loss", ttl.TTL)
		}},
		{"a second member stops: no quorum, calls end at their deadline", func(t *testing.T) {
			stopped = running()[0]
			survivor := running(stopped)[0]
			// A watch that requires a leader ends when its member has none (etcd checks
			// every election timeout, and gives up after three without a leader).
			mc := c.Client(t, survivor)
			watch := mc.Watch(clientv3.WithRequireLeader(timeout(t, 15*time.Second)), key)
			c.Stop(stopped)
			mustNotWrite(t)
			var werr error
			for wr := range watch {
				if werr = wr.Err(); werr != nil {
					break
				}
			}
			if !errors.Is(werr, rpctypes.ErrNoLeader) {
				t.Errorf("watch requiring a leader on the lone member: ended with %v, want ErrNoLeader", werr)
			}
			// A serializable read, answered by the member alone, still shows its data.
			got, err := mc.Get(timeout(t, 5*time.Second), key, clientv3.WithSerializable())
			if err != nil || len(got.Kvs) != 1 || got.Kvs[0].ModRevision < last.Header.Revision {
				t.Errorf("serializable read on the lone member: %v, %v, want revision %d or later", got, err, last.Header.Revision)
			}
		}},
		{"the stopped member restarts: the quorum is back", func(t *testing.T) {
			c.Restart(stopped)
			mustWrite(t)
		}},
		{"the killed member restarts and catches up", func(t *testing.T) {
			c.Restart(killed)
			for i := range c.Size() {
				hasLast(t, i)
			}
		}},
		{"the leader is paused: the others elect another and write", func(t *testing.T) {
			paused = c.Leader()
			c.Pause(paused)
			if l := c.Leader(); l == paused {
				t.Fatalf("Leader = m%d, which is paused", l)
			}
			// Through the other two: a client that may pick the paused member's endpoint
			// waits there until its context ends (see Client).
			mustWriteWith(t, c.Client(t, running(paused)...))
		}},
		{"the paused member resumes and catches up", func(t *testing.T) {
			c.Resume(paused)
			mustWrite(t)
			for i := range c.Size() {
				hasLast(t, i)
			}
		}},
		{"every member stops: nothing answers", func(t *testing.T) {
			c.StopAll()
			if len(running()) != 0 {
				t.Fatalf("members %v still run", running())
			}
			mustNotWrite(t)
		}},
		{"every member starts again with its data", func(t *testing.T) {
			c.StartAll()
			got := mustGet(t, cli, key)
			if len(got.Kvs) != 1 || got.Kvs[0].ModRevision != last.Header.Revision {
				t.Fatalf("after the outage, Get = %v, want the last write at revision %d", got.Kvs, last.Header.Revision)
			}
			mustWrite(t)
			for i := range c.Size() {
				hasLast(t, i)
			}
		}},
	}
	for _, st := range steps {
		if !t.Run(st.name, st.do) {
			t.FailNow() // each step starts where the last one left the cluster
		}
	}
}

// fakeTB is a testing.TB whose Fatal ends the goroutine that calls it (as the testing package
// does) after recording the message, so the tests can check how the harness fails. It keeps
// its cleanups until the real test's cleanup, or until runCleanups.
type fakeTB struct {
	testing.TB // the real test, for TempDir and Name
	mu         sync.Mutex
	fatal      string
	failed     bool
	logs       []string
	cleanups   []func()
}

func newFakeTB(t *testing.T) *fakeTB {
	f := &fakeTB{TB: t}
	t.Cleanup(f.runCleanups)
	return f
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Fatal(args ...any) {
	f.mu.Lock()
	f.fatal, f.failed = fmt.Sprint(args...), true
	f.mu.Unlock()
	runtime.Goexit()
}
func (f *fakeTB) Fatalf(format string, args ...any) { f.Fatal(fmt.Sprintf(format, args...)) }
func (f *fakeTB) Log(args ...any) {
	f.mu.Lock()
	f.logs = append(f.logs, fmt.Sprint(args...))
	f.mu.Unlock()
}
func (f *fakeTB) Logf(format string, args ...any) { f.Log(fmt.Sprintf(format, args...)) }
func (f *fakeTB) Failed() bool                    { f.mu.Lock(); defer f.mu.Unlock(); return f.failed }
func (f *fakeTB) Fail()                           { f.mu.Lock(); f.failed = true; f.mu.Unlock() }
func (f *fakeTB) Cleanup(fn func())               { f.mu.Lock(); f.cleanups = append(f.cleanups, fn); f.mu.Unlock() }

func (f *fakeTB) runCleanups() {
	f.mu.Lock()
	fns := f.cleanups
	f.cleanups = nil
	f.mu.Unlock()
	for _, fn := range slices.Backward(fns) {
		fn()
	}
}

// run calls fn in a goroutine of its own, as the testing package runs a test, and returns the
// message of its Fatal ("" if none).
func (f *fakeTB) run(fn func(tb testing.TB)) string {
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(f)
	}()
	<-done
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.fatal
}

// TestStartWithoutEtcd fails, never skips, when there is no etcd, with one line that says how
// to install it.
func TestStartWithoutEtcd(t *testing.T) {
	notExec := filepath.Join(t.TempDir(), "etcd")
	if err := os.WriteFile(notExec, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		etcdBin  string
		want     string // the whole message, or
		contains []string
	}{
		{name: "none on PATH and no ETCD_BIN", want: notFound},
		{name: "ETCD_BIN names a missing file", etcdBin: "/nonexistent/etcd",
			contains: []string{"etcd not found at ETCD_BIN=/nonexistent/etcd", "no such file", "apt-get install etcd-server"}},
		{name: "ETCD_BIN names a file that is not executable", etcdBin: notExec,
			contains: []string{"etcd not found at ETCD_BIN=" + notExec, "permission denied", "apt-get install etcd-server"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("PATH", t.TempDir())
			t.Setenv("ETCD_BIN", tt.etcdBin)
			_, sharedErr := startShared()
			msgs := map[string]string{
				"Start":  newFakeTB(t).run(func(tb testing.TB) { Start(tb) }),
				"Shared": fmt.Sprint(sharedErr),
			}
			for via, msg := range msgs {
				if strings.Contains(msg, "\n") {
					t.Errorf("%s: message has several lines: %q", via, msg)
				}
				if tt.want != "" && msg != tt.want {
					t.Errorf("%s: message %q, want %q", via, msg, tt.want)
				}
				for _, s := range tt.contains {
					if !strings.Contains(msg, s) {
						t.Errorf("%s: message %q, want it to say %q", via, msg, s)
					}
				}
			}
		})
	}
}

// TestStartRetriesTakenPorts: a port taken by another process when a member binds it makes
// Start try again on new ports, and Restart again on the same ports once it is free.
func TestStartRetriesTakenPorts(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	takenPort := taken.Addr().(*net.TCPAddr).Port

	picks := 0
	pick := func(n int) ([]int, error) {
		picks++
		ports, err := freePorts(n)
		if err == nil && picks == 1 {
			ports[0] = takenPort // m0's client port
		}
		return ports, err
	}
	var clashes []string
	var onClash func()
	c := Start(t, func(c *config) {
		c.ports = pick
		c.onAddrInUse = func(m string) {
			clashes = append(clashes, m)
			if onClash != nil {
				onClash()
			}
		}
	})
	if picks != 2 || !slices.Equal(clashes, []string{"m0"}) {
		t.Fatalf("ports picked %d times, clashes %v; want 2 picks after one clash of m0", picks, clashes)
	}
	if strings.HasSuffix(c.Endpoint(0), ":"+strconv.Itoa(takenPort)) {
		t.Fatalf("m0 listens on %s, the port that was taken", c.Endpoint(0))
	}
	cli := c.Client(t)
	p := Prefix(t)
	mustPut(t, cli, p+"k", "before")

	c.Stop(0)
	u, _ := url.Parse(c.Endpoint(0))
	squatter, err := net.Listen("tcp", u.Host)
	if err != nil {
		t.Fatalf("taking m0's port while it is down: %v", err)
	}
	onClash = func() { squatter.Close() }
	c.Restart(0)
	if !slices.Equal(clashes, []string{"m0", "m0"}) {
		t.Errorf("clashes %v, want m0's restart to have met the taken port", clashes)
	}
	if got := kvs(p, mustGet(t, cli, p+"k").Kvs); !slices.Equal(got, []string{"k=before"}) {
		t.Errorf("after the restart, Get = %q, want [k=before]", got)
	}
}

// TestCleanup: a test's cleanup kills its members, and writes their output to the log when the
// test failed.
func TestCleanup(t *testing.T) {
	for _, failed := range []bool{false, true} {
		t.Run(fmt.Sprintf("failed=%t", failed), func(t *testing.T) {
			f := newFakeTB(t)
			var c *Cluster
			if msg := f.run(func(tb testing.TB) { c = Start(tb) }); msg != "" {
				t.Fatalf("Start: %s", msg)
			}
			done := c.c.members[0].proc.done
			if failed {
				f.Fail()
			}
			f.runCleanups()
			select {
			case <-done:
			default:
				t.Fatal("m0 still runs after the cleanup")
			}
			logged := strings.Join(f.logs, "\n")
			dumped := strings.Contains(logged, "etcdtest: output of m0") && strings.Contains(logged, "=== etcdtest: m0 start 1")
			if dumped != failed {
				t.Errorf("failed test %t: log %q, want m0's output in it %t", failed, logged, failed)
			}
		})
	}
}

// TestMembersDieWithTestBinary: a test binary killed before its cleanup (a -timeout panic,
// SIGKILL) takes its etcd members with it.
func TestMembersDieWithTestBinary(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("Pdeathsig is Linux's")
	}
	child := exec.Command(os.Args[0], "-test.run=^$")
	child.Env = append(os.Environ(), orphanEnv+"=1", "TMPDIR="+t.TempDir())
	var stderr bytes.Buffer
	child.Stderr = &stderr
	out, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = child.Process.Kill(); _ = child.Wait() })
	endpoint := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		endpoint <- strings.TrimSpace(line)
	}()
	var ep string
	select {
	case ep = <-endpoint:
	case <-time.After(30 * time.Second):
		t.Fatal("the child printed no endpoint")
	}
	u, err := url.Parse(ep)
	if err != nil || u.Host == "" {
		t.Fatalf("the child printed %q (stderr %q), want its etcd's endpoint", ep, stderr.String())
	}
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatalf("the child's etcd does not listen: %v", err)
	}
	conn.Close()

	if err := child.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = child.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", u.Host, 100*time.Millisecond)
		if err != nil {
			break // the listener is gone with its process
		}
		conn.Close()
		if time.Now().After(deadline) {
			t.Fatalf("the child's etcd at %s still listens 10 s after the child was killed", u.Host)
		}
		time.Sleep(20 * time.Millisecond) // another process's death has no channel to wait on
	}
}

// TestSharedAndPrefix: Shared is one cluster for the binary, which no test may break, and
// Prefix gives each call a prefix of its own.
func TestSharedAndPrefix(t *testing.T) {
	if a, b := Shared(t).Endpoints(), Shared(t).Endpoints(); !slices.Equal(a, b) || len(a) != 1 {
		t.Errorf("Shared twice: %v and %v, want the same single member", a, b)
	}
	p1, p2 := Prefix(t), Prefix(t)
	for _, p := range []string{p1, p2} {
		if !strings.HasPrefix(p, "etcdtest/") || !strings.HasSuffix(p, "/"+t.Name()+"/") {
			t.Errorf("Prefix = %q, want etcdtest/<n>/%s/", p, t.Name())
		}
	}
	if strings.HasPrefix(p1, p2) || strings.HasPrefix(p2, p1) {
		t.Errorf("prefixes %q and %q overlap", p1, p2)
	}

	tests := []struct {
		name string
		do   func(c *Cluster)
		want string
	}{
		{"Stop", func(c *Cluster) { c.Stop(0) }, "Stop on the shared cluster"},
		{"Kill", func(c *Cluster) { c.Kill(0) }, "Kill on the shared cluster"},
		{"Restart", func(c *Cluster) { c.Restart(0) }, "Restart on the shared cluster"},
		{"Pause", func(c *Cluster) { c.Pause(0) }, "Pause on the shared cluster"},
		{"Resume", func(c *Cluster) { c.Resume(0) }, "Resume on the shared cluster"},
		{"StopAll", func(c *Cluster) { c.StopAll() }, "StopAll on the shared cluster"},
		{"StartAll", func(c *Cluster) { c.StartAll() }, "StartAll on the shared cluster"},
		{"a member out of range", func(c *Cluster) { c.Endpoint(1) }, "no member 1 in a cluster of 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeTB(t)
			if msg := f.run(func(tb testing.TB) { tt.do(Shared(tb)) }); !strings.Contains(msg, tt.want) {
				t.Errorf("message %q, want %q", msg, tt.want)
			}
		})
	}
	// The shared member still serves.
	mustPut(t, Shared(t).Client(t), p1+"alive", "yes")
}
