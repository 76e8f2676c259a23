package core

import (
	"github.com/failover-bot/failover-bot/store"
)

// leg is one item of a request seen on its own: what submit, follow, reconcile and stop act
// on. Fields both have (State, StateAt, Version, SubmittedAt, …) must be named through
// leg.Request or leg.Item; the item's are the ones that say where its failover is.
type leg struct {
	*store.Request
	*store.Item
}

// legs returns r's items as legs.
func legs(r *store.Request) []leg {
	out := make([]leg, len(r.Items))
	for i := range r.Items {
		out[i] = leg{r, &r.Items[i]}
	}
	return out
}

// key names the leg for claims and grace timers: the request ID and the item's target ID.
func (l leg) key() string { return l.Request.ID + "/" + l.Target.ID }

// single reports whether the leg is its request's only item: such a request tells its thread
// every change, as it always has; a request of many tells only milestones and failures.
func (l leg) single() bool { return len(l.Request.Items) == 1 }

// change returns a store.Change of this leg's item, guarded by the item's version.
func (l leg) change() store.Change {
	return store.Change{ID: l.Request.ID, Item: l.Target.ID, Version: l.Item.Version}
}

// chatty returns line when the leg's request tells its thread every change (one item), else "".
func (l leg) chatty(line string) string {
	if l.single() {
		return line
	}
	return ""
}

// name is the leg's target name for messages.
func (l leg) name() string { return l.Target.Name }
