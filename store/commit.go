package store

import (
	"errors"
	"fmt"
	"sync"

	bolt "go.etcd.io/bbolt"
)

// maxGroup bounds how many writes share one commit, so that one failing write (which rolls
// the shared transaction back and re-runs the others) never redoes an unbounded amount of work.
const maxGroup = 1000

// groupCommit coalesces concurrent write transactions into shared commits. A bbolt commit
// costs two fsyncs (milliseconds on real disks), and every write holds bbolt's single writer
// lock through them, so one commit per write caps the bot at a few hundred writes a second:
// a poll cycle in which 1,000 tasks change, or 50 people typing /failover at once, would queue
// behind each other's fsyncs. Writes that arrive while a commit is in progress join the next
// one; a write that arrives when nothing is committing starts at once (unlike bbolt's
// DB.Batch, which always waits MaxBatchDelay, 10 ms by default, for company).
//
// The semantics are DB.Batch's: fn may run more than once, so it must only change the
// transaction and values it overwrites on each run; a failing (or panicking) fn is taken out,
// the others are retried without it, and it is run again alone to get its own outcome. No
// caller returns before its change is committed.
type groupCommit struct {
	db *bolt.DB

	mu      sync.Mutex
	queue   []groupCall
	running bool
}

type groupCall struct {
	fn  func(*bolt.Tx) error
	err chan error
}

// errRunAlone tells a caller that its fn failed inside a shared commit and must be re-run
// in a transaction of its own.
var errRunAlone = errors.New("store: run the write alone")

// update runs fn in a write transaction, possibly shared with concurrent callers, and
// returns once that transaction is committed (or fn's error).
func (g *groupCommit) update(fn func(*bolt.Tx) error) error {
	c := groupCall{fn: fn, err: make(chan error, 1)}
	g.mu.Lock()
	g.queue = append(g.queue, c)
	if !g.running {
		g.running = true
		go g.loop()
	}
	g.mu.Unlock()
	if err := <-c.err; err != errRunAlone {
		return err
	}
	return g.db.Update(fn) // alone, a panic reaches the caller as it would without grouping
}

// loop commits whatever is queued, group after group, until the queue is empty.
func (g *groupCommit) loop() {
	for {
		g.mu.Lock()
		n := min(len(g.queue), maxGroup)
		if n == 0 {
			g.running = false
			g.mu.Unlock()
			return
		}
		calls := g.queue[:n:n]
		g.queue = g.queue[n:]
		if len(g.queue) == 0 {
			g.queue = nil // let the backing array go
		}
		g.mu.Unlock()
		g.commit(calls)
	}
}

// commit runs calls in one transaction, taking out any that fail.
func (g *groupCommit) commit(calls []groupCall) {
	for len(calls) > 0 {
		failed := -1
		err := g.db.Update(func(tx *bolt.Tx) error {
			for i, c := range calls {
				if err := safeCall(c.fn, tx); err != nil {
					failed = i
					return err
				}
			}
			return nil
		})
		if failed < 0 {
			for _, c := range calls {
				c.err <- err // nil, or a commit error every caller must see
			}
			return
		}
		calls[failed].err <- errRunAlone
		calls = append(calls[:failed:failed], calls[failed+1:]...)
	}
}

// safeCall turns a panic in fn into an error, so that one bad write cannot take the shared
// commit (and every other caller waiting on it) down with it.
func safeCall(fn func(*bolt.Tx) error, tx *bolt.Tx) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("store: write panicked: %v", p)
		}
	}()
	return fn(tx)
}
