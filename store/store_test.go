package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/failover-bot/failover-bot/store/failover/fakeclock"
)

// t0 is 14:02 UTC so conflict messages read like the ones the bot will show.
var t0 = time.Date(2025, 3, 14, 14, 2, 0, 0, time.UTC)

func newClock() *fakeclock.Clock { return fakeclock.New(t0) }

type testStore struct {
	*Bolt
	clock *fakeclock.Clock
	path  string
}

// mustOpenStore opens a fresh store in t.TempDir with a fake clock (unless opt has one)
// and closes it at cleanup.
func mustOpenStore(t testing.TB, opt Options) *testStore {
	t.Helper()
	return mustOpenStoreAt(t, filepath.Join(t.TempDir(), "failover.db"), opt)
}

func mustOpenStoreAt(t testing.TB, path string, opt Options) *testStore {
	t.Helper()
	clock := newClock()
	if opt.Now == nil {
		opt.Now = clock.Now
	}
	s, err := Open(path, opt)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() { s.Close() })
	return &testStore{Bolt: s, clock: clock, path: path}
}

// targetSeq numbers the VMs of validNewRequest: one active request per target means every
// request a test creates needs a target of its own unless the test is about sharing one.
var targetSeq atomic.Uint64

func validNewRequest() NewRequest {
	return NewRequest{
		Kind:      KindVM,
		Target:    Target{ReplicaID: "5a1c", ReplicaName: "cdp-web", ID: fmt.Sprintf("vm-%d", targetSeq.Add(1)), Name: "web-01"},
		Intent:    IntentLatest,
		Reason:    "DC1 lost power",
		Requester: "U100",
		Channel:   "C1",
		TTL:       15 * time.Minute,
	}
}

func mustCreate(t testing.TB, s *testStore, mods ...func(*NewRequest)) *Request {
	t.Helper()
	nr := validNewRequest()
	for _, m := range mods {
		m(&nr)
	}
	r, err := s.Create(context.Background(), nr)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	return r
}

func mustTransition(t testing.TB, s *testStore, c Change) *Request {
	t.Helper()
	if c.Actor == "" {
		c.Actor = "bot"
	}
	r, err := s.Transition(context.Background(), c)
	if err != nil {
		t.Fatalf("Transition %s -> %s: %v", c.ID, c.To, err)
	}
	return r
}

// reach creates a request and drives it into state want by the shortest legal path.
func reach(t testing.TB, s *testStore, want State) *Request {
	t.Helper()
	r := mustCreate(t, s)
	step := func(to State) {
		r = mustTransition(t, s, Change{ID: r.ID, To: to, Actor: "bot"})
	}
	var err error
	switch want {
	case Pending:
		return r
	case Rejected:
		r, err = s.Reject(context.Background(), r.ID, "U300", "not during business hours")
	case Withdrawn:
		r, err = s.Withdraw(context.Background(), r.ID, r.Requester)
	case Expired:
		s.clock.Advance(time.Hour)
		r, err = s.Expire(context.Background(), r.ID)
	default:
		r, err = s.Approve(context.Background(), r.ID, "U200", r.Digest)
	}
	if err != nil {
		t.Fatalf("reach %s: %v", want, err)
	}
	path := map[State][]State{
		Submitting: {Submitting},
		Running:    {Submitting, Running},
		Stopping:   {Submitting, Running, Stopping},
		Succeeded:  {Submitting, Running, Succeeded},
		Warning:    {Submitting, Running, Warning},
		Failed:     {Submitting, Failed},
		Stopped:    {Submitting, Running, Stopping, Stopped},
		Unknown:    {Submitting, Unknown},
	}[want]
	for _, to := range path {
		step(to)
	}
	if r.State != want {
		t.Fatalf("reach %s: got %s", want, r.State)
	}
	return r
}

func asConflict(t testing.TB, err error) *ConflictError {
	t.Helper()
	var ce *ConflictError
	if !errors.As(err, &ce) {
		t.Fatalf("got error %v (%T), want *ConflictError", err, err)
	}
	return ce
}

func TestOpenCreatesFileWithMode0600(t *testing.T) {
	s := mustOpenStore(t, Options{})
	fi, err := os.Stat(s.path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o600 {
		t.Errorf("mode = %o, want 600", got)
	}
}

func TestOpenTightensLoosePermissions(t *testing.T) {
	s := mustOpenStore(t, Options{})
	path := s.path
	s.Close()
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	mustOpenStoreAt(t, path, Options{})
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o600 {
		t.Errorf("mode after reopen = %o, want 600", got)
	}
}

func TestOpenLockedReturnsErrLockedWithinTimeout(t *testing.T) {
	s := mustOpenStore(t, Options{})
	const timeout = 100 * time.Millisecond
	start := time.Now()
	s2, err := Open(s.path, Options{LockTimeout: timeout, Now: s.clock.Now})
	elapsed := time.Since(start)
	if err == nil {
		s2.Close()
		t.Fatal("second Open succeeded while the first holds the lock")
	}
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("got %v, want ErrLocked", err)
	}
	for _, want := range []string{"database is locked by another failover-bot process", s.path} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	// bbolt polls the lock every 50ms and stops one poll short of the timeout.
	if elapsed > timeout+time.Second {
		t.Errorf("Open gave up after %v, want within %v", elapsed, timeout)
	}
	// The first store is unaffected.
	if err := s.Writable(context.Background()); err != nil {
		t.Errorf("first store after refused second open: %v", err)
	}
}

func TestOpenReopensAndKeepsData(t *testing.T) {
	s := mustOpenStore(t, Options{})
	r := mustCreate(t, s)
	s.Close()
	s2 := mustOpenStoreAt(t, s.path, Options{})
	got, err := s2.Get(context.Background(), r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Digest != r.Digest || got.Version != r.Version {
		t.Errorf("after reopen got %+v, want %+v", got, r)
	}
	if r2 := mustCreate(t, s2); r2.ID != "FO-2" {
		t.Errorf("next ID after reopen = %s, want FO-2", r2.ID)
	}
}

func TestOpenRefusesUnknownSchema(t *testing.T) {
	u64 := func(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }
	tests := []struct {
		name    string
		prepare func(tx *bolt.Tx) error
		want    string
	}{
		{"newer schema version", func(tx *bolt.Tx) error {
			return tx.Bucket(bucketMeta).Put(keySchema, u64(schemaVersion+1))
		}, "schema version 6 is newer than this failover-bot understands (5)"},
		{"schema version zero", func(tx *bolt.Tx) error {
			return tx.Bucket(bucketMeta).Put(keySchema, u64(0))
		}, "unknown schema version 0"},
		{"malformed schema version", func(tx *bolt.Tx) error {
			return tx.Bucket(bucketMeta).Put(keySchema, []byte("1"))
		}, "missing or malformed"},
		{"missing schema version", func(tx *bolt.Tx) error {
			return tx.Bucket(bucketMeta).Delete(keySchema)
		}, "missing or malformed"},
		{"someone else's bolt file", func(tx *bolt.Tx) error {
			if err := tx.DeleteBucket(bucketMeta); err != nil {
				return err
			}
			_, err := tx.CreateBucket([]byte("users"))
			return err
		}, "belongs to something else"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustOpenStore(t, Options{})
			s.Close()
			db, err := bolt.Open(s.path, 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := db.Update(tt.prepare); err != nil {
				t.Fatal(err)
			}
			db.Close()
			s2, err := Open(s.path, Options{Now: s.clock.Now})
			if err == nil {
				s2.Close()
				t.Fatal("Open succeeded, want ErrSchema")
			}
			if !errors.Is(err, ErrSchema) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want ErrSchema mentioning %q", err, tt.want)
			}
		})
	}
}

func TestOpenRefusesNonBoltFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notes.db")
	if err := os.WriteFile(path, []byte(strings.Repeat("not a database\n", 1000)), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Open(path, Options{Now: newClock().Now})
	if err == nil {
		s.Close()
		t.Fatal("Open succeeded on a text file")
	}
	if !errors.Is(err, ErrSchema) {
		t.Errorf("got %v, want ErrSchema", err)
	}
}

func TestOpenRejectsNegativeApprovals(t *testing.T) {
	_, err := Open(filepath.Join(t.TempDir(), "x.db"), Options{ApprovalsRequired: -1})
	if !errors.Is(err, ErrInvalid) {
		t.Errorf("got %v, want ErrInvalid", err)
	}
}

func TestWritable(t *testing.T) {
	s := mustOpenStore(t, Options{})
	if err := s.Writable(context.Background()); err != nil {
		t.Errorf("Writable: %v", err)
	}
	s.Close()
	if err := s.Writable(context.Background()); err == nil {
		t.Error("Writable on a closed store succeeded")
	}
}
