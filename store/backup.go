package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	bolt "go.etcd.io/bbolt"
)

// Backup writes a consistent copy of the whole database to w while the bot keeps running
// (a read transaction sees one snapshot; writers are not blocked). It returns the number
// of bytes written.
func (s *Bolt) Backup(ctx context.Context, w io.Writer) (int64, error) {
	var n int64
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("backup: %w", err)
	}
	err := s.db.View(func(tx *bolt.Tx) (err error) {
		n, err = tx.WriteTo(w)
		return err
	})
	if err != nil {
		return n, fmt.Errorf("backup: %w", err)
	}
	return n, nil
}

// BackupFile writes a consistent copy to path with mode 0600. It writes a temporary file
// in the same directory and renames it into place, so path never holds a partial copy.
func (s *Bolt) BackupFile(ctx context.Context, path string) error {
	if same, err := samePath(path, s.path); err != nil {
		return fmt.Errorf("backup %s: %w", path, err)
	} else if same {
		return fmt.Errorf("%w: backup %s: that is the live database", ErrInvalid, path)
	}
	return writeFileAtomic(path, func(w io.Writer) error { _, err := s.Backup(ctx, w); return err })
}

// writeFileAtomic writes path (mode 0600) through a temporary file in the same directory
// renamed into place, so path never holds a partial copy.
func writeFileAtomic(path string, write func(io.Writer) error) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*") // CreateTemp uses mode 0600
	if err != nil {
		return fmt.Errorf("backup %s: %w", path, err)
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := write(f); err != nil {
		return fmt.Errorf("backup %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("backup %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("backup %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("backup %s: %w", path, err)
	}
	ok = true
	// Make the rename itself durable; failure here leaves a complete backup that may not
	// survive a power cut, which is still worth reporting.
	if d, err := os.Open(dir); err == nil {
		err = d.Sync()
		d.Close()
		if err != nil {
			return fmt.Errorf("backup %s: sync directory: %w", path, err)
		}
	}
	return nil
}

func samePath(a, b string) (bool, error) {
	fa, err := os.Stat(a)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	fb, err := os.Stat(b)
	if err != nil {
		return false, err
	}
	return os.SameFile(fa, fb), nil
}

// Writable checks that the database accepts writes (disk not full, file not read-only)
// by committing a tiny record, for the /healthz endpoint.
func (s *kvStore) Writable(ctx context.Context) error {
	err := s.update(ctx, func(tx kvTx) error {
		v := binary.BigEndian.AppendUint64(nil, uint64(s.now().UnixNano()))
		return tx.Bucket(bucketHealth).Put([]byte("probe"), v)
	})
	if err != nil {
		return fmt.Errorf("database not writable: %w", err)
	}
	return nil
}
