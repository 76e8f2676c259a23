package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
)

// kvBacked is a store whose records are kvStore buckets: both backends.
type kvBacked interface{ kv() *kvStore }

func (s *kvStore) kv() *kvStore { return s }

// CopyReport says what Copy copied and checked.
type CopyReport struct {
	Keys     int    // bucket entries copied
	Requests int    // of them, requests
	Events   uint64 // audit events; the chain verified and ends at the same head
}

// copyBatch bounds one destination transaction: etcd refuses transactions of more than
// --max-txn-ops operations (128 by default) or --max-request-bytes (1.5 MiB by default).
const (
	copyBatchKeys  = 100
	copyBatchBytes = 512 << 10
)

// Copy copies every record of src into dst, which must be empty (just opened), from one
// consistent read of src, then checks that dst holds what that read saw: the same entries and
// sequence in every bucket, and an audit chain that verifies and ends at src's head. Writes
// to src after the read do not disturb the check (an etcd backup is taken while the bots
// run), but they are not in the copy: stop the bot to migrate. It is how `failover-bot migrate` moves a store between
// backends and how an etcd store is backed up into a bbolt file.
func Copy(ctx context.Context, dst, src Store) (CopyReport, error) {
	var rep CopyReport
	d, ok1 := dst.(kvBacked)
	s, ok2 := src.(kvBacked)
	if !ok1 || !ok2 {
		return rep, fmt.Errorf("%w: copy: both stores must be failover-bot stores", ErrInvalid)
	}
	if err := d.kv().view(ctx, func(tx kvTx) error {
		for _, name := range []([]byte){bucketRequests, bucketAudit, bucketOutbox} {
			if n, err := tx.Bucket(name).Count(); err != nil {
				return err
			} else if n > 0 {
				return fmt.Errorf("%w: copy: the destination is not empty (%d %s); copy only into a new store", ErrInvalid, n, name)
			}
		}
		return nil
	}); err != nil {
		return rep, err
	}
	var read []bucketSum // what the copy read of src, to check dst against
	err := s.kv().view(ctx, func(stx kvTx) error {
		for _, name := range allBuckets {
			if bytes.Equal(name, bucketHealth) {
				continue
			}
			var batch [][2][]byte
			size := 0
			flush := func() error {
				if len(batch) == 0 {
					return nil
				}
				err := d.kv().update(ctx, func(dtx kvTx) error {
					b := dtx.Bucket(name)
					for _, kv := range batch {
						if err := b.Put(kv[0], kv[1]); err != nil {
							return err
						}
					}
					return nil
				})
				batch, size = batch[:0], 0
				return err
			}
			sb := stx.Bucket(name)
			sum := bucketSum{name: name}
			h := newDigest()
			err := sb.ForEach(func(k, v []byte) error {
				h.add(k, v)
				sum.n++
				batch = append(batch, [2][]byte{bytes.Clone(k), bytes.Clone(v)})
				size += len(k) + len(v)
				rep.Keys++
				if bytes.Equal(name, bucketRequests) {
					rep.Requests++
				}
				if len(batch) >= copyBatchKeys || size >= copyBatchBytes {
					return flush()
				}
				return nil
			})
			if err == nil {
				err = flush()
			}
			if err == nil {
				seq := sb.Sequence()
				sum.seq, sum.sum = seq, h.sum()
				read = append(read, sum)
				err = d.kv().update(ctx, func(dtx kvTx) error { return dtx.Bucket(name).SetSequence(seq) })
			}
			if err != nil {
				return fmt.Errorf("copy %s: %w", name, err)
			}
		}
		return nil
	})
	if err != nil {
		return rep, err
	}
	if err := holdsAsRead(ctx, d.kv(), read); err != nil {
		return rep, err
	}
	if err := dst.Verify(ctx); err != nil {
		return rep, fmt.Errorf("copy: the copied audit chain does not verify: %w", err)
	}
	err = d.kv().view(ctx, func(tx kvTx) error {
		seq, _, err := readHead(tx.Bucket(bucketMeta))
		rep.Events = seq
		return err
	})
	return rep, err
}

// bucketSum is a bucket's content as one read saw it: entries, sequence and digest.
type bucketSum struct {
	name []byte
	n    int
	seq  uint64
	sum  []byte
}

// sumBucket reads a bucket's entries, sequence and digest in tx.
func sumBucket(tx kvTx, name []byte) (bucketSum, error) {
	sum := bucketSum{name: name}
	bk := tx.Bucket(name)
	sum.seq = bk.Sequence()
	h := newDigest()
	err := bk.ForEach(func(k, v []byte) error { sum.n++; h.add(k, v); return nil })
	sum.sum = h.sum()
	return sum, err
}

// holdsAsRead checks that s holds, in each bucket, what want says a read of the source saw. The
// source is not read again: it may have changed since (a live etcd store being backed up).
func holdsAsRead(ctx context.Context, s *kvStore, want []bucketSum) error {
	for _, w := range want {
		var got bucketSum
		err := s.view(ctx, func(tx kvTx) (err error) { got, err = sumBucket(tx, w.name); return err })
		if err != nil {
			return fmt.Errorf("copy: check %s: %w", w.name, err)
		}
		if got.n != w.n || got.seq != w.seq || !bytes.Equal(got.sum, w.sum) {
			return fmt.Errorf("copy: bucket %s differs after the copy (%d entries, sequence %d; the source had %d, sequence %d)", w.name, got.n, got.seq, w.n, w.seq)
		}
	}
	return nil
}

// Backup writes a consistent copy of the store, read at one etcd revision, to w as a bbolt
// file: the same file `failover-bot backup` writes from a bbolt store, which opens as a bbolt
// store or moves back into etcd with `failover-bot migrate`.
func (s *Etcd) Backup(ctx context.Context, w io.Writer) (int64, error) {
	return s.backupVia(ctx, "", w)
}

// backupVia is Backup with the temporary bbolt copy in dir ("": the system's temporary
// directory).
func (s *Etcd) backupVia(ctx context.Context, dir string, w io.Writer) (int64, error) {
	tmp, err := os.MkdirTemp(dir, ".failover-bot-backup-*") // mode 0700
	if err != nil {
		return 0, fmt.Errorf("backup: %w", err)
	}
	defer os.RemoveAll(tmp)
	b, err := Open(filepath.Join(tmp, "backup.db"), Options{Now: s.now})
	if err != nil {
		return 0, fmt.Errorf("backup: %w", err)
	}
	defer b.Close()
	if _, err := Copy(ctx, b, s); err != nil {
		return 0, fmt.Errorf("backup: %w", err)
	}
	return b.Backup(ctx, w)
}

// BackupFile writes Backup to path (mode 0600) through a temporary file renamed into place.
// The temporary copy lives beside path, so it needs no writable system temporary directory
// (the image's root filesystem is read-only).
func (s *Etcd) BackupFile(ctx context.Context, path string) error {
	return writeFileAtomic(path, func(w io.Writer) error { _, err := s.backupVia(ctx, filepath.Dir(path), w); return err })
}

// digest hashes a bucket's entries in order, each length-prefixed.
type digest struct{ h hash.Hash }

func newDigest() *digest { return &digest{sha256.New()} }

func (d *digest) add(k, v []byte) {
	var n [16]byte
	binary.BigEndian.PutUint64(n[:8], uint64(len(k)))
	binary.BigEndian.PutUint64(n[8:], uint64(len(v)))
	d.h.Write(n[:])
	d.h.Write(k)
	d.h.Write(v)
}

func (d *digest) sum() []byte { return d.h.Sum(nil) }
