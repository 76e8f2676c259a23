package store

import (
	"context"

	bolt "go.etcd.io/bbolt"
)

// The store's logic (requests, the outbox, the audit chain, the indexes) is written once,
// against kvTx: named buckets of ordered byte keys, the shape of bbolt. Each backend supplies
// the transactions: bbolt its own, etcd one that reads at a single revision and commits its
// writes in one transaction comparing the revision of everything it read (etcd.go). So every
// backend runs the same code for every rule, and the conformance suite tests that code and the
// backend's transactions, not two copies of the logic.

// kvTx is one transaction over the store's buckets.
type kvTx interface {
	// Bucket returns the named bucket; every name in allBuckets exists.
	Bucket(name []byte) kvBucket
}

// kvBucket is one bucket of a transaction. Get's result is valid only during the
// transaction and must not be modified.
type kvBucket interface {
	Get(key []byte) []byte
	Put(key, value []byte) error
	Delete(key []byte) error
	Cursor() kvCursor
	// NextSequence returns the bucket's next sequence number (1 for the first call).
	NextSequence() (uint64, error)
	// Sequence and SetSequence read and set the bucket's sequence (copying a store).
	Sequence() uint64
	SetSequence(v uint64) error
	ForEach(fn func(k, v []byte) error) error
	// Count returns how many keys the bucket holds.
	Count() (int, error)
}

// kvCursor walks a bucket in key order; a nil key means it ran off either end.
type kvCursor interface {
	First() (key, value []byte)
	Last() (key, value []byte)
	Next() (key, value []byte)
	Prev() (key, value []byte)
	Seek(seek []byte) (key, value []byte)
	// Delete removes the key the cursor is on.
	Delete() error
}

// kvEngine runs transactions. update's fn may run more than once (a shared bbolt commit that
// one write fails, an etcd transaction that lost a race), so it must only change the
// transaction and values it overwrites on each run.
type kvEngine interface {
	view(ctx context.Context, fn func(kvTx) error) error
	update(ctx context.Context, fn func(kvTx) error) error
}

// fill sets a bbolt bucket's page fill percentage for keys that mostly grow (see the callers);
// other backends have no pages to pack.
func fill(b kvBucket, pct float64) {
	if bb, ok := b.(boltBucket); ok {
		bb.FillPercent = pct
	}
}

type boltTx struct{ tx *bolt.Tx }

func (t boltTx) Bucket(name []byte) kvBucket {
	b := t.tx.Bucket(name)
	if b == nil {
		return nil
	}
	return boltBucket{b}
}

type boltBucket struct{ *bolt.Bucket }

func (b boltBucket) Cursor() kvCursor    { return b.Bucket.Cursor() }
func (b boltBucket) Count() (int, error) { return b.Stats().KeyN, nil }

// boltEngine runs transactions on a bbolt file, writes through groupCommit.
type boltEngine struct {
	db    *bolt.DB
	group *groupCommit
}

func (e boltEngine) view(_ context.Context, fn func(kvTx) error) error {
	return e.db.View(func(tx *bolt.Tx) error { return fn(boltTx{tx}) })
}

func (e boltEngine) update(_ context.Context, fn func(kvTx) error) error {
	return e.group.update(func(tx *bolt.Tx) error { return fn(boltTx{tx}) })
}
