package emsim

import (
	"net/http"
	"testing"
	"time"
)

func TestSmokeFailoverLife(t *testing.T) {
	m := newSim(t, Config{TaskScoped: true})
	tok, _ := m.logon()
	r := m.failover(tok, vmFailover)
	wantBody(t, r, `<Task xmlns="http://www.veeam.com/ent/v1.0" Type="Task" Href="http://HOST/api/tasks/task-1"><Links><Link Rel="Delete" Href="http://HOST/api/tasks/task-1" Type="Task"></Link></Links><TaskId>task-1</TaskId><State>Running</State><Operation>StartFailover</Operation></Task>`)
	m.clock.Advance(36 * time.Second)
	r = m.get(tok, "/api/tasks/task-1")
	wantStatus(t, r, http.StatusOK)
	t.Log(r.body)
	r = m.get(tok, "/api/restoreSessions/00000000-0000-4000-8000-000000000003?format=Entity")
	t.Log(r.body)
}
