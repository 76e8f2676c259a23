package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/failover-bot/failover-bot/store"
	"github.com/failover-bot/failover-bot/store/etcdtest"
)

// exports are a store's audit export in both formats.
type exports struct{ jsonl, csv string }

func exportsOf(t *testing.T, lookup func(string) (string, bool)) exports {
	t.Helper()
	return exports{jsonl: mustRun(t, lookup, "audit", "export"), csv: mustRun(t, lookup, "audit", "export", "--format", "csv")}
}

func (x exports) mustEqual(t *testing.T, what string, want exports) {
	t.Helper()
	if x.jsonl != want.jsonl {
		t.Errorf("%s exports (jsonl)\n%s\nwant\n%s", what, x.jsonl, want.jsonl)
	}
	if x.csv != want.csv {
		t.Errorf("%s exports (csv)\n%s\nwant\n%s", what, x.csv, want.csv)
	}
}

// campaign runs a bot instance's leader election on the target until the test ends, so the
// store shows a running instance. It returns once the instance leads.
func campaign(t *testing.T, e etcdTarget, instance string) {
	t.Helper()
	st := e.open(t, store.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	leading := make(chan struct{})
	var once sync.Once
	done := make(chan error, 1)
	go func() {
		done <- st.Lead(ctx, store.LeadOptions{Instance: instance, TTL: 2 * time.Second, Work: func(term context.Context, _ store.Fence) {
			once.Do(func() { close(leading) })
			<-term.Done()
		}})
	}()
	// Registered after open's Close, so it runs first: the campaign ends before the store closes.
	t.Cleanup(func() { cancel(); <-done })
	select {
	case <-leading:
	case err := <-done:
		t.Fatalf("the campaign ended: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("the instance did not lead within 20 s")
	}
}

// dirEntries names what is in dir.
func dirEntries(t *testing.T, dir string) []string {
	t.Helper()
	list, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range list {
		names = append(names, d.Name())
	}
	return names
}

// TestMigrateRoundTrip: bbolt → etcd → a new bbolt file carries every record: the three stores
// export the same bytes, both copies' chains verify, the sources are left as they were, and the
// copies go on numbering requests where the original stopped.
func TestMigrateRoundTrip(t *testing.T) {
	src, n := seedStore(t)
	before := exportsOf(t, envOf("DB_PATH", src))
	e := newEtcdTarget(t)

	// STORE still says bbolt, as on the bot being moved: migrate reads only the ETCD_* settings.
	out := mustRun(t, e.env("STORE", "bbolt"), "migrate", "--from", "bbolt:"+src, "--to", "etcd")
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("migrate printed %d lines, want 2:\n%s", len(lines), out)
	}
	for _, want := range []string{"migrated bbolt " + src + " to " + e.describe(), "3 requests", fmt.Sprintf("%d audit events", n), "hash chain verifies"} {
		if !strings.Contains(lines[0], want) {
			t.Errorf("migrate said %q, want it to contain %q", lines[0], want)
		}
	}
	if !strings.Contains(lines[1], "STORE=etcd") {
		t.Errorf("the next step %q does not say STORE=etcd", lines[1])
	}
	exportsOf(t, e.env()).mustEqual(t, "etcd after the migration", before)

	dir := t.TempDir()
	back := filepath.Join(dir, "back.db")
	out = mustRun(t, e.env(), "migrate", "--from", "etcd", "--to", "bbolt:"+back)
	if !strings.Contains(out, "migrated "+e.describe()+" to bbolt "+back) || !strings.Contains(out, "DB_PATH="+back) {
		t.Errorf("migrate back said %q", out)
	}
	if got := dirEntries(t, dir); len(got) != 1 || got[0] != "back.db" {
		t.Errorf("the destination directory holds %v, want only back.db", got)
	}
	if fi, err := os.Stat(back); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("%s: %v, mode %v; want 0600", back, err, fi.Mode().Perm())
	}
	exportsOf(t, envOf("DB_PATH", back)).mustEqual(t, "the round trip's bbolt file", before)
	exportsOf(t, envOf("DB_PATH", src)).mustEqual(t, "the source after the migration", before)
	exportsOf(t, e.env()).mustEqual(t, "etcd after migrating out of it", before)

	// The request counter came along: a new request on either copy is FO-4.
	bb, err := store.Open(back, store.Options{LockTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer bb.Close()
	for name, st := range map[string]store.Store{"the bbolt copy": bb, "the etcd copy": e.open(t, store.Options{})} {
		r, err := st.Create(t.Context(), store.NewRequest{Kind: store.KindVM, Target: store.Target{ReplicaID: "r1", ReplicaName: "CDP-Finance", ID: "v9", Name: "fin-app09"},
			Intent: store.IntentLatest, Reason: "after the move", Requester: "U0REQ", Channel: "C0DR", TTL: time.Hour})
		if err != nil || r.ID != "FO-4" {
			t.Errorf("%s: a new request is %v (%v), want FO-4", name, r, err)
			continue
		}
		if err := st.Verify(t.Context()); err != nil {
			t.Errorf("%s: the chain after a new event: %v", name, err)
		}
	}
}

// TestMigrateRefusals: every refusal is one line on stderr, nothing on stdout, exit 2 for the
// command line and the configuration and 1 for the stores' state, and leaves both sides as
// they were.
func TestMigrateRefusals(t *testing.T) {
	src, _ := seedStore(t)
	filled := newEtcdTarget(t)
	mustRun(t, filled.env(), "migrate", "--from", "bbolt:"+src, "--to", "etcd")
	filledExport := mustRun(t, filled.env(), "audit", "export")
	empty := newEtcdTarget(t)
	running := newEtcdTarget(t)
	fillStore(t, running.open(t, store.Options{Now: minuteClock()}))
	campaign(t, running, "bot-a/4242")
	runningEmpty := newEtcdTarget(t)
	campaign(t, runningEmpty, "bot-b/4343")
	cli := etcdtest.Shared(t).Client(t)

	locked, _ := seedStore(t)
	held, err := store.Open(locked, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()

	dir := t.TempDir()
	existing := filepath.Join(dir, "existing.db")
	copyFile(t, src, existing)
	existingBytes, _ := os.ReadFile(existing)
	fresh := filepath.Join(dir, "fresh.db")
	alias := filepath.Join(t.TempDir(), "alias.db") // src under another name
	if err := os.Symlink(src, alias); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "other.db")

	cases := []struct {
		name   string
		lookup func(string) (string, bool)
		args   []string
		code   int
		want   string
		check  func(t *testing.T)
	}{
		{"no flags", filled.env(), nil, exitConfig, "--from is required", nil},
		{"no --to", filled.env(), []string{"--from", "bbolt:" + src}, exitConfig, "--to is required", nil},
		{"unknown backend", filled.env(), []string{"--from", "bolt:" + src, "--to", "etcd"}, exitConfig, "use etcd or bbolt:<file>", nil},
		{"bbolt without a file", filled.env(), []string{"--from", "bbolt:", "--to", "etcd"}, exitConfig, "names no file", nil},
		{"etcd with an address", filled.env(), []string{"--from", "bbolt:" + src, "--to", "etcd:/other/"}, exitConfig, "write etcd alone", nil},
		{"extra argument", filled.env(), []string{"--from", "bbolt:" + src, "--to", "etcd", "now"}, exitConfig, `unexpected argument "now"`, nil},
		{"unknown flag", filled.env(), []string{"--force"}, exitConfig, "flag provided but not defined: -force", nil},
		{"etcd to etcd", filled.env(), []string{"--from", "etcd", "--to", "etcd"}, exitConfig, "same store on both sides", nil},
		{"one bbolt file on both sides", filled.env(), []string{"--from", "bbolt:" + src, "--to", "bbolt:" + alias}, exitConfig, "are the same store", nil},
		{"bbolt to bbolt", filled.env(), []string{"--from", "bbolt:" + src, "--to", "bbolt:" + other}, exitConfig, "failover-bot backup", nil},
		{"no ETCD_ENDPOINTS", envOf(), []string{"--from", "bbolt:" + src, "--to", "etcd"}, exitConfig, "ETCD_ENDPOINTS is required", nil},
		{"ETCD_* refused", filled.env("ETCD_PREFIX", "relative/"), []string{"--from", "bbolt:" + src, "--to", "etcd"}, exitConfig, "ETCD_PREFIX", nil},
		{"no source file", empty.env(), []string{"--from", "bbolt:" + filepath.Join(dir, "missing.db"), "--to", "etcd"}, exitFail, "no store at", func(t *testing.T) {
			if _, err := os.Stat(filepath.Join(dir, "missing.db")); !os.IsNotExist(err) {
				t.Errorf("the missing source was created (%v)", err)
			}
		}},
		{"source held by a running bot", empty.env(), []string{"--from", "bbolt:" + locked, "--to", "etcd"}, exitFail, "stop the bot first", func(t *testing.T) {
			if n := empty.keys(t, cli); n != 0 {
				t.Errorf("the destination holds %d keys, want none", n)
			}
		}},
		{"etcd destination not empty", filled.env(), []string{"--from", "bbolt:" + src, "--to", "etcd"}, exitFail, "not empty", func(t *testing.T) {
			if got := mustRun(t, filled.env(), "audit", "export"); got != filledExport {
				t.Errorf("the refused destination changed: exports\n%s\nwant\n%s", got, filledExport)
			}
		}},
		{"bbolt destination exists", filled.env(), []string{"--from", "etcd", "--to", "bbolt:" + existing}, exitFail, "exists", func(t *testing.T) {
			if b, _ := os.ReadFile(existing); !bytes.Equal(b, existingBytes) {
				t.Errorf("the existing file was changed")
			}
		}},
		{"etcd source empty", empty.env(), []string{"--from", "etcd", "--to", "bbolt:" + fresh}, exitFail, "holds no failover-bot store", func(t *testing.T) {
			if n := empty.keys(t, cli); n != 0 {
				t.Errorf("the empty prefix holds %d keys after the refusal, want none", n)
			}
		}},
		{"etcd source in use", running.env(), []string{"--from", "etcd", "--to", "bbolt:" + fresh}, exitFail, "in use by failover-bot instance bot-a/4242", nil},
		{"etcd destination in use", runningEmpty.env(), []string{"--from", "bbolt:" + src, "--to", "etcd"}, exitFail, "stop every instance first", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errs := runCLI(t, tc.lookup, "", append([]string{"migrate"}, tc.args...)...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d; stdout %q, stderr %q", code, tc.code, out, errs)
			}
			if out != "" {
				t.Errorf("stdout %q, want nothing", out)
			}
			if !strings.HasPrefix(errs, "failover-bot migrate: ") || !strings.Contains(errs, tc.want) {
				t.Errorf("stderr %q, want failover-bot migrate: …%s…", errs, tc.want)
			}
			assertOneLine(t, "stderr", errs)
			if tc.check != nil {
				tc.check(t)
			}
		})
	}
	if got := dirEntries(t, dir); len(got) != 1 || got[0] != "existing.db" {
		t.Errorf("the refusals left %v in the directory, want only existing.db", got)
	}
}

// TestMigrateHelp: -h prints the usage on stdout and exits 0; the main help lists migrate.
func TestMigrateHelp(t *testing.T) {
	code, out, errs := runCLI(t, envOf(), "", "migrate", "-h")
	if code != exitOK || errs != "" || !strings.Contains(out, "--from bbolt:<file> --to etcd") || !strings.Contains(out, "--from etcd --to bbolt:<new file>") {
		t.Fatalf("migrate -h: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	if _, out, _ := runCLI(t, envOf(), "", "-h"); !strings.Contains(out, "failover-bot migrate --from bbolt:<file> --to etcd") {
		t.Errorf("-h does not list migrate:\n%s", out)
	}
}

// TestMigrateFailureLeavesNoHalfStore: a copy that fails its check (here the source's audit
// chain was altered) leaves no store behind: a prefix that was empty is emptied again, a bbolt
// file is never created, and a prefix that already held keys is left with a message saying how
// to clear it.
func TestMigrateFailureLeavesNoHalfStore(t *testing.T) {
	cli := etcdtest.Shared(t).Client(t)

	t.Run("bbolt to an empty prefix", func(t *testing.T) {
		src := filepath.Join(t.TempDir(), "broken.db")
		brokenChainStore(t, src, "C0DR")
		e := newEtcdTarget(t)
		code, out, errs := runCLI(t, e.env(), "", "migrate", "--from", "bbolt:"+src, "--to", "etcd")
		if code != exitFail || out != "" {
			t.Fatalf("exit %d, stdout %q, stderr %q; want exit 1", code, out, errs)
		}
		for _, want := range []string{"event 2", "the partial copy was removed"} {
			if !strings.Contains(errs, want) {
				t.Errorf("stderr %q does not contain %q", errs, want)
			}
		}
		assertOneLine(t, "stderr", errs)
		if n := e.keys(t, cli); n != 0 {
			t.Errorf("the prefix holds %d keys after the failed copy, want none", n)
		}
	})

	t.Run("bbolt to a prefix a bot once opened", func(t *testing.T) {
		src := filepath.Join(t.TempDir(), "broken.db")
		brokenChainStore(t, src, "C0DR")
		e := newEtcdTarget(t)
		st := e.open(t, store.Options{})
		if err := st.Writable(t.Context()); err != nil { // what /healthz leaves behind
			t.Fatal(err)
		}
		st.Close()
		code, _, errs := runCLI(t, e.env(), "", "migrate", "--from", "bbolt:"+src, "--to", "etcd")
		if code != exitFail || !strings.Contains(errs, "etcdctl del --prefix "+e.prefix) {
			t.Fatalf("exit %d, stderr %q; want exit 1 saying how to clear the prefix", code, errs)
		}
		assertOneLine(t, "stderr", errs)
	})

	t.Run("etcd to bbolt", func(t *testing.T) {
		e := newEtcdTarget(t)
		fillStore(t, e.open(t, store.Options{Now: minuteClock()}))
		e.tamperEvent(t, cli, 2)
		dir := t.TempDir()
		dst := filepath.Join(dir, "copy.db")
		code, _, errs := runCLI(t, e.env(), "", "migrate", "--from", "etcd", "--to", "bbolt:"+dst)
		if code != exitFail || !strings.Contains(errs, "event 2") || !strings.Contains(errs, "nothing was written to "+dst) {
			t.Fatalf("exit %d, stderr %q; want exit 1 naming event 2", code, errs)
		}
		assertOneLine(t, "stderr", errs)
		if got := dirEntries(t, dir); len(got) != 0 {
			t.Errorf("the failed migration left %v", got)
		}
	})
}
