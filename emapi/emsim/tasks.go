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
//
// Precedence when several switches are set: RejectStart (no task at all), then AsyncFailure (a
// task but no restore session), then the restore session switches.
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

	// NoRelatedLink makes the task never carry its Rel="Related" Type="RestoreSession" link, not
	// while running and not when finished: the docs show the link only on one example, so a
	// client must find the outcome without it (GET /restoreSessions, /query).
	NoRelatedLink bool
	// TaskFinishesEarly makes the task Finished with Result Success="true" ("Ok") as soon as the
	// restore session leaves Starting (after Running/10), while the restore session keeps Working
	// until Running ends and then ends with Result: a finished, successful task is not a finished,
	// successful failover. Collect does not apply to the task then.
	TaskFinishesEarly bool
	// AsyncFailure, if non-empty, makes the POST answer 202 with a task as usual, but no restore
	// session is ever created (none listed, none queryable, no Related link): the task is Running
	// for Running, then Finished with Success="false" and this message. The target stays Ready.
	AsyncFailure string
	// StoppedNoResult makes the restore session end Stopped with Result None and no
	// FailureMessage (whatever Result says), and the task Finished Success="true": an outcome
	// that proves nothing. The simulator treats the target as failed over (Failover state).
	StoppedNoResult bool
}

// Restore session results.
const (
	ResultSuccess = "Success"
	ResultWarning = "Warning"
	ResultFailed  = "Failed"
	// ResultNone is the Result of a restore session that is still running (or, with
	// Script.StoppedNoResult, one that ended without a result).
	ResultNone = "None"
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
	IntentPointInTime IntentKind = "point-in-time" // the Config.PointInTimeElement element
	IntentInterval    IntentKind = "interval"      // RestoreAtInterval
)

// Intent is a decoded restore intent; Time (UTC) is set for point-in-time and interval only.
// The zero Intent (empty Kind) means the body selected nothing (lenient mode only).
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
	TaskID         string
	LogonSessionID string // the SessionId GUID of the logon session that started it, not its token
	Kind           TargetKind
	ReplicaID      string // VM failovers only
	TargetID       string
	TargetName     string
	// Intent is what the body selected after decoding. In lenient mode, when skipped elements
	// left nothing selected, it is the zero Intent (Kind "").
	Intent Intent
	// Used is the restore point the server actually used: Intent in strict mode and whenever the
	// body selected one; the latest state (IntentLatest) when a lenient read left nothing selected.
	Used Intent
	// RestoreSessionID is empty for a Script.AsyncFailure: no restore session was created.
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

// run is one failover's timeline, shared by its task and its restore session, or (seed != nil) a
// restore session planted by AddRestoreSession with a fixed state and no task.
type run struct {
	rsID     string // "" for a Script.AsyncFailure: no restore session exists
	name     string // restore session Name
	vmName   string // VmDisplayName: the VM or vApp name
	jobType  string
	targetID string
	created  time.Time
	sc       Script
	stopped  time.Time // set when DELETE /tasks/{id} stopped it while running
	// failedBack is set by Failback: the run no longer holds its target in the Failover state.
	failedBack bool
	seed       *RestoreSessionSeed
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

// Task states.
const (
	taskRunning           = "Running"
	taskOperationFinished = "OperationFinished"
	taskFinished          = "Finished"
)

const stoppedByUser = "Stopped by user"

// failoverJobType is the JobType of a failover's restore session. EM's real value for a CDP
// failover is undocumented; a client should match on VM name and creation time, and must not
// adopt a session of another kind (e.g. "FileLevelRestore") for the same VM.
const failoverJobType = "CdpFailover"

func (r *run) at(now time.Time) phase {
	if sd := r.seed; sd != nil {
		return phase{rsState: sd.State, rsResult: sd.Result, progress: sd.Progress, ended: sd.Ended, failure: sd.FailureMessage}
	}
	if !r.stopped.IsZero() {
		p := phase{taskState: taskFinished, done: true, success: false, message: stoppedByUser}
		if r.rsID != "" {
			p.rsState, p.rsResult, p.progress, p.ended, p.failure = "Stopped", ResultFailed, 100, r.stopped, stoppedByUser
		}
		return p
	}
	el := max(now.Sub(r.created), 0)
	running, collect := r.sc.Running, r.sc.Collect
	if r.sc.AsyncFailure != "" {
		if el < running {
			return phase{taskState: taskRunning}
		}
		return phase{taskState: taskFinished, done: true, success: false, message: r.sc.AsyncFailure}
	}
	starting := running / 10
	early := r.sc.TaskFinishesEarly && el >= starting
	if el < running {
		p := phase{taskState: taskRunning, rsResult: ResultNone}
		if el < starting {
			p.rsState = "Starting"
		} else {
			p.rsState = "Working"
			p.progress = int(int64(99) * int64(el-starting) / int64(running-starting))
		}
		if early {
			p.taskState, p.done, p.success, p.message = taskFinished, true, true, "Ok"
		}
		return p
	}
	p := phase{rsState: "Stopped", rsResult: r.sc.Result, progress: 100, ended: r.created.Add(running)}
	msg := r.sc.Message
	switch {
	case r.sc.StoppedNoResult:
		p.rsResult = ResultNone
		if msg == "" {
			msg = "Ok"
		}
	case r.sc.Result == ResultSuccess:
		if msg == "" {
			msg = "Ok"
		}
	case r.sc.Result == ResultWarning:
		if msg == "" {
			msg = "Failover completed with warnings"
		}
		p.failure = msg
	case r.sc.Result == ResultFailed:
		if msg == "" {
			msg = "Failover failed"
		}
		p.failure = msg
	}
	switch {
	case early:
		p.taskState, p.done, p.success, p.message = taskFinished, true, true, "Ok"
	case el < running+collect:
		p.taskState = taskOperationFinished
	default:
		p.taskState, p.done, p.success, p.message = taskFinished, true, p.rsResult != ResultFailed, msg
	}
	return p
}

// holdsTarget reports whether the run keeps its target out of the Ready state at now: a failover
// holds its target while its task or restore session is still going (running or collecting), and
// afterwards unless it ended Failed (a DELETE stop counts as Failed) or never had a restore
// session (AsyncFailure). Success, Warning and a result-less stop (StoppedNoResult) leave the
// target in the Failover state until Failback.
func (r *run) holdsTarget(now time.Time) bool {
	if r.seed != nil || r.failedBack {
		return false
	}
	p := r.at(now)
	if r.rsID == "" {
		return !p.done
	}
	if p.taskState != taskFinished || p.rsState != "Stopped" {
		return true
	}
	return p.rsResult != ResultFailed
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

// inFailover reports whether a failover of targetID holds it in the Failover state. Call with
// s.mu held.
func (s *Server) inFailover(targetID string, now time.Time) bool {
	for _, r := range s.byTarget[targetID] {
		if r.holdsTarget(now) {
			return true
		}
	}
	return false
}

// Failback makes targetID (a VM ID or vApp ID) Ready again, as a failback or undo done outside EM
// REST would: every failover of it so far stops holding it in the Failover state. (EM's REST API
// has no such call; this is for tests.) It panics on an ID that is not in the inventory.
func (s *Server) Failback(targetID string) {
	if !s.inv.hasTarget(targetID) {
		panic(fmt.Sprintf("emsim: Failback: %q is not a VM or vApp ID of the inventory", targetID))
	}
	s.mu.Lock()
	for _, r := range s.byTarget[targetID] {
		r.failedBack = true
	}
	s.mu.Unlock()
}

// addRestoreSession files r among the restore sessions, keeping s.runs in creation order (a
// planted session may be older than existing ones). Call with s.mu held.
func (s *Server) addRestoreSession(r *run) {
	s.restoreSessions[r.rsID] = r
	i := len(s.runs)
	for i > 0 && s.runs[i-1].created.After(r.created) {
		i--
	}
	s.runs = slices.Insert(s.runs, i, r)
}

// startFailover creates the task and restore session (or rejects as scripted) and answers 202.
// The 202 body is the seed's: Delete link only. Later GETs also carry the Related restore
// session link, even while running (a choice: the docs only show it on a finished task), unless
// the script says NoRelatedLink.
func (s *Server) startFailover(c *call, t target, asked, used Intent) {
	s.mu.Lock()
	if !s.cfg.AllowRepeatFailover && s.inFailover(t.id, c.now) {
		s.mu.Unlock()
		c.fail(http.StatusBadRequest, "Cannot start failover of "+t.name+": the CDP replica is in the Failover state; failover needs the Ready state")
		return
	}
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
	r := &run{name: "CDP failover " + t.name, vmName: t.name, jobType: failoverJobType, targetID: t.id, created: c.now, sc: sc}
	if sc.AsyncFailure == "" {
		r.rsID = s.newID()
		s.addRestoreSession(r)
	}
	tk := &task{id: "task-" + strconv.Itoa(c.sess.nextTask), session: c.sess.id, run: r}
	s.tasks[taskKey{tk.session, tk.id}] = tk
	s.tasksByID[tk.id] = append(s.tasksByID[tk.id], tk)
	s.byTarget[t.id] = append(s.byTarget[t.id], r)
	s.failovers = append(s.failovers, Failover{
		TaskID: tk.id, LogonSessionID: tk.session, Kind: t.kind, ReplicaID: t.replicaID,
		TargetID: t.id, TargetName: t.name, Intent: asked, Used: used, RestoreSessionID: r.rsID, At: c.now,
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
		Links:  []link{{Rel: "Delete", Href: href, Type: "Task"}},
		TaskID: tk.id, State: p.taskState, Operation: "StartFailover",
	}}
	if tk.run.rsID != "" && !tk.run.sc.NoRelatedLink {
		doc.Links = append(doc.Links, link{Rel: "Related", Href: c.base + "/restoreSessions/" + tk.run.rsID + "?format=Entity", Type: "RestoreSession"})
	}
	if p.done {
		doc.Result = &taskResultDoc{Success: p.success, Message: p.message}
	}
	return doc
}

// lookupTask finds a task for the calling session: by default only among the tasks the calling
// logon session created (EM's behaviour); with Config.TasksAcrossSessions the newest task of that
// ID from any session. Call with s.mu held.
func (s *Server) lookupTask(c *call, id string) *task {
	if !s.cfg.TasksAcrossSessions {
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

// deleteTask answers 204, as EM documents, for a task the session can see. By default it stops a
// task that is still Running: the task ends Finished with Success=false "Stopped by user" and its
// restore session Stopped/Failed; a task past Running is left as it is. With
// Config.DeleteOnlyRemoves (the v13 "Removes a task" reading) it removes the task instead (a
// later GET of it is a 404) and the failover carries on to its scripted end.
func (s *Server) deleteTask(c *call) {
	s.mu.Lock()
	tk := s.lookupTask(c, c.params[0])
	if tk == nil {
		s.mu.Unlock()
		c.fail(http.StatusNotFound, "Task "+c.params[0]+" was not found")
		return
	}
	switch {
	case s.cfg.DeleteOnlyRemoves:
		delete(s.tasks, taskKey{tk.session, tk.id})
		s.tasksByID[tk.id] = slices.DeleteFunc(s.tasksByID[tk.id], func(x *task) bool { return x == tk })
	case tk.run.stopped.IsZero() && tk.run.at(c.now).taskState == taskRunning:
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

// restoreSessionRetention is how far back GET /restoreSessions and /query list, as EM documents.
const restoreSessionRetention = 30 * 24 * time.Hour

// retained reports whether GET /restoreSessions and /query still list r at now.
func (r *run) retained(now time.Time) bool { return now.Sub(r.created) <= restoreSessionRetention }

func (c *call) restoreSessionRef(r *run) ref {
	href := c.base + "/restoreSessions/" + r.rsID
	return ref{
		Type: "RestoreSessionReference", Href: href, Name: r.name, UID: "urn:veeam:RestoreSession:" + r.rsID,
		Links: []link{{Rel: "Alternate", Href: href + "?format=Entity", Name: r.name, Type: "RestoreSession"}},
	}
}

// restoreSessionBody is the entity form of r in phase p.
func (c *call) restoreSessionBody(r *run, p phase) restoreSessionBody {
	href := c.base + "/restoreSessions/" + r.rsID
	b := restoreSessionBody{
		Href: href + "?format=Entity", Type: "RestoreSession", Name: r.name,
		UID: "urn:veeam:RestoreSession:" + r.rsID, VMDisplayName: r.vmName,
		Links:           []link{{Rel: "Alternate", Href: href, Name: r.name, Type: "RestoreSessionReference"}},
		JobType:         r.jobType,
		CreationTimeUTC: fmtTime(r.created),
		State:           p.rsState,
		Result:          p.rsResult,
		Progress:        p.progress,
		FailureMessage:  p.failure,
	}
	if !p.ended.IsZero() {
		b.EndTimeUTC = fmtTime(p.ended)
	}
	return b
}

func (s *Server) listRestoreSessions(c *call) {
	doc := entityReferencesDoc{Refs: []ref{}}
	s.mu.Lock()
	for _, r := range s.runs {
		if r.retained(c.now) {
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
	c.ok(http.StatusOK, restoreSessionDoc{restoreSessionBody: c.restoreSessionBody(r, p)})
}

// RestoreSessionSeed describes a restore session planted with AddRestoreSession: any kind of
// restore (not only a CDP failover), in a fixed state that does not change with time.
type RestoreSessionSeed struct {
	// VMName is the VmDisplayName; required.
	VMName string
	// JobType is e.g. "FileLevelRestore" or "CdpFailover"; required.
	JobType string
	// Name is the session's Name; default JobType + " " + VMName.
	Name string
	// Created is CreationTimeUTC; default Config.Now at the call. Retention (30 days) counts
	// from it.
	Created time.Time
	// Ended is EndTimeUTC; zero means absent (still running).
	Ended time.Time
	// State is Starting, Working, Stopping or Stopped; default Stopped.
	State string
	// Result is Success, Warning, Failed or None; default Success.
	Result string
	// Progress is 0 to 100, written as given.
	Progress int
	// FailureMessage is optional.
	FailureMessage string
}

// AddRestoreSession plants a restore session that shows in GET /restoreSessions,
// GET /restoreSessions/{id} and /query like a failover's own, and returns its GUID. It is not a
// failover: no task, no Failovers entry, no effect on a target's Ready state. Use it to check
// that a client does not adopt another kind of restore of a same-named VM. It panics on an empty
// VMName or JobType, an unknown State or Result, or a Progress outside 0..100.
func (s *Server) AddRestoreSession(rs RestoreSessionSeed) string {
	if rs.VMName == "" || rs.JobType == "" {
		panic("emsim: AddRestoreSession: VMName and JobType are required")
	}
	if rs.State == "" {
		rs.State = "Stopped"
	}
	if rs.Result == "" {
		rs.Result = ResultSuccess
	}
	if !slices.Contains([]string{"Starting", "Working", "Stopping", "Stopped"}, rs.State) {
		panic(fmt.Sprintf("emsim: AddRestoreSession: State %q: want Starting, Working, Stopping or Stopped", rs.State))
	}
	if !slices.Contains([]string{ResultSuccess, ResultWarning, ResultFailed, ResultNone}, rs.Result) {
		panic(fmt.Sprintf("emsim: AddRestoreSession: Result %q: want Success, Warning, Failed or None", rs.Result))
	}
	if rs.Progress < 0 || rs.Progress > 100 {
		panic(fmt.Sprintf("emsim: AddRestoreSession: Progress %d: want 0 to 100", rs.Progress))
	}
	if rs.Name == "" {
		rs.Name = rs.JobType + " " + rs.VMName
	}
	if rs.Created.IsZero() {
		rs.Created = s.cfg.Now()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r := &run{rsID: s.newID(), name: rs.Name, vmName: rs.VMName, jobType: rs.JobType, created: rs.Created, seed: &rs}
	s.addRestoreSession(r)
	return r.rsID
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
