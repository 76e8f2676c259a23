package emsim

import (
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Query types, formats and paging limits of GET /api/query.
const (
	queryTypeRestoreSession = "RestoreSession"
	queryTypeCdpReplica     = "CdpReplica"

	queryFormatReferences = "References" // the default
	queryFormatEntities   = "Entities"

	defaultPageSize = 100
	maxPageSize     = 1000
)

// queryOps are the filter operators, longest first so "<=" is not read as "<".
var queryOps = []string{"==", "!=", "<=", ">=", "<", ">"}

// queryField is one filterable field of an item of type T: a string field (compared
// case-insensitively, == and != only) or a time field (all operators; absent means the clause
// does not match).
type queryField[T any] struct {
	str func(T) string
	tm  func(T) (time.Time, bool)
}

// clause is one "Field op Value" of a filter.
type clause[T any] struct {
	name, op, value string
	f               queryField[T]
	t               time.Time // time fields
}

func (cl clause[T]) match(x T) bool {
	if cl.f.tm == nil {
		eq := strings.EqualFold(cl.f.str(x), cl.value)
		return eq == (cl.op == "==")
	}
	t, ok := cl.f.tm(x)
	if !ok {
		return false
	}
	switch cl.op {
	case "==":
		return t.Equal(cl.t)
	case "!=":
		return !t.Equal(cl.t)
	case "<":
		return t.Before(cl.t)
	case "<=":
		return !t.After(cl.t)
	case ">":
		return t.After(cl.t)
	default: // ">="
		return !t.Before(cl.t)
	}
}

// filter is a parsed filter: an OR (",") of ANDs (";"). The empty filter matches everything.
type filter[T any] [][]clause[T]

func (f filter[T]) match(x T) bool {
	if len(f) == 0 {
		return true
	}
	for _, and := range f {
		ok := true
		for _, cl := range and {
			ok = ok && cl.match(x)
		}
		if ok {
			return true
		}
	}
	return false
}

// parseFilter reads EM's FIQL-like filter: clauses "Field op Value" joined by ";" (AND), which
// binds tighter than "," (OR). A value is bare (up to the next ";" or ",") or double-quoted with
// embedded quotes doubled ("a ""b"""), and ";" and "," inside quotes are literal. There are no
// parentheses and no white space around tokens. Errors are 400 messages.
func parseFilter[T any](src, typ string, fields map[string]queryField[T]) (filter[T], error) {
	if src == "" {
		return nil, nil
	}
	var or filter[T]
	var and []clause[T]
	i := 0
	for {
		j := i
		for j < len(src) && isFieldChar(src[j]) {
			j++
		}
		name := src[i:j]
		if name == "" {
			return nil, fmt.Errorf("Invalid filter %q: expected a field name at position %d", src, i+1)
		}
		f, ok := fields[name]
		if !ok {
			return nil, fmt.Errorf("Invalid filter %q: unknown field %q for type %s (fields: %s)", src, name, typ, strings.Join(slices.Sorted(maps.Keys(fields)), ", "))
		}
		k := j
		for k < len(src) && strings.IndexByte("=!<>~", src[k]) >= 0 {
			k++
		}
		op := src[j:k]
		if op == "" {
			return nil, fmt.Errorf("Invalid filter %q: expected an operator after %s", src, name)
		}
		if !slices.Contains(queryOps, op) {
			return nil, fmt.Errorf("Invalid filter %q: bad operator %q after %s (operators: ==, !=, <, <=, >, >=)", src, op, name)
		}
		value, next, err := filterValue(src, k)
		if err != nil {
			return nil, err
		}
		cl := clause[T]{name: name, op: op, value: value, f: f}
		if f.tm != nil {
			t, ok := parseSpecTime(value)
			if !ok {
				return nil, fmt.Errorf("Invalid filter %q: bad time %q for %s: use %s (UTC)", src, value, name, specTimeForms)
			}
			cl.t = t
		} else if op != "==" && op != "!=" {
			return nil, fmt.Errorf("Invalid filter %q: operator %s cannot compare the text field %s: use == or !=", src, op, name)
		}
		and = append(and, cl)
		if next == len(src) {
			return append(or, and), nil
		}
		if src[next] == ',' {
			or, and = append(or, and), nil
		}
		i = next + 1
		if i == len(src) {
			return nil, fmt.Errorf("Invalid filter %q: it ends with %q", src, src[next:])
		}
	}
}

// filterValue reads the value starting at src[i] and returns it with the index of the separator
// after it (len(src) at the end).
func filterValue(src string, i int) (string, int, error) {
	if i < len(src) && src[i] == '"' {
		var b strings.Builder
		for j := i + 1; j < len(src); j++ {
			if src[j] != '"' {
				b.WriteByte(src[j])
				continue
			}
			if j+1 < len(src) && src[j+1] == '"' {
				b.WriteByte('"')
				j++
				continue
			}
			if j+1 < len(src) && src[j+1] != ';' && src[j+1] != ',' {
				return "", 0, fmt.Errorf("Invalid filter %q: unexpected %q after a quoted value at position %d", src, src[j+1:j+2], j+2)
			}
			return b.String(), j + 1, nil
		}
		return "", 0, fmt.Errorf("Invalid filter %q: unterminated quoted value at position %d", src, i+1)
	}
	j := i
	for j < len(src) && src[j] != ';' && src[j] != ',' {
		if src[j] == '"' {
			return "", 0, fmt.Errorf("Invalid filter %q: a quote inside an unquoted value at position %d", src, j+1)
		}
		j++
	}
	if j == i {
		return "", 0, fmt.Errorf("Invalid filter %q: missing value at position %d", src, i+1)
	}
	return src[i:j], j, nil
}

func isFieldChar(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '_'
}

// rsItem is a restore session at the query's instant.
type rsItem struct {
	r *run
	p phase
}

var restoreSessionFields = map[string]queryField[rsItem]{
	"VmDisplayName": {str: func(x rsItem) string { return x.r.vmName }},
	"Name":          {str: func(x rsItem) string { return x.r.name }},
	"State":         {str: func(x rsItem) string { return x.p.rsState }},
	"Result":        {str: func(x rsItem) string { return x.p.rsResult }},
	"JobType":       {str: func(x rsItem) string { return x.r.jobType }},
	"UID":           {str: func(x rsItem) string { return "urn:veeam:RestoreSession:" + x.r.rsID }},
	"CreationTime":  {tm: func(x rsItem) (time.Time, bool) { return x.r.created, true }},
	"EndTime":       {tm: func(x rsItem) (time.Time, bool) { return x.p.ended, !x.p.ended.IsZero() }},
}

var cdpReplicaFields = map[string]queryField[*Replica]{
	"Name": {str: func(r *Replica) string { return r.Name }},
	"UID":  {str: func(r *Replica) string { return "urn:veeam:CdpReplica:" + r.ID }},
}

// queryParams reads a raw query string like EM: pairs split at "&" only, so a raw ";" in a filter
// stays part of it (Go's url.ParseQuery would drop such a pair). The first occurrence of a name
// counts.
func queryParams(raw string) (map[string]string, error) {
	out := map[string]string{}
	for _, pair := range strings.Split(raw, "&") {
		if pair == "" {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		key, err := url.QueryUnescape(k)
		if err != nil {
			return nil, err
		}
		val, err := url.QueryUnescape(v)
		if err != nil {
			return nil, err
		}
		if _, dup := out[key]; !dup {
			out[key] = val
		}
	}
	return out, nil
}

// query is GET /query?type=RestoreSession|CdpReplica&filter=…&format=References|Entities
// &pageSize=N&page=P. Restore sessions come oldest first (the 30 days GET /restoreSessions
// lists), CDP replicas in inventory order. A page beyond the last is empty.
func (s *Server) query(c *call) {
	q, err := queryParams(c.r.URL.RawQuery)
	if err != nil {
		c.fail(http.StatusBadRequest, "Malformed query string: "+err.Error())
		return
	}
	typ := q["type"]
	switch typ {
	case queryTypeRestoreSession:
	case queryTypeCdpReplica:
		if !s.isAdmin() {
			c.forbidden()
			return
		}
	case "":
		c.fail(http.StatusBadRequest, "Query type is missing: use type=RestoreSession or type=CdpReplica")
		return
	default:
		c.fail(http.StatusBadRequest, "Unknown query type "+strconv.Quote(typ)+": use RestoreSession or CdpReplica")
		return
	}
	format := q["format"]
	switch format {
	case "":
		format = queryFormatReferences
	case queryFormatReferences, queryFormatEntities:
	default:
		c.fail(http.StatusBadRequest, "Unknown query format "+strconv.Quote(format)+": use References or Entities")
		return
	}
	pageSize, ok := c.queryInt(q, "pageSize", defaultPageSize, maxPageSize)
	if !ok {
		return
	}
	page, ok := c.queryInt(q, "page", 1, 0)
	if !ok {
		return
	}
	fsrc := q["filter"]

	doc := queryResultDoc{}
	var total int
	window := func(n int) (lo, hi int) {
		total, lo = n, n
		if page-1 <= n/pageSize { // also keeps a huge page number from overflowing
			lo = min((page-1)*pageSize, n)
		}
		return lo, min(lo+pageSize, n)
	}
	switch typ {
	case queryTypeRestoreSession:
		f, err := parseFilter(fsrc, typ, restoreSessionFields)
		if err != nil {
			c.fail(http.StatusBadRequest, err.Error())
			return
		}
		var items []rsItem
		s.mu.Lock()
		for _, r := range s.runs {
			if x := (rsItem{r, r.at(c.now)}); r.retained(c.now) && f.match(x) {
				items = append(items, x)
			}
		}
		s.mu.Unlock()
		lo, hi := window(len(items))
		if format == queryFormatEntities {
			l := &queryRestoreSessions{RestoreSessions: []restoreSessionBody{}}
			for _, x := range items[lo:hi] {
				l.RestoreSessions = append(l.RestoreSessions, c.restoreSessionBody(x.r, x.p))
			}
			doc.Entities = &queryEntities{RestoreSessions: l}
		} else {
			doc.Refs = &queryRefs{Refs: []ref{}}
			for _, x := range items[lo:hi] {
				doc.Refs.Refs = append(doc.Refs.Refs, c.restoreSessionRef(x.r))
			}
		}
	case queryTypeCdpReplica:
		f, err := parseFilter(fsrc, typ, cdpReplicaFields)
		if err != nil {
			c.fail(http.StatusBadRequest, err.Error())
			return
		}
		var items []*Replica
		for i := range s.inv.replicas {
			if r := &s.inv.replicas[i]; f.match(r) {
				items = append(items, r)
			}
		}
		lo, hi := window(len(items))
		if format == queryFormatEntities {
			l := &queryCdpReplicas{CdpReplicas: []cdpReplicaBody{}}
			for _, r := range items[lo:hi] {
				l.CdpReplicas = append(l.CdpReplicas, c.replicaBody(r))
			}
			doc.Entities = &queryEntities{CdpReplicas: l}
		} else {
			doc.Refs = &queryRefs{Refs: []ref{}}
			for _, r := range items[lo:hi] {
				doc.Refs.Refs = append(doc.Refs.Refs, c.replicaRef(r))
			}
		}
	}
	pages := max(1, (total+pageSize-1)/pageSize)
	href := func(p int) string {
		h := c.base + "/query?type=" + typ + "&format=" + format
		if fsrc != "" {
			h += "&filter=" + url.QueryEscape(fsrc)
		}
		return h + "&pageSize=" + strconv.Itoa(pageSize) + "&page=" + strconv.Itoa(p)
	}
	pl := func(rel string, p int) link { return link{Rel: rel, Href: href(p), Type: "QueryResult"} }
	links := []link{pl("First", 1)}
	if page < pages {
		links = append(links, pl("Next", page+1))
	}
	if page > 1 {
		links = append(links, pl("Previous", page-1))
	}
	links = append(links, pl("Last", pages))
	doc.PagingInfo = queryPagingInfo{PageNum: page, PageSize: pageSize, PagesCount: pages, Links: links}
	c.ok(http.StatusOK, doc)
}

// queryInt reads a positive integer parameter (def when absent; at most limit unless limit is 0),
// answering 400 otherwise.
func (c *call) queryInt(q map[string]string, name string, def, limit int) (int, bool) {
	v, ok := q[name]
	if !ok {
		return def, true
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || (limit > 0 && n > limit) {
		msg := "Invalid " + name + " " + strconv.Quote(v) + ": want a whole number from 1"
		if limit > 0 {
			msg += " to " + strconv.Itoa(limit)
		}
		c.fail(http.StatusBadRequest, msg)
		return 0, false
	}
	return n, true
}
