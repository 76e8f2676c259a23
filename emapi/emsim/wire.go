package emsim

import (
	"encoding/json"
	"encoding/xml"
	"net/http"
	"strconv"
	"time"
)

// Namespace is the XML namespace of every EM REST document, requests and answers alike.
const Namespace = "http://www.veeam.com/ent/v1.0"

// timeLayout is how the simulator writes DateTime values in answers: UTC with a "Z" suffix,
// second precision. EM's own answers carry a zone designator; request bodies must not (see
// specTimeLayout), so a client that parses both with one layout is caught.
const timeLayout = "2006-01-02T15:04:05Z"

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
	XMLName      xml.Name `xml:"http://www.veeam.com/ent/v1.0 CdpReplica" json:"-"`
	Href         string   `xml:"Href,attr" json:"Href"`
	Type         string   `xml:"Type,attr" json:"Type"`
	Name         string   `xml:"Name,attr" json:"Name"`
	UID          string   `xml:"UID,attr" json:"UID"`
	Links        []link   `xml:"Links>Link" json:"Links"`
	PolicyName   string   `xml:"PolicyName" json:"PolicyName"`
	PolicyUID    string   `xml:"PolicyUid" json:"PolicyUid"`
	BackupServer string   `xml:"BackupServer" json:"BackupServer"`
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
	Rpo          string `xml:"Rpo" json:"Rpo"`
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
	XMLName         xml.Name `xml:"http://www.veeam.com/ent/v1.0 RestoreSession" json:"-"`
	Href            string   `xml:"Href,attr" json:"Href"`
	Type            string   `xml:"Type,attr" json:"Type"`
	Name            string   `xml:"Name,attr" json:"Name"`
	UID             string   `xml:"UID,attr" json:"UID"`
	VMDisplayName   string   `xml:"VmDisplayName,attr" json:"VmDisplayName"`
	Links           []link   `xml:"Links>Link" json:"Links"`
	JobType         string   `xml:"JobType" json:"JobType"`
	CreationTimeUTC string   `xml:"CreationTimeUTC" json:"CreationTimeUTC"`
	EndTimeUTC      string   `xml:"EndTimeUTC,omitempty" json:"EndTimeUTC,omitempty"`
	State           string   `xml:"State" json:"State"`
	Result          string   `xml:"Result" json:"Result"`
	Progress        int      `xml:"Progress" json:"Progress"`
	FailureMessage  string   `xml:"FailureMessage,omitempty" json:"FailureMessage,omitempty"`
}

// encode renders v in the negotiated format. JSON answers start with a UTF-8 BOM, as EM's do.
func encode(v any, jsonFormat bool) ([]byte, error) {
	if jsonFormat {
		b, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		return append([]byte(bom), b...), nil
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
