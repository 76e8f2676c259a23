package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/failover-bot/failover-bot/store/failover"
)

// The failover model lives in package failover; the store persists it. These aliases keep the
// store's API in the words its callers already use.
type (
	State       = failover.State
	Kind        = failover.Kind
	Intent      = failover.Intent
	Target      = failover.Target
	Approval    = failover.Approval
	Rejection   = failover.Rejection
	StopRequest = failover.StopRequest
	Request     = failover.Request
	Item        = failover.Item
	Exclusion   = failover.Exclusion
	Group       = failover.Group
	Halt        = failover.Halt
)

// The states, kinds and intents of package failover.
const (
	Pending    = failover.Pending
	Approved   = failover.Approved
	Submitting = failover.Submitting
	Running    = failover.Running
	Stopping   = failover.Stopping
	Succeeded  = failover.Succeeded
	Warning    = failover.Warning
	Failed     = failover.Failed
	Stopped    = failover.Stopped
	Rejected   = failover.Rejected
	Expired    = failover.Expired
	Withdrawn  = failover.Withdrawn
	Unknown    = failover.Unknown
	// PartlyFailed is a request some of whose items succeeded and others did not.
	PartlyFailed = failover.PartlyFailed
	// Halted is a plan run waiting for a second person to continue it, or for someone to end it.
	Halted = failover.Halted
	// Skipped is an item never sent because its run was stopped first.
	Skipped = failover.Skipped

	// The milestones of a plan run (Request.Milestones).
	NewsStarted   = failover.NewsStarted
	NewsDone      = failover.NewsDone
	NewsHalted    = failover.NewsHalted
	NewsContinued = failover.NewsContinued
	NewsEnded     = failover.NewsEnded

	KindVM   = failover.KindVM
	KindVApp = failover.KindVApp
	KindPlan = failover.KindPlan

	IntentLatest      = failover.IntentLatest
	IntentLatestVSS   = failover.IntentLatestVSS
	IntentPointInTime = failover.IntentPointInTime
	IntentInterval    = failover.IntentInterval
)

func formatID(seq uint64) string       { return failover.FormatID(seq) }
func parseID(id string) (uint64, bool) { return failover.ParseID(id) }
func legal(from, to State) bool        { return failover.Legal(from, to) }

// NewRequest is what the bot knows when someone asks for a failover: the targets the pre-flight
// included (Items: each item's Target, and the restore point and RPO the card shows), those it
// left out and why, and what applies to all of them.
type NewRequest struct {
	Kind
	// Target is shorthand for a request of one item with no previewed restore point.
	Target
	Items    []Item
	Excluded []Exclusion
	Scope    string
	RetryOf  string
	// Plan and Groups make a plan request (Kind KindPlan): each item names its group (and kind)
	// and the groups run in order. Their run-state fields are ignored.
	Plan   string
	Groups []Group
	Intent
	RestoreTime time.Time
	Reason      string
	Requester   string
	Channel     string
	ResponseURL string
	TTL         time.Duration // how long the request may wait for approvers
	// ReplayKey identifies the Slack delivery that asked (its trigger_id, say); Create
	// refuses a second request with the same key within ReplayTTL with ErrReplay.
	ReplayKey string
	ReplayTTL time.Duration
}

// items returns the request's items: Items, or the one Target.
func (nr *NewRequest) items() []Item {
	if len(nr.Items) == 0 && nr.Target != (Target{}) {
		return []Item{{Target: nr.Target}}
	}
	return nr.Items
}

func (nr *NewRequest) validate() error {
	var problems []string
	items := nr.items()
	if nr.Kind != KindVM && nr.Kind != KindVApp && nr.Kind != KindPlan {
		problems = append(problems, fmt.Sprintf("unknown kind %q", string(nr.Kind)))
	}
	if (nr.Kind == KindPlan) != (len(nr.Groups) > 0) || (nr.Kind == KindPlan) != (nr.Plan != "") {
		problems = append(problems, "a plan request, and only one, has a plan name and groups")
	}
	if len(items) == 0 {
		problems = append(problems, "at least one target is required")
	}
	if len(nr.Items) > 0 && nr.Target != (Target{}) {
		problems = append(problems, "give Target or Items, not both")
	}
	seen := map[string]bool{}
	for _, it := range items {
		t := it.Target
		kind := nr.Kind
		if kind == KindPlan {
			kind = it.Kind
		}
		switch {
		case nr.Kind == KindPlan && (it.Kind != KindVM && it.Kind != KindVApp):
			problems = append(problems, fmt.Sprintf("plan item %s has kind %q, not vm or vapp", describeTarget(t), string(it.Kind)))
		case nr.Kind != KindPlan && it.Kind != "" && it.Kind != nr.Kind:
			problems = append(problems, fmt.Sprintf("item %s of a %s request has kind %q", describeTarget(t), nr.Kind, string(it.Kind)))
		case nr.Kind == KindPlan && (it.Group < 0 || it.Group >= len(nr.Groups)):
			problems = append(problems, fmt.Sprintf("plan item %s names group %d of %d", describeTarget(t), it.Group, len(nr.Groups)))
		case nr.Kind != KindPlan && (it.Group != 0 || it.Optional):
			problems = append(problems, "only plan items have a group or criticality")
		case t.ID == "":
			problems = append(problems, "target ID is required")
		case seen[t.ID]:
			problems = append(problems, fmt.Sprintf("target %s is listed twice", describeTarget(t)))
		case kind == KindVM && t.ReplicaID == "":
			problems = append(problems, "a VM target needs its replica ID")
		case kind == KindVApp && t.ReplicaID != "":
			problems = append(problems, "a vApp target has no replica ID")
		}
		seen[t.ID] = true
		if len(problems) > 0 {
			break
		}
	}
	switch nr.Intent {
	case IntentLatest, IntentLatestVSS:
		if !nr.RestoreTime.IsZero() {
			problems = append(problems, fmt.Sprintf("intent %s takes no restore time", nr.Intent))
		}
	case IntentPointInTime, IntentInterval:
		if nr.RestoreTime.IsZero() {
			problems = append(problems, fmt.Sprintf("intent %s needs a restore time", nr.Intent))
		}
	default:
		problems = append(problems, fmt.Sprintf("unknown intent %q", string(nr.Intent)))
	}
	if strings.TrimSpace(nr.Reason) == "" {
		problems = append(problems, "reason is required")
	}
	if nr.Requester == "" {
		problems = append(problems, "requester is required")
	}
	if nr.TTL <= 0 {
		problems = append(problems, "TTL must be positive")
	}
	if nr.ReplayKey != "" && (nr.ReplayTTL <= 0 || len(nr.ReplayKey) > replayKeyMax) {
		problems = append(problems, "a replay key needs a positive ReplayTTL and at most 256 bytes")
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: new request: %s", ErrInvalid, strings.Join(problems, "; "))
	}
	return nil
}

func seqKey(seq uint64) []byte {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], seq)
	return k[:]
}

func encodeRequest(r *Request) ([]byte, error) { return json.Marshal(r) }

// decodeRequest parses a stored request and checks the invariants every stored request
// keeps, so a damaged record is reported instead of acted upon.
func decodeRequest(data []byte) (*Request, error) {
	var r Request
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("decode request: %w", err)
	}
	switch {
	case r.Seq == 0:
		return nil, errors.New("decode request: missing seq")
	case r.ID != formatID(r.Seq):
		return nil, fmt.Errorf("decode request: ID %q does not match seq %d", r.ID, r.Seq)
	case !r.State.Known():
		return nil, fmt.Errorf("decode request %s: unknown state %q", r.ID, r.State)
	case r.Kind != KindVM && r.Kind != KindVApp && r.Kind != KindPlan:
		return nil, fmt.Errorf("decode request %s: unknown kind %q", r.ID, r.Kind)
	case r.Version == 0:
		return nil, fmt.Errorf("decode request %s: version 0", r.ID)
	case len(r.Items) == 0:
		return nil, fmt.Errorf("decode request %s: no items", r.ID)
	}
	return &r, nil
}

// Counts returns how many of r's items are in each state.
func Counts(r *Request) map[State]int { return failover.Counts(r) }
