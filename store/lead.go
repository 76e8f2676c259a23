package store

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// Leader-only writes. Several instances share an etcd store: every instance records requests,
// approvals, rejections, replays and plan decisions (the edge), but only the leader submits
// failovers, polls EM, expires and reminds, and delivers what Slack is owed. The store enforces
// that split: once an instance campaigns (Lead), its leader-only writes — Transition,
// TransitionAll, Expire, Remind, Note, WithdrawUndeliverable and the card and outbox writes —
// are refused with ErrFenced unless it leads, and while it leads they compare the election
// key's create revision, so they are refused too the moment another instance has taken over,
// even if this one has not noticed yet (paused, partitioned).

// leaderGate is an instance's leadership state; nil (bbolt, or etcd before Lead) admits every
// write unfenced.
type leaderGate struct {
	mu     sync.Mutex
	on     bool               // Lead was called: leader-only writes need a term
	fence  *Fence             // the current term's
	cancel context.CancelFunc // ends the current term
}

func (s *kvStore) leaderWrite(ctx context.Context) (context.Context, error) {
	g := s.gate
	if g == nil {
		return ctx, nil
	}
	g.mu.Lock()
	on, f := g.on, g.fence
	g.mu.Unlock()
	if !on {
		return ctx, nil
	}
	if f == nil {
		return ctx, ErrFenced
	}
	return WithFence(ctx, *f), nil
}

// fenced is told that etcd refused a write under f: the term f belongs to is over, whatever the
// session thinks, so end it now.
func (s *kvStore) fenced(f Fence) {
	g := s.gate
	if g == nil {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.fence != nil && *g.fence == f {
		g.fence = nil
		if g.cancel != nil {
			g.cancel()
		}
	}
}

// LeadOptions configures Lead.
type LeadOptions struct {
	// Instance names this instance in the election (its value), in logs and in Leader.
	Instance string
	// TTL is the session lease (LEADER_TTL): a leader that stops renewing it for TTL loses
	// the leadership, and another instance takes over. Whole seconds, at least 2.
	TTL time.Duration
	// Work runs each time this instance becomes the leader, with a context that ends the
	// moment the leadership does (lease lost or revoked, a fenced write refused, Lead's context
	// done). Work must stop its leader-only work and return promptly once it ends; the next
	// campaign starts only after it has returned.
	Work   func(ctx context.Context, f Fence)
	Logger *slog.Logger
	// Retry is the pause after etcd could not be reached for a session or a campaign (default 1s).
	Retry time.Duration
}

// Lead campaigns for leadership under the store's prefix until ctx is done, running
// opt.Work for each term won, and returns when the last term has ended. From its call, the
// store refuses this instance's leader-only writes except under a current term.
func (s *Etcd) Lead(ctx context.Context, opt LeadOptions) error {
	if opt.TTL < 2*time.Second || opt.TTL%time.Second != 0 {
		return fmt.Errorf("%w: leader TTL %v must be whole seconds, at least 2s", ErrInvalid, opt.TTL)
	}
	if opt.Instance == "" || opt.Work == nil {
		return fmt.Errorf("%w: lead: an instance name and work are required", ErrInvalid)
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.Retry <= 0 {
		opt.Retry = time.Second
	}
	s.gate.mu.Lock()
	s.gate.on = true
	s.gate.mu.Unlock()
	log := opt.Logger.With("instance", opt.Instance)
	pause := func() {
		select {
		case <-ctx.Done():
		case <-time.After(opt.Retry):
		}
	}
	for ctx.Err() == nil {
		// The session outlives ctx until it is closed below, so that stopping resigns and
		// revokes the lease (the next leader starts at once) instead of leaving it to expire.
		gctx, gcancel := context.WithTimeout(ctx, opt.TTL)
		lease, err := s.eng.cli.Grant(gctx, int64(opt.TTL/time.Second))
		gcancel()
		var sess *concurrency.Session
		if err == nil {
			sess, err = concurrency.NewSession(s.eng.cli, concurrency.WithLease(lease.ID), concurrency.WithTTL(int(opt.TTL/time.Second)),
				concurrency.WithContext(context.WithoutCancel(ctx)))
		}
		if err != nil {
			if ctx.Err() == nil {
				log.Warn("leader election: cannot open an etcd session; retrying", "error", etcdErr("session", err))
				pause()
			}
			continue
		}
		// The election adds "/<lease>" to its prefix: keys are <prefix>leader/<lease>.
		el := concurrency.NewElection(sess, s.prefix+strings.TrimSuffix(EtcdLeaderPart, "/"))
		// A campaign waits for the leader before it; it must end with the session too.
		cctx, cancel := context.WithCancel(ctx)
		go func() {
			select {
			case <-sess.Done():
				cancel()
			case <-cctx.Done():
			}
		}()
		err = el.Campaign(cctx, opt.Instance)
		if err != nil {
			cancel()
			sess.Close()
			if ctx.Err() == nil {
				log.Warn("leader election: campaign ended without the leadership; campaigning again", "error", etcdErr("campaign", err))
				pause()
			}
			continue
		}
		f := Fence{Key: el.Key(), Rev: el.Rev()}
		s.gate.mu.Lock()
		s.gate.fence, s.gate.cancel = &f, cancel
		s.gate.mu.Unlock()
		// The moment the term ends, leader-only writes are refused here, before Work has
		// even noticed.
		dropFence := context.AfterFunc(cctx, func() {
			s.gate.mu.Lock()
			if s.gate.fence != nil && *s.gate.fence == f {
				s.gate.fence = nil
			}
			s.gate.mu.Unlock()
		})
		start := time.Now()
		log.Info("leader election: this instance leads", "key", f.Key, "fence", f.Rev)
		opt.Work(cctx, f)
		dropFence()
		// Work returned: the term is over (or ctx is). No leader-only write may follow.
		s.gate.mu.Lock()
		s.gate.fence, s.gate.cancel = nil, nil
		s.gate.mu.Unlock()
		cancel()
		select {
		case <-sess.Done():
			log.Warn("leader election: the lease was lost; this instance no longer leads", "led_for", time.Since(start).Round(time.Millisecond))
		default:
			// Hand over at once rather than after the TTL: resign, then end the session.
			rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			if err := el.Resign(rctx); err != nil {
				log.Warn("leader election: resigning failed; the lease ends within the TTL", "error", etcdErr("resign", err))
			}
			rcancel()
			log.Info("leader election: this instance stepped down", "led_for", time.Since(start).Round(time.Millisecond))
		}
		sess.Close()
	}
	return ctx.Err()
}

// Leading reports whether this instance leads now.
func (s *Etcd) Leading() bool {
	s.gate.mu.Lock()
	defer s.gate.mu.Unlock()
	return s.gate.fence != nil
}

// Leader returns the instance name of the current leader, "" when there is none.
func (s *Etcd) Leader(ctx context.Context) (string, error) {
	resp, err := s.eng.cli.Get(ctx, s.prefix+EtcdLeaderPart, clientv3.WithFirstCreate()...)
	if err != nil {
		return "", etcdErr("leader", err)
	}
	if len(resp.Kvs) == 0 {
		return "", nil
	}
	return string(resp.Kvs[0].Value), nil
}

// EtcdForwardPart is where standbys leave work for the leader under the prefix.
const EtcdForwardPart = "forward/"

// Forward leaves job for the leader (see Forwarded). Any instance may call it.
func (s *Etcd) Forward(ctx context.Context, job []byte) error {
	key := fmt.Sprintf("%s%s%020d-%016x", s.prefix, EtcdForwardPart, time.Now().UnixNano(), rand.Uint64())
	if _, err := s.eng.cli.Put(ctx, key, string(job)); err != nil {
		return etcdErr("forward", err)
	}
	return nil
}

// Forwarded runs fn on every job left by Forward, oldest first — those waiting when it starts,
// then each as it arrives — until ctx ends (the term). A job is removed after fn returns, by a
// delete fenced by f: a leader that dies or is deposed in between leaves it for the next, so
// each job runs at least once and fn must tolerate a repeat.
func (s *Etcd) Forwarded(ctx context.Context, f Fence, fn func(job []byte)) error {
	pfx := s.prefix + EtcdForwardPart
	done := func(key []byte) error {
		resp, err := s.eng.cli.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(f.Key), "=", f.Rev)).
			Then(clientv3.OpDelete(string(key))).Commit()
		if err != nil {
			return etcdErr("forwarded job", err)
		}
		if !resp.Succeeded {
			s.fenced(f)
			return ErrFenced
		}
		return nil
	}
	resp, err := s.eng.cli.Get(ctx, pfx, clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend))
	if err != nil {
		return etcdErr("forwarded jobs", err)
	}
	for _, kv := range resp.Kvs {
		fn(kv.Value)
		if err := done(kv.Key); err != nil {
			return err
		}
	}
	wch := s.eng.cli.Watch(clientv3.WithRequireLeader(ctx), pfx, clientv3.WithPrefix(), clientv3.WithRev(resp.Header.Revision+1))
	for wr := range wch {
		if err := wr.Err(); err != nil {
			return etcdErr("forwarded jobs", err)
		}
		for _, ev := range wr.Events {
			if ev.Type != clientv3.EventTypePut {
				continue
			}
			fn(ev.Kv.Value)
			if err := done(ev.Kv.Key); err != nil {
				return err
			}
		}
	}
	return ctx.Err()
}
