package store_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/failover-bot/failover-bot/store"
	"github.com/failover-bot/failover-bot/store/storetest"
)

// TestConformance runs the store contract against bbolt.
func TestConformance(t *testing.T) {
	dir := t.TempDir()
	storetest.Run(t, func(t *testing.T, name string, cfg storetest.Config) store.Store {
		path := filepath.Join(dir, filepath.Base(filepath.Clean("/"+name))+".db")
		s, err := store.Open(path, store.Options{Now: cfg.Now, ApprovalsRequired: cfg.ApprovalsRequired,
			Thread: cfg.Thread, LockTimeout: time.Second})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}
