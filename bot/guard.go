package bot

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
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
