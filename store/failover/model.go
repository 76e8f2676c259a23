// Package failover is the failover model and its rules: requests, their states and the moves
// between them, restore intents, the approval digest, the two-person rules for approving and
// stopping, and the conflicts that explain a refusal. It knows no Slack, no storage and no HTTP
// and imports nothing of this module: a store runs these rules inside its own transaction and
// persists what they change, together with the Effect they return for the audit log.
package failover

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"time"
)

// ErrInvalid marks a change the rules can never allow as asked (a bug or a bad argument), as
// opposed to a ConflictError, which is refused because of the request's current state.
var ErrInvalid = errors.New("invalid argument")

// State is where a failover request is in its life. The values are stored on disk and
// appear in the audit log, so they never change.
type State string

// The states of a failover request; see the package documentation for the legal moves.
const (
	Pending    State = "pending"    // waiting for approvers
	Approved   State = "approved"   // enough approvals; not yet sent to EM
	Submitting State = "submitting" // the failover POST is about to be or is being sent
	Running    State = "running"    // EM accepted the failover; task ID recorded
	Stopping   State = "stopping"   // a stop was requested; EM has not finished yet
	Succeeded  State = "succeeded"
	Warning    State = "warning" // EM finished with a warning
	Failed     State = "failed"
	Stopped    State = "stopped"
	Rejected   State = "rejected"
	Expired    State = "expired"
	Withdrawn  State = "withdrawn"
	Unknown    State = "unknown" // the outcome could not be learned; a human must look
)

// Active reports whether s is one of the states the bot must keep watching (pending,
// approved, submitting, running, stopping). Active requests are kept in an index so
// that listing them does not cost more as finished history grows.
func (s State) Active() bool {
	switch s {
	case Pending, Approved, Submitting, Running, Stopping:
		return true
	}
	return false
}

// Terminal reports whether s is a final state: nothing can change a request after it.
func (s State) Terminal() bool {
	switch s {
	case Succeeded, Warning, Failed, Stopped, Rejected, Expired, Withdrawn, Unknown:
		return true
	}
	return false
}

// Known reports whether s is one of the states above.
func (s State) Known() bool { return s.Active() || s.Terminal() }

// Kind says whether a request fails over one VM of a CDP replica or a whole vApp.
type Kind string

// The kinds of failover target.
const (
	KindVM   Kind = "vm"
	KindVApp Kind = "vapp"
)

// Intent says which restore point a failover should use.
type Intent string

// The restore intents; RestoreTime is set only for IntentPointInTime and IntentInterval.
const (
	IntentLatest      Intent = "latest"
	IntentLatestVSS   Intent = "latest-vss"
	IntentPointInTime Intent = "point-in-time"
	IntentInterval    Intent = "interval"
)

// Target names what to fail over. IDs are what EM is called with; names are kept so
// cards and the audit log stay readable after EM objects are renamed.
type Target struct {
	ReplicaID   string `json:"replica_id,omitempty"`   // VM only
	ReplicaName string `json:"replica_name,omitempty"` // VM only
	ID          string `json:"id"`
	Name        string `json:"name,omitempty"`
}

// Approval records who approved a request and when.
type Approval struct {
	User string    `json:"user"`
	At   time.Time `json:"at"`
}

// Rejection records who rejected a request, when and why.
type Rejection struct {
	User   string    `json:"user"`
	Reason string    `json:"reason"`
	At     time.Time `json:"at"`
}

// Request is one failover request as stored. The JSON field names are the on-disk format
// (schema version 2): renaming a Go field must not rename its tag.
type Request struct {
	Seq uint64 `json:"seq"`
	ID  string `json:"id"` // "FO-42"

	Kind        Kind      `json:"kind"`
	Target      Target    `json:"target"`
	Intent      Intent    `json:"intent"`
	RestoreTime time.Time `json:"restore_time,omitzero"` // UTC, zero for latest*

	Reason    string `json:"reason"`
	Requester string `json:"requester"` // Slack user ID
	Channel   string `json:"channel,omitempty"`
	MessageTS string `json:"message_ts,omitempty"`
	// ResponseURL is the slash command's response_url (Slack accepts it for 30 minutes): the
	// way to tell the requester that their card is delayed or refused. Not part of the digest
	// and never written to the audit log.
	ResponseURL string `json:"response_url,omitempty"`

	ApprovalsRequired int        `json:"approvals_required"`
	Approvals         []Approval `json:"approvals,omitempty"`
	Rejection         *Rejection `json:"rejection,omitempty"`

	State   State     `json:"state"`
	StateBy string    `json:"state_by"` // who put the request in State
	StateAt time.Time `json:"state_at"` // when
	Version uint64    `json:"version"`  // incremented by every write

	// Digest is the hex SHA-256 of what is being approved (kind, target, intent, restore
	// time, requester, reason). It is set at Create and never changes, so an approval
	// button can only ever approve what its card showed.
	Digest string `json:"digest"`

	TaskID           string `json:"task_id,omitempty"`
	EMSession        string `json:"em_session,omitempty"`
	RestoreSessionID string `json:"restore_session_id,omitempty"`
	EMState          string `json:"em_state,omitempty"`
	EMProgress       int    `json:"em_progress,omitempty"`
	EMResult         string `json:"em_result,omitempty"`
	EMMessage        string `json:"em_message,omitempty"`
	// Stop records a deliberate stop of the running failover: who asked, why, and who
	// confirmed it when a second person must. Nil while nobody asked.
	Stop *StopRequest `json:"stop,omitempty"`

	CreatedAt   time.Time `json:"created_at"`
	ExpiresAt   time.Time `json:"expires_at"`
	DecidedAt   time.Time `json:"decided_at,omitzero"`   // approved or rejected
	SubmittedAt time.Time `json:"submitted_at,omitzero"` // entered submitting
	StartedAt   time.Time `json:"started_at,omitzero"`   // entered running
	FinishedAt  time.Time `json:"finished_at,omitzero"`  // entered a terminal state
	UpdatedAt   time.Time `json:"updated_at"`
}

// StopRequest is a request to stop a running failover (DELETE of its EM task).
type StopRequest struct {
	User        string    `json:"user"`
	Reason      string    `json:"reason"`
	At          time.Time `json:"at"`
	ConfirmedBy string    `json:"confirmed_by,omitempty"` // the second person, when one is required
	ConfirmedAt time.Time `json:"confirmed_at,omitzero"`
}

// Clone returns a deep copy, so a caller's Apply cannot alias stored slices.
func (r *Request) Clone() *Request {
	c := *r
	if r.Stop != nil {
		st := *r.Stop
		c.Stop = &st
	}
	if r.Approvals != nil {
		c.Approvals = append([]Approval(nil), r.Approvals...)
	}
	if r.Rejection != nil {
		rej := *r.Rejection
		c.Rejection = &rej
	}
	return &c
}

// digest computes Request.Digest. Fields are length-prefixed rather than joined with a
// separator, so no reason text can make two different requests hash alike.
func digest(kind Kind, t Target, intent Intent, restore time.Time, requester, reason string) string {
	h := sha256.New()
	var lenbuf [binary.MaxVarintLen64]byte
	field := func(s string) {
		n := binary.PutUvarint(lenbuf[:], uint64(len(s)))
		h.Write(lenbuf[:n])
		h.Write([]byte(s))
	}
	rt := ""
	if !restore.IsZero() {
		rt = restore.UTC().Format(time.RFC3339Nano)
	}
	for _, f := range []string{"failover-bot/request/v1", string(kind), t.ReplicaID, t.ReplicaName,
		t.ID, t.Name, string(intent), rt, requester, reason} {
		field(f)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// ComputeDigest hashes what an approval approves: kind, target, intent, restore time, requester
// and reason. Request.Digest is set to it at creation and never changes.
func (r *Request) ComputeDigest() string {
	return digest(r.Kind, r.Target, r.Intent, r.RestoreTime, r.Requester, r.Reason)
}

// IDPrefix starts every request ID: "FO-42" is the request with sequence number 42.
const IDPrefix = "FO-"

const idPrefix = IDPrefix

// FormatID returns the ID of the request with sequence number seq.
func FormatID(seq uint64) string { return idPrefix + strconv.FormatUint(seq, 10) }

// ParseID accepts "FO-42" in any case, as people type IDs back at the bot.
func ParseID(id string) (uint64, bool) {
	if len(id) <= len(idPrefix) || !strings.EqualFold(id[:len(idPrefix)], idPrefix) {
		return 0, false
	}
	seq, err := strconv.ParseUint(id[len(idPrefix):], 10, 64)
	if err != nil || seq == 0 {
		return 0, false
	}
	return seq, true
}
