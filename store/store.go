package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/failover-bot/failover-bot/store/failover"
	bolterrors "go.etcd.io/bbolt/errors"
)

// Errors returned by the store; match them with errors.Is. Refused state changes are
// reported with *ConflictError instead.
var (
	// ErrNotFound means no request has the given ID or Slack message.
	ErrNotFound = errors.New("not found")
	// ErrLocked means another process holds the database file; bbolt allows one writer
	// process, and two bots on one file would both act on the same requests.
	ErrLocked = errors.New("database is locked by another failover-bot process")
	// ErrSchema means the file was written by a newer failover-bot or is not ours; opening
	// it anyway could misread or damage it.
	ErrSchema = errors.New("unsupported database schema")
	// ErrUnavailable means the store could not be reached in time (etcd without quorum or out
	// of reach): nothing was written, and the same call may succeed later.
	ErrUnavailable = errors.New("the store cannot be reached")
	// ErrInvalid means the caller passed arguments the store cannot accept (a missing
	// reason, an unknown state, an Apply that touches fields it must not). It is the model's
	// failover.ErrInvalid, so a rule's refusal and the store's are the same error.
	ErrInvalid = failover.ErrInvalid
)

// schemaVersion is the on-disk format this code reads and writes. Bump it, with a
// migration, whenever a bucket layout or an encoding changes incompatibly.
const schemaVersion = 5

// minMigratableVersion is the oldest schema Open upgrades in place (see migrate).
const minMigratableVersion = 1

var (
	bucketMeta     = []byte("meta")
	bucketRequests = []byte("requests")       // seq (8 bytes BE) -> JSON Request
	bucketActive   = []byte("active")         // seq -> empty; requests in an Active() state
	bucketMessages = []byte("messages")       // channel NUL ts -> seq
	bucketAudit    = []byte("audit")          // seq -> event body || SHA-256(body)
	bucketHealth   = []byte("health")         // scratch space for Writable
	bucketOutbox   = []byte("outbox")         // channel NUL seq -> JSON Outgoing; messages owed to Slack
	bucketCards    = []byte("cards")          // seq -> JSON cardState; what Slack shows of each card
	bucketUnposted = []byte("cards-unposted") // channel NUL seq -> empty; cards Slack does not have yet
	bucketStale    = []byte("cards-stale")    // seq -> empty; posted cards older than their request
	bucketReplays  = []byte("replays")        // replay key -> expiry (Unix ns, 8 bytes BE)
	bucketReplayBy = []byte("replay-expiry")  // expiry (8 bytes BE) || replay key -> empty
	bucketTargets  = []byte("targets")        // failover.TargetKey -> seq of the active request holding it
	bucketFinished = []byte("finished")       // finish time (Unix ns, 8 bytes BE) || seq -> empty; see Finished

	keySchema    = []byte("schema")     // uint64 BE
	keyAuditHead = []byte("audit-head") // last event seq (8 bytes BE) || its hash (32 bytes)
	// keyAuditCursor is the last audit event delivered to the audit channel (8 bytes BE)
	// followed by that channel's ID, so a change of channel starts from the head instead of
	// posting the whole history into the new one.
	keyAuditCursor = []byte("audit-cursor")

	allBuckets = [][]byte{bucketMeta, bucketRequests, bucketActive, bucketMessages, bucketAudit, bucketHealth,
		bucketOutbox, bucketCards, bucketUnposted, bucketStale, bucketReplays, bucketReplayBy, bucketTargets, bucketFinished}
)

// Options configure Open. The zero value is usable outside tests.
type Options struct {
	// LockTimeout is how long Open waits for the file lock; default 2s. On timeout Open
	// returns ErrLocked rather than hanging behind another running bot.
	LockTimeout time.Duration
	// Now is the clock for every timestamp; required in tests; default time.Now.
	Now func() time.Time
	// ApprovalsRequired is how many people other than the requester must approve; default 1.
	// It is captured on each request at Create, so changing it never re-decides old requests.
	ApprovalsRequired int
	// Thread, when set, is the projection of a change onto the request's Slack thread: it
	// returns the line the change owes the thread ("" for none), and that line is queued in
	// the same transaction as the change (see Outgoing). It runs inside the transaction and
	// may run more than once per change, so it must be a pure function of its arguments.
	// A change's own line (Change.Thread) is queued first, then the projection's, if different.
	Thread func(r *Request, e *Event) string
	// Requester, when set, is the projection of a change onto what its requester is told: a
	// line for the thread that mentions them (appended to the last line the change queues
	// there, which told says exists, or queued alone), and a direct message (queued to the
	// requester's user ID, which Slack delivers in the app's DM). Either may be "". It runs
	// inside the transaction, like Thread, and must be a pure function of its arguments.
	Requester func(r *Request, e *Event, told bool) (mention, direct string)
	// Names, when set, returns the display name of an actor (a Slack user ID) to record beside
	// it in each audit event (Event.ActorName), "" when unknown. It runs inside the write
	// transaction, so it must answer at once (a cache lookup, never a call to Slack).
	Names func(actor string) string
}

// kvStore is the store's logic over a kvEngine: every backend embeds it. It is safe for
// concurrent use.
type kvStore struct {
	Rules             // the model's rules, over Update
	eng               kvEngine
	now               func() time.Time
	approvalsRequired int
	thread            func(r *Request, e *Event) string
	requester         func(r *Request, e *Event, told bool) (mention, direct string)
	names             func(actor string) string
	changed           chan struct{} // signalled after each commit that may owe Slack something
	gate              *leaderGate   // etcd: which writes this instance may make (lead.go)
}

func newKVStore(eng kvEngine, opt Options) *kvStore {
	s := &kvStore{eng: eng, now: opt.Now, approvalsRequired: opt.ApprovalsRequired,
		thread: opt.Thread, requester: opt.Requester, names: opt.Names, changed: make(chan struct{}, 1)}
	s.Rules = Rules{U: s, Lead: s.leaderWrite}
	return s
}

// Bolt is a Store in one bbolt file. It is safe for concurrent use.
type Bolt struct {
	*kvStore
	db    *bolt.DB
	path  string
	group groupCommit // every write goes through it
}

// Open opens or creates the database at path with mode 0600, checks its schema version
// and creates missing buckets.
func Open(path string, opt Options) (*Bolt, error) {
	if opt.LockTimeout <= 0 {
		opt.LockTimeout = 2 * time.Second
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

	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: opt.LockTimeout})
	switch {
	case errors.Is(err, bolterrors.ErrTimeout):
		return nil, fmt.Errorf("open %s: %w", path, ErrLocked)
	case errors.Is(err, bolterrors.ErrInvalid), errors.Is(err, bolterrors.ErrVersionMismatch):
		return nil, fmt.Errorf("open %s: %w: not a failover-bot database (%v)", path, ErrSchema, err)
	case err != nil:
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	s := &Bolt{db: db, path: path}
	s.group.db = db
	s.kvStore = newKVStore(boltEngine{db: db, group: &s.group}, opt)
	if err := s.init(); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

func (s *Bolt) init() error {
	// bbolt only applies the mode when it creates the file; an existing file that others
	// can read would expose who asked for what, so tighten it.
	if fi, err := os.Stat(s.path); err != nil {
		return fmt.Errorf("open %s: %w", s.path, err)
	} else if fi.Mode().Perm()&0o077 != 0 {
		if err := os.Chmod(s.path, 0o600); err != nil {
			return fmt.Errorf("open %s: restrict permissions: %w", s.path, err)
		}
	}
	return s.db.Update(func(tx *bolt.Tx) error { return initSchema(tx, s.path) })
}

// initSchema checks the schema version of an existing file, or stamps a new one, and
// creates the buckets. It refuses anything it does not understand before writing.
func initSchema(tx *bolt.Tx, path string) error {
	meta := tx.Bucket(bucketMeta)
	if meta == nil {
		foreign := false
		_ = tx.ForEach(func([]byte, *bolt.Bucket) error { foreign = true; return nil })
		if foreign {
			return fmt.Errorf("open %s: %w: the file has no failover-bot meta bucket; it belongs to something else", path, ErrSchema)
		}
		var err error
		if meta, err = tx.CreateBucket(bucketMeta); err != nil {
			return fmt.Errorf("open %s: %w", path, err)
		}
		var v [8]byte
		binary.BigEndian.PutUint64(v[:], schemaVersion)
		if err := meta.Put(keySchema, v[:]); err != nil {
			return fmt.Errorf("open %s: %w", path, err)
		}
	} else {
		raw := meta.Get(keySchema)
		if len(raw) != 8 {
			return fmt.Errorf("open %s: %w: schema version is missing or malformed", path, ErrSchema)
		}
		switch v := binary.BigEndian.Uint64(raw); {
		case v > schemaVersion:
			return fmt.Errorf("open %s: %w: schema version %d is newer than this failover-bot understands (%d); upgrade failover-bot or restore a backup made by this version", path, ErrSchema, v, schemaVersion)
		case v < minMigratableVersion:
			return fmt.Errorf("open %s: %w: unknown schema version %d (this failover-bot understands %d)", path, ErrSchema, v, schemaVersion)
		case v < schemaVersion:
			if err := migrate(tx, v, path); err != nil {
				return err
			}
		}
	}
	for _, name := range allBuckets {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return fmt.Errorf("open %s: create bucket %s: %w", path, name, err)
		}
	}
	return nil
}

// Changed is signalled (without blocking; one pending signal at most) after every commit
// that may have queued a Slack message or made a card stale, so a delivery worker can wait
// on it instead of polling the file.
func (s *kvStore) Changed() <-chan struct{} { return s.changed }

func (s *kvStore) signal() {
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

// Close releases the file lock. Requests returned earlier stay valid (they are copies).
func (s *Bolt) Close() error { return s.db.Close() }

// view runs fn in a read-only transaction, unless ctx is already done.
func (s *kvStore) view(ctx context.Context, fn func(kvTx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.eng.view(ctx, fn)
}

// update runs fn in a read-write transaction, unless ctx is already done. A write that has
// started is finished whatever ctx does then: bbolt cannot abandon a commit half way, and a
// caller recording what EM or Slack already did must not lose it to a shutdown. On bbolt the
// transaction is shared with concurrent writers (groupCommit).
func (s *kvStore) update(ctx context.Context, fn func(kvTx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.eng.update(ctx, fn)
}
