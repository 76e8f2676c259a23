package bot

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"

	"github.com/failover-bot/failover-bot/store"
)

// foreignTeamText answers a command or click from a workspace the bot does not serve. A
// signed request from another workspace means the app is installed there too (or its signing
// secret is shared); acting on it would let outsiders fail VMs over.
const foreignTeamText = "This failover-bot serves another Slack workspace; requests and clicks from this one are refused and nothing was recorded. Ask your Slack admin which workspace runs DR failovers."

// teamAllowed reports whether a command or click from team (or from enterprise, on
// Enterprise Grid) may be acted on.
func (b *Bot) teamAllowed(team, enterprise string) bool {
	if len(b.opt.Teams) == 0 {
		return true
	}
	return (team != "" && slices.Contains(b.opt.Teams, team)) || (enterprise != "" && slices.Contains(b.opt.Teams, enterprise))
}

// hashKey joins parts unambiguously (length-prefixed) and hashes them into a replay key.
func hashKey(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		var n [8]byte
		l := len(p)
		for i := range n {
			n[i] = byte(l >> (8 * i))
		}
		h.Write(n[:])
		h.Write([]byte(p))
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// note records something the thread and the audit channel must hear that is not a change of
// the request (EM unreachable, a stop EM refused), with the line it owes the thread.
func (b *Bot) note(r *store.Request, actor, action, details, thread string) {
	if _, err := b.st.Note(b.sctx, r.ID, actor, action, details, thread); err != nil {
		b.reqLog(r.ID).Error("could not record a note for Slack", "action", action, "error", err, "line", truncate(thread, 200))
	}
}
