package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"

	"github.com/failover-bot/failover-bot/bot"
	"github.com/failover-bot/failover-bot/bot/core"
	"github.com/failover-bot/failover-bot/store"
)

// openStore opens the store STORE names: the DB_PATH file, or the etcd cluster.
func openStore(cfg Config, opt store.Options) (store.Store, error) {
	if cfg.Store != storeEtcd {
		st, err := store.Open(cfg.DBPath, opt)
		if err != nil {
			return nil, fmt.Errorf("DB_PATH %s: %w", cfg.DBPath, err)
		}
		return st, nil
	}
	ecfg, err := cfg.etcdClientConfig()
	if err != nil {
		return nil, err
	}
	ecfg.DialOptions = append(ecfg.DialOptions, grpc.WithConnectParams(etcdReconnect(cfg.EtcdDialTimeout)))
	ctx, cancel := context.WithTimeout(context.Background(), cfg.EtcdDialTimeout+10*time.Second)
	defer cancel()
	st, err := store.OpenEtcd(ctx, ecfg, cfg.EtcdPrefix, opt)
	if err != nil {
		return nil, fmt.Errorf("ETCD_ENDPOINTS %s: %w", strings.Join(cfg.EtcdEndpoints, ","), err)
	}
	return st, nil
}

// etcdReconnect is how a running instance reconnects to etcd members it lost. gRPC's default
// backoff grows from 1 s to 2 minutes while a member is down, so after an outage the bot would
// find etcd again only up to two minutes after it returned (14 s after a 30 s outage, measured
// by TestHAEtcdUnavailable), and meanwhile nobody leads. Capped at 2 s, the instance is back
// within about LEADER_TTL of etcd, for one connection attempt per endpoint every 2 s while it
// is gone. An attempt to an endpoint that does not answer (a lost site) gives up after
// dialTimeout (ETCD_DIAL_TIMEOUT) rather than gRPC's 20 s.
func etcdReconnect(dialTimeout time.Duration) grpc.ConnectParams {
	return grpc.ConnectParams{
		Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 2 * time.Second},
		MinConnectTimeout: dialTimeout,
	}
}

// instanceName names this instance in the election and the logs: the host (the pod, in
// Kubernetes) and the process.
func instanceName() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown-host"
	}
	return fmt.Sprintf("%s/%d", host, os.Getpid())
}

// leadership is an instance's part in the election among the instances sharing an etcd store:
// it campaigns in the background, and while it leads, the bot's leader-only work runs under the
// term's context (see bot.Options.Leader).
type leadership struct {
	st       *store.Etcd
	ttl      time.Duration
	log      *slog.Logger
	met      *bot.Metrics
	instance string

	mu   sync.Mutex
	term context.Context // nil when not leading

	cancel context.CancelFunc
	done   chan struct{}
}

func newLeadership(st *store.Etcd, cfg Config, log *slog.Logger, met *bot.Metrics) *leadership {
	return &leadership{st: st, ttl: cfg.LeaderTTL, log: log, met: met, instance: instanceName()}
}

// current is bot.Options.Leader.
func (l *leadership) current() (context.Context, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.term == nil || l.term.Err() != nil {
		return nil, false
	}
	return l.term, true
}

// leading is bot.Health.Leader; nil-safe for bbolt.
func (l *leadership) leading() bool {
	if l == nil {
		return true
	}
	_, ok := l.current()
	return ok
}

// forward is bot.Options.Forward.
func (l *leadership) forward(ctx context.Context, j core.Job) error {
	data, err := json.Marshal(j)
	if err != nil {
		return err
	}
	return l.st.Forward(ctx, data)
}

// start campaigns until stop. Each term: reconcile and follow at once (the first poll cycle of a
// term reconciles every submitting item first), deliver what the last leader left, and run
// what standbys hand over.
func (l *leadership) start(b *bot.Bot) {
	ctx, cancel := context.WithCancel(context.Background())
	l.cancel, l.done = cancel, make(chan struct{})
	go func() {
		defer close(l.done)
		err := l.st.Lead(ctx, store.LeadOptions{Instance: l.instance, TTL: l.ttl, Logger: l.log,
			Work: func(term context.Context, f store.Fence) {
				l.mu.Lock()
				l.term = term
				l.mu.Unlock()
				l.met.Leader.Set(1)
				l.met.Terms.Inc()
				b.PollSoon()
				b.Kick()
				for term.Err() == nil {
					err := l.st.Forwarded(term, f, func(job []byte) {
						var j core.Job
						if err := json.Unmarshal(job, &j); err != nil {
							l.log.Warn("ignoring handed-over work that is not a job", "error", err)
							return
						}
						b.RunJob(term, j)
					})
					if err != nil && term.Err() == nil {
						l.log.Warn("reading work handed over by standbys failed; reading again", "error", err)
						select {
						case <-term.Done():
						case <-time.After(time.Second):
						}
					}
				}
				l.mu.Lock()
				l.term = nil
				l.mu.Unlock()
				l.met.Leader.Set(0)
			}})
		if err != nil && ctx.Err() == nil {
			l.log.Error("leader election stopped", "error", err)
		}
	}()
}

// stop ends the campaign: a leader resigns, so another instance takes over at once.
func (l *leadership) stop() {
	if l == nil || l.cancel == nil {
		return
	}
	l.cancel()
	<-l.done
}
