package core

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/failover-bot/failover-bot/emapi"
)

// editDistance is the optimal-string-alignment distance between a and b, over runes, ignoring
// case: insertions, deletions, substitutions and swaps of two neighbours ("lsit" is 1 from
// "list"), the typos people make. Written out rather than imported: it is a dozen lines.
func editDistance(a, b string) int {
	ra, rb := []rune(strings.ToLower(a)), []rune(strings.ToLower(b))
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}

// nearMisses are the candidates that q is probably a typo of: within an edit distance that
// grows with q's length (1 up to 4 characters, 2 up to 8, then 3), or that q is a distinctive
// prefix of; the closest first, at most three.
func nearMisses(q string, candidates []string) []string {
	q = strings.TrimSpace(q)
	if q == "" {
		return nil
	}
	limit := 3
	switch n := len([]rune(q)); {
	case n <= 4:
		limit = 1
	case n <= 8:
		limit = 2
	}
	type hit struct {
		name string
		d    int
	}
	var hits []hit
	seen := map[string]bool{}
	for _, c := range candidates {
		if seen[c] || strings.EqualFold(c, q) {
			continue
		}
		seen[c] = true
		d := editDistance(q, c)
		if d > limit && !(len(q) >= 3 && strings.HasPrefix(strings.ToLower(c), strings.ToLower(q))) {
			continue
		}
		hits = append(hits, hit{c, d})
	}
	slices.SortStableFunc(hits, func(a, b hit) int { return a.d - b.d })
	var out []string
	for _, h := range hits {
		if len(out) == 3 {
			break
		}
		out = append(out, h.name)
	}
	return out
}

// didYouMean is " Did you mean `a` or `b`?" for the near misses of q, or "".
func didYouMean(q string, candidates []string) string {
	m := nearMisses(q, candidates)
	if len(m) == 0 {
		return ""
	}
	for i := range m {
		m[i] = "`" + esc(m[i]) + "`"
	}
	if len(m) == 1 {
		return " Did you mean " + m[0] + "?"
	}
	return " Did you mean " + strings.Join(m[:len(m)-1], ", ") + " or " + m[len(m)-1] + "?"
}

func refNames(refs []emapi.Ref) []string {
	out := make([]string, len(refs))
	for i, r := range refs {
		out[i] = r.Name
	}
	return out
}

// maxReplicasSearched bounds the search for a VM typed with the wrong replica.
const maxReplicasSearched = 64

// vmElsewhere looks for the VM q in the CDP replicas other than notID, when it is not in the
// replica typed: the names of the replicas that hold it (a VM may be in several). Listings are
// the inventory's cached ones; errors leave the search empty rather than failing the answer.
func (inv *inventory) vmElsewhere(ctx context.Context, notID, q string) []placed {
	reps, err := inv.refresh(ctx, "replicas", inv.em.Replicas)
	if err != nil {
		return nil
	}
	var mu sync.Mutex
	var found []placed
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for i, rep := range reps {
		if rep.ID == notID || i >= maxReplicasSearched {
			continue
		}
		g.Go(func() error {
			vm, err := inv.resolveVM(ctx, rep.ID, q)
			if err == nil {
				mu.Lock()
				found = append(found, placed{replica: rep, vm: vm.Name})
				mu.Unlock()
			}
			return nil
		})
	}
	_ = g.Wait()
	slices.SortFunc(found, func(a, b placed) int { return strings.Compare(a.replica.Name, b.replica.Name) })
	return found
}

// placed is a VM found in a replica: the replica, and the VM's name as EM spells it.
type placed struct {
	replica emapi.Ref
	vm      string
}

// wrongReplica is the answer to a VM typed with a replica that does not hold it, when other
// replicas do: where it is, and the command to type.
func wrongReplica(typed emapi.Ref, q string, where []placed) error {
	names := make([]string, len(where))
	for i, p := range where {
		names[i] = "*" + esc(p.replica.Name) + "*"
	}
	vm := where[0].vm
	return &refusal{reason: "wrong-replica", msg: fmt.Sprintf("VM “%s” is not in CDP replica *%s*: %s is in %s. Nothing was recorded; type it with its replica, e.g. `/failover vm %s %s --reason \"…\"`.",
		esc(q), esc(typed.Name), esc(vm), strings.Join(names, " and "), quoteArg(where[0].replica.Name), quoteArg(vm))}
}

// quoteArg quotes a name for a command line when it needs it.
func quoteArg(s string) string {
	if strings.ContainsAny(s, " \t\"'") {
		return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"`
	}
	return s
}

// isUnknownName says err is a name that matched nothing (not an ambiguous one, not EM down).
func isUnknownName(err error) bool {
	var re *emapi.ResolveError
	return errors.As(err, &re) && !re.Ambiguous
}
