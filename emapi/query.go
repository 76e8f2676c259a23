package emapi

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// EM's query service (GET /query?type=…&filter=…) answers a <QueryResult>: entities under
// <Entities><RestoreSessions> (format=Entities) or references under <Refs>, and a <PagingInfo>
// whose links carry the query again (their "&" written "&amp;" in XML, and in some JSON answers
// too). Paging exists only here. JSON nests every list twice ({"Refs":{"Refs":[…]}}), which
// jsonList accepts.

type wirePagingInfo struct {
	PageNum    flexInt            `xml:"PageNum,attr" json:"PageNum"`
	PageSize   flexInt            `xml:"PageSize,attr" json:"PageSize"`
	PagesCount flexInt            `xml:"PagesCount,attr" json:"PagesCount"`
	Links      jsonList[wireLink] `xml:"Links>Link" json:"Links"`
}

type wireQueryEntities struct {
	RestoreSessions jsonList[wireRestoreSession] `json:"RestoreSessions"`
	CdpReplicas     jsonList[wireReplica]        `json:"CdpReplicas"`
}

type wireQueryResult struct {
	XMLName     xml.Name             `xml:"QueryResult" json:"-"`
	XMLSessions []wireRestoreSession `xml:"Entities>RestoreSessions>RestoreSession" json:"-"`
	XMLReplicas []wireReplica        `xml:"Entities>CdpReplicas>CdpReplica" json:"-"`
	Entities    *wireQueryEntities   `xml:"-" json:"Entities"`
	Refs        jsonList[wireRef]    `xml:"Refs>Ref" json:"Refs"`
	Paging      *wirePagingInfo      `xml:"PagingInfo" json:"PagingInfo"`
}

// QueryPage is one decoded page of a <QueryResult>.
type QueryPage struct {
	Sessions   []RestoreSession
	Replicas   []Replica
	Refs       []Ref
	PageNum    int
	PagesCount int
	// Next is the query string of the Rel="Next" paging link, unescaped ("" on the last page).
	Next string
}

// DecodeQueryResult decodes one <QueryResult> page. It never panics; a restore session entity
// without a UID or with an unreadable time fails the page, as DecodeRestoreSession would.
func DecodeQueryResult(data []byte, f Format) (*QueryPage, error) {
	var w wireQueryResult
	if err := unmarshal(data, f, &w); err != nil {
		return nil, fmt.Errorf("decode query result: %w", err)
	}
	sessions, replicas := w.XMLSessions, w.XMLReplicas
	if w.Entities != nil {
		sessions = append(sessions, w.Entities.RestoreSessions...)
		replicas = append(replicas, w.Entities.CdpReplicas...)
	}
	p := &QueryPage{PageNum: 1, PagesCount: 1}
	for _, ws := range sessions {
		rs, err := restoreSessionFromWire(ws)
		if err != nil {
			return nil, fmt.Errorf("decode query result: %w", err)
		}
		p.Sessions = append(p.Sessions, *rs)
	}
	for _, wr := range replicas {
		p.Replicas = append(p.Replicas, *replicaFromWire(wr))
	}
	for _, r := range w.Refs {
		p.Refs = append(p.Refs, Ref{Type: r.Type, Name: r.Name, UID: r.UID, ID: idOf(r.UID, r.Href), Href: r.Href})
	}
	if pi := w.Paging; pi != nil {
		if pi.PageNum > 0 {
			p.PageNum = int(pi.PageNum)
		}
		if pi.PagesCount > 0 {
			p.PagesCount = int(pi.PagesCount)
		}
		for _, l := range pi.Links {
			if strings.EqualFold(l.Rel, "Next") {
				p.Next = queryOf(l.Href)
			}
		}
	}
	return p, nil
}

// queryOf returns the raw query of a paging link, with any leftover "&amp;" unescaped.
func queryOf(href string) string {
	href = html.UnescapeString(strings.TrimSpace(href))
	_, q, ok := strings.Cut(href, "?")
	if !ok {
		return ""
	}
	if i := strings.IndexByte(q, '#'); i >= 0 {
		q = q[:i]
	}
	return q
}

// QuoteFilter quotes a string value for a query filter: in double quotes, embedded quotes doubled.
func QuoteFilter(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

// queryPageSize is how many restore sessions one page asks for.
const queryPageSize = 500

// maxQueryPages bounds one query's pages, so an answer whose Next link never ends cannot loop.
const maxQueryPages = 200

// maxFilterNames bounds how many VM names one filter lists; with more, the filter is on the
// creation time alone and names are matched here (a URL must stay well under proxies' limits).
const maxFilterNames = 40

// QueryRestoreSessions returns the restore session entities created at or after since (whole
// seconds, EM's precision) whose VmDisplayName is one of names (case-insensitive; all names when
// names is empty), oldest first, with one query (GET /query?type=RestoreSession&format=Entities,
// paged). The filter narrows what EM sends; the result is checked here again, so a server that
// ignores part of the filter cannot widen it.
func (c *Client) QueryRestoreSessions(ctx context.Context, since time.Time, names []string) ([]RestoreSession, error) {
	const op = "query restore sessions"
	want := map[string]bool{}
	for _, n := range names {
		if strings.TrimSpace(n) != "" {
			want[strings.ToLower(n)] = true
		}
	}
	since = since.UTC().Truncate(time.Second)
	created := "CreationTime>=" + QuoteFilter(since.Format(emTimeLayout))
	filter := created
	if len(want) > 0 && len(want) <= maxFilterNames {
		sorted := make([]string, 0, len(want))
		for _, n := range names {
			if strings.TrimSpace(n) != "" {
				sorted = append(sorted, n)
			}
		}
		sort.Strings(sorted)
		clauses := make([]string, 0, len(sorted))
		seen := map[string]bool{}
		for _, n := range sorted {
			if seen[strings.ToLower(n)] {
				continue
			}
			seen[strings.ToLower(n)] = true
			// ";" (AND) binds tighter than "," (OR): (name AND time) OR (name AND time) …
			clauses = append(clauses, "VmDisplayName=="+QuoteFilter(n)+";"+created)
		}
		filter = strings.Join(clauses, ",")
	}
	q := url.Values{"type": {"RestoreSession"}, "format": {"Entities"}, "filter": {filter},
		"pageSize": {strconv.Itoa(queryPageSize)}, "page": {"1"}}
	raw := q.Encode()
	var out []RestoreSession
	seen := map[string]bool{}
	for page := 1; ; page++ {
		if page > maxQueryPages {
			return nil, &Error{Kind: KindUnknown, Op: op, Message: fmt.Sprintf("more than %d pages", maxQueryPages)}
		}
		resp, err := c.do(ctx, request{op: op, endpoint: "GET /query?type=RestoreSession", method: http.MethodGet,
			path: "query?" + raw, idempotent: true})
		if err != nil {
			return nil, err
		}
		p, err := DecodeQueryResult(resp.body, sniffFormat(resp.body, c.format))
		if err != nil {
			return nil, c.decodeError(op, resp.status, err)
		}
		for _, rs := range p.Sessions {
			if seen[rs.ID] || rs.Created.Before(since) || (len(want) > 0 && !want[strings.ToLower(rs.VMDisplayName)]) {
				continue
			}
			seen[rs.ID] = true
			out = append(out, rs)
		}
		next := p.Next
		if next == "" && p.PageNum < p.PagesCount {
			// No Next link but more pages: ask for the next page number ourselves.
			q.Set("page", strconv.Itoa(p.PageNum+1))
			next = q.Encode()
		}
		if next == "" || len(p.Sessions) == 0 {
			break
		}
		if _, err := url.ParseQuery(next); err != nil {
			return nil, c.decodeError(op, resp.status, errors.New("unreadable Next link"))
		}
		raw = next
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Created.Before(out[j].Created) })
	return out, nil
}

// IsFailoverJob reports whether a restore session's JobType can be a CDP failover's. EM does not
// document that value, so an empty one or one naming a failover counts; any other restore kind of
// the same VM (file-level, instant recovery, a full restore) does not, and is never adopted.
func IsFailoverJob(jobType string) bool {
	jt := strings.TrimSpace(jobType)
	return jt == "" || strings.Contains(strings.ToLower(jt), "failover")
}
