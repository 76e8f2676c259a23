package core

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/failover-bot/failover-bot/store"
)

// History: /failover list [--recent [<period>]] and /failover status <id>, read-only answers
// about what is happening and what happened.

// DefaultRecent is the period `/failover list --recent` covers when none is given.
const DefaultRecent = 24 * time.Hour

// MaxRecent is the longest period `--recent` accepts. Older history is the audit log's
// (`failover-bot audit export --since …`); a bound keeps day counts far from overflowing.
const MaxRecent = 366 * 24 * time.Hour

// recentRows is how many finished requests `list --recent` reads from the store: the most that
// could fit in one answer, and a bound on what one command reads whatever the history.
const recentRows = 50

// answerLimit is the most characters an answer may hold: Slack rejects message text over 4,000.
const answerLimit = 4000

// optRecent is list's only option.
const optRecent = "--recent"

// maxDays bounds a number of days before it becomes nanoseconds (time.Duration overflows at
// about 106,751 days).
const maxDays = 100_000

// ParseDuration reads a duration as the bot's durations are written everywhere (REQUEST_TTL,
// list --recent): a Go duration (90m, 24h, 1h30m) or a whole or decimal number of days (2d,
// 1.5d), which Go's own syntax lacks. Days beyond maxDays are clamped, so a huge value is
// refused by the caller's bound rather than wrapping round.
func ParseDuration(s string) (time.Duration, bool) {
	v := strings.ToLower(strings.TrimSpace(s))
	if n, ok := strings.CutSuffix(v, "d"); ok {
		days, err := strconv.ParseFloat(n, 64)
		if err != nil || math.IsNaN(days) || math.IsInf(days, 0) || strings.ContainsAny(n, "xp_") {
			return 0, false
		}
		return time.Duration(max(-maxDays, min(days, maxDays)) * float64(24*time.Hour)), true
	}
	d, err := time.ParseDuration(v)
	return d, err == nil
}

// ParsePeriod reads a period of list --recent (see ParseDuration). It must be positive and at
// most MaxRecent.
func ParsePeriod(s string) (time.Duration, error) {
	d, ok := ParseDuration(s)
	if !ok {
		return 0, periodErr(s)
	}
	switch {
	case d <= 0:
		return 0, fmt.Errorf("%s %s is not a period: give a positive one, e.g. 90m, 24h or 2d.", optRecent, truncate(s, 40))
	case d > MaxRecent:
		return 0, fmt.Errorf("%s %s is longer than %d days: for older history export the audit log (failover-bot audit export --since <time>).",
			optRecent, truncate(s, 40), int(MaxRecent/(24*time.Hour)))
	}
	return d, nil
}

func periodErr(s string) error {
	return fmt.Errorf("%s %q is not a period: write e.g. 90m, 24h or 2d (minutes, hours or days).", optRecent, truncate(s, 40))
}

// parseList parses list's arguments: nothing, or --recent with an optional period.
func parseList(rest []string) (Command, error) {
	cmd := Command{Sub: SubList}
	for i := 0; i < len(rest); i++ {
		arg := normaliseDashes(rest[i])
		name, value, hasValue := strings.Cut(arg, "=")
		if strings.ToLower(name) != optRecent {
			if d, err := ParsePeriod(arg); err == nil && !isOption(arg) {
				return Command{}, usageErr(SubList, "`list` takes no arguments except --recent [<period>]: to see what finished in the last %s, write `/failover list --recent %s`.",
					periodText(d), truncate(arg, 40))
			}
			return Command{}, usageErr(SubList, "`list` takes no arguments except --recent [<period>], but got %s.", quoteList(rest[i:]))
		}
		if cmd.Recent != 0 {
			return Command{}, usageErr(SubList, "--recent is given twice: give it once, with at most one period.")
		}
		if !hasValue && i+1 < len(rest) && !isOption(normaliseDashes(rest[i+1])) {
			i++
			value, hasValue = rest[i], true
		}
		cmd.Recent = DefaultRecent
		if hasValue {
			d, err := ParsePeriod(value)
			if err != nil {
				return Command{}, usageErr(SubList, "%s", err.Error())
			}
			cmd.Recent = d
		}
	}
	return cmd, nil
}

// list answers /failover list: the pending and active requests, and with --recent the requests
// that finished in the period, newest first. Both come from indexes, so the answer costs the
// same after a year of history as on the first day.
func (b *Service) list(ctx context.Context, cmd Command) Response {
	active, err := b.st.Active(ctx)
	if err != nil {
		return ephemeral(describe(err))
	}
	now := b.now().UTC()
	period := cmd.Recent
	rows := recentRows
	if period == 0 {
		period, rows = DefaultRecent, 0 // plain list: only how many finished, as a pointer
	}
	finished, more, err := b.st.Finished(ctx, now.Add(-period), rows)
	if err != nil {
		if cmd.Recent == 0 {
			b.log.Warn("could not count the recently finished requests for /failover list", "error", err)
			return ephemeral(fitLines(listText(active), answerLimit, activeCut))
		}
		return ephemeral(describe(err))
	}
	return ephemeral(historyText(active, finished, more, cmd.Recent))
}

// activeCut ends the active part of a list cut short to fit one message.
const activeCut = "…and %d more lines not shown: `/failover status &lt;id&gt;` shows one request."

// historyText is the answer of /failover list: the active requests (listText), then either a
// pointer to the finished ones (plain list, recent == 0: finished holds none and more counts
// them) or the finished ones of the period, as many as fit. more == store.FinishedMoreCap means
// the store stopped counting.
func historyText(active, finished []*store.Request, more int, recent time.Duration) string {
	total, capped := len(finished)+more, more == store.FinishedMoreCap
	if recent == 0 {
		text := listText(active)
		if total == 0 {
			return fitLines(text, answerLimit, activeCut)
		}
		hint := fmt.Sprintf("\n%s in the last %s: `/failover list --recent` lists them.", finishedCount(total, capped), periodText(DefaultRecent))
		return fitLines(text, answerLimit-utf8.RuneCountInString(hint), activeCut) + hint
	}
	// The active requests take at most half the answer when history follows.
	a := newAnswer(answerLimit)
	a.line(fitLines(listText(active), answerLimit/2, activeCut))
	a.line("")
	if total == 0 {
		a.line(fmt.Sprintf("Nothing finished in the last %s.", periodText(recent)))
		return a.String()
	}
	a.line(fmt.Sprintf("*%s in the last %s* (newest first, UTC)", finishedCount(total, capped), periodText(recent)))
	// Room for the closing line, whatever it says.
	const reserve = 260
	shown := 0
	for _, r := range finished {
		if !a.lineWithin(finishedRow(r), reserve) {
			break
		}
		shown++
	}
	if left := total - shown; left > 0 {
		n := strconv.Itoa(left)
		if capped {
			n = "at least " + n
		}
		a.line(fmt.Sprintf("…and %s more. Narrow the period (e.g. `/failover list --recent %s`), or see one request with `/failover status &lt;id&gt;`.",
			n, narrower(recent)))
	}
	return a.String()
}

// finishedCount says how many requests finished: "1 request finished", "at least 1050 …" when
// the store stopped counting.
func finishedCount(n int, capped bool) string {
	if capped {
		return fmt.Sprintf("At least %d requests finished", n)
	}
	return plural(n, "request") + " finished"
}

// narrower suggests a period shorter than d to narrow a long list.
func narrower(d time.Duration) string {
	switch {
	case d > 48*time.Hour:
		return "24h"
	case d > 2*time.Hour:
		return "1h"
	case d > 30*time.Minute:
		return "15m"
	}
	return "5m"
}

// finishedRow is one finished request in /failover list --recent: ID, what, how it ended, when,
// how long it took.
func finishedRow(r *store.Request) string {
	at := store.FinishTime(r).UTC().Format("2006-01-02 15:04")
	var how string
	switch r.State {
	case store.Rejected:
		by := r.StateBy
		if r.Rejection != nil {
			by = r.Rejection.User
		}
		how = fmt.Sprintf("rejected by <@%s> %s", by, at)
		if d := span(r.CreatedAt, store.FinishTime(r)); d != "" {
			how += ", after " + d
		}
	case store.Withdrawn:
		if r.StateBy == store.UndeliverableActor {
			how = fmt.Sprintf("withdrawn %s: its card could not be posted", at)
		} else {
			how = fmt.Sprintf("withdrawn by <@%s> %s", r.StateBy, at)
		}
	case store.Expired:
		how = fmt.Sprintf("expired %s with %d of %d approvals", at, len(r.Approvals), r.ApprovalsRequired)
	default:
		how = outcomeWords(r) + " " + at
		if d := span(r.SubmittedAt, store.FinishTime(r)); d != "" {
			how += ", ran " + d
		}
		if len(r.Items) > 1 && r.State != store.Succeeded {
			how += " (" + counts(r) + ")"
		}
	}
	return fmt.Sprintf("• *%s* %s — %s", r.ID, esc(truncate(targetName(r), 48)), how)
}

// outcomeWords is how a request that was sent to EM ended, with a mark on those that need eyes.
func outcomeWords(r *store.Request) string {
	switch r.State {
	case store.Succeeded:
		return "succeeded"
	case store.Warning:
		return "finished with warnings"
	case store.Failed:
		return ":red_circle: failed"
	case store.PartlyFailed:
		return ":large_orange_circle: partly failed"
	case store.Stopped:
		return ":black_square_for_stop: stopped"
	case store.Unknown:
		return ":warning: outcome unknown"
	}
	return string(r.State)
}

// periodText says a period in words: "24 hours", "2 days", "90 minutes", "1h30m".
func periodText(d time.Duration) string {
	const day = 24 * time.Hour
	switch {
	case d >= 2*day && d%day == 0:
		return fmt.Sprintf("%d days", d/day)
	case d >= time.Hour && d%time.Hour == 0:
		return plural(int(d/time.Hour), "hour")
	case d >= time.Minute && d < 2*time.Hour && d%time.Minute == 0:
		return plural(int(d/time.Minute), "minute")
	}
	return humanDuration(d)
}

// humanDuration is a duration to the second as people read it: "42s", "4m12s", "3h05m", "2d04h".
func humanDuration(d time.Duration) string {
	d = d.Round(time.Second)
	switch {
	case d < 0:
		return "0s"
	case d < time.Minute:
		return fmt.Sprintf("%ds", d/time.Second)
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", d/time.Minute, d%time.Minute/time.Second)
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh%02dm", d/time.Hour, d%time.Hour/time.Minute)
	}
	return fmt.Sprintf("%dd%02dh", d/(24*time.Hour), d%(24*time.Hour)/time.Hour)
}

// span is the time from a to b in words ("" when either is unknown).
func span(a, b time.Time) string {
	if a.IsZero() || b.IsZero() {
		return ""
	}
	return humanDuration(b.Sub(a))
}

// stampFormat is a timeline's time: the date always, since a request can span midnight and days.
const stampFormat = "2006-01-02 15:04:05"

// statusText is the text of /failover status: where the request is, every step with its date and
// who took it, how long each phase took, and for many items a table of them, within one message.
func statusText(r *store.Request, now time.Time) string {
	now = now.UTC()
	a := newAnswer(answerLimit)
	a.line(fmt.Sprintf("*%s* — %s", r.ID, truncate(statusLine(r), 1200)))
	a.line(fmt.Sprintf("Fail over %s to the %s.", targetText(r), restoreText(r.Intent, r.RestoreTime)))
	if r.Scope != "" {
		a.line("Asked for: " + esc(truncate(r.Scope, 200)))
	}
	a.line("Reason: " + esc(truncate(r.Reason, 300)))
	if r.RetryOf != "" {
		a.line(fmt.Sprintf("Retries the items of %s that did not succeed.", r.RetryOf))
	}
	a.line("*Timeline* (UTC)")
	for _, s := range timeline(r) {
		a.line(fmt.Sprintf("• %s — %s", s.at.UTC().Format(stampFormat), s.what))
	}
	if d := durationsText(r, now); d != "" {
		a.line("*Durations*: " + d)
	}
	if len(r.Items) == 1 {
		if it := r.Items[0]; it.TaskID != "" || it.RestoreSessionID != "" {
			a.line(fmt.Sprintf("EM task `%s`, restore session `%s`.", orDash(it.TaskID), orDash(it.RestoreSessionID)))
		}
	}
	if len(r.Excluded) > 0 {
		a.lineWithin(fmt.Sprintf("Left out by the pre-flight (%d):\n%s", len(r.Excluded), exclusionText(r.Excluded, 3)), 600)
	}
	if r.IsPlan() {
		// The groups leave the items table room for its first rows, the ones that need eyes.
		for gi := range r.Groups {
			if !a.lineWithin(groupTitle(r, gi), 2000) {
				a.line(fmt.Sprintf("…and %d more groups.", len(r.Groups)-gi))
				break
			}
		}
	}
	if len(r.Items) > 1 {
		itemsTable(a, r, now)
	}
	return a.String()
}

// step is one dated line of a request's timeline.
type step struct {
	at   time.Time
	what string
}

// maxContinues bounds the timeline's plan decisions; the groups' lines say the rest.
const maxContinues = 10

// timeline is every step of r with its time and who took it, oldest first.
func timeline(r *store.Request) []step {
	many := len(r.Items) > 1
	steps := []step{{r.CreatedAt, fmt.Sprintf("requested by <@%s>", r.Requester)}}
	for i, ap := range r.Approvals {
		steps = append(steps, step{ap.At, fmt.Sprintf("approved by <@%s> (%d of %d)", ap.User, i+1, r.ApprovalsRequired)})
	}
	switch r.State {
	case store.Pending:
		steps = append(steps, step{r.ExpiresAt, "expires unless approved by then"})
	case store.Rejected:
		if rj := r.Rejection; rj != nil {
			steps = append(steps, step{rj.At, fmt.Sprintf("rejected by <@%s>: “%s”", rj.User, esc(truncate(rj.Reason, 200)))})
		} else {
			steps = append(steps, step{r.StateAt, fmt.Sprintf("rejected by <@%s>", r.StateBy)})
		}
	case store.Withdrawn:
		if r.StateBy == store.UndeliverableActor {
			steps = append(steps, step{r.StateAt, "withdrawn by the bot: Slack refused its approval card for good"})
		} else {
			steps = append(steps, step{r.StateAt, fmt.Sprintf("withdrawn (cancelled) by <@%s>", r.StateBy)})
		}
	case store.Expired:
		steps = append(steps, step{r.StateAt, fmt.Sprintf("expired with %d of %d approvals; nothing was sent to Enterprise Manager", len(r.Approvals), r.ApprovalsRequired)})
	}
	if !r.SubmittedAt.IsZero() {
		what := "sent to Enterprise Manager"
		if many {
			what = "first failover sent to Enterprise Manager"
		}
		steps = append(steps, step{r.SubmittedAt, what})
	}
	if !r.StartedAt.IsZero() {
		what := "running in Enterprise Manager"
		if many {
			what = "first failover running in Enterprise Manager"
		}
		steps = append(steps, step{r.StartedAt, what})
	}
	if st := r.Stop; st != nil {
		steps = append(steps, step{st.At, fmt.Sprintf("stop asked by <@%s>: “%s”", st.User, esc(truncate(st.Reason, 200)))})
		if st.ConfirmedBy != "" {
			steps = append(steps, step{st.ConfirmedAt, fmt.Sprintf("stop confirmed by <@%s>", st.ConfirmedBy)})
		}
	}
	for i, c := range r.Continues {
		if i == maxContinues {
			steps = append(steps, step{c.At, fmt.Sprintf("and %d more decisions to continue", len(r.Continues)-i)})
			break
		}
		steps = append(steps, step{c.At, fmt.Sprintf("<@%s> chose to continue after %s", c.User, groupName(r, c.Group))})
	}
	if h := r.Halt; h != nil && r.State == store.Halted {
		steps = append(steps, step{h.At, fmt.Sprintf("halted after %s: waiting for Continue or Stop run", groupName(r, h.Group))})
	}
	switch r.State {
	case store.Rejected, store.Withdrawn, store.Expired:
	default:
		if r.State.Terminal() {
			steps = append(steps, step{store.FinishTime(r), "finished: " + outcomeWords(r)})
		}
	}
	// A record from before the bot kept a time has no date to show for that step.
	steps = slices.DeleteFunc(steps, func(s step) bool { return s.at.IsZero() })
	slices.SortStableFunc(steps, func(x, y step) int { return x.at.Compare(y.at) })
	return steps
}

// durationsText says how long r waited for approval, ran, and took in all ("so far" while it
// goes on). A phase whose start or end is unknown (a record from before the bot kept it) is left
// out.
func durationsText(r *store.Request, now time.Time) string {
	end, soFar := store.FinishTime(r), ""
	if !r.State.Terminal() {
		end, soFar = now, " so far"
	}
	var parts []string
	add := func(what, d, suffix string) {
		if d != "" {
			parts = append(parts, what+" "+d+suffix)
		}
	}
	switch {
	case !r.DecidedAt.IsZero():
		add("waiting for approval", span(r.CreatedAt, r.DecidedAt), "")
	default:
		add("waiting for approval", span(r.CreatedAt, end), soFar)
	}
	if !r.SubmittedAt.IsZero() {
		add("running", span(r.SubmittedAt, end), soFar)
	}
	if r.State != store.Pending {
		add("total", span(r.CreatedAt, end), soFar)
	}
	return strings.Join(parts, " · ")
}

// itemsTable writes r's items as a monospace table (item, state, restore point, start, finish,
// duration, and EM's word on a failure), those that need eyes first, as many as fit; the rest
// are counted by state.
func itemsTable(a *answer, r *store.Request, now time.Time) {
	ref := r.CreatedAt.UTC()
	a.line(fmt.Sprintf("*Items (%d)*: %s. Times UTC on %s unless marked (+1d: the day after).", len(r.Items), counts(r), ref.Format("2006-01-02")))
	order := make([]int, len(r.Items))
	for i := range order {
		order[i] = i
	}
	rank := func(s store.State) int {
		if i := slices.Index(itemOrder, s); i >= 0 {
			return i
		}
		return len(itemOrder)
	}
	slices.SortStableFunc(order, func(x, y int) int {
		ix, iy := &r.Items[x], &r.Items[y]
		return cmp.Or(cmp.Compare(rank(ix.State), rank(iy.State)), cmp.Compare(ix.Group, iy.Group))
	})
	plan := r.IsPlan()
	header := fmt.Sprintf("%-16s %-10s %-12s %-12s %-12s %s", "item", "state", "restore pt", "start", "finish", "took")
	if plan {
		header = "grp " + header
	}
	// Room for the closing line; and, when more items did not succeed than rows could show, for
	// the names of the rest of them (what a retry or a look in the Veeam console needs).
	reserve := 200
	if unwell := len(retryable(r)); unwell > 25 {
		reserve += min(unwell*14, 1200)
	}
	rows := []string{esc(header)}
	size := utf8.RuneCountInString(rows[0]) + len("```\n```\n")
	shown := 0
	for _, i := range order {
		row := esc(itemTableRow(&r.Items[i], ref, now, plan))
		n := utf8.RuneCountInString(row) + 1
		if !a.fits(size+n, reserve) {
			break
		}
		rows = append(rows, row)
		size += n
		shown++
	}
	if shown > 0 {
		a.line("```" + strings.Join(rows, "\n") + "```")
	}
	if shown == len(order) {
		return
	}
	omitted := &store.Request{Items: make([]store.Item, 0, len(order)-shown)}
	for _, i := range order[shown:] {
		omitted.Items = append(omitted.Items, r.Items[i])
	}
	a.line(fmt.Sprintf("…and %d more items not listed (those that need eyes are listed first): %s.", len(omitted.Items), counts(omitted)))
	unwell := retryable(omitted)
	if len(unwell) == 0 {
		return
	}
	// As many names as fit, then how many more.
	var names strings.Builder
	listed := 0
	for _, it := range unwell {
		name := esc(truncate(it.Target.Name, 24))
		tail := utf8.RuneCountInString(fmt.Sprintf(", and %d more.", len(unwell)))
		if !a.fits(utf8.RuneCountInString(names.String())+utf8.RuneCountInString(name)+2+tail+40, 0) {
			break
		}
		if listed > 0 {
			names.WriteString(", ")
		}
		names.WriteString(name)
		listed++
	}
	if listed == 0 {
		return
	}
	line := "Not listed and not succeeded: " + names.String()
	if listed < len(unwell) {
		line += fmt.Sprintf(", and %d more", len(unwell)-listed)
	}
	a.line(line + ".")
}

// itemTableRow is one item's row: name, state, restore point, start, finish, how long it took
// (so far, with "…", while it runs), and EM's message when it did not succeed.
func itemTableRow(it *store.Item, ref, now time.Time, plan bool) string {
	name := truncate(it.Target.Name, 16)
	if it.Optional {
		name = truncate(it.Target.Name, 10) + " (opt)"
	}
	start := it.StartedAt
	if start.IsZero() {
		start = it.SubmittedAt
	}
	took := "—"
	switch {
	case !start.IsZero() && !it.FinishedAt.IsZero():
		took = span(start, it.FinishedAt)
	case !start.IsZero() && !it.State.Terminal():
		took = span(start, now) + "…"
	}
	row := fmt.Sprintf("%-16s %-10s %-12s %-12s %-12s %s", name, itemWords(it.State), dayClock(it.Point, ref), dayClock(start, ref), dayClock(it.FinishedAt, ref), took)
	if plan {
		row = fmt.Sprintf("%-3d ", it.Group+1) + row
	}
	switch it.State {
	case store.Failed, store.Unknown, store.Stopped, store.Warning:
		if it.EMMessage != "" {
			row += " " + truncate(strings.ReplaceAll(it.EMMessage, "`", "'"), 60)
		}
	}
	return row
}

// dayClock is t's time of day, marked with how many days it is from ref's date ("00:20:02+1d").
func dayClock(t, ref time.Time) string {
	if t.IsZero() {
		return "—"
	}
	t = t.UTC()
	s := t.Format("15:04:05")
	day := func(x time.Time) time.Time { return time.Date(x.Year(), x.Month(), x.Day(), 0, 0, 0, 0, time.UTC) }
	if n := int(math.Round(day(t).Sub(day(ref.UTC())).Hours() / 24)); n != 0 {
		s += fmt.Sprintf("%+dd", n)
	}
	return s
}

// answer builds a reply line by line within a limit of characters (what Slack counts).
type answer struct {
	b     strings.Builder
	n     int
	limit int
}

func newAnswer(limit int) *answer { return &answer{limit: limit} }

// fits reports whether n more characters fit, leaving reserve for what must follow.
func (a *answer) fits(n, reserve int) bool { return a.n+n+reserve <= a.limit }

// line adds s and a line break if they fit, and reports whether they did.
func (a *answer) line(s string) bool { return a.lineWithin(s, 0) }

// lineWithin adds s if it fits leaving reserve characters, and reports whether it did.
func (a *answer) lineWithin(s string, reserve int) bool {
	n := utf8.RuneCountInString(s) + 1
	if !a.fits(n, reserve) {
		return false
	}
	a.b.WriteString(s)
	a.b.WriteByte('\n')
	a.n += n
	return true
}

func (a *answer) String() string { return strings.TrimRight(a.b.String(), "\n") }

// fitLines cuts text at a line break so that it and the note saying what was cut (cut, with the
// count of lines left out) fit in limit characters.
func fitLines(text string, limit int, cut string) string {
	if utf8.RuneCountInString(text) <= limit {
		return text
	}
	lines := strings.Split(text, "\n")
	a := newAnswer(limit)
	reserve := utf8.RuneCountInString(cut) + 8
	kept := 0
	for _, l := range lines {
		if !a.lineWithin(l, reserve) {
			break
		}
		kept++
	}
	a.line(fmt.Sprintf(cut, len(lines)-kept))
	return a.String()
}
