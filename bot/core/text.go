package core

import (
	"fmt"
	"strings"
	"time"

	"github.com/failover-bot/failover-bot/store"
)

// Times shown to people are always UTC, to the minute in status lines and to the second where a
// restore point is concerned.
const (
	clockFormat = "15:04 UTC"
	dayFormat   = "2006-01-02 15:04 UTC"
	pointFormat = "2006-01-02 15:04:05 UTC"
)

// esc makes user-typed text safe inside Slack mrkdwn: &, < and > are control characters there.
func esc(s string) string {
	return slackEscaper.Replace(s)
}

// slackEscaper is built once: a Replacer prepares its lookup table on first use, and esc runs
// for every name on every card, ack and thread line (it was 5% of the CPU of a burst of
// /failover vm requests when the Replacer was rebuilt per call).
var slackEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// targetText says what fails over, with names and IDs (for many items, how many of what).
func targetText(r *store.Request) string {
	if r.IsPlan() {
		return "*" + esc(targetName(r)) + "*"
	}
	if len(r.Items) == 1 {
		t := r.Items[0].Target
		if r.Kind == store.KindVApp {
			return fmt.Sprintf("vApp *%s* (`%s`)", esc(t.Name), t.ID)
		}
		return fmt.Sprintf("VM *%s* (`%s`) from CDP replica *%s* (`%s`)", esc(t.Name), t.ID, esc(t.ReplicaName), t.ReplicaID)
	}
	return "*" + esc(targetName(r)) + "*"
}

// targetName names what fails over in a few words: the VM or vApp, or "12 VMs of CDP-Web".
func targetName(r *store.Request) string {
	if r.IsPlan() {
		return fmt.Sprintf("plan %s (%s in %s)", r.Plan, plural(len(r.Items), "item"), plural(len(r.Groups), "group"))
	}
	if len(r.Items) == 1 {
		return r.Items[0].Target.Name
	}
	if r.Kind == store.KindVApp {
		return fmt.Sprintf("%d vApps", len(r.Items))
	}
	replicas := map[string]bool{}
	for _, it := range r.Items {
		replicas[it.Target.ReplicaName] = true
	}
	if len(replicas) == 1 {
		return fmt.Sprintf("%d VMs of %s", len(r.Items), r.Items[0].Target.ReplicaName)
	}
	return fmt.Sprintf("%d VMs of %d replicas", len(r.Items), len(replicas))
}

// restoreText describes the restore point in words an approver can check.
func restoreText(intent store.Intent, t time.Time) string {
	switch intent {
	case store.IntentLatestVSS:
		return "latest application-consistent (VSS) restore point"
	case store.IntentPointInTime:
		return "newest replicated state before " + t.UTC().Format(pointFormat)
	case store.IntentInterval:
		return "newest restore point of the interval containing " + t.UTC().Format(pointFormat)
	default:
		return "latest crash-consistent state"
	}
}

// statusLine is the card's one-line summary of where the request is.
func statusLine(r *store.Request) string {
	switch r.State {
	case store.Pending:
		so := ""
		if len(r.Approvals) > 0 {
			so = "; " + strings.Replace(approvedBy(r), "Approved", "approved", 1)
		}
		return fmt.Sprintf(":hourglass_flowing_sand: Waiting for approval (%d of %d%s) — expires %s",
			len(r.Approvals), r.ApprovalsRequired, so, r.ExpiresAt.UTC().Format(dayFormat))
	case store.Rejected:
		if r.Rejection != nil {
			return fmt.Sprintf(":no_entry: Rejected by <@%s> at %s: %s", r.Rejection.User, r.Rejection.At.UTC().Format(clockFormat), esc(r.Rejection.Reason))
		}
		return ":no_entry: Rejected"
	case store.Expired:
		return fmt.Sprintf(":alarm_clock: Expired at %s without enough approvals; nothing was sent to Enterprise Manager", r.StateAt.UTC().Format(clockFormat))
	case store.Withdrawn:
		return fmt.Sprintf(":leftwards_arrow_with_hook: Withdrawn by <@%s> at %s; nothing was sent to Enterprise Manager", r.StateBy, r.StateAt.UTC().Format(clockFormat))
	}
	if r.IsPlan() {
		return planStatusLine(r)
	}
	if len(r.Items) == 1 {
		return itemStatusLine(leg{r, &r.Items[0]})
	}
	return manyStatusLine(r)
}

// itemStatusLine is where one item's failover is, in the words a one-item card has always used.
func itemStatusLine(l leg) string {
	r := l.Request
	switch l.Item.State {
	case store.Approved:
		if l.EMMessage != "" {
			return ":hourglass: " + approvedBy(r) + " — " + esc(l.EMMessage)
		}
		return ":white_check_mark: " + approvedBy(r) + " — sending to Enterprise Manager"
	case store.Submitting:
		return ":outbox_tray: " + approvedBy(r) + " — sending the failover to Enterprise Manager"
	case store.Running:
		if r.Stop != nil {
			return fmt.Sprintf(":arrows_counterclockwise: Failover running — %s — <@%s> asked to stop it at %s; waiting for a second person to confirm", emText(l), r.Stop.User, r.Stop.At.UTC().Format(clockFormat))
		}
		return ":arrows_counterclockwise: Failover running — " + emText(l)
	case store.Stopping:
		return fmt.Sprintf(":octagonal_sign: Stop requested by <@%s> at %s — %s", r.StateBy, r.StateAt.UTC().Format(clockFormat), emText(l))
	case store.Succeeded:
		return ":large_green_circle: Failover succeeded — " + emText(l)
	case store.Warning:
		return ":large_yellow_circle: Failover finished with warnings — " + emText(l)
	case store.Failed:
		return ":red_circle: Failover failed — " + emText(l)
	case store.Stopped:
		return ":black_square_for_stop: Stopped — " + emText(l)
	case store.Unknown:
		return ":warning: Outcome unknown — check Enterprise Manager (" + emText(l) + ")"
	}
	return string(l.Item.State)
}

// itemOrder is the order states are counted in on a card: what needs eyes first.
var itemOrder = []store.State{store.Failed, store.Unknown, store.Stopped, store.Stopping, store.Running,
	store.Submitting, store.Approved, store.Skipped, store.Warning, store.Succeeded, store.Pending}

// counts says how many items are in each state, in itemOrder ("3 running, 45 succeeded").
func counts(r *store.Request) string {
	n := store.Counts(r)
	var parts []string
	for _, st := range itemOrder {
		if n[st] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n[st], itemWords(st)))
		}
	}
	return strings.Join(parts, ", ")
}

// itemWords is a state as a table cell or count says it.
func itemWords(s store.State) string {
	switch s {
	case store.Approved:
		return "queued"
	case store.Submitting:
		return "sending"
	}
	return string(s)
}

// manyStatusLine is the summary of a request of many items.
func manyStatusLine(r *store.Request) string {
	c := counts(r)
	switch r.State {
	case store.Approved, store.Submitting:
		return fmt.Sprintf(":outbox_tray: %s — sending %d failovers to Enterprise Manager: %s", approvedBy(r), len(r.Items), c)
	case store.Running:
		if r.Stop != nil && r.Stop.ConfirmedBy == "" {
			return fmt.Sprintf(":arrows_counterclockwise: Running: %s — <@%s> asked to stop it at %s; waiting for a second person to confirm", c, r.Stop.User, r.Stop.At.UTC().Format(clockFormat))
		}
		return ":arrows_counterclockwise: Running: " + c
	case store.Stopping:
		return ":octagonal_sign: Stopping: " + c
	case store.Succeeded:
		return fmt.Sprintf(":large_green_circle: All %d failovers succeeded", len(r.Items))
	case store.Warning:
		return fmt.Sprintf(":large_yellow_circle: All %d failovers finished, some with warnings: %s", len(r.Items), c)
	case store.PartlyFailed:
		return ":large_orange_circle: Partly failed: " + c
	case store.Failed:
		return fmt.Sprintf(":red_circle: All %d failovers failed", len(r.Items))
	case store.Stopped:
		return ":black_square_for_stop: Stopped: " + c
	case store.Unknown:
		return ":warning: Outcome unknown for some — check Enterprise Manager: " + c
	case store.Halted:
		return haltText(r)
	}
	return string(r.State) + ": " + c
}

func approvedBy(r *store.Request) string {
	if len(r.Approvals) == 0 {
		return "Approved"
	}
	parts := make([]string, len(r.Approvals))
	for i, a := range r.Approvals {
		parts[i] = fmt.Sprintf("<@%s> at %s", a.User, a.At.UTC().Format(clockFormat))
	}
	return "Approved by " + strings.Join(parts, ", ")
}

// emText summarises what EM last told us about an item.
func emText(r leg) string {
	var parts []string
	if r.TaskID != "" {
		parts = append(parts, "EM task "+r.TaskID)
	}
	if r.EMState != "" {
		s := r.EMState
		if r.EMProgress > 0 && r.EMProgress < 100 {
			s += fmt.Sprintf(" %d%%", r.EMProgress)
		}
		parts = append(parts, s)
	}
	if r.EMResult != "" && r.EMResult != "None" {
		parts = append(parts, "result "+r.EMResult)
	}
	if r.EMMessage != "" {
		parts = append(parts, "“"+esc(truncate(r.EMMessage, 300))+"”")
	}
	if len(parts) == 0 {
		return "no answer from EM yet"
	}
	return strings.Join(parts, ", ")
}

// cardText is the notification text of a card (shown where blocks are not).
func cardText(r *store.Request) string {
	return fmt.Sprintf("Failover request %s for %s: %s", r.ID, targetName(r), stripEmoji(statusLine(r)))
}

func stripEmoji(s string) string {
	if strings.HasPrefix(s, ":") {
		if i := strings.Index(s[1:], ": "); i >= 0 {
			return s[i+3:]
		}
	}
	return s
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

// listText is the text of /failover list.
func listText(reqs []*store.Request) string {
	if len(reqs) == 0 {
		return "No pending or active failover requests."
	}
	var b strings.Builder
	fmt.Fprintf(&b, "*%d pending or active failover requests*\n", len(reqs))
	for i, r := range reqs {
		if i == 40 {
			fmt.Fprintf(&b, "…and %d more (use `/failover status &lt;id&gt;`).", len(reqs)-40)
			break
		}
		fmt.Fprintf(&b, "• *%s* %s — %s\n", r.ID, esc(targetName(r)), statusLine(r))
	}
	return strings.TrimSpace(b.String())
}

// permalink links to a card, given the workspace URL from auth.test.
func permalink(workspaceURL, channel, ts string) string {
	if workspaceURL == "" || channel == "" || ts == "" {
		return ""
	}
	return strings.TrimSuffix(workspaceURL, "/") + "/archives/" + channel + "/p" + strings.Replace(ts, ".", "", 1)
}

// hasTask reports whether any item of r has an EM task (a stop needs one).
func hasTask(r *store.Request) bool {
	for _, it := range r.Items {
		if it.TaskID != "" {
			return true
		}
	}
	return false
}

// exclusionText lists targets the pre-flight left out, with the reason, at most n of them.
func exclusionText(xs []store.Exclusion, n int) string {
	var lines []string
	for i, x := range xs {
		if i == n {
			lines = append(lines, fmt.Sprintf("…and %d more", len(xs)-n))
			break
		}
		lines = append(lines, fmt.Sprintf("• %s: %s", esc(x.Target.Name), esc(x.Reason)))
	}
	return strings.Join(lines, "\n")
}

// previewText says what the failover will restore from: for one item the exact time and RPO
// ("latest crash-consistent state, 14:05:12 UTC, RPO 15 s"), for many the oldest and newest
// point and the worst RPO, and the targets failed over in the last 24 h.
func previewText(r *store.Request) string {
	var b strings.Builder
	var oldest, newest time.Time
	worst, known := 0, 0
	for _, it := range r.Items {
		if it.Point.IsZero() {
			continue
		}
		known++
		if oldest.IsZero() || it.Point.Before(oldest) {
			oldest = it.Point
		}
		if it.Point.After(newest) {
			newest = it.Point
		}
		worst = max(worst, it.RPO)
	}
	rpo := ""
	if worst > 0 {
		rpo = fmt.Sprintf(", RPO %d s", worst)
	}
	switch {
	case known == 0:
	case len(r.Items) == 1:
		fmt.Fprintf(&b, "Restore point: %s, %s%s.", restoreText(r.Intent, r.RestoreTime), newest.UTC().Format(pointFormat), rpo)
	case oldest.Equal(newest):
		fmt.Fprintf(&b, "Restore points: all %d at %s%s.", known, newest.UTC().Format(pointFormat), strings.Replace(rpo, "RPO", "worst RPO", 1))
	default:
		fmt.Fprintf(&b, "Restore points of %d items: oldest %s, newest %s%s.", known, oldest.UTC().Format(pointFormat),
			newest.UTC().Format(pointFormat), strings.Replace(rpo, "RPO", "worst RPO", 1))
	}
	var flagged []string
	for _, it := range r.Items {
		if it.Recent != "" {
			flagged = append(flagged, fmt.Sprintf("%s by %s", esc(it.Target.Name), it.Recent))
		}
	}
	if len(flagged) > 0 {
		if len(flagged) > 10 {
			flagged = append(flagged[:10], fmt.Sprintf("and %d more", len(flagged)-10))
		}
		fmt.Fprintf(&b, "\n:warning: Failed over in the last 24 h: %s.", strings.Join(flagged, "; "))
	}
	return b.String()
}

// retryable returns the items of r whose failover did not succeed: failed, stopped or unknown.
func retryable(r *store.Request) []store.Item {
	var out []store.Item
	for _, it := range r.Items {
		switch it.State {
		case store.Failed, store.Stopped, store.Unknown, store.Skipped:
			out = append(out, it)
		}
	}
	return out
}
