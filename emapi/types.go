package emapi

import "time"

// Format selects the media type of request and response bodies. EM honours a JSON body only when
// Accept is JSON too, so one Format governs both directions.
type Format int

// Body formats. XML is EM's default and the zero value.
const (
	FormatXML Format = iota
	FormatJSON
)

// String returns "xml" or "json", for logs and test names.
func (f Format) String() string {
	switch f {
	case FormatXML:
		return "xml"
	case FormatJSON:
		return "json"
	}
	return "unknown"
}

// mediaType is the single media type sent in Accept (and Content-Type when there is a body). EM
// rejects XML bodies when Accept lists both XML and JSON, so there is never more than one.
func (f Format) mediaType() string {
	if f == FormatJSON {
		return "application/json"
	}
	return "application/xml"
}

// Ref is one entry of an <EntityReferences> list. ID is the bare GUID, the last ':'-segment of UID,
// because that is what EM's URLs take.
type Ref struct {
	Type, Name, UID, ID, Href string
}

// Replica is a CDP replica (a CDP policy's replica set) as EM's Entity view shows it.
type Replica struct {
	ID, UID, Name, PolicyName, PolicyUID, BackupServer string
}

// ReplicaVM is one VM inside a CDP replica.
type ReplicaVM struct {
	ID, UID, Name, ReplicaUID, PolicyName string
}

// VApp is a vCloud vApp CDP replica.
type VApp struct {
	ID, UID, Name string
}

// Intervals are the restore intervals and points EM offers for a VM or vApp, shown to approvers so
// they see which state a failover will restore.
type Intervals struct {
	HasApplicationConsistentState bool
	Intervals                     []Interval
	RestorePoints                 []RestorePoint
}

// Interval is a span of time in which EM can restore (IntervalType, e.g. "RestoreAvailable").
type Interval struct {
	Start, End time.Time
	RPO        string
	Type       string
}

// RestorePoint is one long-term restore point.
type RestorePoint struct {
	ID                    string
	Date                  time.Time
	ApplicationConsistent bool
}

// Task states as EM reports them. OperationFinished means the backup server is done but EM has
// not collected the result yet; only Finished carries a Result.
const (
	TaskRunning           = "Running"
	TaskOperationFinished = "OperationFinished"
	TaskFinished          = "Finished"
)

// Task is EM's handle on an asynchronous operation such as a failover. A successful task is not a
// successful failover: the outcome is in the restore session named by RestoreSessionID.
type Task struct {
	ID, Href, State, Operation string
	Done                       bool   // State == Finished
	Success                    *bool  // nil until Result present
	Message                    string // Result/Message
	RestoreSessionID           string // GUID from the Rel="Related" Type="RestoreSession" link, "" if none
	// LogonSession is the SessionId of the EM logon session the answer came from: the task ID
	// means something only there.
	LogonSession string
}

// Restore session states and results as EM reports them. Result is None while the session runs;
// a Stopped session with Result None has no outcome yet (or lost it).
const (
	SessionStarting = "Starting"
	SessionWorking  = "Working"
	SessionStopping = "Stopping"
	SessionStopped  = "Stopped"

	ResultNone    = "None"
	ResultSuccess = "Success"
	ResultWarning = "Warning"
	ResultFailed  = "Failed"
)

// RestoreSession is the real outcome of a failover.
type RestoreSession struct {
	ID, UID, Name, VMDisplayName, JobType string
	Created                               time.Time
	Ended                                 time.Time // zero when absent
	State                                 string    // Starting, Working, Stopping, Stopped
	Result                                string    // None, Success, Warning, Failed
	Progress                              int
	FailureMessage                        string
}
