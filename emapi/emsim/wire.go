package emsim

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"net/http"
	"strconv"
	"time"
)

// Namespace is the XML namespace of every EM REST document, requests and answers alike.
const Namespace = "http://www.veeam.com/ent/v1.0"

// timeLayout is how the simulator writes DateTime values in answers: UTC without a zone suffix,
// second precision (2025-02-17T15:31:40), as EM's answers do. A client must read them as UTC,
// not as local time.
const timeLayout = "2006-01-02T15:04:05"

// bom is the UTF-8 byte-order mark EM puts in front of JSON answers; clients must strip it.
const bom = "\xEF\xBB\xBF"

const (
	contentTypeXML  = "application/xml; charset=utf-8"
	contentTypeJSON = "application/json; charset=utf-8"
)

// link is one <Link>; in JSON the <Links> wrapper becomes an array named "Links".
type link struct {
	Rel  string `xml:"Rel,attr" json:"Rel"`
	Href string `xml:"Href,attr" json:"Href"`
	Name string `xml:"Name,attr,omitempty" json:"Name,omitempty"`
	Type string `xml:"Type,attr" json:"Type"`
}

type errorDoc struct {
	XMLName    xml.Name `xml:"http://www.veeam.com/ent/v1.0 Error" json:"-"`
	Message    string   `xml:"Message,attr" json:"Message"`
	StatusCode int      `xml:"StatusCode,attr" json:"StatusCode"`
}

type enterpriseManagerDoc struct {
	XMLName  xml.Name           `xml:"http://www.veeam.com/ent/v1.0 EnterpriseManager" json:"-"`
	Versions []supportedVersion `xml:"SupportedVersions>SupportedVersion" json:"SupportedVersions"`
	Links    []link             `xml:"Links>Link" json:"Links"`
}

type supportedVersion struct {
	Name  string `xml:"Name,attr" json:"Name"`
	Links []link `xml:"Links>Link" json:"Links"`
}

type logonSessionDoc struct {
	XMLName   xml.Name `xml:"http://www.veeam.com/ent/v1.0 LogonSession" json:"-"`
	Href      string   `xml:"Href,attr" json:"Href"`
	Type      string   `xml:"Type,attr" json:"Type"`
	Links     []link   `xml:"Links>Link" json:"Links"`
	UserName  string   `xml:"UserName" json:"UserName"`
	SessionID string   `xml:"SessionId" json:"SessionId"`
}

// entityReferencesDoc is a reference list. In JSON the repeated <Ref> elements become an array
// named "Refs": EM's JSON uses the serialised property names, which are the XML element names
// except for lists without a wrapper element (the same rule that turns <Links> into "Links").
type entityReferencesDoc struct {
	XMLName xml.Name `xml:"http://www.veeam.com/ent/v1.0 EntityReferences" json:"-"`
	Refs    []ref    `xml:"Ref" json:"Refs"`
}

type ref struct {
	Type  string `xml:"Type,attr" json:"Type"`
	Href  string `xml:"Href,attr" json:"Href"`
	Name  string `xml:"Name,attr" json:"Name"`
	UID   string `xml:"UID,attr" json:"UID"`
	Links []link `xml:"Links>Link" json:"Links"`
}

// entityRefDoc is the reference representation of one key resource (GET without ?format=Entity).
type entityRefDoc struct {
	XMLName xml.Name `xml:"http://www.veeam.com/ent/v1.0 EntityRef" json:"-"`
	ref
}

type cdpReplicaDoc struct {
	XMLName xml.Name `xml:"http://www.veeam.com/ent/v1.0 CdpReplica" json:"-"`
	cdpReplicaBody
}

// cdpReplicaBody is a CDP replica entity's content; inside a <QueryResult> it is written without
// repeating the namespace.
type cdpReplicaBody struct {
	Href         string `xml:"Href,attr" json:"Href"`
	Type         string `xml:"Type,attr" json:"Type"`
	Name         string `xml:"Name,attr" json:"Name"`
	UID          string `xml:"UID,attr" json:"UID"`
	Links        []link `xml:"Links>Link" json:"Links"`
	PolicyName   string `xml:"PolicyName" json:"PolicyName"`
	PolicyUID    string `xml:"PolicyUid" json:"PolicyUid"`
	BackupServer string `xml:"BackupServer" json:"BackupServer"`
}

// cdpReplicaVMDoc follows em-api.md's table (root <CdpReplicaVm>). Veeam's "Mapping Link Types to
// XML Schema Elements" page maps the CdpReplicaVm link type to the element <VmCdpReplica>; if a
// real server answers that way, a client that checks the root name will fail there.
type cdpReplicaVMDoc struct {
	XMLName      xml.Name `xml:"http://www.veeam.com/ent/v1.0 CdpReplicaVm" json:"-"`
	Href         string   `xml:"Href,attr" json:"Href"`
	Type         string   `xml:"Type,attr" json:"Type"`
	Name         string   `xml:"Name,attr" json:"Name"`
	UID          string   `xml:"UID,attr" json:"UID"`
	Links        []link   `xml:"Links>Link" json:"Links"`
	VMRef        string   `xml:"VmRef" json:"VmRef"`
	ReplicaUID   string   `xml:"ReplicaUid" json:"ReplicaUid"`
	BackupServer string   `xml:"BackupServer" json:"BackupServer"`
	PolicyUID    string   `xml:"PolicyUid" json:"PolicyUid"`
	PolicyName   string   `xml:"PolicyName" json:"PolicyName"`
}

type vAppCdpReplicaDoc struct {
	XMLName      xml.Name `xml:"http://www.veeam.com/ent/v1.0 VAppCdpReplica" json:"-"`
	Href         string   `xml:"Href,attr" json:"Href"`
	Type         string   `xml:"Type,attr" json:"Type"`
	Name         string   `xml:"Name,attr" json:"Name"`
	UID          string   `xml:"UID,attr" json:"UID"`
	Links        []link   `xml:"Links>Link" json:"Links"`
	BackupServer string   `xml:"BackupServer" json:"BackupServer"`
}

type intervalsDoc struct {
	XMLName                       xml.Name       `xml:"http://www.veeam.com/ent/v1.0 CdpReplicaIntervals" json:"-"`
	HasApplicationConsistentState bool           `xml:"HasApplicationConsistentState" json:"HasApplicationConsistentState"`
	Intervals                     []intervalDoc  `xml:"Intervals>Interval" json:"Intervals"`
	RestorePoints                 []restorePtDoc `xml:"RestorePoints>RestorePoint" json:"RestorePoints"`
}

type intervalDoc struct {
	StartDate    string `xml:"StartDate" json:"StartDate"`
	EndDate      string `xml:"EndDate" json:"EndDate"`
	Rpo          int    `xml:"Rpo" json:"Rpo"` // seconds
	IntervalType string `xml:"IntervalType" json:"IntervalType"`
}

type restorePtDoc struct {
	ID                      string `xml:"Id" json:"Id"`
	Date                    string `xml:"Date" json:"Date"`
	IsApplicationConsistent bool   `xml:"IsApplicationConsistent" json:"IsApplicationConsistent"`
}

type taskDoc struct {
	XMLName xml.Name `xml:"http://www.veeam.com/ent/v1.0 Task" json:"-"`
	taskBody
}

// taskBody is a task's content; inside <Tasks> it is written without repeating the namespace.
type taskBody struct {
	Type      string         `xml:"Type,attr" json:"Type"`
	Href      string         `xml:"Href,attr" json:"Href"`
	Links     []link         `xml:"Links>Link" json:"Links"`
	TaskID    string         `xml:"TaskId" json:"TaskId"`
	State     string         `xml:"State" json:"State"`
	Operation string         `xml:"Operation" json:"Operation"`
	Result    *taskResultDoc `xml:"Result,omitempty" json:"Result,omitempty"`
}

type taskResultDoc struct {
	Success bool   `xml:"Success,attr" json:"Success"`
	Message string `xml:"Message" json:"Message"`
}

// tasksDoc is GET /tasks: the TaskList type, root <Tasks> holding <Task> entities ("Tasks" in JSON).
type tasksDoc struct {
	XMLName xml.Name   `xml:"http://www.veeam.com/ent/v1.0 Tasks" json:"-"`
	Tasks   []taskBody `xml:"Task" json:"Tasks"`
}

type restoreSessionDoc struct {
	XMLName xml.Name `xml:"http://www.veeam.com/ent/v1.0 RestoreSession" json:"-"`
	restoreSessionBody
}

// restoreSessionBody is a restore session entity's content; inside a <QueryResult> it is written
// without repeating the namespace.
type restoreSessionBody struct {
	Href            string `xml:"Href,attr" json:"Href"`
	Type            string `xml:"Type,attr" json:"Type"`
	Name            string `xml:"Name,attr" json:"Name"`
	UID             string `xml:"UID,attr" json:"UID"`
	VMDisplayName   string `xml:"VmDisplayName,attr" json:"VmDisplayName"`
	Links           []link `xml:"Links>Link" json:"Links"`
	JobType         string `xml:"JobType" json:"JobType"`
	CreationTimeUTC string `xml:"CreationTimeUTC" json:"CreationTimeUTC"`
	EndTimeUTC      string `xml:"EndTimeUTC,omitempty" json:"EndTimeUTC,omitempty"`
	State           string `xml:"State" json:"State"`
	Result          string `xml:"Result" json:"Result"`
	Progress        int    `xml:"Progress" json:"Progress"`
	FailureMessage  string `xml:"FailureMessage,omitempty" json:"FailureMessage,omitempty"`
}

// queryResultDoc is the /query answer. References sit in <Refs><Ref/>…</Refs>, entities in
// <Entities><RestoreSessions><RestoreSession/>…</RestoreSessions></Entities> (or CdpReplicas);
// in JSON every list is nested twice, {"Refs":{"Refs":[…]}} and
// {"Entities":{"RestoreSessions":{"RestoreSessions":[…]}}}, as EM writes it.
type queryResultDoc struct {
	XMLName    xml.Name        `xml:"http://www.veeam.com/ent/v1.0 QueryResult" json:"-"`
	Refs       *queryRefs      `xml:"Refs,omitempty" json:"Refs,omitempty"`
	Entities   *queryEntities  `xml:"Entities,omitempty" json:"Entities,omitempty"`
	PagingInfo queryPagingInfo `xml:"PagingInfo" json:"PagingInfo"`
}

type queryRefs struct {
	Refs []ref `xml:"Ref" json:"Refs"`
}

type queryEntities struct {
	RestoreSessions *queryRestoreSessions `xml:"RestoreSessions,omitempty" json:"RestoreSessions,omitempty"`
	CdpReplicas     *queryCdpReplicas     `xml:"CdpReplicas,omitempty" json:"CdpReplicas,omitempty"`
}

type queryRestoreSessions struct {
	RestoreSessions []restoreSessionBody `xml:"RestoreSession" json:"RestoreSessions"`
}

type queryCdpReplicas struct {
	CdpReplicas []cdpReplicaBody `xml:"CdpReplica" json:"CdpReplicas"`
}

type queryPagingInfo struct {
	PageNum    int    `xml:"PageNum,attr" json:"PageNum"`
	PageSize   int    `xml:"PageSize,attr" json:"PageSize"`
	PagesCount int    `xml:"PagesCount,attr" json:"PagesCount"`
	Links      []link `xml:"Links>Link" json:"Links"`
}

// encode renders v in the negotiated format. JSON answers start with a UTF-8 BOM, as EM's do,
// and write "&", "<" and ">" as themselves (as .NET does), not as \u0026 escapes: a paging link's
// Href then reads ...?type=RestoreSession&format=... in JSON, and &amp; only in XML.
func encode(v any, jsonFormat bool) ([]byte, error) {
	if jsonFormat {
		var b bytes.Buffer
		b.WriteString(bom)
		e := json.NewEncoder(&b)
		e.SetEscapeHTML(false)
		if err := e.Encode(v); err != nil {
			return nil, err
		}
		return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
	}
	return xml.Marshal(v)
}

// write sends one document. Marshalling the simulator's own fixed types cannot fail; if it ever
// does the handler answers a bare 500 rather than a half-written body.
func write(w http.ResponseWriter, status int, v any, jsonFormat bool) {
	b, err := encode(v, jsonFormat)
	if err != nil {
		http.Error(w, "emsim: encode: "+err.Error(), http.StatusInternalServerError)
		return
	}
	if jsonFormat {
		w.Header().Set("Content-Type", contentTypeJSON)
	} else {
		w.Header().Set("Content-Type", contentTypeXML)
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func writeError(w http.ResponseWriter, status int, msg string, jsonFormat bool) {
	write(w, status, errorDoc{Message: msg, StatusCode: status}, jsonFormat)
}

func fmtTime(t time.Time) string { return t.UTC().Format(timeLayout) }
