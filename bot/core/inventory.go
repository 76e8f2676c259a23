package core

import (
	"context"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/failover-bot/failover-bot/emapi"
)

// inventoryTTL is how long a listing of replicas, VMs or vApps is trusted before a lookup
// refreshes it. A name that is not in the cached list always causes a refresh, so a new replica
// is found at once; a GUID that EM has since removed is caught by EM's 404 at failover time.
const inventoryTTL = 5 * time.Minute

// inventory resolves the names people type into EM references. It caches EM's listings because
// a slash command must be answered within 3 seconds even when EM is slow, and a DR event sends
// many commands for the same few replicas.
type inventory struct {
	em  EM
	now func() time.Time
	sf  singleflight.Group

	mu    sync.Mutex
	lists map[string]cachedList // "replicas", "vapps", "vms:<replica ID>"
}

type cachedList struct {
	refs []emapi.Ref
	at   time.Time
}

func newInventory(em EM, now func() time.Time) *inventory {
	return &inventory{em: em, now: now, lists: map[string]cachedList{}}
}

func (inv *inventory) resolveReplica(ctx context.Context, q string) (emapi.Ref, error) {
	return inv.resolve(ctx, "replicas", "CDP replica", q, inv.em.Replicas)
}

func (inv *inventory) resolveVApp(ctx context.Context, q string) (emapi.Ref, error) {
	return inv.resolve(ctx, "vapps", "vApp", q, inv.em.VApps)
}

func (inv *inventory) resolveVM(ctx context.Context, replicaID, q string) (emapi.Ref, error) {
	return inv.resolve(ctx, "vms:"+replicaID, "VM", q, func(ctx context.Context) ([]emapi.Ref, error) {
		return inv.em.ReplicaVMs(ctx, replicaID)
	})
}

func (inv *inventory) resolve(ctx context.Context, key, what, q string, list func(context.Context) ([]emapi.Ref, error)) (emapi.Ref, error) {
	inv.mu.Lock()
	c, ok := inv.lists[key]
	inv.mu.Unlock()
	if ok && inv.now().Sub(c.at) < inventoryTTL {
		if ref, err := matchRef(what, q, c.refs); err == nil {
			return ref, nil
		}
	}
	refs, err := inv.refresh(ctx, key, list)
	if err != nil {
		if ok { // EM is unreachable: a name that resolved a moment ago still does.
			if ref, merr := matchRef(what, q, c.refs); merr == nil {
				return ref, nil
			}
		}
		return emapi.Ref{}, err
	}
	return matchRef(what, q, refs)
}

func (inv *inventory) refresh(ctx context.Context, key string, list func(context.Context) ([]emapi.Ref, error)) ([]emapi.Ref, error) {
	v, err, _ := inv.sf.Do(key, func() (any, error) {
		refs, err := list(ctx)
		if err != nil {
			return nil, err
		}
		inv.mu.Lock()
		inv.lists[key] = cachedList{refs: refs, at: inv.now()}
		inv.mu.Unlock()
		return refs, nil
	})
	if err != nil {
		return nil, err
	}
	return v.([]emapi.Ref), nil
}

// matchRef finds q among refs: by ID (a bare GUID, any case) or by exact name ignoring case.
// Unknown and ambiguous names are an *emapi.ResolveError listing the candidates.
func matchRef(what, q string, refs []emapi.Ref) (emapi.Ref, error) {
	var byName []emapi.Ref
	for _, r := range refs {
		if strings.EqualFold(r.ID, q) {
			return r, nil
		}
		if strings.EqualFold(r.Name, q) {
			byName = append(byName, r)
		}
	}
	switch len(byName) {
	case 1:
		return byName[0], nil
	case 0:
		return emapi.Ref{}, &emapi.ResolveError{What: what, Query: q, Candidates: refs}
	default:
		return emapi.Ref{}, &emapi.ResolveError{What: what, Query: q, Ambiguous: true, Candidates: byName}
	}
}
