package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Etcd is a Store in an etcd cluster, under one key prefix, so that several bot instances
// share it. It runs the same logic as Bolt over etcd transactions (etcdEngine): a transaction
// reads at one revision and commits with one etcd Txn that compares the mod revision of every
// key it read with Get (the request, the audit chain head, the ID counter, the target holds, the
// card state), so a change is a compare-and-swap of everything it depends on, and the audit
// chain stays one chain because every append compares its head. Writes made under a Fence
// also compare the leader key's create revision.
type Etcd struct {
	*kvStore
	eng    *etcdEngine
	prefix string
	stop   context.CancelFunc
	done   chan struct{}
}

// Etcd key layout under the prefix: "b/<bucket>/<key>" for bucket entries, "s/<bucket>" for
// a bucket's sequence (8 bytes BE). Leader election keys live beside them under "leader/".
const (
	etcdBucketPart = "b/"
	etcdSeqPart    = "s/"
	// EtcdLeaderPart is where the instances' election lives under the prefix.
	EtcdLeaderPart = "leader/"
)

// etcdPage is how many keys a cursor reads per range request (a variable for the tests).
var etcdPage int64 = 512

const (
	// etcdCommitTimeout bounds one commit. A commit that has been sent is not cancelled with
	// its caller's context (like bbolt's), since what it records has happened; it can only time out.
	etcdCommitTimeout = 10 * time.Second
	etcdMaxAttempts   = 100
)

// OpenEtcd connects to etcd with cfg and opens the store under prefix (which must end in
// "/"), stamping a new prefix with the schema version. The store owns the client; Close
// closes it. ctx bounds the connection and the schema check.
func OpenEtcd(ctx context.Context, cfg clientv3.Config, prefix string, opt Options) (*Etcd, error) {
	if prefix == "" || !strings.HasSuffix(prefix, "/") {
		return nil, fmt.Errorf("%w: etcd prefix %q must end in /", ErrInvalid, prefix)
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.ApprovalsRequired < 0 {
		return nil, fmt.Errorf("%w: ApprovalsRequired %d is negative", ErrInvalid, opt.ApprovalsRequired)
	}
	if opt.ApprovalsRequired == 0 {
		opt.ApprovalsRequired = 1
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop() // the store reports what fails, once, in its own words
	}
	cli, err := clientv3.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("etcd %s: %w", strings.Join(cfg.Endpoints, ","), err)
	}
	eng := &etcdEngine{cli: cli, pfx: prefix}
	s := &Etcd{eng: eng, prefix: prefix, done: make(chan struct{})}
	s.kvStore = newKVStore(eng, opt)
	s.gate = &leaderGate{}
	eng.onFenced = s.fenced
	if err := s.initSchema(ctx); err != nil {
		cli.Close()
		return nil, fmt.Errorf("etcd %s prefix %s: %w", strings.Join(cfg.Endpoints, ","), prefix, err)
	}
	wctx, stop := context.WithCancel(context.Background())
	s.stop = stop
	go s.watch(wctx)
	return s, nil
}

// Client is the store's etcd client, for the leader election beside it.
func (s *Etcd) Client() *clientv3.Client { return s.eng.cli }

// Prefix is the key prefix the store lives under.
func (s *Etcd) Prefix() string { return s.prefix }

// Close stops watching and closes the client.
func (s *Etcd) Close() error {
	s.stop()
	<-s.done
	return s.eng.cli.Close()
}

func (s *Etcd) initSchema(ctx context.Context) error {
	return s.update(ctx, func(tx kvTx) error {
		meta := tx.Bucket(bucketMeta)
		raw := meta.Get(keySchema)
		if raw == nil {
			n, err := s.eng.count(tx.(*etcdTx), s.prefix+etcdBucketPart, clientv3.GetPrefixRangeEnd(s.prefix+etcdBucketPart))
			if err != nil {
				return err
			}
			if n > 0 {
				return fmt.Errorf("%w: the prefix holds keys but no failover-bot schema version; it belongs to something else", ErrSchema)
			}
			var v [8]byte
			binary.BigEndian.PutUint64(v[:], schemaVersion)
			return meta.Put(keySchema, v[:])
		}
		if len(raw) != 8 {
			return fmt.Errorf("%w: schema version is malformed", ErrSchema)
		}
		if v := binary.BigEndian.Uint64(raw); v != schemaVersion {
			return fmt.Errorf("%w: schema version %d, this failover-bot understands %d; run the failover-bot that wrote it, or migrate through a backup", ErrSchema, v, schemaVersion)
		}
		return nil
	})
}

// watch signals Changed for every change another instance (or this one) commits under the
// prefix, so delivery on the leader wakes for requests and clicks recorded by any instance.
func (s *Etcd) watch(ctx context.Context) {
	defer close(s.done)
	probe := s.prefix + etcdBucketPart + string(bucketHealth) + "/"
	for ctx.Err() == nil {
		wch := s.eng.cli.Watch(clientv3.WithRequireLeader(ctx), s.prefix+etcdBucketPart, clientv3.WithPrefix())
		for resp := range wch {
			if resp.Err() != nil {
				break
			}
			for _, ev := range resp.Events {
				if !strings.HasPrefix(string(ev.Kv.Key), probe) {
					s.signal()
					break
				}
			}
		}
		// The watch ended (etcd lost, compacted): wake the consumers once, since changes may
		// have been missed, and watch again.
		s.signal()
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// etcdEngine runs kvStore transactions on etcd.
type etcdEngine struct {
	cli *clientv3.Client
	pfx string
	// This instance's writes are committed in groups by one goroutine (loop): every write
	// appends to the audit chain, so two local transactions at once would only make one of
	// them retry. Other instances' writes are caught by the compares.
	gmu     sync.Mutex
	queue   []*etcdCall
	running bool
	// onFenced is told of a write refused under a fence: that term is over.
	onFenced func(Fence)
}

// withOpTimeout bounds a call whose context has no deadline: etcd's client retries an
// unreachable cluster for as long as the context lets it, and a delivery worker or a shutdown
// must hear "unavailable" rather than wait forever.
func withOpTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, etcdCommitTimeout)
}

func (e *etcdEngine) view(ctx context.Context, fn func(kvTx) error) error {
	ctx, cancel := withOpTimeout(ctx)
	defer cancel()
	tx := e.newTx(ctx, false)
	err := fn(tx)
	if tx.err != nil {
		return tx.err
	}
	return err
}

// update queues fn for the next group commit: writes that arrive while one commits share the
// next etcd transaction (a Raft round trip and an fsync on a majority of members each), as
// bbolt's groupCommit shares a file commit. The semantics are groupCommit's: fn may run more
// than once; a failing or panicking fn is taken out and run alone for its own outcome.
func (e *etcdEngine) update(ctx context.Context, fn func(kvTx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c := &etcdCall{ctx: ctx, fn: fn, done: make(chan error, 1)}
	e.gmu.Lock()
	e.queue = append(e.queue, c)
	if !e.running {
		e.running = true
		go e.loop()
	}
	e.gmu.Unlock()
	return <-c.done
}

type etcdCall struct {
	ctx  context.Context
	fn   func(kvTx) error
	done chan error
}

// etcdMaxGroup bounds the writes one transaction carries (etcd's --max-txn-ops bounds its
// operations; a group etcd refuses as too large is split).
const etcdMaxGroup = 64

// loop commits what is queued, group after group; a group shares one fence.
func (e *etcdEngine) loop() {
	for {
		e.gmu.Lock()
		if len(e.queue) == 0 {
			e.running = false
			e.gmu.Unlock()
			return
		}
		f, fenced := FenceOf(e.queue[0].ctx)
		var group, rest []*etcdCall
		for _, c := range e.queue {
			g, ok := FenceOf(c.ctx)
			if len(group) < etcdMaxGroup && ok == fenced && g == f {
				group = append(group, c)
			} else {
				rest = append(rest, c)
			}
		}
		e.queue = rest
		e.gmu.Unlock()
		e.commitGroup(group, f, fenced)
	}
}

func (e *etcdEngine) commitGroup(calls []*etcdCall, f Fence, fenced bool) {
	for len(calls) > 0 {
		failed, err := e.runTx(calls, f, fenced)
		switch {
		case failed >= 0 && len(calls) > 1:
			// Its own outcome, alone; the others are committed without it.
			c := calls[failed]
			_, aerr := e.runTx(calls[failed:failed+1], f, fenced)
			c.done <- aerr
			calls = append(calls[:failed:failed], calls[failed+1:]...)
			continue
		case err != nil && len(calls) > 1 && (strings.Contains(err.Error(), "--max-txn-ops") || strings.Contains(err.Error(), "--max-request-bytes")):
			for _, c := range calls {
				_, err := e.runTx([]*etcdCall{c}, f, fenced)
				c.done <- err
			}
			return
		}
		for _, c := range calls {
			c.done <- err
		}
		return
	}
}

// runTx runs the calls' fns in one transaction and commits it, reading again and rerunning
// them when another instance wrote what they read. failed is the index of the fn that failed
// (err is its error), or -1.
func (e *etcdEngine) runTx(calls []*etcdCall, f Fence, fenced bool) (failed int, err error) {
	ctx, cancel := withOpTimeout(calls[0].ctx)
	defer cancel()
	if len(calls) > 1 {
		// Shared: one caller giving up must not fail the others' reads.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), etcdCommitTimeout)
		defer cancel()
	}
	for attempt := 1; ; attempt++ {
		tx := e.newTx(ctx, true)
		for i, c := range calls {
			if err := safeRun(c.fn, tx); err != nil {
				if tx.err != nil {
					return -1, tx.err
				}
				return i, err
			}
		}
		if tx.err != nil {
			return -1, tx.err
		}
		if len(tx.writes) == 0 {
			return -1, nil
		}
		ok, err := tx.commit(f, fenced)
		if errors.Is(err, ErrFenced) && e.onFenced != nil {
			e.onFenced(f)
		}
		if err != nil || ok {
			return -1, err
		}
		if attempt == etcdMaxAttempts {
			return -1, fmt.Errorf("etcd: the write kept losing to other instances' writes (%d attempts)", attempt)
		}
		// Another instance wrote what this one read: read again after a short, random pause.
		t := time.NewTimer(time.Duration(rand.IntN(attempt*2+1)) * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return -1, ctx.Err()
		case <-t.C:
		}
	}
}

// safeRun turns a panic in fn into an error, so one bad write cannot take its group down.
func safeRun(fn func(kvTx) error, tx kvTx) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("store: write panicked: %v", p)
		}
	}()
	return fn(tx)
}

func (e *etcdEngine) newTx(ctx context.Context, write bool) *etcdTx {
	return &etcdTx{e: e, ctx: ctx, write: write, cache: map[string]etcdRec{}, reads: map[string]int64{},
		writes: map[string]etcdWrite{}, buckets: map[string]*etcdBucket{}}
}

func (e *etcdEngine) count(tx *etcdTx, from, end string) (int, error) {
	resp, err := e.cli.Get(tx.ctx, from, tx.at(clientv3.WithRange(end), clientv3.WithCountOnly())...)
	if err != nil {
		return 0, etcdErr("count", err)
	}
	tx.setRev(resp.Header.Revision)
	return int(resp.Count), nil
}

// etcdErr names what failed; etcd's own messages carry no secrets.
func etcdErr(what string, err error) error {
	if errors.Is(err, context.DeadlineExceeded) || status.Code(err) == codes.Unavailable || status.Code(err) == codes.DeadlineExceeded ||
		errors.Is(err, rpctypes.ErrNoLeader) || errors.Is(err, rpctypes.ErrTimeout) {
		return fmt.Errorf("etcd %s: %w (%w)", what, ErrUnavailable, err)
	}
	if errors.Is(err, context.Canceled) {
		return fmt.Errorf("etcd %s: %w", what, err)
	}
	if errors.Is(err, rpctypes.ErrTooManyOps) || strings.Contains(err.Error(), "too many operations") {
		return fmt.Errorf("etcd %s: %w: raise etcd's --max-txn-ops (failover-bot writes about 2 keys per VM of a request in one transaction)", what, err)
	}
	if errors.Is(err, rpctypes.ErrRequestTooLarge) || strings.Contains(err.Error(), "request is too large") ||
		strings.Contains(err.Error(), "larger than max") {
		return fmt.Errorf("etcd %s: %w: raise etcd's --max-request-bytes", what, err)
	}
	return fmt.Errorf("etcd %s: %w", what, err)
}

type etcdRec struct {
	v   []byte // nil: absent
	mod int64  // mod revision, 0 when absent
}

type etcdWrite struct {
	v   []byte
	del bool
}

// etcdTx reads at one revision (the first read's) and buffers its writes. A write
// transaction compares, at commit, every key it read with Get; cursors read the same
// snapshot without adding compares (they serve listings and the pruning of expired replay
// keys, where a concurrent change is harmless).
type etcdTx struct {
	e       *etcdEngine
	ctx     context.Context
	write   bool
	rev     int64
	cache   map[string]etcdRec
	reads   map[string]int64
	writes  map[string]etcdWrite
	buckets map[string]*etcdBucket
	err     error
}

func (tx *etcdTx) fail(what string, err error) {
	if tx.err == nil {
		tx.err = etcdErr(what, err)
	}
}

func (tx *etcdTx) setRev(rev int64) {
	if tx.rev == 0 {
		tx.rev = rev
	}
}

func (tx *etcdTx) at(opts ...clientv3.OpOption) []clientv3.OpOption {
	if tx.rev != 0 {
		opts = append(opts, clientv3.WithRev(tx.rev))
	}
	return opts
}

// read is a Get at the transaction's revision. The first read is linearizable and fixes the
// revision; the later ones ask the member for that revision without a quorum round trip
// (serializable: a read of a past revision is the same on every member that has it), which
// makes a poll cycle's thousand writes several times cheaper on a cluster. A member that has
// not applied the revision yet says so, and the read is made linearizable instead. A stale
// read could only make the commit's compares fail, never pass.
func (tx *etcdTx) read(key string, opts ...clientv3.OpOption) (*clientv3.GetResponse, error) {
	if tx.rev == 0 {
		return tx.e.cli.Get(tx.ctx, key, opts...)
	}
	resp, err := tx.e.cli.Get(tx.ctx, key, append(tx.at(opts...), clientv3.WithSerializable())...)
	if errors.Is(err, rpctypes.ErrFutureRev) {
		resp, err = tx.e.cli.Get(tx.ctx, key, tx.at(opts...)...)
	}
	return resp, err
}

func (tx *etcdTx) Bucket(name []byte) kvBucket {
	b, ok := tx.buckets[string(name)]
	if !ok {
		b = &etcdBucket{tx: tx, name: string(name), pfx: tx.e.pfx + etcdBucketPart + string(name) + "/"}
		tx.buckets[string(name)] = b
	}
	return b
}

func (tx *etcdTx) get(key string) []byte {
	if w, ok := tx.writes[key]; ok {
		if w.del {
			return nil
		}
		return w.v
	}
	rec, ok := tx.cache[key]
	if !ok {
		if tx.err != nil {
			return nil
		}
		resp, err := tx.read(key)
		if err != nil {
			tx.fail("read", err)
			return nil
		}
		tx.setRev(resp.Header.Revision)
		if len(resp.Kvs) == 1 {
			rec = etcdRec{v: resp.Kvs[0].Value, mod: resp.Kvs[0].ModRevision}
		}
		tx.cache[key] = rec
	}
	if tx.write {
		tx.reads[key] = rec.mod
	}
	return rec.v
}

func (tx *etcdTx) put(key string, v []byte) error {
	if !tx.write {
		return fmt.Errorf("%w: write in a read-only transaction", ErrInvalid)
	}
	tx.writes[key] = etcdWrite{v: bytes.Clone(v)}
	return nil
}

func (tx *etcdTx) del(key string) error {
	if !tx.write {
		return fmt.Errorf("%w: write in a read-only transaction", ErrInvalid)
	}
	tx.writes[key] = etcdWrite{del: true}
	return nil
}

// commit sends the writes in one Txn guarded by the compares; ok is false when a compare
// failed (another writer came first) and the fence, if any, still holds.
func (tx *etcdTx) commit(f Fence, fenced bool) (ok bool, err error) {
	cmps := make([]clientv3.Cmp, 0, len(tx.reads)+1)
	for k, mod := range tx.reads {
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(k), "=", mod))
	}
	if fenced {
		cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(f.Key), "=", f.Rev))
	}
	ops := make([]clientv3.Op, 0, len(tx.writes))
	for k, w := range tx.writes {
		if w.del {
			ops = append(ops, clientv3.OpDelete(k))
		} else {
			ops = append(ops, clientv3.OpPut(k, string(w.v)))
		}
	}
	var orElse []clientv3.Op
	if fenced {
		orElse = append(orElse, clientv3.OpGet(f.Key))
	}
	// Once sent, a commit is not abandoned with its caller (see etcdCommitTimeout).
	// A caller's deadline still counts (a health probe must answer in time).
	timeout := etcdCommitTimeout
	if d, ok := tx.ctx.Deadline(); ok && time.Until(d) < timeout {
		timeout = max(time.Until(d), 100*time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(tx.ctx), timeout)
	defer cancel()
	resp, err := tx.e.cli.Txn(ctx).If(cmps...).Then(ops...).Else(orElse...).Commit()
	if err != nil {
		return false, etcdErr("commit", err)
	}
	if resp.Succeeded {
		return true, nil
	}
	if fenced {
		if get := resp.Responses[0].GetResponseRange(); get == nil || len(get.Kvs) == 0 || get.Kvs[0].CreateRevision != f.Rev {
			return false, ErrFenced
		}
	}
	return false, nil
}

type etcdBucket struct {
	tx   *etcdTx
	name string
	pfx  string
}

func (b *etcdBucket) Get(key []byte) []byte       { return b.tx.get(b.pfx + string(key)) }
func (b *etcdBucket) Put(key, value []byte) error { return b.tx.put(b.pfx+string(key), value) }
func (b *etcdBucket) Delete(key []byte) error     { return b.tx.del(b.pfx + string(key)) }
func (b *etcdBucket) Cursor() kvCursor            { return &etcdCursor{b: b} }

func (b *etcdBucket) seqKey() string { return b.tx.e.pfx + etcdSeqPart + b.name }

func (b *etcdBucket) Sequence() uint64 {
	if v := b.tx.get(b.seqKey()); len(v) == 8 {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

func (b *etcdBucket) SetSequence(v uint64) error {
	return b.tx.put(b.seqKey(), binary.BigEndian.AppendUint64(nil, v))
}

func (b *etcdBucket) NextSequence() (uint64, error) {
	n := b.Sequence() + 1
	if b.tx.err != nil {
		return 0, b.tx.err
	}
	return n, b.SetSequence(n)
}

func (b *etcdBucket) ForEach(fn func(k, v []byte) error) error {
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if err := fn(k, v); err != nil {
			return err
		}
	}
	return b.tx.err
}

func (b *etcdBucket) Count() (int, error) {
	for k := range b.tx.writes {
		if strings.HasPrefix(k, b.pfx) {
			n := 0
			err := b.ForEach(func(_, _ []byte) error { n++; return nil })
			return n, err
		}
	}
	return b.tx.e.count(b.tx, b.pfx, clientv3.GetPrefixRangeEnd(b.pfx))
}

// etcdCursor walks the bucket's keys at the transaction's revision merged with its own
// writes, reading etcdPage keys per range request.
type etcdCursor struct {
	b    *etcdBucket
	cur  string // full key the cursor is on; "" when off the ends
	page []etcdKV
	asc  bool
	from string // the page holds every key beyond from (and from itself when incl), up to its last
	incl bool
	more bool // keys lie beyond the page's last
}

type etcdKV struct {
	k string
	v []byte
}

func (c *etcdCursor) end() string { return clientv3.GetPrefixRangeEnd(c.b.pfx) }

func (c *etcdCursor) First() ([]byte, []byte) { return c.seek(c.b.pfx, true, true) }
func (c *etcdCursor) Last() ([]byte, []byte)  { return c.seek(c.end(), false, false) }
func (c *etcdCursor) Seek(k []byte) ([]byte, []byte) {
	return c.seek(c.b.pfx+string(k), true, true)
}

func (c *etcdCursor) Next() ([]byte, []byte) {
	if c.cur == "" {
		return nil, nil
	}
	return c.seek(c.cur, true, false)
}

func (c *etcdCursor) Prev() ([]byte, []byte) {
	if c.cur == "" {
		return nil, nil
	}
	return c.seek(c.cur, false, false)
}

func (c *etcdCursor) Delete() error {
	if c.cur == "" {
		return fmt.Errorf("%w: cursor delete off the bucket", ErrInvalid)
	}
	return c.b.tx.del(c.cur)
}

// beyond reports whether k lies past from in the direction (or at it, when incl).
func beyond(k, from string, asc, incl bool) bool {
	switch {
	case k == from:
		return incl
	case asc:
		return k > from
	default:
		return k < from
	}
}

// seek moves to the first key beyond from in the direction, local writes included.
func (c *etcdCursor) seek(from string, asc, incl bool) ([]byte, []byte) {
	tx := c.b.tx
	var rk string
	var rv []byte
	for rfrom, rincl := from, incl; tx.err == nil; rfrom, rincl = rk, false {
		var ok bool
		if rk, rv, ok = c.remote(rfrom, asc, rincl); !ok {
			rk = ""
			break
		}
		if _, written := tx.writes[rk]; !written {
			break // a written key is the local candidate's business
		}
	}
	lk := ""
	for k, w := range tx.writes {
		if w.del || !strings.HasPrefix(k, c.b.pfx) || !beyond(k, from, asc, incl) {
			continue
		}
		if lk == "" || beyond(lk, k, asc, false) {
			lk = k
		}
	}
	switch {
	case tx.err != nil || (rk == "" && lk == ""):
		c.cur = ""
		return nil, nil
	case rk == "" || (lk != "" && beyond(rk, lk, asc, false)):
		c.cur = lk
		return []byte(strings.TrimPrefix(lk, c.b.pfx)), tx.writes[lk].v
	default:
		c.cur = rk
		return []byte(strings.TrimPrefix(rk, c.b.pfx)), rv
	}
}

// remote returns the first stored key beyond from in the direction, at the revision.
func (c *etcdCursor) remote(from string, asc, incl bool) (string, []byte, bool) {
	if c.page != nil && c.asc == asc && ((from == c.from && (c.incl || !incl)) || beyond(from, c.from, asc, false)) {
		i := sort.Search(len(c.page), func(i int) bool { return beyond(c.page[i].k, from, asc, incl) })
		if i < len(c.page) {
			return c.page[i].k, c.page[i].v, true
		}
		if !c.more {
			return "", nil, false
		}
	}
	tx := c.b.tx
	opts := []clientv3.OpOption{clientv3.WithLimit(etcdPage)}
	start := from
	if asc {
		if !incl {
			start = from + "\x00"
		}
		opts = append(opts, clientv3.WithRange(c.end()), clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend))
	} else {
		end := from
		if incl {
			end = from + "\x00"
		}
		start = c.b.pfx
		opts = append(opts, clientv3.WithRange(end), clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend))
	}
	resp, err := tx.read(start, opts...)
	if err != nil {
		tx.fail("range read", err)
		return "", nil, false
	}
	tx.setRev(resp.Header.Revision)
	c.asc, c.from, c.incl, c.more = asc, from, incl, resp.More
	c.page = c.page[:0]
	for _, kv := range resp.Kvs {
		c.page = append(c.page, etcdKV{string(kv.Key), kv.Value})
		if _, cached := tx.cache[string(kv.Key)]; !cached {
			tx.cache[string(kv.Key)] = etcdRec{v: kv.Value, mod: kv.ModRevision}
		}
	}
	if len(c.page) == 0 {
		c.page = nil
		return "", nil, false
	}
	return c.page[0].k, c.page[0].v, true
}

var _ Store = (*Etcd)(nil)
