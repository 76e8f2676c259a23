package bot

import (
	"container/list"
	"strings"
	"sync"
	"time"

	"github.com/slack-go/slack"
)

// Display names for the audit log. The store records, beside each user ID, the name the bot knew
// when it wrote the event (store.Options.Names reads Names.Name inside the write transaction), so
// the name must already be here when the event is written and looking it up must never wait:
//
//   - every slash command carries user_name and every click or dialog submission user.name; the
//     edge records them before it hands the command or click to the use cases, so the name is
//     known at no cost and nothing waits on Slack before the 3-second acknowledgement;
//   - users.info, which authorisation calls anyway before an approval, gives the profile's
//     display name, which people see in Slack: it replaces the payload's handle while fresh.
//
// No users.info call is made for a name alone: Slack's payloads always carry one, and an event
// whose actor is not known is recorded with the user ID only, as before names were recorded.
const (
	// DefaultNamesSize bounds the directory: a DR team and its approvers, many times over. The
	// least recently learned name goes first.
	DefaultNamesSize = 4096
	// DefaultNamesTTL is how long a learned name is used. Every command and click renews it, so
	// it only bounds how long a rename or a stale users.info answer can linger.
	DefaultNamesTTL = time.Hour
)

// Names is the edge's bounded, expiring directory of display names by Slack user ID. It is safe
// for concurrent use; a nil *Names knows no one.
type Names struct {
	max int
	ttl time.Duration
	now func() time.Time

	mu      sync.Mutex
	entries map[string]*list.Element // of *nameEntry
	order   *list.List               // most recently learned first
}

type nameEntry struct {
	id, name string
	at       time.Time
	// profile says name came from users.info (the display name people see), which a payload's
	// handle does not replace while fresh.
	profile bool
}

// NewNames returns a directory of at most size names (DefaultNamesSize when size <= 0), each used
// for ttl (DefaultNamesTTL when ttl <= 0), on the clock now (time.Now when nil).
func NewNames(size int, ttl time.Duration, now func() time.Time) *Names {
	if size <= 0 {
		size = DefaultNamesSize
	}
	if ttl <= 0 {
		ttl = DefaultNamesTTL
	}
	if now == nil {
		now = time.Now
	}
	return &Names{max: size, ttl: ttl, now: now, entries: map[string]*list.Element{}, order: list.New()}
}

// Name returns the display name of user id, or "" when it is not known (or no longer fresh). It
// never calls Slack: the store calls it inside a write transaction (store.Options.Names).
func (n *Names) Name(id string) string {
	if n == nil {
		return ""
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if e, ok := n.fresh(id); ok {
		return e.name
	}
	return ""
}

// fresh returns id's entry if it has not expired, dropping an expired one. n.mu held.
func (n *Names) fresh(id string) (*nameEntry, bool) {
	el, ok := n.entries[id]
	if !ok {
		return nil, false
	}
	e := el.Value.(*nameEntry)
	if n.now().Sub(e.at) >= n.ttl {
		n.order.Remove(el)
		delete(n.entries, id)
		return nil, false
	}
	return e, true
}

// FromPayload records the name a command or click of user id carried (user_name, user.name). It
// does not replace a fresh display name from users.info, and an empty name changes nothing.
func (n *Names) FromPayload(id, name string) {
	name = strings.TrimSpace(name)
	if n == nil || id == "" || name == "" {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if e, ok := n.fresh(id); ok && e.profile {
		return
	}
	n.put(&nameEntry{id: id, name: name, at: n.now()})
}

// FromProfile records what users.info answered about u: the profile's display name, else the
// real name, which then win over payloads' handles while fresh; else the handle, as a payload's.
func (n *Names) FromProfile(u *slack.User) {
	if n == nil || u == nil || u.ID == "" {
		return
	}
	name := ""
	for _, s := range []string{u.Profile.DisplayName, u.Profile.RealName, u.RealName} {
		if name = strings.TrimSpace(s); name != "" {
			break
		}
	}
	if name == "" {
		n.FromPayload(u.ID, u.Name)
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.put(&nameEntry{id: u.ID, name: name, at: n.now(), profile: true})
}

// put stores e as the most recently learned, evicting the least recently learned beyond max.
// n.mu held.
func (n *Names) put(e *nameEntry) {
	if el, ok := n.entries[e.id]; ok {
		el.Value = e
		n.order.MoveToFront(el)
		return
	}
	n.entries[e.id] = n.order.PushFront(e)
	for n.order.Len() > n.max {
		last := n.order.Back()
		n.order.Remove(last)
		delete(n.entries, last.Value.(*nameEntry).id)
	}
}
