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
	"hash"
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
	// PartlyFailed is a request (never an item) some of whose items succeeded while others
	// failed, were stopped or ended unknown.
	PartlyFailed State = "partly-failed"
)

// Active reports whether s is one of the states the bot must keep watching (pending,
// approved, submitting, running, stopping, and a halted plan). Active requests are kept in an index so
// that listing them does not cost more as finished history grows.
func (s State) Active() bool {
	switch s {
	case Pending, Approved, Submitting, Running, Stopping, Halted:
		return true
	}
	return false
}

// Terminal reports whether s is a final state: nothing can change a request after it.
func (s State) Terminal() bool {
	switch s {
	case Succeeded, Warning, Failed, Stopped, Rejected, Expired, Withdrawn, Unknown, PartlyFailed, Skipped:
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

// Item is one target of a request with a failover of its own: its EM task and the logon session
// that task belongs to, its restore session, its state and EM's last word on it. A request's
// state is derived from its items (see Derive) once it is approved.
type Item struct {
	Target Target `json:"target"`
	// Point is the restore point the pre-flight found for this item and the card showed (for
	// "latest", the newest replicated state then; zero when unknown, as for requests stored
	// before items existed); RPO is the replica's RPO then, in seconds. Both are approved.
	Point time.Time `json:"point,omitzero"`
	RPO   int       `json:"rpo_s,omitempty"`
	// Recent, when set, says the target was failed over by a request that finished in the 24 h
	// before this one was made ("FO-3 (succeeded at 13:02 UTC)"): the card flags it.
	Recent string `json:"recent,omitempty"`

	// Kind is the item's own kind in a plan request (vm or vapp); "" means the request's Kind.
	Kind Kind `json:"kind,omitempty"`
	// Group is the index of the item's group in a plan request (Request.Groups).
	Group int `json:"group,omitempty"`
	// Optional items of a plan may fail without halting it; the others are critical.
	Optional bool `json:"optional,omitempty"`

	State   State     `json:"state"`
	StateAt time.Time `json:"state_at,omitzero"`
	// Version counts the changes of this item, so concurrent changes of different items of one
	// request never refuse each other, while a stale change of the same item is refused.
	Version uint64 `json:"version,omitempty"`

	TaskID           string `json:"task_id,omitempty"`
	EMSession        string `json:"em_session,omitempty"`
	RestoreSessionID string `json:"restore_session_id,omitempty"`
	EMState          string `json:"em_state,omitempty"`
	EMProgress       int    `json:"em_progress,omitempty"`
	EMResult         string `json:"em_result,omitempty"`
	EMMessage        string `json:"em_message,omitempty"`

	SubmittedAt time.Time `json:"submitted_at,omitzero"` // entered submitting (last time)
	StartedAt   time.Time `json:"started_at,omitzero"`   // entered running
	FinishedAt  time.Time `json:"finished_at,omitzero"`  // entered a terminal state
}

// Exclusion is a target the pre-flight left out of a request, and why (no restore point for the
// chosen option, held by another active request). It is shown on the card and is not approved.
type Exclusion struct {
	Target Target `json:"target"`
	Reason string `json:"reason"`
}

// Request is one failover request as stored. The JSON field names are the on-disk format
// (schema version 4): renaming a Go field must not rename its tag.
type Request struct {
	Seq uint64 `json:"seq"`
	ID  string `json:"id"` // "FO-42"

	Kind Kind `json:"kind"`
	// Items are the targets the request fails over, each with its own failover; never empty.
	Items []Item `json:"items"`
	// Excluded are the targets asked for but left out by the pre-flight, with the reason.
	Excluded []Exclusion `json:"excluded,omitempty"`
	// Scope says what was asked in words ("replica CDP-Web except web03"); "" for a list.
	Scope string `json:"scope,omitempty"`
	// RetryOf is the request whose failed items this one retries.
	RetryOf string `json:"retry_of,omitempty"`

	// Plan is the recovery plan the request runs ("" for none), and Groups its groups in order:
	// an item of group g+1 is sent only once every item of group g has an outcome, the group's
	// delay has passed and, when a critical item failed, a second person chose to continue.
	Plan   string  `json:"plan,omitempty"`
	Groups []Group `json:"groups,omitempty"`
	// Current is the index of the group whose items may be sent now.
	Current int `json:"current_group,omitempty"`
	// Halt is set while the run is halted before group Current+1; Continues are the decisions
	// to go on after a halt, in order.
	Halt      *Halt          `json:"halt,omitempty"`
	Continues []Continuation `json:"continues,omitempty"`
	// News is what the latest write did to the run, for the thread (see Milestones).
	News        *PlanNews `json:"plan_news,omitempty"`
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
	// Reminded is how many of the approval reminders were posted (see Remind), so a restart
	// neither repeats one nor skips one.
	Reminded  int        `json:"reminded,omitempty"`
	Rejection *Rejection `json:"rejection,omitempty"`

	State   State     `json:"state"`
	StateBy string    `json:"state_by"` // who put the request in State
	StateAt time.Time `json:"state_at"` // when
	Version uint64    `json:"version"`  // incremented by every write

	// Digest is the hex SHA-256 of what is being approved (see ComputeDigest). It is set at
	// Create and never changes, so an approval button can only ever approve what its card showed.
	Digest string `json:"digest"`
	// DigestV is the digest's version: 2 covers the items and their restore points; 0 is the
	// single-target digest of requests stored before items existed, kept so that their cards'
	// buttons still approve exactly what they showed.
	DigestV int `json:"digest_v,omitempty"`

	// Stop records a deliberate stop of the running failover: who asked, why, and who
	// confirmed it when a second person must. Nil while nobody asked.
	Stop *StopRequest `json:"stop,omitempty"`

	CreatedAt   time.Time `json:"created_at"`
	ExpiresAt   time.Time `json:"expires_at"`
	DecidedAt   time.Time `json:"decided_at,omitzero"`   // approved or rejected
	SubmittedAt time.Time `json:"submitted_at,omitzero"` // the first item entered submitting
	StartedAt   time.Time `json:"started_at,omitzero"`   // the first item entered running
	FinishedAt  time.Time `json:"finished_at,omitzero"`  // entered a terminal state
	UpdatedAt   time.Time `json:"updated_at"`
}

// Item returns the item whose target has ID id, or nil.
func (r *Request) Item(id string) *Item {
	for i := range r.Items {
		if r.Items[i].Target.ID == id {
			return &r.Items[i]
		}
	}
	return nil
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
	if r.Items != nil {
		c.Items = append([]Item(nil), r.Items...)
	}
	if r.Excluded != nil {
		c.Excluded = append([]Exclusion(nil), r.Excluded...)
	}
	if r.Rejection != nil {
		rej := *r.Rejection
		c.Rejection = &rej
	}
	if r.Groups != nil {
		c.Groups = append([]Group(nil), r.Groups...)
	}
	if r.Halt != nil {
		h := *r.Halt
		h.Items = append([]string(nil), h.Items...)
		c.Halt = &h
	}
	if r.News != nil {
		n := *r.News
		n.Events = append([]PlanEvent(nil), n.Events...)
		c.News = &n
	}
	if r.Continues != nil {
		c.Continues = append([]Continuation(nil), r.Continues...)
	}
	return &c
}

// DigestVersion is the digest a new request gets.
const DigestVersion = 2

// hasher hashes length-prefixed fields, so no reason text can make two requests hash alike.
type hasher struct {
	h   hash.Hash
	buf [binary.MaxVarintLen64]byte
}

func (x *hasher) field(s string) {
	n := binary.PutUvarint(x.buf[:], uint64(len(s)))
	x.h.Write(x.buf[:n])
	x.h.Write([]byte(s))
}

func timeField(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// ComputeDigest hashes what an approval approves: the kind, every item's target and previewed
// restore point and RPO, the intent and restore time, the requester, the reason, the scope
// asked for and what it retries. Request.Digest is set to it at creation and never changes. Requests stored before
// items existed (DigestV 0, one item) keep the single-target digest their cards were shown with.
func (r *Request) ComputeDigest() string {
	x := &hasher{h: sha256.New()}
	if r.DigestV < 2 {
		var t Target
		if len(r.Items) == 1 {
			t = r.Items[0].Target
		}
		for _, f := range []string{"failover-bot/request/v1", string(r.Kind), t.ReplicaID, t.ReplicaName,
			t.ID, t.Name, string(r.Intent), timeField(r.RestoreTime), r.Requester, r.Reason} {
			x.field(f)
		}
		if len(r.Items) != 1 {
			x.field("invalid: a v1 digest covers exactly one target")
		}
		return hex.EncodeToString(x.h.Sum(nil))
	}
	for _, f := range []string{"failover-bot/request/v2", string(r.Kind), string(r.Intent), timeField(r.RestoreTime),
		r.Requester, r.Reason, r.RetryOf, r.Scope, strconv.Itoa(len(r.Items))} {
		x.field(f)
	}
	for _, it := range r.Items {
		t := it.Target
		for _, f := range []string{t.ReplicaID, t.ReplicaName, t.ID, t.Name, timeField(it.Point), strconv.Itoa(it.RPO)} {
			x.field(f)
		}
	}
	if r.IsPlan() {
		// A plan's approval covers its order too: the groups, what each may run at once, the
		// delays, and each item's kind, group and criticality.
		x.field("plan:" + r.Plan)
		x.field(strconv.Itoa(len(r.Groups)))
		for _, g := range r.Groups {
			x.field(g.Name)
			x.field(strconv.Itoa(g.Concurrency))
			x.field(g.Delay.String())
		}
		for _, it := range r.Items {
			x.field(string(it.Kind))
			x.field(strconv.Itoa(it.Group))
			x.field(strconv.FormatBool(it.Optional))
		}
	}
	return hex.EncodeToString(x.h.Sum(nil))
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
