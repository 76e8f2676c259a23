package emapi

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Wire structs carry both tags: JSON keys are EM's XML element and attribute names, and a
// <Links><Link/></Links> wrapper becomes a "Links" array. The flex* and jsonList types accept the
// small variations seen between EM versions (numbers or strings, bare arrays or wrapper objects)
// instead of failing a poll over a cosmetic difference.

type wireLink struct {
	Rel  string `xml:"Rel,attr" json:"Rel"`
	Type string `xml:"Type,attr" json:"Type"`
	Href string `xml:"Href,attr" json:"Href"`
	Name string `xml:"Name,attr" json:"Name"`
}

type wireTaskResult struct {
	Success *flexBool `xml:"Success,attr" json:"Success"`
	Message flexText  `xml:"Message" json:"Message"`
}

type wireTask struct {
	XMLName   xml.Name           `xml:"Task" json:"-"`
	Type      string             `xml:"Type,attr" json:"Type"`
	Href      string             `xml:"Href,attr" json:"Href"`
	Links     jsonList[wireLink] `xml:"Links>Link" json:"Links"`
	TaskID    flexText           `xml:"TaskId" json:"TaskId"`
	State     string             `xml:"State" json:"State"`
	Operation string             `xml:"Operation" json:"Operation"`
	Result    *wireTaskResult    `xml:"Result" json:"Result"`
}

type wireRestoreSession struct {
	XMLName        xml.Name           `xml:"RestoreSession" json:"-"`
	Href           string             `xml:"Href,attr" json:"Href"`
	Name           string             `xml:"Name,attr" json:"Name"`
	UID            string             `xml:"UID,attr" json:"UID"`
	VMDisplayName  string             `xml:"VmDisplayName,attr" json:"VmDisplayName"`
	Links          jsonList[wireLink] `xml:"Links>Link" json:"Links"`
	JobType        string             `xml:"JobType" json:"JobType"`
	Created        string             `xml:"CreationTimeUTC" json:"CreationTimeUTC"`
	Ended          string             `xml:"EndTimeUTC" json:"EndTimeUTC"`
	State          string             `xml:"State" json:"State"`
	Result         string             `xml:"Result" json:"Result"`
	Progress       flexInt            `xml:"Progress" json:"Progress"`
	FailureMessage flexText           `xml:"FailureMessage" json:"FailureMessage"`
}

type wireError struct {
	XMLName     xml.Name `xml:"Error" json:"-"`
	Message     flexText `xml:"Message,attr" json:"Message"`
	StatusCode  flexInt  `xml:"StatusCode,attr" json:"StatusCode"`
	MessageElem string   `xml:"Message" json:"-"`
	StatusElem  string   `xml:"StatusCode" json:"-"`
}

type wireRef struct {
	Type  string             `xml:"Type,attr" json:"Type"`
	Name  string             `xml:"Name,attr" json:"Name"`
	UID   string             `xml:"UID,attr" json:"UID"`
	Href  string             `xml:"Href,attr" json:"Href"`
	Links jsonList[wireLink] `xml:"Links>Link" json:"Links"`
}

type wireEntityReferences struct {
	XMLName xml.Name          `xml:"EntityReferences" json:"-"`
	Refs    jsonList[wireRef] `xml:"Ref" json:"Refs"`
	Ref     jsonList[wireRef] `xml:"-" json:"Ref"`
}

type wireReplica struct {
	XMLName      xml.Name `xml:"CdpReplica" json:"-"`
	Href         string   `xml:"Href,attr" json:"Href"`
	Name         string   `xml:"Name,attr" json:"Name"`
	UID          string   `xml:"UID,attr" json:"UID"`
	PolicyName   flexText `xml:"PolicyName" json:"PolicyName"`
	PolicyUID    flexText `xml:"PolicyUid" json:"PolicyUid"`
	BackupServer flexText `xml:"BackupServer" json:"BackupServer"`
}

// wireReplicaVM takes any root: em-api.md names it <CdpReplicaVm>, while Veeam's link-type table
// maps the CdpReplicaVm type to <VmCdpReplica>; decodeReplicaVM accepts exactly those two.
type wireReplicaVM struct {
	XMLName    xml.Name `json:"-"`
	Href       string   `xml:"Href,attr" json:"Href"`
	Name       string   `xml:"Name,attr" json:"Name"`
	UID        string   `xml:"UID,attr" json:"UID"`
	ReplicaUID flexText `xml:"ReplicaUid" json:"ReplicaUid"`
	PolicyName flexText `xml:"PolicyName" json:"PolicyName"`
}

type wireVApp struct {
	XMLName xml.Name `xml:"VAppCdpReplica" json:"-"`
	Href    string   `xml:"Href,attr" json:"Href"`
	Name    string   `xml:"Name,attr" json:"Name"`
	UID     string   `xml:"UID,attr" json:"UID"`
}

type wireInterval struct {
	StartDate    string   `xml:"StartDate" json:"StartDate"`
	EndDate      string   `xml:"EndDate" json:"EndDate"`
	Rpo          flexText `xml:"Rpo" json:"Rpo"`
	IntervalType string   `xml:"IntervalType" json:"IntervalType"`
}

type wireRestorePoint struct {
	ID                      flexText `xml:"Id" json:"Id"`
	Date                    string   `xml:"Date" json:"Date"`
	IsApplicationConsistent flexBool `xml:"IsApplicationConsistent" json:"IsApplicationConsistent"`
}

type wireIntervals struct {
	XMLName                       xml.Name                   `xml:"CdpReplicaIntervals" json:"-"`
	HasApplicationConsistentState flexBool                   `xml:"HasApplicationConsistentState" json:"HasApplicationConsistentState"`
	Intervals                     jsonList[wireInterval]     `xml:"Intervals>Interval" json:"Intervals"`
	RestorePoints                 jsonList[wireRestorePoint] `xml:"RestorePoints>RestorePoint" json:"RestorePoints"`
}

type wireLogonSession struct {
	XMLName   xml.Name           `xml:"LogonSession" json:"-"`
	Links     jsonList[wireLink] `xml:"Links>Link" json:"Links"`
	UserName  string             `xml:"UserName" json:"UserName"`
	SessionID flexText           `xml:"SessionId" json:"SessionId"`
}

// utf8BOM is stripped from every answer: EM's JSON answers may start with one, and neither
// encoding/json nor encoding/xml accepts it.
var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

func stripBOM(data []byte) []byte { return bytes.TrimPrefix(data, utf8BOM) }

// unmarshal decodes one document of format f into v after stripping a BOM.
func unmarshal(data []byte, f Format, v any) error {
	data = stripBOM(data)
	if len(bytes.TrimSpace(data)) == 0 {
		return errors.New("empty body")
	}
	switch f {
	case FormatJSON:
		return json.Unmarshal(data, v)
	case FormatXML:
		return xml.Unmarshal(data, v)
	}
	return fmt.Errorf("unknown format %d", int(f))
}

// sniffFormat picks the decoder from the body itself, so an XML error page answered to a JSON
// request (or the reverse) still decodes; want is used when the body gives no hint.
func sniffFormat(data []byte, want Format) Format {
	data = bytes.TrimLeft(stripBOM(data), " \t\r\n")
	if len(data) > 0 {
		switch data[0] {
		case '<':
			return FormatXML
		case '{', '[':
			return FormatJSON
		}
	}
	return want
}

// DecodeTask decodes a <Task> document. It never panics; it fails when the task has no ID.
func DecodeTask(data []byte, f Format) (*Task, error) {
	var w wireTask
	if err := unmarshal(data, f, &w); err != nil {
		return nil, fmt.Errorf("decode task: %w", err)
	}
	t := &Task{
		ID:        strings.TrimSpace(string(w.TaskID)),
		Href:      w.Href,
		State:     strings.TrimSpace(w.State),
		Operation: strings.TrimSpace(w.Operation),
	}
	if t.ID == "" {
		t.ID = hrefID(w.Href)
	}
	if t.ID == "" {
		return nil, errors.New("decode task: no TaskId")
	}
	t.Done = t.State == TaskFinished
	if w.Result != nil {
		if w.Result.Success != nil {
			ok := bool(*w.Result.Success)
			t.Success = &ok
		}
		t.Message = strings.TrimSpace(string(w.Result.Message))
	}
	for _, l := range w.Links {
		if strings.EqualFold(l.Rel, "Related") && strings.EqualFold(l.Type, "RestoreSession") {
			if id := restoreSessionIDFromHref(l.Href); id != "" {
				t.RestoreSessionID = id
				break
			}
		}
	}
	return t, nil
}

// DecodeRestoreSession decodes a <RestoreSession> entity. It never panics.
func DecodeRestoreSession(data []byte, f Format) (*RestoreSession, error) {
	var w wireRestoreSession
	if err := unmarshal(data, f, &w); err != nil {
		return nil, fmt.Errorf("decode restore session: %w", err)
	}
	return restoreSessionFromWire(w)
}

func restoreSessionFromWire(w wireRestoreSession) (*RestoreSession, error) {
	rs := &RestoreSession{
		UID:            w.UID,
		Name:           w.Name,
		VMDisplayName:  w.VMDisplayName,
		JobType:        strings.TrimSpace(w.JobType),
		State:          strings.TrimSpace(w.State),
		Result:         strings.TrimSpace(w.Result),
		Progress:       int(w.Progress),
		FailureMessage: strings.TrimSpace(string(w.FailureMessage)),
	}
	rs.ID = idOf(w.UID, w.Href)
	if rs.ID == "" {
		return nil, errors.New("decode restore session: no UID")
	}
	var err error
	if rs.Created, err = parseTime(w.Created); err != nil {
		return nil, fmt.Errorf("decode restore session: CreationTimeUTC: %w", err)
	}
	if rs.Ended, err = parseTime(w.Ended); err != nil {
		return nil, fmt.Errorf("decode restore session: EndTimeUTC: %w", err)
	}
	return rs, nil
}

// maxMessage bounds an error message taken from a response body (proxies send whole pages).
const maxMessage = 512

// DecodeError decodes an <Error Message="…" StatusCode="…"> document (or its JSON form) into an
// *Error whose Kind follows StatusCode. It never panics; it fails when the body is not an EM error
// document, and the caller then falls back to the HTTP status text.
func DecodeError(data []byte, f Format) (*Error, error) {
	var w wireError
	if err := unmarshal(data, f, &w); err != nil {
		return nil, fmt.Errorf("decode error: %w", err)
	}
	msg := strings.TrimSpace(string(w.Message))
	if msg == "" {
		msg = strings.TrimSpace(w.MessageElem)
	}
	code := int(w.StatusCode)
	if code == 0 && w.StatusElem != "" {
		code, _ = strconv.Atoi(strings.TrimSpace(w.StatusElem))
	}
	if msg == "" && code == 0 {
		return nil, errors.New("decode error: neither Message nor StatusCode")
	}
	if code < 0 || code > 999 {
		code = 0
	}
	return &Error{Kind: kindForStatus(code), StatusCode: code, Message: truncate(msg, maxMessage)}, nil
}

// DecodeEntityReferences decodes an <EntityReferences> list. Each Ref's ID is the last segment of
// its UID. It never panics.
func DecodeEntityReferences(data []byte, f Format) ([]Ref, error) {
	var w wireEntityReferences
	if err := unmarshal(data, f, &w); err != nil {
		return nil, fmt.Errorf("decode entity references: %w", err)
	}
	refs := make([]Ref, 0, len(w.Refs)+len(w.Ref))
	for _, list := range [][]wireRef{w.Refs, w.Ref} {
		for _, r := range list {
			refs = append(refs, Ref{Type: r.Type, Name: r.Name, UID: r.UID, ID: idOf(r.UID, r.Href), Href: r.Href})
		}
	}
	return refs, nil
}

func decodeReplica(data []byte, f Format) (*Replica, error) {
	var w wireReplica
	if err := unmarshal(data, f, &w); err != nil {
		return nil, fmt.Errorf("decode CDP replica: %w", err)
	}
	return replicaFromWire(w), nil
}

func replicaFromWire(w wireReplica) *Replica {
	return &Replica{
		ID: idOf(w.UID, w.Href), UID: w.UID, Name: w.Name,
		PolicyName:   strings.TrimSpace(string(w.PolicyName)),
		PolicyUID:    strings.TrimSpace(string(w.PolicyUID)),
		BackupServer: strings.TrimSpace(string(w.BackupServer)),
	}
}

func decodeReplicaVM(data []byte, f Format) (*ReplicaVM, error) {
	var w wireReplicaVM
	if err := unmarshal(data, f, &w); err != nil {
		return nil, fmt.Errorf("decode CDP replica VM: %w", err)
	}
	if f == FormatXML && w.XMLName.Local != "CdpReplicaVm" && w.XMLName.Local != "VmCdpReplica" {
		return nil, fmt.Errorf("decode CDP replica VM: unexpected root <%s>", truncate(w.XMLName.Local, 64))
	}
	return &ReplicaVM{
		ID: idOf(w.UID, w.Href), UID: w.UID, Name: w.Name,
		ReplicaUID: strings.TrimSpace(string(w.ReplicaUID)),
		PolicyName: strings.TrimSpace(string(w.PolicyName)),
	}, nil
}

func decodeVApp(data []byte, f Format) (*VApp, error) {
	var w wireVApp
	if err := unmarshal(data, f, &w); err != nil {
		return nil, fmt.Errorf("decode vApp CDP replica: %w", err)
	}
	return &VApp{ID: idOf(w.UID, w.Href), UID: w.UID, Name: w.Name}, nil
}

func decodeIntervals(data []byte, f Format) (*Intervals, error) {
	var w wireIntervals
	if err := unmarshal(data, f, &w); err != nil {
		return nil, fmt.Errorf("decode CDP replica intervals: %w", err)
	}
	out := &Intervals{HasApplicationConsistentState: bool(w.HasApplicationConsistentState)}
	for _, in := range w.Intervals {
		start, err := parseTime(in.StartDate)
		if err != nil {
			return nil, fmt.Errorf("decode CDP replica intervals: StartDate: %w", err)
		}
		end, err := parseTime(in.EndDate)
		if err != nil {
			return nil, fmt.Errorf("decode CDP replica intervals: EndDate: %w", err)
		}
		out.Intervals = append(out.Intervals, Interval{Start: start, End: end,
			RPO: strings.TrimSpace(string(in.Rpo)), Type: strings.TrimSpace(in.IntervalType)})
	}
	for _, p := range w.RestorePoints {
		d, err := parseTime(p.Date)
		if err != nil {
			return nil, fmt.Errorf("decode CDP replica intervals: Date: %w", err)
		}
		out.RestorePoints = append(out.RestorePoints, RestorePoint{ID: strings.TrimSpace(string(p.ID)),
			Date: d, ApplicationConsistent: bool(p.IsApplicationConsistent)})
	}
	return out, nil
}

// decodeLogonSession returns the SessionId that names the session resource for logout. It is
// not the token (that is the X-RestSvcSessionId header).
func decodeLogonSession(data []byte, f Format) (string, error) {
	var w wireLogonSession
	if err := unmarshal(data, f, &w); err != nil {
		return "", fmt.Errorf("decode logon session: %w", err)
	}
	if id := strings.TrimSpace(string(w.SessionID)); id != "" {
		return id, nil
	}
	for _, l := range w.Links {
		if strings.EqualFold(l.Rel, "Delete") {
			if id := hrefID(l.Href); id != "" {
				return id, nil
			}
		}
	}
	return "", errors.New("decode logon session: no SessionId")
}

// idOf returns the bare GUID EM's URLs take: the last ':'-segment of a UID such as
// "urn:veeam:CdpReplica:<guid>", or of the last path segment of Href when UID is absent.
func idOf(uid, href string) string {
	uid = strings.TrimSpace(uid)
	if uid == "" {
		uid = hrefID(href)
	}
	return uid[strings.LastIndexByte(uid, ':')+1:]
}

// hrefID returns the last path segment of href, without query or fragment.
func hrefID(href string) string {
	p := href
	if i := strings.IndexAny(p, "?#"); i >= 0 {
		p = p[:i]
	}
	p = strings.TrimRight(p, "/")
	seg := p[strings.LastIndexByte(p, '/')+1:]
	if u, err := url.PathUnescape(seg); err == nil {
		seg = u
	}
	return seg
}

// restoreSessionIDFromHref extracts the GUID from ".../restoreSessions/{GUID}?format=Entity".
func restoreSessionIDFromHref(href string) string {
	const marker = "/restoreSessions/"
	i := strings.Index(strings.ToLower(href), strings.ToLower(marker))
	if i < 0 {
		return ""
	}
	rest := href[i+len(marker):]
	if j := strings.IndexAny(rest, "/?#"); j >= 0 {
		rest = rest[:j]
	}
	if u, err := url.PathUnescape(rest); err == nil {
		rest = u
	}
	return rest
}

// timeLayouts are tried in order. EM writes UTC without a zone suffix in its examples and with
// "Z" or an offset elsewhere; a suffix-less time is taken as UTC.
var timeLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05"}

func parseTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	for _, layout := range timeLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("unrecognised time %q", truncate(s, 64))
}

// truncate cuts s to at most n bytes on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// errorFromBody builds the *Error for a non-success answer: EM's message when the body is an EM
// error document, otherwise the status text (proxies answer with empty or HTML bodies).
func errorFromBody(op string, status int, body []byte, f Format) *Error {
	e := &Error{Kind: kindForStatus(status), Op: op, StatusCode: status}
	if d, err := DecodeError(body, sniffFormat(body, f)); err == nil && d.Message != "" {
		e.Message = d.Message
	} else {
		e.Message = http.StatusText(status)
	}
	return e
}

// flexBool is a bool that also accepts the JSON strings "true"/"false".
type flexBool bool

func (b *flexBool) UnmarshalJSON(data []byte) error {
	s := strings.Trim(strings.TrimSpace(string(data)), `"`)
	if s == "null" || s == "" {
		*b = false
		return nil
	}
	v, err := strconv.ParseBool(s)
	if err != nil {
		return fmt.Errorf("not a boolean: %q", truncate(s, 32))
	}
	*b = flexBool(v)
	return nil
}

// flexInt is an int that also accepts a JSON string holding a number.
type flexInt int

func (n *flexInt) UnmarshalJSON(data []byte) error {
	s := strings.Trim(strings.TrimSpace(string(data)), `"`)
	if s == "null" || s == "" {
		*n = 0
		return nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || f < -1e9 || f > 1e9 {
		return fmt.Errorf("not a number: %q", truncate(s, 32))
	}
	*n = flexInt(f)
	return nil
}

// flexText is a string that also accepts a JSON number or boolean, or an object with a Name
// (some EM versions render references such as BackupServer as objects).
type flexText string

func (t *flexText) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	switch {
	case len(data) == 0 || string(data) == "null":
		*t = ""
	case data[0] == '"':
		var s string
		if err := json.Unmarshal(data, &s); err != nil {
			return err
		}
		*t = flexText(s)
	case data[0] == '{':
		var o struct{ Name string }
		if err := json.Unmarshal(data, &o); err != nil {
			return err
		}
		*t = flexText(o.Name)
	case data[0] == '[':
		return errors.New("text field is an array")
	default:
		*t = flexText(data)
	}
	return nil
}

// jsonList is a JSON array that also accepts a wrapper object holding the array under one key
// ({"Link":[…]}) or a single object instead of a one-element array.
type jsonList[T any] []T

func (l *jsonList[T]) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	if len(data) == 0 || string(data) == "null" {
		*l = nil
		return nil
	}
	switch data[0] {
	case '[':
		var s []T
		if err := json.Unmarshal(data, &s); err != nil {
			return err
		}
		*l = s
		return nil
	case '{':
		var m map[string]json.RawMessage
		if err := json.Unmarshal(data, &m); err != nil {
			return err
		}
		if len(m) == 1 {
			for _, v := range m {
				if v = bytes.TrimSpace(v); len(v) > 0 && v[0] == '[' {
					var s []T
					if err := json.Unmarshal(v, &s); err != nil {
						return err
					}
					*l = s
					return nil
				}
			}
		}
		var one T
		if err := json.Unmarshal(data, &one); err != nil {
			return err
		}
		*l = []T{one}
		return nil
	}
	return errors.New("list field is neither an array nor an object")
}
