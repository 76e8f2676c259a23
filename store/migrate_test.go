package store

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/failover-bot/failover-bot/store/failover"
)

// round1Record is a request as the round-1 bot stored it: one target and its EM task at the
// top level of the record.
type round1Record struct {
	ID               string    `json:"id"`
	State            State     `json:"state"`
	StateAt          time.Time `json:"state_at"`
	Version          uint64    `json:"version"`
	Requester        string    `json:"requester"`
	Digest           string    `json:"digest"`
	Target           Target    `json:"target"`
	TaskID           string    `json:"task_id"`
	EMSession        string    `json:"em_session"`
	RestoreSessionID string    `json:"restore_session_id"`
	EMState          string    `json:"em_state"`
	EMProgress       int       `json:"em_progress"`
	EMResult         string    `json:"em_result"`
	EMMessage        string    `json:"em_message"`
	SubmittedAt      time.Time `json:"submitted_at"`
	StartedAt        time.Time `json:"started_at"`
	FinishedAt       time.Time `json:"finished_at"`
}

// copyRound1 copies the committed round-1 file to dir/name, so no test ever writes to it.
func copyRound1(t *testing.T, dir, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "round1.db"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// readRound1Records reads the request records of an unmigrated round-1 file with bbolt itself,
// checking that they are in the old form: a top-level target and no items.
func readRound1Records(t *testing.T, path string) []round1Record {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var out []round1Record
	err = db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("requests"))
		if b == nil {
			return fmt.Errorf("no requests bucket")
		}
		return b.ForEach(func(k, v []byte) error {
			var keys map[string]json.RawMessage
			if err := json.Unmarshal(v, &keys); err != nil {
				return fmt.Errorf("record %x: %w", k, err)
			}
			if _, ok := keys["target"]; !ok {
				return fmt.Errorf("record %x has no top-level target: %s", k, v)
			}
			if _, ok := keys["items"]; ok {
				return fmt.Errorf("record %x already has items: %s", k, v)
			}
			var r round1Record
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("record %x: %w", k, err)
			}
			out = append(out, r)
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// readSchema reads the schema version of a closed store file.
func readSchema(t *testing.T, path string) uint64 {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var v uint64
	err = db.View(func(tx *bolt.Tx) error {
		raw := tx.Bucket([]byte("meta")).Get([]byte("schema"))
		if len(raw) != 8 {
			return fmt.Errorf("schema key %x", raw)
		}
		v = binary.BigEndian.Uint64(raw)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestMigrateRound1ToItems: opening a round-1 file rewrites each request as a one-item request
// whose item carries the old target, task and EM fields; the single-target digest is kept
// (DigestV 0), so the buttons of cards posted before the upgrade still approve; the migration
// is not a write of the requests (no version, no audit event); the schema becomes current; and
// reopening changes nothing.
func TestMigrateRound1ToItems(t *testing.T) {
	dir := t.TempDir()
	path := copyRound1(t, dir, "round1.db")
	old := readRound1Records(t, copyRound1(t, dir, "round1-raw.db"))
	if len(old) != 4 {
		t.Fatalf("round-1 file holds %d requests, want 4", len(old))
	}
	withTask, pending := 0, 0
	for _, o := range old {
		if o.TaskID != "" {
			withTask++
		}
		if o.State == Pending {
			pending++
		}
	}
	if withTask == 0 || pending == 0 {
		t.Fatalf("round-1 file has %d requests with a task and %d pending; the test needs both", withTask, pending)
	}

	s := mustOpenStoreAt(t, path, Options{})
	migrated := map[string]*Request{}
	for _, o := range old {
		r, err := s.Get(context.Background(), o.ID)
		if err != nil {
			t.Fatalf("Get(%s) after migration: %v", o.ID, err)
		}
		migrated[o.ID] = r
		if len(r.Items) != 1 {
			t.Fatalf("%s has %d items, want 1", o.ID, len(r.Items))
		}
		it := r.Items[0]
		if it.Target != o.Target || r.Item(o.Target.ID) == nil {
			t.Errorf("%s: item target %+v, want %+v", o.ID, it.Target, o.Target)
		}
		if it.TaskID != o.TaskID || it.EMSession != o.EMSession || it.RestoreSessionID != o.RestoreSessionID ||
			it.EMState != o.EMState || it.EMProgress != o.EMProgress || it.EMResult != o.EMResult || it.EMMessage != o.EMMessage {
			t.Errorf("%s: item EM fields %+v, want those of %+v", o.ID, it, o)
		}
		if !it.SubmittedAt.Equal(o.SubmittedAt) || !it.StartedAt.Equal(o.StartedAt) || !it.FinishedAt.Equal(o.FinishedAt) {
			t.Errorf("%s: item times %s/%s/%s, want %s/%s/%s", o.ID, it.SubmittedAt, it.StartedAt, it.FinishedAt,
				o.SubmittedAt, o.StartedAt, o.FinishedAt)
		}
		wantItem := o.State
		switch o.State {
		case Pending, Rejected, Expired, Withdrawn:
			wantItem = Pending // never approved: the item was never approved either
		}
		if it.State != wantItem || !it.StateAt.Equal(o.StateAt) || it.Version == 0 {
			t.Errorf("%s (%s): item %s at %s v%d, want %s at %s with a version", o.ID, o.State, it.State, it.StateAt, it.Version, wantItem, o.StateAt)
		}
		if r.State != o.State || failover.Derive(r) != r.State {
			t.Errorf("%s: request %s (derived %s), want %s", o.ID, r.State, failover.Derive(r), o.State)
		}
		if r.DigestV != 0 || r.Digest != o.Digest || r.ComputeDigest() != r.Digest {
			t.Errorf("%s: digest v%d %s (computed %s), want v0 %s", o.ID, r.DigestV, r.Digest, r.ComputeDigest(), o.Digest)
		}
		if r.Version != o.Version {
			t.Errorf("%s: version %d after migration, want %d (a migration is not a write)", o.ID, r.Version, o.Version)
		}
	}
	if err := s.Verify(context.Background()); err != nil {
		t.Fatalf("audit chain after migration: %v", err)
	}
	s.Close()
	if v := readSchema(t, path); v != schemaVersion {
		t.Fatalf("schema after migration = %d, want %d", v, schemaVersion)
	}

	// Reopening a migrated file is a no-op.
	s2 := mustOpenStoreAt(t, path, Options{})
	for id, want := range migrated {
		got, err := s2.Get(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if got.Version != want.Version || got.Items[0].Version != want.Items[0].Version {
			t.Errorf("%s: reopen moved versions %d/%d to %d/%d", id, want.Version, want.Items[0].Version, got.Version, got.Items[0].Version)
		}
		if fmt.Sprintf("%+v", *got) != fmt.Sprintf("%+v", *want) {
			t.Errorf("%s changed on reopen:\n%+v\nwant\n%+v", id, *got, *want)
		}
	}

	// A card posted by round 1 still approves what it showed, with the digest it carries.
	for _, o := range old {
		if o.State != Pending {
			continue
		}
		a, err := s2.Approve(context.Background(), o.ID, "U0APP2", o.Digest)
		if err != nil {
			t.Fatalf("approve migrated %s with its stored digest: %v", o.ID, err)
		}
		if a.State != Approved || a.Items[0].State != Approved || a.Items[0].Version != migrated[o.ID].Items[0].Version+1 {
			t.Errorf("%s after approval: %s, item %+v", o.ID, a.State, a.Items[0])
		}
	}
	// A migrated running request moves on through its one item.
	for _, o := range old {
		if o.State != Running {
			continue
		}
		r := migrated[o.ID]
		got, err := s2.Transition(context.Background(), Change{ID: o.ID, Version: r.Items[0].Version, To: Running,
			Actor: "poller", Action: "em-state", Apply: func(it *Item) { it.EMProgress = 60 }})
		if err != nil {
			t.Fatalf("progress of migrated %s: %v", o.ID, err)
		}
		if got.Items[0].EMProgress != 60 || got.Items[0].TaskID != o.TaskID || got.State != Running {
			t.Errorf("%s after progress: %s, item %+v", o.ID, got.State, got.Items[0])
		}
	}
	s2.Close()
	if v := readSchema(t, path); v != schemaVersion {
		t.Fatalf("schema after reopen = %d, want %d", v, schemaVersion)
	}
}
