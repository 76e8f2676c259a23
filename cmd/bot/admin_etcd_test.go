package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/failover-bot/failover-bot/store"
	"github.com/failover-bot/failover-bot/store/etcdtest"
)

// etcdTarget is one store's place in a real etcd: endpoints and a prefix of its own.
type etcdTarget struct {
	endpoints []string
	prefix    string
}

// newEtcdTarget is a fresh prefix on the test binary's shared etcd.
func newEtcdTarget(t *testing.T) etcdTarget {
	t.Helper()
	// ETCD_PREFIX must be absolute; etcdtest's prefixes are relative.
	return etcdTarget{endpoints: etcdtest.Shared(t).Endpoints(), prefix: "/" + etcdtest.Prefix(t)}
}

// env is the environment of a command on the target (STORE=etcd), changed by kv.
func (e etcdTarget) env(kv ...string) func(string) (string, bool) {
	return envOf(append([]string{"STORE", "etcd", "ETCD_ENDPOINTS", strings.Join(e.endpoints, ","), "ETCD_PREFIX", e.prefix}, kv...)...)
}

// describe is how the commands name the target.
func (e etcdTarget) describe() string {
	return "etcd " + strings.Join(e.endpoints, ",") + " prefix " + e.prefix
}

// open opens the target's store as a bot would, closed at the test's end.
func (e etcdTarget) open(t *testing.T, opt store.Options) *store.Etcd {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	st, err := store.OpenEtcd(ctx, clientv3.Config{Endpoints: e.endpoints, DialTimeout: etcdtest.DialTimeout}, e.prefix, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// keys counts every key under the target's prefix.
func (e etcdTarget) keys(t *testing.T, cli *clientv3.Client) int64 {
	t.Helper()
	resp, err := cli.Get(t.Context(), e.prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	return resp.Count
}

// tamperEvent flips a byte of audit event seq as stored in etcd, as someone with write access
// to etcd might. It knows the store's key layout: "b/audit/" and the event's 8-byte number.
func (e etcdTarget) tamperEvent(t *testing.T, cli *clientv3.Client, seq uint64) {
	t.Helper()
	key := e.prefix + "b/audit/" + string(binary.BigEndian.AppendUint64(nil, seq))
	resp, err := cli.Get(t.Context(), key)
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("event %d at %q: %v, %v", seq, key, resp, err)
	}
	v := resp.Kvs[0].Value
	v[len(v)/2] ^= 0x20
	if _, err := cli.Put(t.Context(), key, string(v)); err != nil {
		t.Fatal(err)
	}
}

// fillStore writes seedStore's story into st: three requests, one rejected and two approved.
// It returns the number of audit events.
func fillStore(t *testing.T, st store.Store) int {
	t.Helper()
	ctx := t.Context()
	for i := range 3 {
		r, err := st.Create(ctx, store.NewRequest{Kind: store.KindVM, Target: store.Target{ReplicaID: "r1", ReplicaName: "CDP-Finance", ID: fmt.Sprint("v", i), Name: fmt.Sprint("fin-db0", i)},
			Intent: store.IntentLatest, Reason: "reason, with \"quotes\"", Requester: "U0REQ", Channel: "C0DR", TTL: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			if _, err := st.Reject(ctx, r.ID, "U0APP", "not now"); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if _, err := st.Approve(ctx, r.ID, "U0APP", r.Digest); err != nil {
			t.Fatal(err)
		}
	}
	n := 0
	if err := st.Events(ctx, 0, time.Time{}, func(store.Event) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

// minuteClock starts at 14:00 UTC on 2026-11-23 and moves a minute per reading, as seedStore's.
func minuteClock() func() time.Time {
	now := time.Date(2026, 11, 23, 14, 0, 0, 0, time.UTC)
	return func() time.Time { now = now.Add(time.Minute); return now }
}

// mustRun runs a command that must succeed and returns its stdout.
func mustRun(t *testing.T, lookup func(string) (string, bool), args ...string) string {
	t.Helper()
	code, out, errs := runCLI(t, lookup, "", args...)
	if code != exitOK {
		t.Fatalf("%s: exit %d, stderr %q", strings.Join(args, " "), code, errs)
	}
	return out
}

// assertOneLine fails unless s is one line ending in a newline.
func assertOneLine(t *testing.T, what, s string) {
	t.Helper()
	if !strings.HasSuffix(s, "\n") || strings.Count(s, "\n") != 1 {
		t.Errorf("%s is not one line: %q", what, s)
	}
}

// TestAdminEtcdBackup: with STORE=etcd, backup writes a bbolt file while the store is open
// elsewhere (no lock); the file opens as a bbolt store, its chain verifies, it exports the same
// events as etcd, and it restores into a new etcd prefix with migrate.
func TestAdminEtcdBackup(t *testing.T) {
	e := newEtcdTarget(t)
	st := e.open(t, store.Options{Now: minuteClock()}) // stays open, as a running bot's would
	n := fillStore(t, st)

	dir := t.TempDir()
	dst := filepath.Join(dir, "etcd-backup.db")
	out := mustRun(t, e.env(), "backup", dst)
	assertOneLine(t, "the backup's report", out)
	for _, want := range []string{"wrote a consistent copy of " + e.describe() + " to " + dst, "a bbolt file", fmt.Sprintf("%d audit events, hash chain verified", n)} {
		if !strings.Contains(out, want) {
			t.Errorf("backup said %q, want it to contain %q", out, want)
		}
	}
	if fi, err := os.Stat(dst); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("backup file: %v, mode %v; want 0600", err, fi.Mode().Perm())
	}
	if left, _ := os.ReadDir(dir); len(left) != 1 {
		t.Errorf("the backup directory holds %d entries, want only the backup (no temporary files)", len(left))
	}

	cp, err := store.Open(dst, store.Options{LockTimeout: time.Second})
	if err != nil {
		t.Fatalf("the backup does not open as a bbolt store: %v", err)
	}
	if err := cp.Verify(t.Context()); err != nil {
		t.Fatalf("the backup's chain: %v", err)
	}
	if r, err := cp.Get(t.Context(), "FO-3"); err != nil || r.State != store.Approved {
		t.Fatalf("FO-3 in the backup: %+v, %v; want approved", r, err)
	}
	cp.Close()

	fromEtcd := mustRun(t, e.env(), "audit", "export")
	if got := mustRun(t, envOf("DB_PATH", dst), "audit", "export"); got != fromEtcd {
		t.Errorf("the backup exports\n%s\nwant what etcd exports\n%s", got, fromEtcd)
	}

	restored := newEtcdTarget(t)
	mustRun(t, restored.env(), "migrate", "--from", "bbolt:"+dst, "--to", "etcd")
	if got := mustRun(t, restored.env(), "audit", "export"); got != fromEtcd {
		t.Errorf("the backup restored into etcd exports\n%s\nwant\n%s", got, fromEtcd)
	}
}

// TestAdminEtcdAuditMatchesBbolt: audit export and verify on etcd print exactly what they print
// for the bbolt store the etcd store was migrated from, in every format.
func TestAdminEtcdAuditMatchesBbolt(t *testing.T) {
	path, n := seedStore(t)
	e := newEtcdTarget(t)
	mustRun(t, e.env(), "migrate", "--from", "bbolt:"+path, "--to", "etcd")
	bbolt := envOf("DB_PATH", path)

	for _, tc := range []struct {
		name string
		args []string
	}{
		{"jsonl", nil},
		{"csv", []string{"--format", "csv"}},
		{"jsonl since", []string{"--since", "2026-11-23T14:05:00Z"}},
		{"csv since", []string{"--format", "csv", "--since", "2026-11-23T14:05"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"audit", "export"}, tc.args...)
			want := mustRun(t, bbolt, args...)
			got := mustRun(t, e.env(), args...)
			if got != want {
				t.Errorf("etcd exports\n%s\nwant the bbolt store's\n%s", got, want)
			}
			if strings.Count(want, "\n") < 2 {
				t.Errorf("the export has %d lines: too few to compare", strings.Count(want, "\n"))
			}
		})
	}

	want := fmt.Sprintf("audit log intact: %d events, hash chain verified\n", n)
	if got := mustRun(t, bbolt, "audit", "verify"); got != want {
		t.Errorf("bbolt verify: %q, want %q", got, want)
	}
	if got := mustRun(t, e.env(), "audit", "verify"); got != want {
		t.Errorf("etcd verify: %q, want %q", got, want)
	}
}

// TestAdminEtcdAuditVerifyTampered: an event altered in etcd fails audit verify with one line
// naming it, and fails backup (the copy's chain must verify), leaving no file.
func TestAdminEtcdAuditVerifyTampered(t *testing.T) {
	e := newEtcdTarget(t)
	fillStore(t, e.open(t, store.Options{Now: minuteClock()}))
	e.tamperEvent(t, etcdtest.Shared(t).Client(t), 3)

	code, out, errs := runCLI(t, e.env(), "", "audit", "verify")
	if code != exitFail || out != "" || !strings.Contains(errs, "event 3") {
		t.Fatalf("verify of a tampered store: exit %d, stdout %q, stderr %q; want exit 1 naming event 3", code, out, errs)
	}
	assertOneLine(t, "stderr", errs)

	dst := filepath.Join(t.TempDir(), "backup.db")
	code, _, errs = runCLI(t, e.env(), "", "backup", dst)
	if code != exitFail || !strings.Contains(errs, "event 3") {
		t.Fatalf("backup of a tampered store: exit %d, stderr %q; want exit 1 naming event 3", code, errs)
	}
	assertOneLine(t, "stderr", errs)
	if _, err := os.Stat(dst); !os.IsNotExist(err) {
		t.Errorf("a failed backup left %s (%v)", dst, err)
	}
}

// TestAdminEtcdErrors: every mistake with STORE=etcd is one line and a non-zero exit (2 for
// configuration), and none prints the etcd password. A command on an empty prefix says so and
// leaves the prefix empty.
func TestAdminEtcdErrors(t *testing.T) {
	filled := newEtcdTarget(t)
	fillStore(t, filled.open(t, store.Options{Now: minuteClock()}))
	empty := newEtcdTarget(t)
	cli := etcdtest.Shared(t).Client(t)
	unreachable := fmt.Sprintf("127.0.0.1:%d", freePort(t))

	cases := []struct {
		name   string
		lookup func(string) (string, bool)
		args   []string
		code   int
		want   string
	}{
		{"backup without ETCD_ENDPOINTS", envOf("STORE", "etcd"), []string{"backup", "x.db"}, exitConfig, "ETCD_ENDPOINTS is required"},
		{"export without ETCD_ENDPOINTS", envOf("STORE", "etcd"), []string{"audit", "export"}, exitConfig, "ETCD_ENDPOINTS is required"},
		{"verify without ETCD_ENDPOINTS", envOf("STORE", "etcd"), []string{"audit", "verify"}, exitConfig, "ETCD_ENDPOINTS is required"},
		{"relative ETCD_PREFIX", filled.env("ETCD_PREFIX", "failover-bot"), []string{"audit", "verify"}, exitConfig, "ETCD_PREFIX"},
		{"password without user", filled.env("ETCD_PASSWORD", testEtcdPassword), []string{"audit", "verify"}, exitConfig, "ETCD_USERNAME"},
		{"unknown STORE", envOf("STORE", "mysql"), []string{"backup", "x.db"}, exitConfig, `STORE "mysql" must be bbolt`},
		{"verify an empty prefix", empty.env(), []string{"audit", "verify"}, exitFail, "holds no failover-bot store"},
		{"export an empty prefix", empty.env(), []string{"audit", "export"}, exitFail, "check ETCD_PREFIX"},
		{"back up an empty prefix", empty.env(), []string{"backup", filepath.Join(t.TempDir(), "empty.db")}, exitFail, "holds no failover-bot store"},
		{"backup into a missing directory", filled.env(), []string{"backup", "/nonexistent/dir/x.db"}, exitFail, "/nonexistent/dir/x.db"},
		{"etcd unreachable, with a password", envOf("STORE", "etcd", "ETCD_ENDPOINTS", unreachable, "ETCD_PREFIX", "/failover-bot/",
			"ETCD_USERNAME", "failover-bot", "ETCD_PASSWORD", testEtcdPassword, "ETCD_DIAL_TIMEOUT", "1s"), []string{"audit", "verify"}, exitFail, "is etcd reachable"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errs := runCLI(t, tc.lookup, "", tc.args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d; stderr %q", code, tc.code, errs)
			}
			if out != "" {
				t.Errorf("stdout %q, want nothing", out)
			}
			if !strings.Contains(errs, tc.want) {
				t.Errorf("stderr %q does not contain %q", errs, tc.want)
			}
			assertOneLine(t, "stderr", errs)
			assertCleanError(t, strings.TrimSuffix(errs, "\n"))
		})
	}
	if n := empty.keys(t, cli); n != 0 {
		t.Errorf("the commands on the empty prefix left %d keys in it, want none", n)
	}
}

// TestAdminEtcdPassword runs every etcd command against an etcd with user authentication on:
// with the right password they work, with a wrong one they fail in one line, and neither
// password appears in anything they print.
func TestAdminEtcdPassword(t *testing.T) {
	c := etcdtest.Start(t)
	admin := c.Client(t)
	ctx := t.Context()
	if _, err := admin.UserAdd(ctx, "root", testEtcdPassword); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.UserGrantRole(ctx, "root", "root"); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.AuthEnable(ctx); err != nil {
		t.Fatal(err)
	}
	src, _ := seedStore(t)
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "etcd-password")
	if err := os.WriteFile(pwFile, []byte(testEtcdPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := []string{"STORE", "etcd", "ETCD_ENDPOINTS", strings.Join(c.Endpoints(), ","), "ETCD_PREFIX", "/failover-bot/", "ETCD_USERNAME", "root"}
	right := envOf(append(base, "ETCD_PASSWORD_FILE", pwFile)...)
	wrong := envOf(append(base, "ETCD_PASSWORD", "wrong-"+testEtcdPassword)...)

	steps := []struct {
		name   string
		lookup func(string) (string, bool)
		args   []string
		code   int
		want   string // in stdout on success, stderr on failure
	}{
		{"migrate in", right, []string{"migrate", "--from", "bbolt:" + src, "--to", "etcd"}, exitOK, "hash chain verifies"},
		{"verify", right, []string{"audit", "verify"}, exitOK, "audit log intact"},
		{"export", right, []string{"audit", "export", "--format", "csv"}, exitOK, "seq,time,actor"},
		{"backup", right, []string{"backup", filepath.Join(dir, "backup.db")}, exitOK, "hash chain verified"},
		{"migrate out", right, []string{"migrate", "--from", "etcd", "--to", "bbolt:" + filepath.Join(dir, "out.db")}, exitOK, "hash chain verifies"},
		{"verify, wrong password", wrong, []string{"audit", "verify"}, exitFail, "authentication failed"},
		{"backup, wrong password", wrong, []string{"backup", filepath.Join(dir, "never.db")}, exitFail, "authentication failed"},
		{"migrate, wrong password", wrong, []string{"migrate", "--from", "etcd", "--to", "bbolt:" + filepath.Join(dir, "never.db")}, exitFail, "authentication failed"},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			code, out, errs := runCLI(t, s.lookup, "", s.args...)
			if code != s.code {
				t.Fatalf("exit %d, want %d; stdout %q, stderr %q", code, s.code, out, errs)
			}
			got := out
			if code != exitOK {
				got = errs
				assertOneLine(t, "stderr", errs)
			}
			if !strings.Contains(got, s.want) {
				t.Errorf("%q does not contain %q", got, s.want)
			}
			if strings.Contains(out+errs, testEtcdPassword) {
				t.Errorf("the output contains the etcd password:\n%s%s", out, errs)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "never.db")); !os.IsNotExist(err) {
		t.Errorf("a refused command left never.db (%v)", err)
	}
}

// TestAdminEtcdBackupWhileWriting: a backup taken while an instance keeps writing is a
// consistent copy: it opens, its chain verifies, and it holds a prefix of the log.
func TestAdminEtcdBackupWhileWriting(t *testing.T) {
	e := newEtcdTarget(t)
	st := e.open(t, store.Options{Now: minuteClock()})
	fillStore(t, st)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		// What a bot does all day: queue Slack messages, each in its own transaction.
		for i := 0; ctx.Err() == nil; i++ {
			if err := st.Enqueue(ctx, "C0DR", fmt.Sprint("line ", i)); err != nil && ctx.Err() == nil {
				done <- err
				return
			}
			if _, err := st.Note(ctx, "FO-2", "U0APP", "noted", fmt.Sprint("note ", i), ""); err != nil && ctx.Err() == nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("the writer: %v", err)
		}
	}()
	events := func() int {
		t.Helper()
		n := 0
		if err := st.Events(t.Context(), 0, time.Time{}, func(store.Event) error { n++; return nil }); err != nil {
			t.Fatal(err)
		}
		return n
	}
	prev := events()
	for i := range 3 {
		dst := filepath.Join(t.TempDir(), fmt.Sprint("backup-", i, ".db"))
		mustRun(t, e.env(), "backup", dst)
		out := mustRun(t, envOf("DB_PATH", dst), "audit", "verify")
		var n int
		if _, err := fmt.Sscanf(out, "audit log intact: %d events", &n); err != nil {
			t.Fatalf("verify of backup %d: %q (%v)", i, out, err)
		}
		now := events()
		if n < prev || n > now {
			t.Errorf("backup %d holds %d events; the store had %d before it and %d after", i, n, prev, now)
		}
		if now == prev {
			t.Errorf("no event was written during backup %d: the test shows nothing", i)
		}
		prev = now
	}
}
