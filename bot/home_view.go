package bot

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/failover-bot/failover-bot/bot/core"
	"github.com/failover-bot/failover-bot/store"
	"github.com/failover-bot/failover-bot/store/failover"
)

// Slack's limits on a home view are 100 blocks, 150 characters of header text and 3,000 per
// section; the Home stays well inside them by listing at most these many requests per part and
// counting the rest.
const (
	homeMaxBlocks    = 100
	homeWaitingShown = 15 // requests waiting for the viewer, one section each
	homeMineShown    = 10 // the viewer's own active requests, lines of one section
	homeActiveShown  = 50 // active requests, packed into sections of lines
	homeHistoryShown = 30 // finished requests of the last day, packed likewise
	homeLineChars    = 400
	homeSectionChars = 2900
)

// Block IDs of the Home, so a test (or a future click handler) can find its parts.
const (
	blockHomeAsOf     = "fo_home_asof"
	blockHomeWaiting  = "fo_home_waiting"
	blockHomeMine     = "fo_home_mine"
	blockHomeActive   = "fo_home_active"
	blockHomeHistory  = "fo_home_history"
	callbackHomeView  = "fo_home"
	homeHistoryWindow = 24 * time.Hour
)

// homeSnapshot is what every viewer's Home is rendered from: the store read once per change,
// not once per viewer. The parts that are the same for everyone are rendered once too.
type homeSnapshot struct {
	at       time.Time
	active   []*store.Request // oldest first
	finished []*store.Request // the newest homeHistoryShown finished within homeHistoryWindow
	more     int              // how many more finished then (store.FinishedMoreCap: at least)
	shared   []slack.Block    // the Active and history parts; rendered by the first viewer
}

func hmd(s string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.MarkdownType, s, false, false)
}

func hpt(s string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.PlainTextType, core.Truncate(s, 140), false, false)
}

// homeRef names a request, linked to its card when Slack shows one.
func homeRef(workspaceURL string, r *store.Request) string {
	if link := core.Permalink(workspaceURL, r.Channel, r.MessageTS); link != "" {
		return fmt.Sprintf("*<%s|%s>*", link, r.ID)
	}
	return "*" + r.ID + "*"
}

// homeLine is a request in one line: its ID, what fails over and where it is.
func homeLine(workspaceURL string, r *store.Request) string {
	return core.Truncate(fmt.Sprintf("• %s %s — %s", homeRef(workspaceURL, r), core.Esc(core.Truncate(core.TargetName(r), 80)),
		core.StatusLine(r)), homeLineChars)
}

// packLines puts lines into as few sections as Slack's section limit allows, at most max lines
// in all; what does not fit is counted in the returned number.
func packLines(blockID string, lines []string, max int) ([]slack.Block, int) {
	hidden := 0
	if len(lines) > max {
		hidden, lines = len(lines)-max, lines[:max]
	}
	var out []slack.Block
	var cur []string
	size := 0
	flush := func() {
		if len(cur) > 0 {
			id := blockID
			if len(out) > 0 {
				id = fmt.Sprintf("%s_%d", blockID, len(out))
			}
			out = append(out, slack.NewSectionBlock(hmd(strings.Join(cur, "\n")), nil, nil, slack.SectionBlockOptionBlockID(id)))
			cur, size = nil, 0
		}
	}
	for _, l := range lines {
		if size+len(l)+1 > homeSectionChars {
			flush()
		}
		cur = append(cur, l)
		size += len(l) + 1
	}
	flush()
	return out, hidden
}

// stateCounts says how many requests are in each state, most first: "12 running, 3 pending".
func stateCounts(reqs []*store.Request) string {
	n := map[store.State]int{}
	for _, r := range reqs {
		n[r.State]++
	}
	states := make([]store.State, 0, len(n))
	for s := range n {
		states = append(states, s)
	}
	sort.Slice(states, func(i, j int) bool {
		if n[states[i]] != n[states[j]] {
			return n[states[i]] > n[states[j]]
		}
		return states[i] < states[j]
	})
	parts := make([]string, len(states))
	for i, s := range states {
		parts[i] = fmt.Sprintf("%d %s", n[s], s)
	}
	return strings.Join(parts, ", ")
}

// renderShared renders the parts of the Home that are the same for every viewer: everything
// active and the last day's history.
func (s *homeSnapshot) renderShared(workspaceURL string) []slack.Block {
	blocks := []slack.Block{slack.NewDividerBlock(), slack.NewHeaderBlock(hpt(fmt.Sprintf("Active (%d)", len(s.active))))}
	if len(s.active) == 0 {
		blocks = append(blocks, slack.NewContextBlock(blockHomeActive, hmd("No pending or active failover requests.")))
	} else {
		lines := make([]string, len(s.active))
		for i, r := range s.active {
			lines[i] = homeLine(workspaceURL, r)
		}
		secs, hidden := packLines(blockHomeActive, lines, homeActiveShown)
		blocks = append(blocks, secs...)
		if hidden > 0 {
			blocks = append(blocks, slack.NewContextBlock(blockHomeActive+"_more", hmd(fmt.Sprintf(
				"…and %d more active requests (all active: %s). `/failover list` lists them; `/failover status <id>` shows one.",
				hidden, stateCounts(s.active)))))
		}
	}
	total := fmt.Sprint(len(s.finished) + s.more)
	if s.more >= store.FinishedMoreCap {
		total = "over " + total // the store stopped counting
	}
	blocks = append(blocks, slack.NewDividerBlock(), slack.NewHeaderBlock(hpt("Finished in the last 24 hours ("+total+")")))
	if len(s.finished) == 0 {
		return append(blocks, slack.NewContextBlock(blockHomeHistory, hmd("No failover request finished in the last 24 hours.")))
	}
	lines := make([]string, len(s.finished))
	for i, r := range s.finished {
		lines[i] = core.Truncate(homeLine(workspaceURL, r)+" _(finished "+store.FinishTime(r).UTC().Format(core.ClockFormat)+")_", homeLineChars)
	}
	secs, hidden := packLines(blockHomeHistory, lines, homeHistoryShown)
	blocks = append(blocks, secs...)
	if hidden += s.more; hidden > 0 {
		n := fmt.Sprint(hidden)
		if s.more >= store.FinishedMoreCap {
			n = "over " + n
		}
		blocks = append(blocks, slack.NewContextBlock(blockHomeHistory+"_more", hmd(fmt.Sprintf(
			"…and %s more finished in the last 24 hours: `/failover list --recent` lists them, `/failover status <id>` shows one.", n))))
	}
	return blocks
}

// mayApprove says whether user could approve r now, by the model's own rule run on a copy:
// pending, not expired, the content its card showed, not the requester, not twice.
func mayApprove(r *store.Request, user string, now time.Time) bool {
	if r.State != store.Pending || (!r.ExpiresAt.IsZero() && !now.Before(r.ExpiresAt)) {
		return false
	}
	_, err := failover.Approve(r.Clone(), user, r.Digest, now)
	return err == nil
}

// mayContinue says whether user could continue the halted plan r (not its requester).
func mayContinue(r *store.Request, user string, now time.Time) bool {
	if r.Halt == nil || r.State != store.Halted {
		return false
	}
	_, err := failover.Continue(r.Clone(), user, r.Halt.Group, now)
	return err == nil
}

// waitingSection is one request waiting for the viewer's decision.
func waitingSection(workspaceURL string, r *store.Request) slack.Block {
	var b strings.Builder
	fmt.Fprintf(&b, "%s — fail over %s\n", homeRef(workspaceURL, r), core.Truncate(core.TargetText(r), 600))
	fmt.Fprintf(&b, "Requested by <@%s> at %s: %s\n", r.Requester, r.CreatedAt.UTC().Format(core.DayFormat), core.Esc(core.Truncate(r.Reason, 300)))
	if r.State == store.Halted {
		fmt.Fprintf(&b, "%s\n_Continue or stop the run on its card._", core.Truncate(core.HaltText(r), 1200))
	} else {
		fmt.Fprintf(&b, "Restore point: %s\n%s\n_Approve or reject it on its card._", core.RestoreText(r.Intent, r.RestoreTime), core.StatusLine(r))
	}
	return slack.NewSectionBlock(hmd(core.Truncate(b.String(), homeSectionChars)), nil, nil, slack.SectionBlockOptionBlockID(blockHomeWaiting+"_"+r.ID))
}

// renderHome is user's Home: what waits for their decision, their own active requests, then
// the shared parts. approver is whether user may approve at all (approverErr: Slack could not
// tell). The "updated" line is returned apart, so that an unchanged Home is recognised.
func renderHome(s *homeSnapshot, workspaceURL, user string, approver bool, approverErr error) (content []slack.Block, asOf slack.Block) {
	blocks := []slack.Block{}
	var waiting []*store.Request
	if approver {
		for _, r := range s.active {
			if mayApprove(r, user, s.at) || mayContinue(r, user, s.at) {
				waiting = append(waiting, r)
			}
		}
	}
	blocks = append(blocks, slack.NewHeaderBlock(hpt(fmt.Sprintf("Waiting for your decision (%d)", len(waiting)))))
	switch {
	case approverErr != nil:
		blocks = append(blocks, slack.NewContextBlock(blockHomeWaiting, hmd(
			":warning: Slack did not tell me whether you may approve, so this part may be missing requests; every pending request is listed under Active. Open its card to act on it.")))
	case !approver:
		blocks = append(blocks, slack.NewContextBlock(blockHomeWaiting, hmd(
			"You are not an authorised approver, so no decision waits for you. The requests below are for your information.")))
	case len(waiting) == 0:
		blocks = append(blocks, slack.NewContextBlock(blockHomeWaiting, hmd("Nothing is waiting for your approval.")))
	}
	for i, r := range waiting {
		if i == homeWaitingShown {
			ids := make([]string, 0, len(waiting)-i)
			for _, w := range waiting[i:] {
				ids = append(ids, w.ID)
			}
			blocks = append(blocks, slack.NewContextBlock(blockHomeWaiting+"_more", hmd(core.Truncate(fmt.Sprintf(
				"…and %d more waiting for you: %s. They are listed under Active.", len(ids), strings.Join(ids, ", ")), homeSectionChars))))
			break
		}
		blocks = append(blocks, waitingSection(workspaceURL, r))
	}
	var mine []string
	for _, r := range s.active {
		if r.Requester == user {
			mine = append(mine, homeLine(workspaceURL, r))
		}
	}
	if len(mine) > 0 {
		blocks = append(blocks, slack.NewDividerBlock(), slack.NewHeaderBlock(hpt(fmt.Sprintf("Your active requests (%d)", len(mine)))))
		secs, hidden := packLines(blockHomeMine, mine, homeMineShown)
		blocks = append(blocks, secs...)
		if hidden > 0 {
			blocks = append(blocks, slack.NewContextBlock(blockHomeMine+"_more", hmd(fmt.Sprintf("…and %d more of yours, listed under Active.", hidden))))
		}
	}
	if s.shared == nil {
		s.shared = s.renderShared(workspaceURL)
	}
	blocks = append(blocks, s.shared...)
	blocks = append(blocks, slack.NewContextBlock("fo_home_help", hmd(
		"Approve, reject and stop on the request's card in its channel: this tab only shows them. `/failover help` lists the commands.")))
	// The parts above are bounded well below Slack's 100 blocks; this keeps that true whatever
	// changes later, with the as-of line and a note counted in.
	if len(blocks) > homeMaxBlocks-2 {
		blocks = append(blocks[:homeMaxBlocks-3], slack.NewContextBlock("fo_home_cut", hmd("…the rest does not fit in Slack's Home tab; `/failover list` lists every active request.")))
	}
	// Published only when the content changes, so this says when it last did; a tab that is
	// stale because the bot is down says how old it is.
	asOf = slack.NewContextBlock(blockHomeAsOf, hmd(fmt.Sprintf("Failover requests, updated %s. This tab refreshes itself when a request changes.",
		s.at.UTC().Format(core.DayFormat))))
	return blocks, asOf
}

// readHomeSnapshot reads what the Home shows: everything active, and the newest of what
// finished in the last day with a count of the rest.
func readHomeSnapshot(ctx context.Context, st homeStore, now time.Time) (*homeSnapshot, error) {
	act, err := st.Active(ctx)
	if err != nil {
		return nil, fmt.Errorf("read active requests: %w", err)
	}
	finished, more, err := st.Finished(ctx, now.Add(-homeHistoryWindow), homeHistoryShown)
	if err != nil {
		return nil, fmt.Errorf("read the last day's requests: %w", err)
	}
	return &homeSnapshot{at: now, active: act, finished: finished, more: more}, nil
}
