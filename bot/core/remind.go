package core

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/failover-bot/failover-bot/store"
)

// Reminder is a point before a pending request expires at which its approvers are reminded in
// the card's thread: a fraction of the request's approval window elapsed (Frac, 0 < Frac < 1), or
// a duration before it expires (Before).
type Reminder struct {
	Frac   float64
	Before time.Duration
}

func (m Reminder) String() string {
	if m.Before > 0 {
		return m.Before.String() + " before expiry"
	}
	return strconv.FormatFloat(m.Frac*100, 'f', -1, 64) + "%"
}

// at is when m falls for r.
func (m Reminder) at(r *store.Request) time.Time {
	if m.Before > 0 {
		return r.ExpiresAt.Add(-m.Before)
	}
	ttl := r.ExpiresAt.Sub(r.CreatedAt)
	return r.CreatedAt.Add(time.Duration(m.Frac * float64(ttl)))
}

// ParseReminders reads REMINDERS: comma-separated percentages of the approval window
// ("50%") or durations before expiry ("10m", "1h"); "none" or nothing for none. ttl is
// REQUEST_TTL, which a duration must be shorter than.
func ParseReminders(vals []string, ttl time.Duration) ([]Reminder, error) {
	var out []Reminder
	for _, v := range vals {
		v = strings.TrimSpace(v)
		switch {
		case v == "" || strings.EqualFold(v, "none"):
			continue
		case strings.HasSuffix(v, "%"):
			p, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(v, "%")), 64)
			if err != nil || p <= 0 || p >= 100 {
				return nil, fmt.Errorf("%q: a percentage of REQUEST_TTL must be between 0%% and 100%%, e.g. 50%%", v)
			}
			out = append(out, Reminder{Frac: p / 100})
		default:
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				return nil, fmt.Errorf("%q is neither a percentage of REQUEST_TTL (50%%) nor a duration before expiry (10m); write e.g. 50%%,90%% or 30m,5m, or none", v)
			}
			if ttl > 0 && d >= ttl {
				return nil, fmt.Errorf("%q before expiry is not shorter than REQUEST_TTL (%v), so it would fall before the request exists", v, ttl)
			}
			out = append(out, Reminder{Before: d})
		}
	}
	return out, nil
}

// dueReminder is the number (1-based, in time order) of the latest reminder due for r at now
// that was not posted yet, or 0. Reminders missed while the bot was down are not posted one by
// one: only the latest due one is.
func dueReminder(ms []Reminder, r *store.Request, now time.Time) int {
	ats := make([]time.Time, len(ms))
	for i, m := range ms {
		ats[i] = m.at(r)
	}
	slices.SortFunc(ats, func(a, b time.Time) int { return a.Compare(b) })
	due := 0
	for i, at := range ats {
		if !now.Before(at) && at.After(r.CreatedAt) {
			due = i + 1
		}
	}
	if due <= r.Reminded {
		return 0
	}
	return due
}

// remind posts the due reminder of pending request r, if any: once, even across restarts
// (the store records which was posted in the same write that queues it).
func (b *Service) remind(r *store.Request, now time.Time) {
	n := dueReminder(b.opt.Reminders, r, now)
	if n == 0 {
		return
	}
	if _, err := b.st.Remind(b.sctx, r.ID, n, b.reminderLine(r, now)); err != nil {
		b.reqLog(r.ID).Info("reminder skipped", "reason", err)
	}
}

func (b *Service) reminderLine(r *store.Request, now time.Time) string {
	left := r.ExpiresAt.Sub(now).Round(time.Minute)
	if left < time.Minute {
		left = r.ExpiresAt.Sub(now).Round(time.Second)
	}
	need := r.ApprovalsRequired - len(r.Approvals)
	so := ""
	if len(r.Approvals) > 0 {
		so = fmt.Sprintf(" (%s so far)", strings.TrimPrefix(approvedBy(r), "Approved by "))
	}
	return fmt.Sprintf(":bell: %s: *%s* still needs %s%s — fail over %s to the %s, requested by <@%s>. It expires at %s (in %s); then nothing is sent. Approve or reject it on the card above.",
		b.auth.approversFor(r), r.ID, count(need, "approval", "approvals"), so, targetText(r),
		restoreText(r.Intent, r.RestoreTime), r.Requester, r.ExpiresAt.UTC().Format(dayFormat), left)
}
