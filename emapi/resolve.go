package emapi

import (
	"context"
	"strings"
)

// ResolveReplica finds a CDP replica by GUID (or full UID) or by case-insensitive exact name.
func (c *Client) ResolveReplica(ctx context.Context, nameOrID string) (Ref, error) {
	refs, err := c.Replicas(ctx)
	if err != nil {
		return Ref{}, err
	}
	return resolve("CDP replica", nameOrID, refs)
}

// ResolveVM finds a VM of a CDP replica by GUID (or full UID) or by case-insensitive exact name.
func (c *Client) ResolveVM(ctx context.Context, replicaID, nameOrID string) (Ref, error) {
	refs, err := c.ReplicaVMs(ctx, replicaID)
	if err != nil {
		return Ref{}, err
	}
	return resolve("VM", nameOrID, refs)
}

// ResolveVApp finds a vApp CDP replica by GUID (or full UID) or by case-insensitive exact name.
func (c *Client) ResolveVApp(ctx context.Context, nameOrID string) (Ref, error) {
	refs, err := c.VApps(ctx)
	if err != nil {
		return Ref{}, err
	}
	return resolve("vApp", nameOrID, refs)
}

// resolve matches IDs first, since a GUID is unambiguous and a name could look like one, then
// names. An unknown query lists every candidate; an ambiguous one lists the matches.
func resolve(what, query string, refs []Ref) (Ref, error) {
	q := strings.TrimSpace(query)
	if q != "" {
		for _, r := range refs {
			if strings.EqualFold(r.ID, q) || strings.EqualFold(r.UID, q) {
				return r, nil
			}
		}
		var matches []Ref
		for _, r := range refs {
			if strings.EqualFold(strings.TrimSpace(r.Name), q) {
				matches = append(matches, r)
			}
		}
		switch len(matches) {
		case 1:
			return matches[0], nil
		case 0:
		default:
			return Ref{}, &ResolveError{What: what, Query: query, Ambiguous: true, Candidates: matches}
		}
	}
	return Ref{}, &ResolveError{What: what, Query: query, Candidates: refs}
}
