package store

import (
	"errors"
	"runtime"
	"sync"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// queued reports how many writes wait for the next group.
func (g *groupCommit) queued() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.queue)
}

// TestGroupCommitCoalesces holds one commit open while more writes arrive: they must share
// the next commit (one transaction ID), and the first must not have waited for company.
func TestGroupCommitCoalesces(t *testing.T) {
	s := mustOpenStore(t, Options{})
	const waiting = 20
	entered, release := make(chan struct{}), make(chan struct{})
	var mu sync.Mutex
	txs := map[int]int{} // transaction ID -> writes in it
	write := func(block bool) func(*bolt.Tx) error {
		return func(tx *bolt.Tx) error {
			if block {
				close(entered)
				<-release
			}
			mu.Lock()
			txs[tx.ID()]++
			mu.Unlock()
			return tx.Bucket(bucketHealth).Put([]byte("k"), []byte("v"))
		}
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := s.group.update(write(true)); err != nil {
			t.Error(err)
		}
	})
	<-entered // the first write's commit is under way
	for range waiting {
		wg.Go(func() {
			if err := s.group.update(write(false)); err != nil {
				t.Error(err)
			}
		})
	}
	for s.group.queued() < waiting {
		runtime.Gosched() // the others are queueing behind it: scheduling only, microseconds
	}
	close(release)
	wg.Wait()
	if len(txs) != 2 {
		t.Fatalf("writes per transaction = %v, want the first alone and the other %d together", txs, waiting)
	}
	for id, n := range txs {
		if n != 1 && n != waiting {
			t.Errorf("transaction %d carried %d writes", id, n)
		}
	}
}

// TestGroupCommitIsolatesFailures: a write that fails (or panics) inside a shared commit gets
// its own outcome, and the others in its group are committed without it.
func TestGroupCommitIsolatesFailures(t *testing.T) {
	s := mustOpenStore(t, Options{})
	entered, release := make(chan struct{}), make(chan struct{})
	errBoom := errors.New("boom")
	put := func(key string) func(*bolt.Tx) error {
		return func(tx *bolt.Tx) error { return tx.Bucket(bucketHealth).Put([]byte(key), []byte("v")) }
	}
	cases := []struct {
		name string
		fn   func(*bolt.Tx) error
		want func(err error, panicked any) bool
	}{
		{"ok-1", put("a"), func(err error, p any) bool { return err == nil && p == nil }},
		{"fails", func(tx *bolt.Tx) error { _ = put("bad")(tx); return errBoom }, func(err error, p any) bool { return errors.Is(err, errBoom) }},
		{"panics", func(*bolt.Tx) error { panic("bad write") }, func(err error, p any) bool { return p == "bad write" }},
		{"ok-2", put("b"), func(err error, p any) bool { return err == nil && p == nil }},
	}
	var wg sync.WaitGroup
	wg.Go(func() { // holds the first commit open so that the cases form one group
		_ = s.group.update(func(tx *bolt.Tx) error { close(entered); <-release; return nil })
	})
	<-entered
	for _, tc := range cases {
		wg.Go(func() {
			var err error
			defer func() {
				if p := recover(); !tc.want(err, p) {
					t.Errorf("%s: err %v, panic %v", tc.name, err, p)
				}
			}()
			err = s.group.update(tc.fn)
		})
	}
	for s.group.queued() < len(cases) {
		runtime.Gosched()
	}
	close(release)
	wg.Wait()
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketHealth)
		if b.Get([]byte("a")) == nil || b.Get([]byte("b")) == nil || b.Get([]byte("bad")) != nil {
			t.Errorf("after the group: a=%q b=%q bad=%q; want a and b committed, bad rolled back",
				b.Get([]byte("a")), b.Get([]byte("b")), b.Get([]byte("bad")))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
