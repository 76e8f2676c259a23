package store

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestBackupIsAConsistentCopy(t *testing.T) {
	s := mustOpenStore(t, Options{})
	for _, st := range allStates {
		reach(t, s, st)
	}
	var buf bytes.Buffer
	n, err := s.Backup(context.Background(), &buf)
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(buf.Len()) || n == 0 {
		t.Errorf("Backup reported %d bytes, wrote %d", n, buf.Len())
	}
	copyPath := filepath.Join(t.TempDir(), "copy.db")
	if err := os.WriteFile(copyPath, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	assertSameContent(t, s, mustOpenStoreAt(t, copyPath, Options{}))
}

func TestBackupFile(t *testing.T) {
	s := mustOpenStore(t, Options{})
	reach(t, s, Running)
	dir := t.TempDir()
	path := filepath.Join(dir, "backup.db")
	if err := os.WriteFile(path, []byte("older backup"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := s.BackupFile(context.Background(), path); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("backup mode %o, want 600", fi.Mode().Perm())
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("backup left temporary files: %v", entries)
	}
	assertSameContent(t, s, mustOpenStoreAt(t, path, Options{}))

	if err := s.BackupFile(context.Background(), s.path); !errors.Is(err, ErrInvalid) {
		t.Errorf("backup over the live database: %v, want ErrInvalid", err)
	}
	if err := s.BackupFile(context.Background(), filepath.Join(dir, "missing-dir", "b.db")); err == nil {
		t.Error("backup into a missing directory succeeded")
	}
}

func assertSameContent(t *testing.T, orig, cp *testStore) {
	t.Helper()
	if err := cp.Verify(context.Background()); err != nil {
		t.Errorf("Verify on the copy: %v", err)
	}
	a, b := allEvents(t, orig), allEvents(t, cp)
	if len(a) != len(b) || a[len(a)-1].Hash != b[len(b)-1].Hash {
		t.Errorf("copy has %d events, original %d", len(b), len(a))
	}
	wantActive, _ := orig.Active(context.Background())
	gotActive, err := cp.Active(context.Background())
	if err != nil || len(gotActive) != len(wantActive) {
		t.Errorf("copy Active = %d, %v; want %d", len(gotActive), err, len(wantActive))
	}
}
