package emapi

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/failover-bot/failover-bot/emapi/emsim"
)

// TestTaskInStaysInItsSession: a task is read and stopped only in the logon session that created
// it. After the session expires, TaskIn logs on again but does not repeat the read in the new
// session, where task-1 is another failover; StopTaskIn sends nothing there.
func TestTaskInStaysInItsSession(t *testing.T) {
	env := newEMSimulator(t, FormatXML, emsim.Config{}, nil)
	c, ctx := env.client, t.Context()
	first, err := c.StartVMFailover(ctx, finReplicaID, finDB01ID, RestoreIntent{Kind: IntentLatest})
	if err != nil {
		t.Fatal(err)
	}
	if first.LogonSession == "" || first.LogonSession != c.LogonSession() {
		t.Fatalf("task's logon session %q, client's %q", first.LogonSession, c.LogonSession())
	}
	if got, err := c.TaskIn(ctx, first.LogonSession, first.ID); err != nil || got.ID != "task-1" {
		t.Fatalf("TaskIn in its own session = %+v, %v", got, err)
	}

	env.sim.ExpireSessions()
	reads := env.sim.Count(http.MethodGet, "/tasks/task-1")
	_, err = c.TaskIn(ctx, first.LogonSession, first.ID)
	if !errors.Is(err, ErrOtherSession) || KindOf(err) != KindNotFound {
		t.Fatalf("TaskIn after the session expired = %v, want ErrOtherSession (KindNotFound)", err)
	}
	if n := env.sim.Count(http.MethodGet, "/tasks/task-1") - reads; n != 1 {
		t.Errorf("%d reads of task-1 around the re-logon, want 1 (the one answered 401, not repeated)", n)
	}
	if c.LogonSession() == first.LogonSession || c.LogonSession() == "" {
		t.Fatalf("no new logon session after the 401")
	}

	// Another failover in the new session is task-1 again.
	second, err := c.StartVMFailover(ctx, webReplicaID, web01ID, RestoreIntent{Kind: IntentLatest})
	if err != nil {
		t.Fatal(err)
	}
	if second.ID != first.ID || second.LogonSession == first.LogonSession {
		t.Fatalf("second task %s in %s; want the same number in a new session", second.ID, second.LogonSession)
	}
	reads = env.sim.Count(http.MethodGet, "/tasks/task-1")
	if _, err := c.TaskIn(ctx, first.LogonSession, first.ID); !errors.Is(err, ErrOtherSession) {
		t.Fatalf("TaskIn of the first task = %v, want ErrOtherSession", err)
	}
	if err := c.StopTaskIn(ctx, first.LogonSession, first.ID); !errors.Is(err, ErrOtherSession) {
		t.Fatalf("StopTaskIn of the first task = %v, want ErrOtherSession", err)
	}
	if err := c.StopTaskIn(ctx, "", first.ID); !errors.Is(err, ErrOtherSession) {
		t.Fatalf("StopTaskIn without a session = %v, want ErrOtherSession", err)
	}
	if n := env.sim.Count(http.MethodGet, "/tasks/task-1") - reads; n != 0 {
		t.Errorf("%d reads of task-1 for the first task in the second session, want 0", n)
	}
	if n := env.sim.Count(http.MethodDelete, "/tasks/"); n != 0 {
		t.Errorf("%d DELETEs sent, want 0: the second session's task-1 is another failover", n)
	}
	if got, err := c.TaskIn(ctx, second.LogonSession, second.ID); err != nil || got.LogonSession != second.LogonSession {
		t.Fatalf("TaskIn of the second task = %+v, %v", got, err)
	}
}

// TestQueryRestoreSessionsOverHTTP: one query, paged, filtered by name and time, in both formats;
// what EM sends beyond the filter is dropped here too.
func TestQueryRestoreSessionsOverHTTP(t *testing.T) {
	for _, f := range []Format{FormatXML, FormatJSON} {
		t.Run(f.String(), func(t *testing.T) {
			env := newEMSimulator(t, f, emsim.Config{AllowRepeatFailover: true}, nil)
			c, ctx := env.client, t.Context()
			start := env.clock.Now()
			var want []string
			for i := range queryPageSize + 20 { // more than one page
				task, err := c.StartVMFailover(ctx, finReplicaID, finDB01ID, RestoreIntent{Kind: IntentLatest})
				if err != nil {
					t.Fatal(err)
				}
				_ = task
				want = append(want, env.sim.Failovers()[i].RestoreSessionID)
				env.clock.Advance(time.Second)
			}
			if _, err := c.StartVMFailover(ctx, webReplicaID, web01ID, RestoreIntent{Kind: IntentLatest}); err != nil {
				t.Fatal(err)
			}
			env.sim.AddRestoreSession(emsim.RestoreSessionSeed{VMName: "fin-db01", JobType: "FileLevelRestore", Created: start.Add(-time.Hour), State: "Stopped", Result: "Success"})
			before := env.sim.Count(http.MethodGet, "/query")
			got, err := c.QueryRestoreSessions(ctx, start, []string{"FIN-DB01"})
			if err != nil {
				t.Fatal(err)
			}
			if pages := env.sim.Count(http.MethodGet, "/query") - before; pages != 2 {
				t.Errorf("%d query pages, want 2", pages)
			}
			if len(got) != len(want) {
				t.Fatalf("%d sessions, want %d", len(got), len(want))
			}
			for i, rs := range got {
				if rs.ID != want[i] || !strings.EqualFold(rs.VMDisplayName, "fin-db01") {
					t.Fatalf("session %d = %s %s, want %s", i, rs.ID, rs.VMDisplayName, want[i])
				}
			}
			q := ""
			for _, r := range env.sim.Requests() {
				if strings.Contains(r.Path, "/query") {
					q = r.RawQuery
					break
				}
			}
			if !strings.Contains(q, "format=Entities") || !strings.Contains(q, "type=RestoreSession") || !strings.Contains(q, "VmDisplayName") {
				t.Errorf("query %q lacks type, format or the name filter", q)
			}
		})
	}
}

// TestPointInTimeSpellingUnderALenientEM: EM's reader skips an element it does not know, so a
// point-in-time failover sent with the wrong spelling silently becomes a "latest" one. The
// setting fixes it; a test that only checks for a 400 could never see the difference.
func TestPointInTimeSpellingUnderALenientEM(t *testing.T) {
	for _, server := range []string{PointInTimeTable, PointInTimeExample} {
		for _, ours := range []string{PointInTimeTable, PointInTimeExample} {
			for _, f := range []Format{FormatXML, FormatJSON} {
				t.Run(server+"/"+ours+"/"+f.String(), func(t *testing.T) {
					env := newEMSimulator(t, f, emsim.Config{Lenient: true, PointInTimeElement: server}, nil,
						func(c *Config) { c.PointInTimeElement = ours })
					at := env.clock.Now().Add(-30 * time.Minute).Truncate(time.Second)
					if _, err := env.client.StartVMFailover(t.Context(), finReplicaID, finDB01ID, RestoreIntent{Kind: IntentPointInTime, Time: at}); err != nil {
						t.Fatal(err)
					}
					used := env.sim.Failovers()[0].Used
					if server == ours {
						if used.Kind != emsim.IntentPointInTime || !used.Time.Equal(at) {
							t.Errorf("EM used %+v, want the point in time %v", used, at)
						}
					} else if used.Kind != emsim.IntentLatest {
						t.Errorf("EM used %+v; with a misspelt element it should have run with what remained (latest)", used)
					}
				})
			}
		}
	}
}
