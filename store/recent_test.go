package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// checkFinishedIndex fails the test unless the finished index holds exactly one entry per
// request in a terminal state, under its finish time, and nothing else.
func checkFinishedIndex(t testing.TB, s *Bolt) {
	t.Helper()
	err := s.db.View(func(tx *bolt.Tx) error {
		want := map[string]string{}
		err := tx.Bucket(bucketRequests).ForEach(func(k, v []byte) error {
			r, err := decodeRequest(v)
			if err != nil {
				return err
			}
			if r.State.Terminal() {
				want[string(finishedKey(r))] = r.ID
			}
			return nil
		})
		if err != nil {
			return err
		}
		idx := tx.Bucket(bucketFinished)
		if idx == nil {
			return fmt.Errorf("no finished index")
		}
		n := 0
		err = idx.ForEach(func(k, _ []byte) error {
			n++
			if _, ok := want[string(k)]; !ok {
				return fmt.Errorf("finished index entry %x names no finished request", k)
			}
			return nil
		})
		if err != nil {
			return err
		}
		if n != len(want) {
			var missing []string
			for k, id := range want {
				if idx.Get([]byte(k)) == nil {
					missing = append(missing, id)
				}
			}
			slices.Sort(missing)
			return fmt.Errorf("finished index has %d entries for %d finished requests; missing %v", n, len(want), missing)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// finishedIDs lists what Finished returns, newest first.
func finishedIDs(t testing.TB, s *Bolt, since time.Time, limit int) ([]string, int) {
	t.Helper()
	reqs, more, err := s.Finished(context.Background(), since, limit)
	if err != nil {
		t.Fatalf("Finished: %v", err)
	}
	var ids []string
	for _, r := range reqs {
		ids = append(ids, r.ID)
	}
	return ids, more
}

// makeSchema4 turns a closed store file into what failover-bot wrote before the finished index:
// schema 4, no finished bucket.
func makeSchema4(t *testing.T, path string) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		if err := tx.DeleteBucket(bucketFinished); err != nil {
			return err
		}
		return tx.Bucket(bucketMeta).Put(keySchema, binary.BigEndian.AppendUint64(nil, 4))
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestFinishedBackfill: opening a file from before the finished index (schema 4, or the round-1
// fixture, schema 1) builds the index from the stored requests, so history made before the
// upgrade is listed as if the index had always been there; the schema becomes current, the
// requests are not rewritten (same versions, no audit event) and reopening changes nothing.
func TestFinishedBackfill(t *testing.T) {
	t.Run("schema 4", func(t *testing.T) {
		s := mustOpenStore(t, Options{})
		var finished []*Request
		for i, st := range []State{Succeeded, Pending, Rejected, Running, Failed, Withdrawn, Expired, Stopped, Approved, Unknown, Warning} {
			s.clock.Advance(time.Duration(i+1) * time.Minute)
			if r := reach(t, s, st); st.Terminal() {
				finished = append(finished, r)
			}
		}
		// Two at the same instant: ties go to the higher ID.
		finished = append(finished, reach(t, s, Succeeded), reach(t, s, Failed))
		before, more := finishedIDs(t, s.Bolt, time.Time{}, 50)
		if len(before) != len(finished) || more != 0 {
			t.Fatalf("before the downgrade Finished = %v (%d more), want the %d finished", before, more, len(finished))
		}
		var events int
		s.Events(context.Background(), 0, time.Time{}, func(Event) error { events++; return nil })
		s.Close()

		makeSchema4(t, s.path)
		if v := readSchema(t, s.path); v != 4 {
			t.Fatalf("schema %d, want 4", v)
		}
		s2 := mustOpenStoreAt(t, s.path, Options{})
		s2.clock.Set(s.clock.Now())
		checkFinishedIndex(t, s2.Bolt)
		if got, more := finishedIDs(t, s2.Bolt, time.Time{}, 50); !slices.Equal(got, before) || more != 0 {
			t.Fatalf("after the backfill Finished = %v (%d more), want %v", got, more, before)
		}
		for _, r := range finished {
			if got, err := s2.Get(context.Background(), r.ID); err != nil || got.Version != r.Version {
				t.Fatalf("%s after the backfill: %v, version %d, want %d (a backfill is not a write)", r.ID, err, got.Version, r.Version)
			}
		}
		var after int
		s2.Events(context.Background(), 0, time.Time{}, func(Event) error { after++; return nil })
		if after != events {
			t.Fatalf("the backfill wrote %d audit events", after-events)
		}
		if err := s2.Verify(context.Background()); err != nil {
			t.Fatal(err)
		}
		// History goes on from the backfilled index.
		next := reach(t, s2, Succeeded)
		if got, _ := finishedIDs(t, s2.Bolt, time.Time{}, 1); !slices.Equal(got, []string{next.ID}) {
			t.Fatalf("newest finished after the backfill = %v, want %s", got, next.ID)
		}
		s2.Close()
		if v := readSchema(t, s.path); v != schemaVersion {
			t.Fatalf("schema after the backfill = %d, want %d", v, schemaVersion)
		}
		s3 := mustOpenStoreAt(t, s.path, Options{})
		checkFinishedIndex(t, s3.Bolt)
		if got, _ := finishedIDs(t, s3.Bolt, time.Time{}, 50); !slices.Equal(got, append([]string{next.ID}, before...)) {
			t.Fatalf("after reopen Finished = %v", got)
		}
	})
	t.Run("round 1", func(t *testing.T) {
		path := copyRound1(t, t.TempDir(), "round1.db")
		s := mustOpenStoreAt(t, path, Options{})
		checkFinishedIndex(t, s.Bolt)
		got, more := finishedIDs(t, s.Bolt, time.Time{}, 50)
		if !slices.Equal(got, []string{"FO-4"}) || more != 0 {
			t.Fatalf("Finished after migrating round 1 = %v (%d more), want [FO-4], its one finished request", got, more)
		}
		r := s.get(t, "FO-4")
		if ft := FinishTime(r); ft.IsZero() {
			t.Fatalf("FO-4 has no finish time: %+v", r)
		}
		if got, _ := finishedIDs(t, s.Bolt, FinishTime(r).Add(time.Nanosecond), 50); len(got) != 0 {
			t.Fatalf("Finished after FO-4's finish = %v, want none", got)
		}
	})
	t.Run("a record it cannot read stops the upgrade", func(t *testing.T) {
		s := mustOpenStore(t, Options{})
		reach(t, s, Succeeded)
		s.Close()
		makeSchema4(t, s.path)
		db, err := bolt.Open(s.path, 0o600, &bolt.Options{Timeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketRequests).Put(seqKey(2), []byte("{not json")) }); err != nil {
			t.Fatal(err)
		}
		db.Close()
		_, err = Open(s.path, Options{Now: newClock().Now})
		if err == nil || !strings.Contains(err.Error(), "finished index") || !strings.Contains(err.Error(), "0000000000000002") {
			t.Fatalf("Open of a file with a damaged record = %v, want the upgrade refused naming the record", err)
		}
		if v := readSchema(t, s.path); v != 4 {
			t.Fatalf("a refused upgrade left schema %d, want 4 (nothing written)", v)
		}
	})
}

func (s *testStore) get(t testing.TB, id string) *Request {
	t.Helper()
	r, err := s.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestFinishedCountIsBounded: beyond limit, Finished counts the rest only up to FinishedMoreCap,
// so a period holding more history than anyone reads costs no more than one holding the cap.
func TestFinishedCountIsBounded(t *testing.T) {
	s := mustOpenStore(t, Options{})
	seedFinished(t, s.Bolt, FinishedMoreCap+60)
	checkFinishedIndex(t, s.Bolt)
	cases := []struct {
		limit, want, more int
	}{
		{50, 50, FinishedMoreCap},
		{0, 0, FinishedMoreCap},
		{FinishedMoreCap + 60, FinishedMoreCap + 60, 0},
		{FinishedMoreCap, FinishedMoreCap, 60},
	}
	for _, tc := range cases {
		reqs, more, err := s.Finished(context.Background(), time.Time{}, tc.limit)
		if err != nil || len(reqs) != tc.want || more != tc.more {
			t.Errorf("Finished(limit %d) = %d requests and %d more, %v; want %d and %d more", tc.limit, len(reqs), more, err, tc.want, tc.more)
		}
		// Every seeded request finished at the same instant: newest first is highest ID first.
		for i := 1; i < len(reqs); i++ {
			if reqs[i-1].Seq < reqs[i].Seq {
				t.Fatalf("Finished(limit %d): %s before %s", tc.limit, reqs[i-1].ID, reqs[i].ID)
			}
		}
	}
}

// TestFinishedIndexRefusesDamage: an index entry that names a missing or active request is
// reported, not listed.
func TestFinishedIndexRefusesDamage(t *testing.T) {
	cases := []struct {
		name string
		key  func(active *Request) []byte
		want string
	}{
		{"malformed key", func(*Request) []byte { return []byte("short") }, "malformed key"},
		{"missing request", func(*Request) []byte { return finishedKey(&Request{Seq: 99, StateAt: t0}) }, "FO-99: not found"},
		{"active request", func(a *Request) []byte { return finishedKey(a) }, "is running"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := mustOpenStore(t, Options{})
			reach(t, s, Succeeded)
			active := reach(t, s, Running)
			if err := s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketFinished).Put(tc.key(active), nil) }); err != nil {
				t.Fatal(err)
			}
			if _, _, err := s.Finished(context.Background(), time.Time{}, 50); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Finished over a damaged index: %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// TestFinishStampOrder: finish times encode in the order they happen, and a query bound outside
// what the encoding holds clamps instead of wrapping round.
func TestFinishStampOrder(t *testing.T) {
	times := []time.Time{{}, time.Date(1969, 12, 31, 0, 0, 0, 0, time.UTC), time.Unix(0, 0), t0,
		t0.Add(time.Nanosecond), time.Date(2262, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)}
	for i := 1; i < len(times); i++ {
		a, b := finishStamp(times[i-1]), finishStamp(times[i])
		if a > b {
			t.Errorf("finishStamp(%s) = %d > finishStamp(%s) = %d", times[i-1], a, times[i], b)
		}
	}
	ka := finishedKey(&Request{Seq: 300, FinishedAt: t0})
	kb := finishedKey(&Request{Seq: 2, FinishedAt: t0.Add(time.Nanosecond)})
	if bytes.Compare(ka, kb) >= 0 {
		t.Errorf("an earlier finish with a higher ID sorts after a later one: %x, %x", ka, kb)
	}
}

// BenchmarkFinished lists the finished requests of the last 24 h (60 of them, of which 50 are
// returned and 10 counted) beside Active, with 0, 10,000 and 100,000 older finished requests in
// the file; the figures should match. "all" asks for every finished request instead: 50 returned
// and the rest counted up to FinishedMoreCap, the most the query ever does. Files are built
// before any timing and reopened, as in BenchmarkActive.
func BenchmarkFinished(b *testing.B) {
	sizes := []int{0, 10_000, 100_000}
	stores := make([]*testStore, len(sizes))
	for i, old := range sizes {
		s := mustOpenStore(b, Options{})
		seedFinished(b, s.Bolt, old) // finished at t0
		s.clock.Advance(72 * time.Hour)
		for range 60 {
			s.clock.Advance(time.Minute)
			reach(b, s, Succeeded)
		}
		for _, st := range []State{Pending, Pending, Pending, Approved, Approved, Submitting, Running, Running, Running, Stopping} {
			reach(b, s, st)
		}
		s.Close()
		stores[i] = mustOpenStoreAt(b, s.path, Options{})
		stores[i].clock.Set(s.clock.Now())
	}
	for i, old := range sizes {
		s := stores[i]
		since := s.clock.Now().Add(-24 * time.Hour)
		for _, q := range []struct {
			name            string
			since           time.Time
			wantRows, wantN int
		}{
			{"24h", since, 50, 10},
			{"all", time.Time{}, 50, min(old+10, FinishedMoreCap)},
		} {
			b.Run(fmt.Sprintf("finished=%d/%s", old, q.name), func(b *testing.B) {
				b.ReportAllocs()
				cpu0 := cpuTime()
				for b.Loop() {
					reqs, more, err := s.Finished(context.Background(), q.since, 50)
					if err != nil || len(reqs) != q.wantRows || more != q.wantN {
						b.Fatalf("Finished: %d and %d more, %v; want %d and %d more", len(reqs), more, err, q.wantRows, q.wantN)
					}
				}
				b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
			})
		}
		b.Run(fmt.Sprintf("finished=%d/Active", old), func(b *testing.B) {
			b.ReportAllocs()
			cpu0 := cpuTime()
			for b.Loop() {
				if active, err := s.Active(context.Background()); err != nil || len(active) != 10 {
					b.Fatalf("Active: %d, %v", len(active), err)
				}
			}
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}
