package store_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/failover-bot/failover-bot/store"
	"github.com/failover-bot/failover-bot/store/etcdtest"
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

// TestConformanceEtcd runs the same contract against etcd (a real server, see etcdtest), each
// opened store under a prefix of its own.
func TestConformanceEtcd(t *testing.T) {
	endpoints := etcdtest.Shared(t).Endpoints()
	base := etcdtest.Prefix(t)
	storetest.Run(t, func(t *testing.T, name string, cfg storetest.Config) store.Store {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		s, err := store.OpenEtcd(ctx, clientv3.Config{Endpoints: endpoints, DialTimeout: etcdtest.DialTimeout,
			MaxCallSendMsgSize: etcdtest.MaxCallSendMsgSize}, base+name+"/",
			store.Options{Now: cfg.Now, ApprovalsRequired: cfg.ApprovalsRequired, Thread: cfg.Thread})
		if err != nil {
			t.Fatalf("OpenEtcd: %v", err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}
