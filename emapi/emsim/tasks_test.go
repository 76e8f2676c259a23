package emsim

import (
	"cmp"
	"net/http"
	"strings"
	"testing"
	"time"
)

// taskView and sessionView are what a test reads from the task and restore session documents.
type taskView struct {
	State  string `xml:"State" json:"State"`
	Result *struct {
		Success bool   `xml:"Success,attr" json:"Success"`
		Message string `xml:"Message" json:"Message"`
	} `xml:"Result" json:"Result"`
	Links []struct {
		Rel  string `xml:"Rel,attr" json:"Rel"`
		Href string `xml:"Href,attr" json:"Href"`
	} `xml:"Links>Link" json:"Links"`
}

func (v taskView) related() string {
	for _, l := range v.Links {
		if l.Rel == "Related" {
			return l.Href
		}
	}
	return ""
}

type sessionView struct {
	State, Result, EndTimeUTC, FailureMessage string
	Progress                                  int
}

func (m *sim) task(tok, id string) taskView {
	m.t.Helper()
	r := m.get(tok, "/api/tasks/"+id)
	wantStatus(m.t, r, http.StatusOK)
	var v taskView
	if err := decodeAnswer(r.body, &v); err != nil {
		m.t.Fatalf("task %s: %v", id, err)
	}
	return v
}

func (m *sim) restoreSession(tok, id string) sessionView {
	m.t.Helper()
	r := m.get(tok, "/api/restoreSessions/"+id+"?format=Entity")
	wantStatus(m.t, r, http.StatusOK)
	var v sessionView
	if err := decodeAnswer(r.body, &v); err != nil {
		m.t.Fatalf("restore session %s: %v", id, err)
	}
	return v
}

// rs1 is the restore session GUID of the first failover after one logon (GUIDs 1 and 2 are the
// SessionId and the token).
const rs1 = "00000000-0000-4000-8000-000000000003"

func TestTaskLife(t *testing.T) {
	type point struct {
		at                     time.Duration
		task                   string // task State
		success                string // "", "true", "false": task Result
		message                string
		rsState, rsResult, end string
		progress               int
		failure                string
	}
	const end = "2021-02-17T15:33:20" // t0 + Running (100s)
	tests := []struct {
		name   string
		script Script
		points []point
	}{
		{"success", Script{Running: 100 * time.Second, Collect: 10 * time.Second}, []point{
			{at: 0, task: "Running", rsState: "Starting", rsResult: "None"},
			{at: 9 * time.Second, task: "Running", rsState: "Starting", rsResult: "None"},
			{at: 10 * time.Second, task: "Running", rsState: "Working", rsResult: "None", progress: 0},
			{at: 55 * time.Second, task: "Running", rsState: "Working", rsResult: "None", progress: 49},
			{at: 99 * time.Second, task: "Running", rsState: "Working", rsResult: "None", progress: 97},
			{at: 100 * time.Second, task: "OperationFinished", rsState: "Stopped", rsResult: "Success", progress: 100, end: end},
			{at: 109 * time.Second, task: "OperationFinished", rsState: "Stopped", rsResult: "Success", progress: 100, end: end},
			{at: 110 * time.Second, task: "Finished", success: "true", message: "Ok", rsState: "Stopped", rsResult: "Success", progress: 100, end: end},
			{at: 48 * time.Hour, task: "Finished", success: "true", message: "Ok", rsState: "Stopped", rsResult: "Success", progress: 100, end: end},
		}},
		{"warning", Script{Running: 100 * time.Second, Collect: 10 * time.Second, Result: ResultWarning}, []point{
			{at: 50 * time.Second, task: "Running", rsState: "Working", rsResult: "None", progress: 44},
			{at: 105 * time.Second, task: "OperationFinished", rsState: "Stopped", rsResult: "Warning", progress: 100, end: end, failure: "Failover completed with warnings"},
			{at: 110 * time.Second, task: "Finished", success: "true", message: "Failover completed with warnings", rsState: "Stopped", rsResult: "Warning", progress: 100, end: end, failure: "Failover completed with warnings"},
		}},
		{"failed", Script{Running: 100 * time.Second, Collect: 10 * time.Second, Result: ResultFailed, Message: "Replica disk not found"}, []point{
			{at: 5 * time.Second, task: "Running", rsState: "Starting", rsResult: "None"},
			{at: 100 * time.Second, task: "OperationFinished", rsState: "Stopped", rsResult: "Failed", progress: 100, end: end, failure: "Replica disk not found"},
			{at: 110 * time.Second, task: "Finished", success: "false", message: "Replica disk not found", rsState: "Stopped", rsResult: "Failed", progress: 100, end: end, failure: "Replica disk not found"},
		}},
		{"instant", Script{}, []point{
			{at: 0, task: "Finished", success: "true", message: "Ok", rsState: "Stopped", rsResult: "Success", progress: 100, end: "2021-02-17T15:31:40"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newSim(t, Config{SessionIdle: 1000 * time.Hour})
			m.s.SetScript(finDB, tt.script)
			tok, _ := m.logon()
			m.failover(tok, vmFailover)
			at := time.Duration(0)
			for _, p := range tt.points {
				m.clock.Advance(p.at - at)
				at = p.at
				tv := m.task(tok, "task-1")
				success, message := "", ""
				if tv.Result != nil {
					success, message = map[bool]string{true: "true", false: "false"}[tv.Result.Success], tv.Result.Message
				}
				if tv.State != p.task || success != p.success || message != p.message {
					t.Errorf("at %v: task got %s/%q/%q, want %s/%q/%q", p.at, tv.State, success, message, p.task, p.success, p.message)
				}
				if want := "http://HOST/api/restoreSessions/" + rs1 + "?format=Entity"; tv.related() != want {
					t.Errorf("at %v: Related link got %q, want %q", p.at, tv.related(), want)
				}
				got := m.restoreSession(tok, rs1)
				want := sessionView{State: p.rsState, Result: p.rsResult, Progress: p.progress, EndTimeUTC: p.end, FailureMessage: p.failure}
				if got != want {
					t.Errorf("at %v: restore session got %+v, want %+v", p.at, got, want)
				}
			}
		})
	}
}

func TestTaskBodies(t *testing.T) {
	m := newSim(t, Config{})
	m.s.SetDefaultScript(Script{Running: 20 * time.Second, Collect: 5 * time.Second, Result: ResultFailed, Message: "Failed to power on"})
	tok, _ := m.logon()

	// The 202 answer is the seed's, Delete link only.
	r := m.failover(tok, vmFailover)
	wantBody(t, r, `<Task xmlns="http://www.veeam.com/ent/v1.0" Type="Task" Href="http://HOST/api/tasks/task-1"><Links>`+
		`<Link Rel="Delete" Href="http://HOST/api/tasks/task-1" Type="Task"></Link></Links>`+
		`<TaskId>task-1</TaskId><State>Running</State><Operation>StartFailover</Operation></Task>`)
	r = m.do(req{method: "POST", path: "/api/cdpReplica/vApps/" + erp + "?action=failover", token: tok, accept: "application/json", contentType: "application/json",
		body: `{"RestoreCurrent":false,"RestoreCurrentVss":true}`})
	wantStatus(t, r, http.StatusAccepted)
	wantBody(t, r, "\xEF\xBB\xBF"+`{"Type":"Task","Href":"http://HOST/api/tasks/task-2","Links":[{"Rel":"Delete","Href":"http://HOST/api/tasks/task-2","Type":"Task"}],`+
		`"TaskId":"task-2","State":"Running","Operation":"StartFailover"}`)

	m.clock.Advance(10 * time.Second)
	wantBody(t, m.get(tok, "/api/restoreSessions/"+rs1+"?format=Entity"),
		`<RestoreSession xmlns="http://www.veeam.com/ent/v1.0" Href="http://HOST/api/restoreSessions/`+rs1+`?format=Entity" Type="RestoreSession" Name="CDP failover fin-db01" UID="urn:veeam:RestoreSession:`+rs1+`" VmDisplayName="fin-db01"><Links>`+
			`<Link Rel="Alternate" Href="http://HOST/api/restoreSessions/`+rs1+`" Name="CDP failover fin-db01" Type="RestoreSessionReference"></Link></Links>`+
			`<JobType>CdpFailover</JobType><CreationTimeUTC>2021-02-17T15:31:40</CreationTimeUTC><State>Working</State><Result>None</Result><Progress>44</Progress></RestoreSession>`)

	m.clock.Advance(15 * time.Second)
	wantBody(t, m.get(tok, "/api/tasks/task-1"),
		`<Task xmlns="http://www.veeam.com/ent/v1.0" Type="Task" Href="http://HOST/api/tasks/task-1"><Links>`+
			`<Link Rel="Delete" Href="http://HOST/api/tasks/task-1" Type="Task"></Link>`+
			`<Link Rel="Related" Href="http://HOST/api/restoreSessions/`+rs1+`?format=Entity" Type="RestoreSession"></Link></Links>`+
			`<TaskId>task-1</TaskId><State>Finished</State><Operation>StartFailover</Operation><Result Success="false"><Message>Failed to power on</Message></Result></Task>`)
	wantBody(t, m.do(req{method: "GET", path: "/api/tasks/task-2", token: tok, accept: "application/json"}),
		"\xEF\xBB\xBF"+`{"Type":"Task","Href":"http://HOST/api/tasks/task-2","Links":[`+
			`{"Rel":"Delete","Href":"http://HOST/api/tasks/task-2","Type":"Task"},`+
			`{"Rel":"Related","Href":"http://HOST/api/restoreSessions/00000000-0000-4000-8000-000000000004?format=Entity","Type":"RestoreSession"}],`+
			`"TaskId":"task-2","State":"Finished","Operation":"StartFailover","Result":{"Success":false,"Message":"Failed to power on"}}`)
	wantBody(t, m.do(req{method: "GET", path: "/api/restoreSessions/00000000-0000-4000-8000-000000000004?format=Entity", token: tok, accept: "application/json"}),
		"\xEF\xBB\xBF"+`{"Href":"http://HOST/api/restoreSessions/00000000-0000-4000-8000-000000000004?format=Entity","Type":"RestoreSession","Name":"CDP failover erp-vapp",`+
			`"UID":"urn:veeam:RestoreSession:00000000-0000-4000-8000-000000000004","VmDisplayName":"erp-vapp","Links":[`+
			`{"Rel":"Alternate","Href":"http://HOST/api/restoreSessions/00000000-0000-4000-8000-000000000004","Name":"CDP failover erp-vapp","Type":"RestoreSessionReference"}],`+
			`"JobType":"CdpFailover","CreationTimeUTC":"2021-02-17T15:31:40","EndTimeUTC":"2021-02-17T15:32:00","State":"Stopped","Result":"Failed","Progress":100,"FailureMessage":"Failed to power on"}`)

	wantBody(t, m.get(tok, "/api/tasks"),
		`<Tasks xmlns="http://www.veeam.com/ent/v1.0">`+
			`<Task Type="Task" Href="http://HOST/api/tasks/task-1"><Links><Link Rel="Delete" Href="http://HOST/api/tasks/task-1" Type="Task"></Link>`+
			`<Link Rel="Related" Href="http://HOST/api/restoreSessions/`+rs1+`?format=Entity" Type="RestoreSession"></Link></Links>`+
			`<TaskId>task-1</TaskId><State>Finished</State><Operation>StartFailover</Operation><Result Success="false"><Message>Failed to power on</Message></Result></Task>`+
			`<Task Type="Task" Href="http://HOST/api/tasks/task-2"><Links><Link Rel="Delete" Href="http://HOST/api/tasks/task-2" Type="Task"></Link>`+
			`<Link Rel="Related" Href="http://HOST/api/restoreSessions/00000000-0000-4000-8000-000000000004?format=Entity" Type="RestoreSession"></Link></Links>`+
			`<TaskId>task-2</TaskId><State>Finished</State><Operation>StartFailover</Operation><Result Success="false"><Message>Failed to power on</Message></Result></Task>`+
			`</Tasks>`)
	wantBody(t, m.get(tok, "/api/restoreSessions"),
		`<EntityReferences xmlns="http://www.veeam.com/ent/v1.0">`+
			`<Ref Type="RestoreSessionReference" Href="http://HOST/api/restoreSessions/`+rs1+`" Name="CDP failover fin-db01" UID="urn:veeam:RestoreSession:`+rs1+`"><Links>`+
			`<Link Rel="Alternate" Href="http://HOST/api/restoreSessions/`+rs1+`?format=Entity" Name="CDP failover fin-db01" Type="RestoreSession"></Link></Links></Ref>`+
			`<Ref Type="RestoreSessionReference" Href="http://HOST/api/restoreSessions/00000000-0000-4000-8000-000000000004" Name="CDP failover erp-vapp" UID="urn:veeam:RestoreSession:00000000-0000-4000-8000-000000000004"><Links>`+
			`<Link Rel="Alternate" Href="http://HOST/api/restoreSessions/00000000-0000-4000-8000-000000000004?format=Entity" Name="CDP failover erp-vapp" Type="RestoreSession"></Link></Links></Ref>`+
			`</EntityReferences>`)

	// GET /restoreSessions lists the last 30 days only.
	m.clock.Advance(30*24*time.Hour + time.Minute)
	tok, _ = m.logon()
	wantBody(t, m.get(tok, "/api/restoreSessions"), `<EntityReferences xmlns="http://www.veeam.com/ent/v1.0"></EntityReferences>`)
}

func TestDeleteTask(t *testing.T) {
	const end = "2021-02-17T15:33:20" // t0 + 100s
	tests := []struct {
		name     string
		deleteAt time.Duration
		want     taskView
		wantRS   sessionView
	}{
		{"while running stops it", 50 * time.Second, finished(false, "Stopped by user"),
			sessionView{State: "Stopped", Result: "Failed", Progress: 100, EndTimeUTC: "2021-02-17T15:32:30", FailureMessage: "Stopped by user"}},
		{"while starting stops it", time.Second, finished(false, "Stopped by user"),
			sessionView{State: "Stopped", Result: "Failed", Progress: 100, EndTimeUTC: "2021-02-17T15:31:41", FailureMessage: "Stopped by user"}},
		{"after the operation finished changes nothing", 105 * time.Second, finished(true, "Ok"),
			sessionView{State: "Stopped", Result: "Success", Progress: 100, EndTimeUTC: end}},
		{"after it finished changes nothing", 200 * time.Second, finished(true, "Ok"),
			sessionView{State: "Stopped", Result: "Success", Progress: 100, EndTimeUTC: end}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newSim(t, Config{SessionIdle: 1000 * time.Hour})
			m.s.SetScript(finDB, Script{Running: 100 * time.Second, Collect: 10 * time.Second})
			tok, _ := m.logon()
			m.failover(tok, vmFailover)
			m.clock.Advance(tt.deleteAt)
			r := m.do(req{method: "DELETE", path: "/api/tasks/task-1", token: tok})
			wantStatus(t, r, http.StatusNoContent)
			wantBody(t, r, "")
			m.clock.Advance(time.Hour)
			got := m.task(tok, "task-1")
			if got.State != tt.want.State || *got.Result != *tt.want.Result {
				t.Errorf("task: got %s %+v, want %s %+v", got.State, *got.Result, tt.want.State, *tt.want.Result)
			}
			if rs := m.restoreSession(tok, rs1); rs != tt.wantRS {
				t.Errorf("restore session: got %+v, want %+v", rs, tt.wantRS)
			}
		})
	}
}

func finished(success bool, msg string) taskView {
	v := taskView{State: "Finished"}
	v.Result = &struct {
		Success bool   `xml:"Success,attr" json:"Success"`
		Message string `xml:"Message" json:"Message"`
	}{success, msg}
	return v
}

func TestTaskScope(t *testing.T) {
	rs := func(n int) string {
		return "http://HOST/api/restoreSessions/00000000-0000-4000-8000-00000000000" + itoa(n) + "?format=Entity"
	}
	// GUIDs: A session 1, token 2; B session 3, token 4; C session 5, token 6;
	// A's task-1 -> restore session 7; B's task-1 -> 8, task-2 -> 9.
	tests := []struct {
		name   string
		scoped bool
		who    string // A, B, C or D (a new logon after ExpireSessions)
		id     string
		want   string // Related href, "" for 404
	}{
		{"scoped: A sees its own task-1", true, "A", "task-1", rs(7)},
		{"scoped: B sees its own task-1", true, "B", "task-1", rs(8)},
		{"scoped: A cannot see B's task-2", true, "A", "task-2", ""},
		{"scoped: C sees no task-1", true, "C", "task-1", ""},
		{"scoped: a new session after expiry sees nothing", true, "D", "task-1", ""},
		{"unscoped: A gets the newest task-1", false, "A", "task-1", rs(8)},
		{"unscoped: C gets the newest task-1", false, "C", "task-1", rs(8)},
		{"unscoped: A gets B's task-2", false, "A", "task-2", rs(9)},
		{"unscoped: a new session after expiry still finds it", false, "D", "task-2", rs(9)},
		{"unscoped: unknown is still 404", false, "C", "task-3", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newSim(t, Config{TasksAcrossSessions: !tt.scoped, AllowRepeatFailover: true})
			tok := map[string]string{}
			tok["A"], _ = m.logon()
			tok["B"], _ = m.logon()
			tok["C"], _ = m.logon()
			m.failover(tok["A"], vmFailover)
			m.failover(tok["B"], vmFailover)
			m.failover(tok["B"], vmFailover)
			if tt.who == "D" {
				m.s.ExpireSessions()
				tok["D"], _ = m.logon()
			}
			r := m.get(tok[tt.who], "/api/tasks/"+tt.id)
			if tt.want == "" {
				wantStatus(t, r, http.StatusNotFound)
				wantBody(t, r, `<Error xmlns="http://www.veeam.com/ent/v1.0" Message="Task `+tt.id+` was not found" StatusCode="404"></Error>`)
				wantStatus(t, m.do(req{method: "DELETE", path: "/api/tasks/" + tt.id, token: tok[tt.who]}), http.StatusNotFound)
				return
			}
			if got := m.task(tok[tt.who], tt.id).related(); got != tt.want {
				t.Errorf("Related: got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestTaskListIsPerSession(t *testing.T) {
	m := newSim(t, Config{})
	tokA, _ := m.logon()
	tokB, _ := m.logon()
	m.failover(tokA, vmFailover)
	wantBody(t, m.get(tokB, "/api/tasks"), `<Tasks xmlns="http://www.veeam.com/ent/v1.0"></Tasks>`)
	wantBody(t, m.do(req{method: "GET", path: "/api/tasks", token: tokB, accept: "application/json"}), "\xEF\xBB\xBF"+`{"Tasks":[]}`)
	var list struct {
		Tasks []struct {
			TaskID string `xml:"TaskId"`
		} `xml:"Task"`
	}
	if err := decodeAnswer(m.get(tokA, "/api/tasks").body, &list); err != nil || len(list.Tasks) != 1 || list.Tasks[0].TaskID != "task-1" {
		t.Fatalf("A's tasks: got %+v (%v), want task-1", list, err)
	}
}

func TestForget(t *testing.T) {
	m := newSim(t, Config{AllowRepeatFailover: true})
	tok, _ := m.logon()
	m.failover(tok, vmFailover)
	m.s.Forget()

	r := m.get(tok, "/api/tasks/task-1")
	wantStatus(t, r, http.StatusNotFound)
	wantStatus(t, m.do(req{method: "DELETE", path: "/api/tasks/task-1", token: tok}), http.StatusNotFound)
	wantBody(t, m.get(tok, "/api/tasks"), `<Tasks xmlns="http://www.veeam.com/ent/v1.0"></Tasks>`)

	// The outcome is still reachable through the restore sessions.
	var refs struct {
		Refs []struct {
			UID string `xml:"UID,attr"`
		} `xml:"Ref"`
	}
	if err := decodeAnswer(m.get(tok, "/api/restoreSessions").body, &refs); err != nil || len(refs.Refs) != 1 || refs.Refs[0].UID != "urn:veeam:RestoreSession:"+rs1 {
		t.Fatalf("restore sessions: got %+v (%v), want the one failover", refs, err)
	}
	m.clock.Advance(time.Minute)
	if got := m.restoreSession(tok, rs1); got.Result != "Success" {
		t.Errorf("restore session result: got %q, want Success", got.Result)
	}
	// Numbering continues in the session, so the forgotten ID is not reused.
	r = m.failover(tok, vmFailover)
	var tv struct {
		TaskID string `xml:"TaskId"`
	}
	if err := decodeAnswer(r.body, &tv); err != nil || tv.TaskID != "task-2" {
		t.Errorf("next task: got %q (%v), want task-2", tv.TaskID, err)
	}
}

func TestRejectStart(t *testing.T) {
	tests := []struct {
		name     string
		set      func(s *Server)
		path     string
		accept   string
		want     int
		wantBody string
	}{
		{"per target 500", func(s *Server) {
			s.SetScript(finDB, Script{RejectStart: 500, RejectMessage: "VM fin-db01 is locked by another task"})
		}, vmFailover, "",
			500, `<Error xmlns="http://www.veeam.com/ent/v1.0" Message="VM fin-db01 is locked by another task" StatusCode="500"></Error>`},
		{"default 503 with the status text", func(s *Server) { s.SetDefaultScript(Script{RejectStart: 503}) }, "/api/cdpReplica/vApps/" + erp + "?action=failover", "",
			503, `<Error xmlns="http://www.veeam.com/ent/v1.0" Message="Service Unavailable" StatusCode="503"></Error>`},
		{"per target wins over default", func(s *Server) {
			s.SetDefaultScript(Script{RejectStart: 503})
			s.SetScript(finDB, Script{RejectStart: 500, RejectMessage: "boom"})
		}, vmFailover, "application/json",
			500, "\xEF\xBB\xBF" + `{"Message":"boom","StatusCode":500}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newSim(t, Config{})
			tt.set(m.s)
			tok, _ := m.logon()
			body, ct := specLatest, "application/xml"
			if tt.accept != "" {
				body, ct = `{"RestoreCurrent":true,"RestoreCurrentVss":false}`, "application/json"
			}
			r := m.do(req{method: "POST", path: tt.path, token: tok, accept: tt.accept, contentType: ct, body: body})
			wantStatus(t, r, tt.want)
			wantBody(t, r, tt.wantBody)
			if n := m.s.Count("POST", "action=failover"); n != 1 {
				t.Errorf("Count: got %d, want 1", n)
			}
			if n := len(m.s.Failovers()); n != 0 {
				t.Errorf("failovers: got %d, want 0", n)
			}
			wantBody(t, m.get(tok, "/api/restoreSessions"), `<EntityReferences xmlns="http://www.veeam.com/ent/v1.0"></EntityReferences>`)
			wantStatus(t, m.get(tok, "/api/tasks/task-1"), http.StatusNotFound)
		})
	}
}

func TestScriptDefaults(t *testing.T) {
	tests := []struct {
		name   string
		set    func(s *Server)
		at     time.Duration
		target string
		want   string
	}{
		{"built-in still running at 29s", func(*Server) {}, 29 * time.Second, vmFailover, "Running"},
		{"built-in collecting at 30s", func(*Server) {}, 30 * time.Second, vmFailover, "OperationFinished"},
		{"built-in finished at 35s", func(*Server) {}, 35 * time.Second, vmFailover, "Finished"},
		{"default script applies to other targets", func(s *Server) {
			s.SetDefaultScript(Script{Running: 10 * time.Second})
			s.SetScript(finDB, Script{Running: time.Hour})
		}, 10 * time.Second, "/api/cdpReplica/vApps/" + erp + "?action=failover", "Finished"},
		{"per-target script wins", func(s *Server) {
			s.SetDefaultScript(Script{Running: 10 * time.Second})
			s.SetScript(finDB, Script{Running: time.Hour})
		}, 10 * time.Second, vmFailover, "Running"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newSim(t, Config{})
			tt.set(m.s)
			tok, _ := m.logon()
			m.failover(tok, tt.target)
			m.clock.Advance(tt.at)
			if got := m.task(tok, "task-1").State; got != tt.want {
				t.Errorf("state: got %s, want %s", got, tt.want)
			}
		})
	}
}

func TestSetScriptRejectsUnknownResult(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("SetScript with Result \"Succeeded\" did not panic")
		}
	}()
	New(Config{}, DemoInventory()).SetScript(finDB, Script{Result: "Succeeded"})
}

// TestScriptSwitches: the task and restore session over time for each script switch.
func TestScriptSwitches(t *testing.T) {
	type point struct {
		at       time.Duration
		task     string // task State
		success  string // "", "true", "false": task Result
		message  string
		related  bool         // the task carries the Related link
		rs       *sessionView // nil: no restore session exists
		listed   int          // restore sessions GET /restoreSessions lists
		rsStatus int          // GET /restoreSessions/{rs1}
	}
	const end = "2021-02-17T15:33:20" // t0 + Running (100s)
	rs := func(state, result string, progress int, end, failure string) *sessionView {
		return &sessionView{State: state, Result: result, Progress: progress, EndTimeUTC: end, FailureMessage: failure}
	}
	tests := []struct {
		name   string
		script Script
		points []point
	}{
		{"NoRelatedLink", Script{Running: 100 * time.Second, Collect: 10 * time.Second, NoRelatedLink: true}, []point{
			{at: 0, task: "Running", rs: rs("Starting", "None", 0, "", "")},
			{at: 55 * time.Second, task: "Running", rs: rs("Working", "None", 49, "", "")},
			{at: 105 * time.Second, task: "OperationFinished", rs: rs("Stopped", "Success", 100, end, "")},
			{at: 110 * time.Second, task: "Finished", success: "true", message: "Ok", rs: rs("Stopped", "Success", 100, end, "")},
		}},
		{"TaskFinishesEarly", Script{Running: 100 * time.Second, Collect: 10 * time.Second, Result: ResultFailed, Message: "Datastore full", TaskFinishesEarly: true}, []point{
			{at: 9 * time.Second, task: "Running", related: true, rs: rs("Starting", "None", 0, "", "")},
			{at: 10 * time.Second, task: "Finished", success: "true", message: "Ok", related: true, rs: rs("Working", "None", 0, "", "")},
			{at: 55 * time.Second, task: "Finished", success: "true", message: "Ok", related: true, rs: rs("Working", "None", 49, "", "")},
			{at: 100 * time.Second, task: "Finished", success: "true", message: "Ok", related: true, rs: rs("Stopped", "Failed", 100, end, "Datastore full")},
			{at: time.Hour, task: "Finished", success: "true", message: "Ok", related: true, rs: rs("Stopped", "Failed", 100, end, "Datastore full")},
		}},
		{"AsyncFailure", Script{Running: 100 * time.Second, Collect: 10 * time.Second, AsyncFailure: "Replica VM fin-db01 is not ready"}, []point{
			{at: 0, task: "Running"},
			{at: 99 * time.Second, task: "Running"},
			{at: 100 * time.Second, task: "Finished", success: "false", message: "Replica VM fin-db01 is not ready"},
			{at: time.Hour, task: "Finished", success: "false", message: "Replica VM fin-db01 is not ready"},
		}},
		{"StoppedNoResult", Script{Running: 100 * time.Second, Collect: 10 * time.Second, Result: ResultFailed, Message: "ignored", StoppedNoResult: true}, []point{
			{at: 55 * time.Second, task: "Running", related: true, rs: rs("Working", "None", 49, "", "")},
			{at: 100 * time.Second, task: "OperationFinished", related: true, rs: rs("Stopped", "None", 100, end, "")},
			{at: 110 * time.Second, task: "Finished", success: "true", message: "ignored", related: true, rs: rs("Stopped", "None", 100, end, "")},
		}},
		{"StoppedNoResult default message", Script{Running: 100 * time.Second, StoppedNoResult: true}, []point{
			{at: 100 * time.Second, task: "Finished", success: "true", message: "Ok", related: true, rs: rs("Stopped", "None", 100, end, "")},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newSim(t, Config{SessionIdle: 1000 * time.Hour})
			m.s.SetScript(finDB, tt.script)
			tok, _ := m.logon()
			m.failover(tok, vmFailover)
			at := time.Duration(0)
			for _, p := range tt.points {
				m.clock.Advance(p.at - at)
				at = p.at
				tv := m.task(tok, "task-1")
				success, message := "", ""
				if tv.Result != nil {
					success, message = map[bool]string{true: "true", false: "false"}[tv.Result.Success], tv.Result.Message
				}
				if tv.State != p.task || success != p.success || message != p.message {
					t.Errorf("at %v: task got %s/%q/%q, want %s/%q/%q", p.at, tv.State, success, message, p.task, p.success, p.message)
				}
				if got := tv.related() != ""; got != p.related {
					t.Errorf("at %v: Related link present %v, want %v", p.at, got, p.related)
				}
				var refs struct {
					Refs []struct{} `xml:"Ref"`
				}
				if err := decodeAnswer(m.get(tok, "/api/restoreSessions").body, &refs); err != nil {
					t.Fatal(err)
				}
				if p.rs == nil {
					wantStatus(t, m.get(tok, "/api/restoreSessions/"+rs1+"?format=Entity"), http.StatusNotFound)
					if len(refs.Refs) != 0 {
						t.Errorf("at %v: %d restore sessions listed, want none", p.at, len(refs.Refs))
					}
					if fo := m.s.Failovers(); fo[0].RestoreSessionID != "" {
						t.Errorf("Failover.RestoreSessionID: got %q, want none", fo[0].RestoreSessionID)
					}
					continue
				}
				if len(refs.Refs) != 1 {
					t.Errorf("at %v: %d restore sessions listed, want 1", p.at, len(refs.Refs))
				}
				if got := m.restoreSession(tok, rs1); got != *p.rs {
					t.Errorf("at %v: restore session got %+v, want %+v", p.at, got, *p.rs)
				}
			}
		})
	}
}

// TestDeleteModes: by default DELETE stops a running failover; with DeleteOnlyRemoves it only
// removes the task and the failover carries on.
func TestDeleteModes(t *testing.T) {
	const end = "2021-02-17T15:33:20"
	tests := []struct {
		name     string
		cfg      Config
		script   Script
		deleteAt time.Duration
		want     *taskView // nil: the task is gone (404)
		wantRS   sessionView
	}{
		{"default stops a running failover", Config{}, Script{Running: 100 * time.Second}, 50 * time.Second, ptr(finished(false, "Stopped by user")),
			sessionView{State: "Stopped", Result: "Failed", Progress: 100, EndTimeUTC: "2021-02-17T15:32:30", FailureMessage: "Stopped by user"}},
		{"default after an early finish changes nothing", Config{}, Script{Running: 100 * time.Second, TaskFinishesEarly: true}, 50 * time.Second, ptr(finished(true, "Ok")),
			sessionView{State: "Stopped", Result: "Success", Progress: 100, EndTimeUTC: end}},
		{"DeleteOnlyRemoves while running", Config{DeleteOnlyRemoves: true}, Script{Running: 100 * time.Second}, 50 * time.Second, nil,
			sessionView{State: "Stopped", Result: "Success", Progress: 100, EndTimeUTC: end}},
		{"DeleteOnlyRemoves a failing one: it still fails", Config{DeleteOnlyRemoves: true}, Script{Running: 100 * time.Second, Result: ResultFailed}, 5 * time.Second, nil,
			sessionView{State: "Stopped", Result: "Failed", Progress: 100, EndTimeUTC: end, FailureMessage: "Failover failed"}},
		{"DeleteOnlyRemoves after it finished", Config{DeleteOnlyRemoves: true}, Script{Running: 100 * time.Second}, 200 * time.Second, nil,
			sessionView{State: "Stopped", Result: "Success", Progress: 100, EndTimeUTC: end}},
		{"DeleteOnlyRemoves across sessions", Config{DeleteOnlyRemoves: true, TasksAcrossSessions: true}, Script{Running: 100 * time.Second}, 50 * time.Second, nil,
			sessionView{State: "Stopped", Result: "Success", Progress: 100, EndTimeUTC: end}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.SessionIdle = 1000 * time.Hour
			m := newSim(t, tt.cfg)
			m.s.SetScript(finDB, tt.script)
			tok, _ := m.logon()
			m.failover(tok, vmFailover)
			m.clock.Advance(tt.deleteAt)
			r := m.do(req{method: "DELETE", path: "/api/tasks/task-1", token: tok})
			wantStatus(t, r, http.StatusNoContent)
			wantBody(t, r, "")
			m.clock.Advance(time.Hour)
			if tt.want == nil {
				wantStatus(t, m.get(tok, "/api/tasks/task-1"), http.StatusNotFound)
				wantStatus(t, m.do(req{method: "DELETE", path: "/api/tasks/task-1", token: tok}), http.StatusNotFound)
				wantBody(t, m.get(tok, "/api/tasks"), `<Tasks xmlns="http://www.veeam.com/ent/v1.0"></Tasks>`)
			} else if got := m.task(tok, "task-1"); got.State != tt.want.State || *got.Result != *tt.want.Result {
				t.Errorf("task: got %s %+v, want %s %+v", got.State, *got.Result, tt.want.State, *tt.want.Result)
			}
			if rs := m.restoreSession(tok, rs1); rs != tt.wantRS {
				t.Errorf("restore session: got %+v, want %+v", rs, tt.wantRS)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

// TestAddRestoreSession: a planted restore session of another kind shows everywhere a failover's
// does, in creation order, and is not a failover.
func TestAddRestoreSession(t *testing.T) {
	m := newSim(t, Config{SessionIdle: 1000 * time.Hour})
	flr := m.s.AddRestoreSession(RestoreSessionSeed{VMName: "fin-db01", JobType: "FileLevelRestore", Created: t0.Add(-time.Hour), Ended: t0.Add(-50 * time.Minute), Progress: 100})
	working := m.s.AddRestoreSession(RestoreSessionSeed{VMName: "FIN-DB01", JobType: "InstantRecovery", Name: "Instant recovery", State: "Working", Result: "None", Progress: 30, Created: t0.Add(-2 * time.Hour)})
	old := m.s.AddRestoreSession(RestoreSessionSeed{VMName: "fin-db01", JobType: "FileLevelRestore", Created: t0.Add(-31 * 24 * time.Hour), Result: "Failed", FailureMessage: "gone"})
	tok, _ := m.logon()
	m.failover(tok, vmFailover) // fin-db01 is still Ready: planted sessions are no failovers
	fo := m.s.Failovers()
	if len(fo) != 1 {
		t.Fatalf("failovers: got %d, want 1", len(fo))
	}

	wantBody(t, m.get(tok, "/api/restoreSessions/"+flr+"?format=Entity"),
		`<RestoreSession xmlns="http://www.veeam.com/ent/v1.0" Href="http://HOST/api/restoreSessions/`+flr+`?format=Entity" Type="RestoreSession" Name="FileLevelRestore fin-db01" UID="urn:veeam:RestoreSession:`+flr+`" VmDisplayName="fin-db01"><Links>`+
			`<Link Rel="Alternate" Href="http://HOST/api/restoreSessions/`+flr+`" Name="FileLevelRestore fin-db01" Type="RestoreSessionReference"></Link></Links>`+
			`<JobType>FileLevelRestore</JobType><CreationTimeUTC>2021-02-17T14:31:40</CreationTimeUTC><EndTimeUTC>2021-02-17T14:41:40</EndTimeUTC><State>Stopped</State><Result>Success</Result><Progress>100</Progress></RestoreSession>`)
	if got, want := m.restoreSession(tok, working), (sessionView{State: "Working", Result: "None", Progress: 30}); got != want {
		t.Errorf("working session: got %+v, want %+v", got, want)
	}
	// Stays as planted whatever the clock does.
	m.clock.Advance(time.Hour)
	if got, want := m.restoreSession(tok, working), (sessionView{State: "Working", Result: "None", Progress: 30}); got != want {
		t.Errorf("working session an hour later: got %+v, want %+v", got, want)
	}
	if got := m.restoreSession(tok, old); got.Result != "Failed" || got.FailureMessage != "gone" {
		t.Errorf("old session: got %+v", got)
	}

	var refs struct {
		Refs []struct {
			UID string `xml:"UID,attr"`
		} `xml:"Ref"`
	}
	if err := decodeAnswer(m.get(tok, "/api/restoreSessions").body, &refs); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range refs.Refs {
		got = append(got, strings.TrimPrefix(r.UID, "urn:veeam:RestoreSession:"))
	}
	if want := []string{working, flr, fo[0].RestoreSessionID}; strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("listed (oldest first, 30 days): got %v, want %v", got, want)
	}

	for name, seed := range map[string]RestoreSessionSeed{
		"no VMName":    {JobType: "FileLevelRestore"},
		"no JobType":   {VMName: "x"},
		"bad State":    {VMName: "x", JobType: "y", State: "Done"},
		"bad Result":   {VMName: "x", JobType: "y", Result: "Succeeded"},
		"bad Progress": {VMName: "x", JobType: "y", Progress: 101},
	} {
		t.Run(name+" panics", func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Errorf("AddRestoreSession(%+v) did not panic", seed)
				}
			}()
			m.s.AddRestoreSession(seed)
		})
	}
}

// TestReplicaState: a target that failed over (or is failing over) is in the Failover state and a
// second failover of it answers 400; a failed, stopped or asynchronously failed one is Ready again.
func TestReplicaState(t *testing.T) {
	const (
		vmBusy   = "Cannot start failover of fin-db01: the CDP replica is in the Failover state; failover needs the Ready state"
		vappBusy = "Cannot start failover of erp-vapp: the CDP replica is in the Failover state; failover needs the Ready state"
		vappPath = "/api/cdpReplica/vApps/" + erp + "?action=failover"
	)
	run := Script{Running: 100 * time.Second, Collect: 10 * time.Second}
	with := func(f func(*Script)) Script { sc := run; f(&sc); return sc }
	tests := []struct {
		name    string
		cfg     Config
		script  Script
		first   string        // path of the first failover, default vmFailover
		between func(m *sim)  // after the first failover, before the wait
		wait    time.Duration // after the first failover
		second  string        // path of the second failover, default vmFailover
		wantMsg string        // "" for a 202
	}{
		{name: "while starting", script: run, wait: time.Second, wantMsg: vmBusy},
		{name: "while running", script: run, wait: 50 * time.Second, wantMsg: vmBusy},
		{name: "after success", script: run, wait: time.Hour, wantMsg: vmBusy},
		{name: "after warning", script: with(func(s *Script) { s.Result = ResultWarning }), wait: time.Hour, wantMsg: vmBusy},
		{name: "after a stop without result", script: with(func(s *Script) { s.StoppedNoResult = true }), wait: time.Hour, wantMsg: vmBusy},
		{name: "while collecting a failed one", script: with(func(s *Script) { s.Result = ResultFailed }), wait: 105 * time.Second, wantMsg: vmBusy},
		{name: "after failed", script: with(func(s *Script) { s.Result = ResultFailed }), wait: 110 * time.Second},
		{name: "early-finished task, failing session still working", script: with(func(s *Script) { s.Result = ResultFailed; s.TaskFinishesEarly = true }), wait: 50 * time.Second, wantMsg: vmBusy},
		{name: "early-finished task, session failed", script: with(func(s *Script) { s.Result = ResultFailed; s.TaskFinishesEarly = true }), wait: 100 * time.Second},
		{name: "while an async failure runs", script: with(func(s *Script) { s.AsyncFailure = "no" }), wait: 50 * time.Second, wantMsg: vmBusy},
		{name: "after an async failure", script: with(func(s *Script) { s.AsyncFailure = "no" }), wait: 100 * time.Second},
		{name: "after a DELETE stop", script: run, between: func(m *sim) {
			m.clock.Advance(10 * time.Second)
			wantStatus(m.t, m.do(req{method: "DELETE", path: "/api/tasks/task-1", token: m.tok}), http.StatusNoContent)
		}},
		{name: "after a DELETE that only removes", cfg: Config{DeleteOnlyRemoves: true}, script: run, between: func(m *sim) {
			wantStatus(m.t, m.do(req{method: "DELETE", path: "/api/tasks/task-1", token: m.tok}), http.StatusNoContent)
		}, wait: time.Hour, wantMsg: vmBusy},
		{name: "after Failback", script: run, wait: time.Hour, between: func(m *sim) { m.s.Failback(finDB) }},
		{name: "Failback of another target changes nothing", script: run, wait: time.Hour, between: func(m *sim) { m.s.Failback(erp) }, wantMsg: vmBusy},
		{name: "a failover after Failback holds it again", script: run, wait: time.Hour, between: func(m *sim) {
			m.s.Failback(finDB)
			m.failover(m.tok, vmFailover)
		}, wantMsg: vmBusy},
		{name: "another target is Ready", script: run, wait: time.Second, second: vappPath},
		{name: "vApp", script: run, first: vappPath, wait: time.Hour, second: vappPath, wantMsg: vappBusy},
		{name: "a rejected start holds nothing", script: with(func(s *Script) { s.RejectStart = 500 }), between: func(m *sim) {
			m.s.SetScript(finDB, run)
		}},
		{name: "AllowRepeatFailover", cfg: Config{AllowRepeatFailover: true}, script: run, wait: time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.SessionIdle = 1000 * time.Hour
			m := newSim(t, tt.cfg)
			m.s.SetDefaultScript(tt.script)
			m.tok, _ = m.logon()
			first, second := cmp.Or(tt.first, vmFailover), cmp.Or(tt.second, vmFailover)
			r := m.do(req{method: "POST", path: first, token: m.tok, body: specLatest})
			if tt.script.RejectStart == 0 {
				wantStatus(t, r, http.StatusAccepted)
			}
			if tt.between != nil {
				tt.between(m)
			}
			m.clock.Advance(tt.wait)
			n := len(m.s.Failovers())
			r = m.do(req{method: "POST", path: second, token: m.tok, body: specLatest})
			if tt.wantMsg == "" {
				wantStatus(t, r, http.StatusAccepted)
				return
			}
			wantStatus(t, r, http.StatusBadRequest)
			wantBody(t, r, `<Error xmlns="http://www.veeam.com/ent/v1.0" Message="`+tt.wantMsg+`" StatusCode="400"></Error>`)
			if got := len(m.s.Failovers()); got != n {
				t.Errorf("failovers: got %d, want %d (a refused POST starts nothing)", got, n)
			}
		})
	}
}

func TestFailbackUnknownTarget(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("Failback of a replica ID (not a VM or vApp) did not panic")
		}
	}()
	New(Config{}, DemoInventory()).Failback(finance)
}
