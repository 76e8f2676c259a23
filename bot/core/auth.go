package core

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/failover-bot/failover-bot/store"
)

// usergroups.users.list is Tier 2 (about 20 calls a minute), so group membership is cached; a
// member removed from the group can still approve for at most this long.
const groupCacheTTL = time.Minute

// users.info is cached briefly so a burst of clicks does not become a burst of API calls, while a
// deactivated account stops approving within this time.
const userCacheTTL = 5 * time.Minute

// refusal is a "no" to a person: reason is a metric label, msg the sentence they see.
type refusal struct {
	reason string
	msg    string
}

func (r *refusal) Error() string { return r.msg }

// Directory is what authorisation asks of the chat workspace: who a person is, and who belongs
// to the approver group. The Slack edge implements it with users.info and
// usergroups.users.list.
type Directory interface {
	Person(ctx context.Context, id string) (Person, error)
	GroupMembers(ctx context.Context, group string) ([]string, error)
}

// Person is what approval needs to know about an account.
type Person struct {
	ID                      string
	Bot, Deactivated, Guest bool
}

type authoriser struct {
	api        Directory
	now        func() time.Time
	approvers  map[string]bool
	group      string
	requesters map[string]bool
	channels   map[string]bool
	sf         singleflight.Group

	mu        sync.Mutex
	members   map[string]bool
	membersAt time.Time
	users     map[string]userVerdict
}

type userVerdict struct {
	ok  bool
	why string
	at  time.Time
}

func newAuthoriser(api Directory, opt Options, now func() time.Time) *authoriser {
	return &authoriser{
		api: api, now: now,
		approvers:  set(opt.Approvers),
		group:      opt.ApproverGroup,
		requesters: set(opt.Requesters),
		channels:   set(opt.AllowedChannels),
		users:      map[string]userVerdict{},
	}
}

func set(ids []string) map[string]bool {
	m := make(map[string]bool, len(ids))
	for _, id := range ids {
		if id = strings.TrimSpace(id); id != "" {
			m[id] = true
		}
	}
	return m
}

// canUseChannel refuses /failover outside ALLOWED_CHANNELS.
func (a *authoriser) canUseChannel(channel string) error {
	if len(a.channels) == 0 || a.channels[channel] {
		return nil
	}
	return &refusal{"channel", "/failover is not enabled in this channel. Use it in " + mentionAll(sorted(a.channels), "<#%s>") + "."}
}

// canRequest refuses people who are not on REQUESTERS when that list is set.
func (a *authoriser) canRequest(user string) error {
	if len(a.requesters) == 0 || a.requesters[user] {
		return nil
	}
	return &refusal{"requester", "You are not allowed to request failovers (you are not in REQUESTERS). Ask your DR lead to add you, or ask one of " + mentionAll(sorted(a.requesters), "<@%s>") + " to request it."}
}

// canBeApproved refuses, before anything is stored, a request that no one could approve: the
// requester is on APPROVERS and the other listed approvers are fewer than required. With an
// APPROVER_GROUP the group may supply approvers, so nothing is refused here.
func (a *authoriser) canBeApproved(user string, required int) error {
	if a.group != "" || !a.approvers[user] || len(a.approvers)-1 >= required {
		return nil
	}
	others := a.others(user)
	var can string
	switch {
	case len(others) == 0 && len(a.requesters) == 0:
		can = "You are the only approver, so ask a teammate to make the request with the same command: you can then approve it. To let others approve your own requests, your Slack admin can add approvers to APPROVERS or set APPROVER_GROUP."
	case len(others) == 0:
		can = "You are the only approver, so ask one of the requesters (" + mentionAll(a.sortedRequestersBut(user), "<@%s>") + ") to make the request: you can then approve it. To let others approve your own requests, your Slack admin can add approvers to APPROVERS or set APPROVER_GROUP."
	default:
		can = fmt.Sprintf("The other approvers (%s) are fewer than the %d needed, so ask one of them to make the request: you can then approve it, with them not counting.", mentionAll(others, "<@%s>"), required)
	}
	return &refusal{"unapprovable", fmt.Sprintf("Nothing was recorded: no one could approve this request, because approvers never approve their own request and %d approval(s) from people other than you are needed. %s",
		required, can)}
}

// others are the listed approvers other than user, sorted.
func (a *authoriser) others(user string) []string {
	var out []string
	for _, id := range sorted(a.approvers) {
		if id != user {
			out = append(out, id)
		}
	}
	return out
}

func (a *authoriser) sortedRequestersBut(user string) []string {
	var out []string
	for _, id := range sorted(a.requesters) {
		if id != user {
			out = append(out, id)
		}
	}
	return out
}

// approversFor names who can still approve r: the approver group, and the listed approvers
// who are not its requester and have not approved it yet. Mentions, so the card and the
// reminders call them.
func (a *authoriser) approversFor(r *store.Request) string {
	done := map[string]bool{r.Requester: true}
	for _, ap := range r.Approvals {
		done[ap.User] = true
	}
	var ids []string
	for _, id := range sorted(a.approvers) {
		if !done[id] {
			ids = append(ids, id)
		}
	}
	var parts []string
	if a.group != "" {
		parts = append(parts, fmt.Sprintf("<!subteam^%s>", a.group))
	}
	if len(ids) > 0 {
		parts = append(parts, mentionAll(ids, "<@%s>"))
	}
	if len(parts) == 0 {
		return "no one else on APPROVERS"
	}
	return strings.Join(parts, ", ")
}

// canApprove checks, at click time, that user may approve: listed in APPROVERS or a member of
// APPROVER_GROUP, and a real, active, full member of the workspace (not a bot, deactivated
// account or guest). Failing to ask Slack is a refusal: an approval is never granted on doubt.
func (a *authoriser) canApprove(ctx context.Context, user string) error {
	listed := a.approvers[user]
	if !listed && a.group != "" {
		members, err := a.groupMembers(ctx)
		if err != nil {
			return &refusal{"lookup", fmt.Sprintf("I could not check the approver group with Slack (%v). Nothing was changed; try again in a moment.", err)}
		}
		listed = members[user]
	}
	if !listed {
		return &refusal{"approver", "You are not an authorised approver, so your click changed nothing. Approvers are " + a.describeApprovers() + "."}
	}
	return a.activeHuman(ctx, user)
}

func (a *authoriser) describeApprovers() string {
	var parts []string
	if len(a.approvers) > 0 {
		parts = append(parts, mentionAll(sorted(a.approvers), "<@%s>"))
	}
	if a.group != "" {
		parts = append(parts, fmt.Sprintf("members of <!subteam^%s>", a.group))
	}
	return strings.Join(parts, " and ")
}

func (a *authoriser) activeHuman(ctx context.Context, user string) error {
	a.mu.Lock()
	v, ok := a.users[user]
	a.mu.Unlock()
	if !ok || a.now().Sub(v.at) >= userCacheTTL {
		u, err := a.api.Person(ctx, user)
		if err != nil {
			return &refusal{"lookup", fmt.Sprintf("I could not check your Slack account (%v). Nothing was changed; try again in a moment.", err)}
		}
		v = userVerdict{ok: true, at: a.now()}
		switch {
		case u.Bot:
			v = userVerdict{why: "bots cannot approve failovers", at: v.at}
		case u.Deactivated:
			v = userVerdict{why: "deactivated accounts cannot approve failovers", at: v.at}
		case u.Guest:
			v = userVerdict{why: "guest accounts cannot approve failovers", at: v.at}
		}
		a.mu.Lock()
		a.users[user] = v
		a.mu.Unlock()
	}
	if !v.ok {
		return &refusal{"account", "Your click changed nothing: " + v.why + "."}
	}
	return nil
}

func (a *authoriser) groupMembers(ctx context.Context) (map[string]bool, error) {
	a.mu.Lock()
	if a.members != nil && a.now().Sub(a.membersAt) < groupCacheTTL {
		m := a.members
		a.mu.Unlock()
		return m, nil
	}
	a.mu.Unlock()
	v, err, _ := a.sf.Do("group", func() (any, error) {
		ids, err := a.api.GroupMembers(ctx, a.group)
		if err != nil {
			return nil, err
		}
		m := set(ids)
		a.mu.Lock()
		a.members, a.membersAt = m, a.now()
		a.mu.Unlock()
		return m, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(map[string]bool), nil
}

func sorted(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func mentionAll(ids []string, format string) string {
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = fmt.Sprintf(format, id)
	}
	return strings.Join(parts, ", ")
}
