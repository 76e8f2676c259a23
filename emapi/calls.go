package emapi

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"
)

// Paths. VM replicas live under "cdpReplicas" (plural) and vApp replicas under "cdpReplica/vApps"
// (singular); pages that print "/cdpReplicas/vApps" are a documentation typo.
const (
	pathReplicas = "cdpReplicas"
	pathVApps    = "cdpReplica/vApps"
	queryEntity  = "?format=Entity"
)

// badID is returned before any network traffic for an ID that could not be a path segment.
func badID(op, what, id string) *Error {
	return &Error{Kind: KindBadRequest, Op: op, Message: "invalid " + what + " ID " + quoteShort(id)}
}

func quoteShort(s string) string { return "\"" + truncate(s, 64) + "\"" }

// get runs an idempotent GET and returns the body and the format to decode it with.
func (c *Client) get(ctx context.Context, op, endpoint, path string) ([]byte, Format, int, error) {
	resp, err := c.do(ctx, request{op: op, endpoint: endpoint, method: http.MethodGet, path: path, idempotent: true})
	if err != nil {
		return nil, 0, 0, err
	}
	return resp.body, sniffFormat(resp.body, c.format), resp.status, nil
}

func (c *Client) list(ctx context.Context, op, endpoint, path string) ([]Ref, error) {
	body, f, status, err := c.get(ctx, op, endpoint, path)
	if err != nil {
		return nil, err
	}
	refs, err := DecodeEntityReferences(body, f)
	if err != nil {
		return nil, c.decodeError(op, status, err)
	}
	return refs, nil
}

// Replicas lists the CDP replicas (GET /cdpReplicas).
func (c *Client) Replicas(ctx context.Context) ([]Ref, error) {
	return c.list(ctx, "list CDP replicas", "GET /cdpReplicas", pathReplicas)
}

// Replica returns one CDP replica (GET /cdpReplicas/{ID}?format=Entity).
func (c *Client) Replica(ctx context.Context, id string) (*Replica, error) {
	op := "get CDP replica " + id
	if !validID(id) {
		return nil, badID(op, "CDP replica", id)
	}
	body, f, status, err := c.get(ctx, op, "GET /cdpReplicas/{id}?format=Entity", pathReplicas+"/"+id+queryEntity)
	if err != nil {
		return nil, err
	}
	r, err := decodeReplica(body, f)
	if err != nil {
		return nil, c.decodeError(op, status, err)
	}
	return r, nil
}

// ReplicaVMs lists the VMs of a CDP replica (GET /cdpReplicas/{ID}/vms).
func (c *Client) ReplicaVMs(ctx context.Context, replicaID string) ([]Ref, error) {
	op := "list VMs of CDP replica " + replicaID
	if !validID(replicaID) {
		return nil, badID(op, "CDP replica", replicaID)
	}
	return c.list(ctx, op, "GET /cdpReplicas/{id}/vms", pathReplicas+"/"+replicaID+"/vms")
}

// ReplicaVM returns one VM of a CDP replica (GET /cdpReplicas/{ID}/vms/{ID}?format=Entity).
func (c *Client) ReplicaVM(ctx context.Context, replicaID, vmID string) (*ReplicaVM, error) {
	op := "get VM " + vmID + " of CDP replica " + replicaID
	if !validID(replicaID) {
		return nil, badID(op, "CDP replica", replicaID)
	}
	if !validID(vmID) {
		return nil, badID(op, "VM", vmID)
	}
	body, f, status, err := c.get(ctx, op, "GET /cdpReplicas/{id}/vms/{id}?format=Entity",
		pathReplicas+"/"+replicaID+"/vms/"+vmID+queryEntity)
	if err != nil {
		return nil, err
	}
	vm, err := decodeReplicaVM(body, f)
	if err != nil {
		return nil, c.decodeError(op, status, err)
	}
	return vm, nil
}

// VApps lists the vApp CDP replicas (GET /cdpReplica/vApps).
func (c *Client) VApps(ctx context.Context) ([]Ref, error) {
	return c.list(ctx, "list vApp CDP replicas", "GET /cdpReplica/vApps", pathVApps)
}

// VApp returns one vApp CDP replica (GET /cdpReplica/vApps/{ID}?format=Entity).
func (c *Client) VApp(ctx context.Context, id string) (*VApp, error) {
	op := "get vApp " + id
	if !validID(id) {
		return nil, badID(op, "vApp", id)
	}
	body, f, status, err := c.get(ctx, op, "GET /cdpReplica/vApps/{id}?format=Entity", pathVApps+"/"+id+queryEntity)
	if err != nil {
		return nil, err
	}
	v, err := decodeVApp(body, f)
	if err != nil {
		return nil, c.decodeError(op, status, err)
	}
	return v, nil
}

// VMIntervals returns the restore intervals and points of a VM between from and to
// (POST …/vms/{ID}?action=intervals). The POST only reads, so it is retried like a GET.
func (c *Client) VMIntervals(ctx context.Context, replicaID, vmID string, from, to time.Time) (*Intervals, error) {
	op := "get restore intervals of VM " + vmID
	if !validID(replicaID) {
		return nil, badID(op, "CDP replica", replicaID)
	}
	if !validID(vmID) {
		return nil, badID(op, "VM", vmID)
	}
	return c.intervals(ctx, op, "POST /cdpReplicas/{id}/vms/{id}?action=intervals",
		pathReplicas+"/"+replicaID+"/vms/"+vmID+"?action=intervals", from, to)
}

// VAppIntervals returns the restore intervals and points of a vApp between from and to.
func (c *Client) VAppIntervals(ctx context.Context, vappID string, from, to time.Time) (*Intervals, error) {
	op := "get restore intervals of vApp " + vappID
	if !validID(vappID) {
		return nil, badID(op, "vApp", vappID)
	}
	return c.intervals(ctx, op, "POST /cdpReplica/vApps/{id}?action=intervals",
		pathVApps+"/"+vappID+"?action=intervals", from, to)
}

func (c *Client) intervals(ctx context.Context, op, endpoint, path string, from, to time.Time) (*Intervals, error) {
	body, err := encodeIntervalsSpec(from, to, c.format)
	if err != nil {
		return nil, &Error{Kind: KindBadRequest, Op: op, Err: err}
	}
	resp, err := c.do(ctx, request{op: op, endpoint: endpoint, method: http.MethodPost, path: path, body: body, idempotent: true})
	if err != nil {
		return nil, err
	}
	in, err := decodeIntervals(resp.body, sniffFormat(resp.body, c.format))
	if err != nil {
		return nil, c.decodeError(op, resp.status, err)
	}
	return in, nil
}

// StartVMFailover starts a failover of one VM to its CDP replica (POST …?action=failover, 202 Task).
// The POST is sent a second time only after a 401 and re-logon; after a 5xx, a timeout or a
// connection error the outcome is unknown and the error says so, because repeating it could fail
// over twice.
func (c *Client) StartVMFailover(ctx context.Context, replicaID, vmID string, r RestoreIntent) (*Task, error) {
	op := "start failover of VM " + vmID
	if !validID(replicaID) {
		return nil, badID(op, "CDP replica", replicaID)
	}
	if !validID(vmID) {
		return nil, badID(op, "VM", vmID)
	}
	return c.failover(ctx, op, "POST /cdpReplicas/{id}/vms/{id}?action=failover",
		pathReplicas+"/"+replicaID+"/vms/"+vmID+"?action=failover", r)
}

// StartVAppFailover starts a failover of a vApp to its CDP replica, with the same no-repeat rule
// as StartVMFailover.
func (c *Client) StartVAppFailover(ctx context.Context, vappID string, r RestoreIntent) (*Task, error) {
	op := "start failover of vApp " + vappID
	if !validID(vappID) {
		return nil, badID(op, "vApp", vappID)
	}
	return c.failover(ctx, op, "POST /cdpReplica/vApps/{id}?action=failover", pathVApps+"/"+vappID+"?action=failover", r)
}

// outcomeUnknown marks a failover POST that got no answer: EM may have started it.
const outcomeUnknown = "no answer, the failover may have started; check restore sessions before trying again"

func (c *Client) failover(ctx context.Context, op, endpoint, path string, r RestoreIntent) (*Task, error) {
	body, err := EncodeFailoverSpecWith(r, c.format, c.pit)
	if err != nil {
		return nil, &Error{Kind: KindBadRequest, Op: op, Err: err}
	}
	resp, err := c.do(ctx, request{op: op, endpoint: endpoint, method: http.MethodPost, path: path, body: body})
	if err != nil {
		var e *Error
		if errors.As(err, &e) && (e.Kind == KindTransport || e.Kind == KindTimeout) && e.Message == "" {
			e.Message = outcomeUnknown
		}
		return nil, err
	}
	t, err := DecodeTask(resp.body, sniffFormat(resp.body, c.format))
	if err != nil {
		// EM accepted the failover; only its task handle is unreadable.
		return nil, c.decodeError(op, resp.status, err)
	}
	t.LogonSession = resp.session
	return t, nil
}

// Task returns a task of the current logon session (GET /tasks/{ID}), whatever session that is.
// Only a caller that just created the task in this session may use it; anything that stored a
// task ID must use TaskIn, because EM numbers tasks per logon session.
func (c *Client) Task(ctx context.Context, id string) (*Task, error) {
	return c.task(ctx, "", id)
}

// TaskIn returns task id of logon session (GET /tasks/{ID}), the SessionId recorded with the
// task (Task.LogonSession). In any other session it sends nothing and returns an error with
// KindNotFound wrapping ErrOtherSession; after a 401 it logs on again but does not repeat the read
// in the new session. Either way: follow the restore session instead.
func (c *Client) TaskIn(ctx context.Context, session, id string) (*Task, error) {
	if session == "" {
		return nil, otherSession("get task "+id, "(not recorded)", c.LogonSession())
	}
	return c.task(ctx, session, id)
}

func (c *Client) task(ctx context.Context, session, id string) (*Task, error) {
	op := "get task " + id
	if !validID(id) {
		return nil, badID(op, "task", id)
	}
	resp, err := c.do(ctx, request{op: op, endpoint: "GET /tasks/{id}", method: http.MethodGet, path: "tasks/" + id,
		idempotent: true, pin: session})
	if err != nil {
		return nil, err
	}
	t, err := DecodeTask(resp.body, sniffFormat(resp.body, c.format))
	if err != nil {
		return nil, c.decodeError(op, resp.status, err)
	}
	t.LogonSession = resp.session
	return t, nil
}

// StopTask asks EM to stop a task of the current logon session (DELETE /tasks/{ID}, 204). Like
// Task, it is for a caller that just created the task; use StopTaskIn for a stored one.
func (c *Client) StopTask(ctx context.Context, id string) error {
	return c.stopTask(ctx, "", id)
}

// StopTaskIn asks EM to stop task id of logon session (DELETE /tasks/{ID}, 204), with TaskIn's
// pinning: in another session nothing is sent (KindNotFound, ErrOtherSession), so the bot never
// stops another failover that reuses the number. What a DELETE does to a failover in flight is
// documented both as "stops the task" and as "removes a task": it is a best-effort stop, never an
// undo, and only the restore session tells what happened.
func (c *Client) StopTaskIn(ctx context.Context, session, id string) error {
	if session == "" {
		return otherSession("stop task "+id, "(not recorded)", c.LogonSession())
	}
	return c.stopTask(ctx, session, id)
}

func (c *Client) stopTask(ctx context.Context, session, id string) error {
	op := "stop task " + id
	if !validID(id) {
		return badID(op, "task", id)
	}
	_, err := c.do(ctx, request{op: op, endpoint: "DELETE /tasks/{id}", method: http.MethodDelete, path: "tasks/" + id, pin: session})
	return err
}

// RestoreSession returns a restore session, the real outcome of a failover
// (GET /restoreSessions/{ID}?format=Entity).
func (c *Client) RestoreSession(ctx context.Context, id string) (*RestoreSession, error) {
	op := "get restore session " + id
	if !validID(id) {
		return nil, badID(op, "restore session", id)
	}
	body, f, status, err := c.get(ctx, op, "GET /restoreSessions/{id}?format=Entity", "restoreSessions/"+id+queryEntity)
	if err != nil {
		return nil, err
	}
	rs, err := DecodeRestoreSession(body, f)
	if err != nil {
		return nil, c.decodeError(op, status, err)
	}
	return rs, nil
}

// RestoreSessions lists restore sessions of the last 30 days (GET /restoreSessions).
func (c *Client) RestoreSessions(ctx context.Context) ([]Ref, error) {
	return c.list(ctx, "list restore sessions", "GET /restoreSessions", "restoreSessions")
}

// For reports whether s is a restore session of the VM or vApp called name (case-insensitive)
// created at or after since. EM writes CreationTimeUTC in whole seconds, so since is compared at
// that precision: a session created in the same second is not missed.
func (s *RestoreSession) For(name string, since time.Time) bool {
	return strings.EqualFold(s.VMDisplayName, name) && !s.Created.Before(since.Truncate(time.Second))
}
