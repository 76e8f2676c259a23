package emsim

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"
)

// Script says how a failover of one target (VM ID or vApp ID) plays out, relative to the POST.
// A zero Running or Collect makes that phase instantaneous; the built-in default (used when no
// script is set for the target and no default script is set) is Running 30s, Collect 5s, Success.
type Script struct {
	// RejectStart, if non-zero, makes the failover POST answer this status (e.g. 500) with an
	// <Error Message=RejectMessage>; no task or restore session is created.
	RejectStart   int
	RejectMessage string
	// Running is how long the task stays Running; its restore session is Starting for the first
	// tenth of it, then Working with Progress rising linearly from 0 to 99.
	Running time.Duration
	// Collect is how long the task then stays OperationFinished (done on the backup server, not
	// yet collected by EM) before it is Finished.
	Collect time.Duration
	// Result is the restore session's result: "Success" (default), "Warning" or "Failed".
	// The task's Result Success is false only for "Failed".
	Result string
	// Message is the restore session's FailureMessage (Warning, Failed) and the task's Result
	// message; defaults: "Ok", "Failover completed with warnings", "Failover failed".
	Message string
}

// Restore session results.
const (
	ResultSuccess = "Success"
	ResultWarning = "Warning"
	ResultFailed  = "Failed"
)

var builtinScript = Script{Running: 30 * time.Second, Collect: 5 * time.Second, Result: ResultSuccess}

func normalizeScript(sc Script) Script {
	switch sc.Result {
	case "":
		sc.Result = ResultSuccess
	case ResultSuccess, ResultWarning, ResultFailed:
	default:
		panic(fmt.Sprintf("emsim: Script.Result %q: want Success, Warning or Failed", sc.Result))
	}
	if sc.Running < 0 || sc.Collect < 0 {
		panic("emsim: Script durations must not be negative")
	}
	return sc
}

// SetScript sets how failovers of targetID (a VM ID or vApp ID) play out from now on. It panics
// on a Result other than "", Success, Warning, Failed.
func (s *Server) SetScript(targetID string, sc Script) {
	sc = normalizeScript(sc)
	s.mu.Lock()
	s.scripts[targetID] = sc
	s.mu.Unlock()
}

// SetDefaultScript sets how failovers of targets without their own script play out.
func (s *Server) SetDefaultScript(sc Script) {
	sc = normalizeScript(sc)
	s.mu.Lock()
	s.defaultScript = &sc
	s.mu.Unlock()
}

// IntentKind names the restore point a failover asked for (the same words as store.Intent).
type IntentKind string

// Restore intents, one per accepted CdpFailoverStartSpec shape.
const (
	IntentLatest      IntentKind = "latest"        // RestoreCurrent=true
	IntentLatestVSS   IntentKind = "latest-vss"    // RestoreCurrentVss=true
	IntentPointInTime IntentKind = "point-in-time" // RestoreAtPointinTime (XML) / RestoreAtPointInTime (JSON)
	IntentInterval    IntentKind = "interval"      // RestoreAtInterval
)

// Intent is a decoded restore intent; Time (UTC) is set for point-in-time and interval only.
type Intent struct {
	Kind IntentKind
	Time time.Time
}

// TargetKind says whether a failover was for a VM or a vApp.
type TargetKind string

// Failover target kinds (the same words as store.Kind).
const (
	TargetVM   TargetKind = "vm"
	TargetVApp TargetKind = "vapp"
)

// Failover records one accepted failover POST (one that created a task), so tests can check what
// the server understood, not only what bytes it received.
type Failover struct {
	TaskID           string
	LogonSessionID   string // the SessionId GUID of the logon session that started it, not its token
	Kind             TargetKind
	ReplicaID        string // VM failovers only
	TargetID         string
	TargetName       string
	Intent           Intent
	RestoreSessionID string
	At               time.Time
}

// Failovers returns every accepted failover in order. (An addition to the shared contract.)
func (s *Server) Failovers() []Failover {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.failovers)
}

type taskKey struct{ session, id string }

// task is a failover task; its life is derived from its run at read time.
type task struct {
	id      string
	session string // SessionId of the creating logon session
	run     *run
}

// run is one failover's timeline, shared by its task and its restore session.
type run struct {
	rsID    string
	name    string // restore session Name
	vmName  string // VmDisplayName: the VM or vApp name
	created time.Time
	sc      Script
	stopped time.Time // set when DELETE /tasks/{id} stopped it while running
}

// phase is a run's state at one instant.
type phase struct {
	taskState string
	done      bool // task Finished: Result present
	success   bool
	message   string

	rsState  string
	rsResult string
	progress int
	ended    time.Time
	failure  string
}

const stoppedByUser = "Stopped by user"

func (r *run) at(now time.Time) phase {
	if !r.stopped.IsZero() {
		return phase{
			taskState: "Finished", done: true, success: false, message: stoppedByUser,
			rsState: "Stopped", rsResult: ResultFailed, progress: 100, ended: r.stopped, failure: stoppedByUser,
		}
	}
	el := max(now.Sub(r.created), 0)
	running, collect := r.sc.Running, r.sc.Collect
	if el < running {
		p := phase{taskState: "Running", rsResult: "None"}
		starting := running / 10
		if el < starting {
			p.rsState = "Starting"
		} else {
			p.rsState = "Working"
			p.progress = int(int64(99) * int64(el-starting) / int64(running-starting))
		}
		return p
	}
	p := phase{rsState: "Stopped", rsResult: r.sc.Result, progress: 100, ended: r.created.Add(running)}
	msg := r.sc.Message
	switch r.sc.Result {
	case ResultSuccess:
		if msg == "" {
			msg = "Ok"
		}
	case ResultWarning:
		if msg == "" {
			msg = "Failover completed with warnings"
		}
		p.failure = msg
	case ResultFailed:
		if msg == "" {
			msg = "Failover failed"
		}
		p.failure = msg
	}
	if el < running+collect {
		p.taskState = "OperationFinished"
		return p
	}
	p.taskState, p.done, p.success, p.message = "Finished", true, r.sc.Result != ResultFailed, msg
	return p
}

// running reports whether DELETE can still stop the run.
func (r *run) running(now time.Time) bool {
	return r.stopped.IsZero() && now.Sub(r.created) < r.sc.Running
}

func (s *Server) scriptFor(id string) Script {
	if sc, ok := s.scripts[id]; ok {
		return sc
	}
	if s.defaultScript != nil {
		return *s.defaultScript
	}
	return builtinScript
}

// startFailover creates the task and restore session (or rejects as scripted) and answers 202.
// The 202 body is the seed's: Delete link only. Later GETs also carry the Related restore
// session link, even while running (a choice: the docs only show it on a finished task).
func (s *Server) startFailover(c *call, t target, in Intent) {
	s.mu.Lock()
	sc := s.scriptFor(t.id)
	if sc.RejectStart != 0 {
		s.mu.Unlock()
		msg := sc.RejectMessage
		if msg == "" {
			msg = http.StatusText(sc.RejectStart)
		}
		c.fail(sc.RejectStart, msg)
		return
	}
	c.sess.nextTask++
	tk := &task{
		id:      "task-" + strconv.Itoa(c.sess.nextTask),
		session: c.sess.id,
		run: &run{
			rsID:    s.newID(),
			name:    "CDP failover " + t.name,
			vmName:  t.name,
			created: c.now,
			sc:      sc,
		},
	}
	s.tasks[taskKey{tk.session, tk.id}] = tk
	s.tasksByID[tk.id] = append(s.tasksByID[tk.id], tk)
	s.restoreSessions[tk.run.rsID] = tk.run
	s.runs = append(s.runs, tk.run)
	s.failovers = append(s.failovers, Failover{
		TaskID: tk.id, LogonSessionID: tk.session, Kind: t.kind, ReplicaID: t.replicaID,
		TargetID: t.id, TargetName: t.name, Intent: in, RestoreSessionID: tk.run.rsID, At: c.now,
	})
	doc := c.taskDoc(tk, c.now)
	s.mu.Unlock()
	doc.Links = doc.Links[:1]
	c.ok(http.StatusAccepted, doc)
}

// taskDoc renders a task at now. Call with s.mu held (the run may be stopped concurrently).
func (c *call) taskDoc(tk *task, now time.Time) taskDoc {
	href := c.base + "/tasks/" + tk.id
	p := tk.run.at(now)
	doc := taskDoc{taskBody: taskBody{
		Type: "Task", Href: href,
		Links: []link{
			{Rel: "Delete", Href: href, Type: "Task"},
			{Rel: "Related", Href: c.base + "/restoreSessions/" + tk.run.rsID + "?format=Entity", Type: "RestoreSession"},
		},
		TaskID: tk.id, State: p.taskState, Operation: "StartFailover",
	}}
	if p.done {
		doc.Result = &taskResultDoc{Success: p.success, Message: p.message}
	}
	return doc
}

// lookupTask finds a task for the calling session. Call with s.mu held.
func (s *Server) lookupTask(c *call, id string) *task {
	if s.cfg.TaskScoped {
		return s.tasks[taskKey{c.sess.id, id}]
	}
	if l := s.tasksByID[id]; len(l) > 0 {
		return l[len(l)-1]
	}
	return nil
}

func (s *Server) getTask(c *call) {
	s.mu.Lock()
	tk := s.lookupTask(c, c.params[0])
	if tk == nil {
		s.mu.Unlock()
		c.fail(http.StatusNotFound, "Task "+c.params[0]+" was not found")
		return
	}
	doc := c.taskDoc(tk, c.now)
	s.mu.Unlock()
	c.ok(http.StatusOK, doc)
}

// deleteTask stops a running task: it ends Finished with Success=false "Stopped by user" and its
// restore session Stopped/Failed. A task past Running is left as it is; either way the answer is
// 204, as EM documents.
func (s *Server) deleteTask(c *call) {
	s.mu.Lock()
	tk := s.lookupTask(c, c.params[0])
	if tk == nil {
		s.mu.Unlock()
		c.fail(http.StatusNotFound, "Task "+c.params[0]+" was not found")
		return
	}
	if tk.run.running(c.now) {
		tk.run.stopped = c.now
	}
	s.mu.Unlock()
	c.w.WriteHeader(http.StatusNoContent)
}

// listTasks is GET /tasks: the calling logon session's tasks only, oldest first.
func (s *Server) listTasks(c *call) {
	doc := tasksDoc{Tasks: []taskBody{}}
	s.mu.Lock()
	for n := 1; n <= c.sess.nextTask; n++ {
		if tk, ok := s.tasks[taskKey{c.sess.id, "task-" + strconv.Itoa(n)}]; ok {
			doc.Tasks = append(doc.Tasks, c.taskDoc(tk, c.now).taskBody)
		}
	}
	s.mu.Unlock()
	c.ok(http.StatusOK, doc)
}

// restoreSessionRetention is how far back GET /restoreSessions lists, as EM documents.
const restoreSessionRetention = 30 * 24 * time.Hour

func (c *call) restoreSessionRef(r *run) ref {
	href := c.base + "/restoreSessions/" + r.rsID
	return ref{
		Type: "RestoreSessionReference", Href: href, Name: r.name, UID: "urn:veeam:RestoreSession:" + r.rsID,
		Links: []link{{Rel: "Alternate", Href: href + "?format=Entity", Name: r.name, Type: "RestoreSession"}},
	}
}

func (s *Server) listRestoreSessions(c *call) {
	doc := entityReferencesDoc{Refs: []ref{}}
	s.mu.Lock()
	for _, r := range s.runs {
		if c.now.Sub(r.created) <= restoreSessionRetention {
			doc.Refs = append(doc.Refs, c.restoreSessionRef(r))
		}
	}
	s.mu.Unlock()
	c.ok(http.StatusOK, doc)
}

func (s *Server) getRestoreSession(c *call) {
	entity, ok := wantEntity(c)
	if !ok {
		return
	}
	s.mu.Lock()
	r, found := s.restoreSessions[c.params[0]]
	var p phase
	if found {
		p = r.at(c.now)
	}
	s.mu.Unlock()
	if !found {
		c.fail(http.StatusNotFound, "Restore session "+c.params[0]+" was not found")
		return
	}
	if !entity {
		c.ok(http.StatusOK, entityRefDoc{ref: c.restoreSessionRef(r)})
		return
	}
	href := c.base + "/restoreSessions/" + r.rsID
	doc := restoreSessionDoc{
		Href: href + "?format=Entity", Type: "RestoreSession", Name: r.name,
		UID: "urn:veeam:RestoreSession:" + r.rsID, VMDisplayName: r.vmName,
		Links:           []link{{Rel: "Alternate", Href: href, Name: r.name, Type: "RestoreSessionReference"}},
		JobType:         "CdpFailover",
		CreationTimeUTC: fmtTime(r.created),
		State:           p.rsState,
		Result:          p.rsResult,
		Progress:        p.progress,
		FailureMessage:  p.failure,
	}
	if !p.ended.IsZero() {
		doc.EndTimeUTC = fmtTime(p.ended)
	}
	c.ok(http.StatusOK, doc)
}

// Forget simulates an EM restart: every task is forgotten (GET /tasks/{id} answers 404), restore
// sessions are kept (GET /restoreSessions still lists them). Task numbering in live logon
// sessions continues, so a forgotten task ID is not silently reused within a session.
func (s *Server) Forget() {
	s.mu.Lock()
	s.tasks = map[taskKey]*task{}
	s.tasksByID = map[string][]*task{}
	s.mu.Unlock()
}
