package emapi

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/failover-bot/failover-bot/emapi/emsim"
	"github.com/failover-bot/failover-bot/store/failover/fakeclock"
)

// These tests run the client against the EM simulator (package emsim), an independent strict
// implementation of the wire format, over real HTTP.

const (
	simUser     = "EM\\failover-bot"
	simPassword = "sim-Passw0rd!"
)

// Demo inventory IDs (emsim.DemoInventory).
const (
	finReplicaID = "7665222c-2e99-4a3f-b892-1827ba8d1eee"
	finDB01ID    = "e809a086-2562-4a0f-a9a8-9c115ff8f0ba"
	webReplicaID = "24ae37ad-4d28-4568-8467-98d8770bb722"
	web01ID      = "fc2d6425-e96d-44e7-9d96-b7af5991adb3"
	erpVAppID    = "5c4b3a29-1807-4f6e-9d5c-4b3a29180f7e"
)

type simEnv struct {
	sim    *emsim.Server
	client *Client
	clock  *fakeclock.Clock
	url    string
}

// newEMSimulator starts the simulator with the demo inventory (unless inv is given) and returns a
// client for it in format f. The client is closed at cleanup.
func newEMSimulator(t testing.TB, f Format, simCfg emsim.Config, inv *emsim.Inventory, opts ...func(*Config)) *simEnv {
	t.Helper()
	clock := fakeclock.New(time.Date(2025, 8, 15, 9, 0, 0, 0, time.UTC)) // the simulator's clock; tests move it instead of sleeping
	if simCfg.Username == "" {
		simCfg.Username, simCfg.Password = simUser, simPassword
	}
	if simCfg.Now == nil {
		simCfg.Now = clock.Now
	}
	demo := emsim.DemoInventory()
	if inv == nil {
		inv = &demo
	}
	sim := emsim.New(simCfg, *inv)
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	cfg := Config{
		BaseURL:   srv.URL + "/api/",
		Username:  simUser,
		Password:  simPassword,
		Format:    f,
		Timeout:   5 * time.Second,
		RetryBase: time.Millisecond,
		RetryMax:  4 * time.Millisecond,
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	for _, o := range opts {
		o(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return &simEnv{sim: sim, client: c, clock: clock, url: srv.URL}
}

func forEachFormat(t *testing.T, fn func(t *testing.T, f Format)) {
	t.Helper()
	for _, f := range []Format{FormatXML, FormatJSON} {
		t.Run(f.String(), func(t *testing.T) { fn(t, f) })
	}
}

func TestSimInventoryCalls(t *testing.T) {
	forEachFormat(t, func(t *testing.T, f Format) {
		env := newEMSimulator(t, f, emsim.Config{}, nil)
		c, ctx := env.client, t.Context()

		if err := c.Ping(ctx); err != nil {
			t.Fatalf("Ping: %v", err)
		}
		if got := env.sim.Logons(); got != 0 {
			t.Errorf("Ping logged on (%d logons); GET /api/ needs no session", got)
		}

		reps, err := c.Replicas(ctx)
		if err != nil {
			t.Fatalf("Replicas: %v", err)
		}
		if len(reps) != 2 || reps[0].ID != finReplicaID || reps[0].Name != "CDP-Finance" || reps[1].ID != webReplicaID ||
			reps[0].UID != "urn:veeam:CdpReplica:"+finReplicaID || !strings.HasSuffix(reps[0].Href, "/api/cdpReplicas/"+finReplicaID) {
			t.Errorf("Replicas = %+v", reps)
		}

		rep, err := c.Replica(ctx, finReplicaID)
		if err != nil {
			t.Fatalf("Replica: %v", err)
		}
		if rep.ID != finReplicaID || rep.Name != "CDP-Finance" || rep.PolicyName != "CDP Policy Finance" ||
			rep.BackupServer != "vbr01.demo.local" || rep.PolicyUID == "" {
			t.Errorf("Replica = %+v", rep)
		}

		vms, err := c.ReplicaVMs(ctx, finReplicaID)
		if err != nil {
			t.Fatalf("ReplicaVMs: %v", err)
		}
		if len(vms) != 3 || vms[0].ID != finDB01ID || vms[0].Name != "fin-db01" {
			t.Errorf("ReplicaVMs = %+v", vms)
		}

		vm, err := c.ReplicaVM(ctx, finReplicaID, finDB01ID)
		if err != nil {
			t.Fatalf("ReplicaVM: %v", err)
		}
		if vm.ID != finDB01ID || vm.Name != "fin-db01" || vm.PolicyName != "CDP Policy Finance" || !strings.Contains(vm.ReplicaUID, finReplicaID) {
			t.Errorf("ReplicaVM = %+v", vm)
		}

		vapps, err := c.VApps(ctx)
		if err != nil {
			t.Fatalf("VApps: %v", err)
		}
		if len(vapps) != 1 || vapps[0].ID != erpVAppID || vapps[0].Name != "erp-vapp" {
			t.Errorf("VApps = %+v", vapps)
		}
		va, err := c.VApp(ctx, erpVAppID)
		if err != nil {
			t.Fatalf("VApp: %v", err)
		}
		if *va != (VApp{ID: erpVAppID, UID: va.UID, Name: "erp-vapp"}) || !strings.HasSuffix(va.UID, erpVAppID) {
			t.Errorf("VApp = %+v", va)
		}

		now := env.clock.Now()
		for name, get := range map[string]func() (*Intervals, error){
			"VMIntervals": func() (*Intervals, error) {
				return c.VMIntervals(ctx, finReplicaID, finDB01ID, now.Add(-3*time.Hour), now)
			},
			"VAppIntervals": func() (*Intervals, error) { return c.VAppIntervals(ctx, erpVAppID, now.Add(-3*time.Hour), now) },
		} {
			in, err := get()
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if len(in.Intervals) != 1 || !in.Intervals[0].Start.Equal(now.Add(-3*time.Hour)) || !in.Intervals[0].End.Equal(now) ||
				in.Intervals[0].Type != "RestoreAvailable" || in.Intervals[0].RPO == "" {
				t.Errorf("%s intervals = %+v", name, in.Intervals)
			}
			if !in.HasApplicationConsistentState || len(in.RestorePoints) != 4 || !in.RestorePoints[0].ApplicationConsistent ||
				in.RestorePoints[0].ID == "" || !in.RestorePoints[3].Date.Equal(now) {
				t.Errorf("%s restore points = %+v", name, in)
			}
		}

		if got := env.sim.Logons(); got != 1 {
			t.Errorf("logons = %d, want 1 (lazy logon, token reused)", got)
		}
		for _, r := range env.sim.Requests() {
			if want := f.mediaType(); r.Accept != want {
				t.Errorf("%s %s: Accept %q, want %q", r.Method, r.Path, r.Accept, want)
			}
		}
		if err := c.Close(ctx); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if got := env.sim.Count(http.MethodDelete, "/logonSessions/"); got != 1 {
			t.Errorf("logout requests = %d, want 1", got)
		}
	})
}

// pollToFinished polls the task, moving the simulator's clock step between polls, until Done.
func pollToFinished(t testing.TB, env *simEnv, taskID string, step time.Duration) (*Task, []string) {
	t.Helper()
	var states []string
	for range 100 {
		task, err := env.client.Task(context.Background(), taskID)
		if err != nil {
			t.Fatalf("Task: %v", err)
		}
		if len(states) == 0 || states[len(states)-1] != task.State {
			states = append(states, task.State)
		}
		if task.Done {
			return task, states
		}
		env.clock.Advance(step)
	}
	t.Fatal("task never finished")
	return nil, nil
}

func TestSimFailoverLifecycle(t *testing.T) {
	forEachFormat(t, func(t *testing.T, f Format) {
		tests := []struct {
			name        string
			vapp        bool
			intent      RestoreIntent
			script      emsim.Script
			wantSuccess bool
			wantResult  string
			wantMsg     string
		}{
			{"VM latest success", false, RestoreIntent{Kind: IntentLatest},
				emsim.Script{Running: 20 * time.Second, Collect: 5 * time.Second}, true, "Success", ""},
			{"VM latest VSS warning", false, RestoreIntent{Kind: IntentLatestVSS},
				emsim.Script{Running: 20 * time.Second, Collect: 5 * time.Second, Result: "Warning", Message: "NIC reconfigured"}, true, "Warning", "NIC reconfigured"},
			{"VM point in time failed", false, RestoreIntent{Kind: IntentPointInTime, Time: time.Date(2025, 8, 15, 10, 30, 0, 0, time.FixedZone("CEST", 2*3600))},
				emsim.Script{Running: 20 * time.Second, Result: "Failed", Message: "Datastore full"}, false, "Failed", "Datastore full"},
			{"vApp interval success", true, RestoreIntent{Kind: IntentInterval, Time: time.Date(2025, 8, 15, 8, 15, 0, 0, time.UTC)},
				emsim.Script{Running: 20 * time.Second, Collect: 5 * time.Second}, true, "Success", ""},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				env := newEMSimulator(t, f, emsim.Config{}, nil)
				c, ctx := env.client, t.Context()
				target, name := finDB01ID, "fin-db01"
				if tt.vapp {
					target, name = erpVAppID, "erp-vapp"
				}
				env.sim.SetScript(target, tt.script)
				start := env.clock.Now()

				var task *Task
				var err error
				if tt.vapp {
					task, err = c.StartVAppFailover(ctx, erpVAppID, tt.intent)
				} else {
					task, err = c.StartVMFailover(ctx, finReplicaID, finDB01ID, tt.intent)
				}
				if err != nil {
					t.Fatalf("start failover: %v", err)
				}
				if task.ID != "task-1" || task.State != TaskRunning || task.Operation != "StartFailover" || task.Done || task.Success != nil {
					t.Errorf("202 task = %+v", task)
				}

				// What the server understood is what was meant.
				fos := env.sim.Failovers()
				if len(fos) != 1 {
					t.Fatalf("simulator recorded %d failovers, want 1", len(fos))
				}
				wantKind := map[IntentKind]emsim.IntentKind{IntentLatest: emsim.IntentLatest, IntentLatestVSS: emsim.IntentLatestVSS,
					IntentPointInTime: emsim.IntentPointInTime, IntentInterval: emsim.IntentInterval}[tt.intent.Kind]
				if fos[0].Intent.Kind != wantKind || !fos[0].Intent.Time.Equal(tt.intent.Time) || fos[0].TargetID != target {
					t.Errorf("simulator understood %+v, want %s at %v on %s", fos[0], wantKind, tt.intent.Time, target)
				}

				final, states := pollToFinished(t, env, task.ID, 5*time.Second)
				wantStates := []string{TaskRunning, TaskOperationFinished, TaskFinished}
				if tt.script.Collect == 0 {
					wantStates = []string{TaskRunning, TaskFinished}
				}
				if strings.Join(states, ",") != strings.Join(wantStates, ",") {
					t.Errorf("task states %v, want %v", states, wantStates)
				}
				if final.Success == nil || *final.Success != tt.wantSuccess || final.RestoreSessionID != fos[0].RestoreSessionID {
					t.Errorf("final task = %+v (success %v), want success %v and restore session %s", final, deref(final.Success), tt.wantSuccess, fos[0].RestoreSessionID)
				}

				rs, err := c.RestoreSession(ctx, final.RestoreSessionID)
				if err != nil {
					t.Fatalf("RestoreSession: %v", err)
				}
				if rs.ID != final.RestoreSessionID || rs.State != "Stopped" || rs.Result != tt.wantResult || rs.Progress != 100 ||
					rs.FailureMessage != tt.wantMsg || !strings.EqualFold(rs.VMDisplayName, name) || rs.JobType == "" ||
					!rs.Created.Equal(start) || !rs.Ended.Equal(start.Add(tt.script.Running)) {
					t.Errorf("restore session = %+v", rs)
				}

				refs, err := c.RestoreSessions(ctx)
				if err != nil || len(refs) != 1 || refs[0].ID != rs.ID {
					t.Errorf("RestoreSessions = %+v, %v; want the one session", refs, err)
				}
				found, err := c.QueryRestoreSessions(ctx, start, []string{strings.ToUpper(name)})
				if err != nil || len(found) != 1 || found[0].ID != rs.ID {
					t.Errorf("QueryRestoreSessions = %+v, %v; want the one session", found, err)
				}
				if found, err := c.QueryRestoreSessions(ctx, start.Add(time.Minute), []string{name}); err != nil || len(found) != 0 {
					t.Errorf("QueryRestoreSessions after creation = %+v, %v; want none", found, err)
				}
				if got := env.sim.Count(http.MethodPost, "action=failover"); got != 1 {
					t.Errorf("failover POSTs = %d, want 1", got)
				}
			})
		}
	})
}

func TestSimProgressWhileRunning(t *testing.T) {
	env := newEMSimulator(t, FormatXML, emsim.Config{}, nil)
	env.sim.SetScript(finDB01ID, emsim.Script{Running: 100 * time.Second, Collect: 10 * time.Second})
	task, err := env.client.StartVMFailover(t.Context(), finReplicaID, finDB01ID, RestoreIntent{Kind: IntentLatest})
	if err != nil {
		t.Fatal(err)
	}
	env.clock.Advance(55 * time.Second)
	got, err := env.client.Task(t.Context(), task.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != TaskRunning || got.RestoreSessionID == "" {
		t.Fatalf("task = %+v, want Running with a restore session link", got)
	}
	rs, err := env.client.RestoreSession(t.Context(), got.RestoreSessionID)
	if err != nil {
		t.Fatal(err)
	}
	if rs.State != "Working" || rs.Result != "None" || rs.Progress <= 0 || rs.Progress >= 100 || !rs.Ended.IsZero() {
		t.Errorf("restore session = %+v, want Working, None, progress in (0,100), no end", rs)
	}
}

func TestSimStopTask(t *testing.T) {
	forEachFormat(t, func(t *testing.T, f Format) {
		env := newEMSimulator(t, f, emsim.Config{}, nil)
		c, ctx := env.client, t.Context()
		env.sim.SetScript(web01ID, emsim.Script{Running: time.Minute})
		task, err := c.StartVMFailover(ctx, webReplicaID, web01ID, RestoreIntent{Kind: IntentLatest})
		if err != nil {
			t.Fatal(err)
		}
		env.clock.Advance(10 * time.Second)
		if err := c.StopTask(ctx, task.ID); err != nil {
			t.Fatalf("StopTask: %v", err)
		}
		got, err := c.Task(ctx, task.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !got.Done || got.Success == nil || *got.Success {
			t.Errorf("stopped task = %+v, want finished without success", got)
		}
		if err := c.StopTask(ctx, "task-99"); KindOf(err) != KindNotFound {
			t.Errorf("StopTask(unknown) = %v, want KindNotFound", err)
		}
	})
}

func TestSimErrorKinds(t *testing.T) {
	forEachFormat(t, func(t *testing.T, f Format) {
		tests := []struct {
			name     string
			simCfg   emsim.Config
			setup    func(env *simEnv)
			call     func(c *Client, ctx context.Context) error
			wantKind ErrorKind
			wantCode int
			wantMsg  string // substring of Message
		}{
			{"non-admin account", emsim.Config{Role: emsim.RolePortalUser}, nil,
				func(c *Client, ctx context.Context) error { _, err := c.Replicas(ctx); return err },
				KindForbidden, 403, "Access denied"},
			{"non-admin failover", emsim.Config{Role: emsim.RolePortalUser}, nil,
				func(c *Client, ctx context.Context) error {
					_, err := c.StartVMFailover(ctx, finReplicaID, finDB01ID, RestoreIntent{Kind: IntentLatest})
					return err
				}, KindForbidden, 403, "Access denied"},
			{"unknown replica", emsim.Config{}, nil,
				func(c *Client, ctx context.Context) error {
					_, err := c.Replica(ctx, "00000000-0000-0000-0000-000000000000")
					return err
				},
				KindNotFound, 404, ""},
			{"unknown VM", emsim.Config{}, nil,
				func(c *Client, ctx context.Context) error {
					_, err := c.ReplicaVM(ctx, finReplicaID, "00000000-0000-0000-0000-000000000000")
					return err
				}, KindNotFound, 404, ""},
			{"VM of another replica", emsim.Config{}, nil,
				func(c *Client, ctx context.Context) error { _, err := c.ReplicaVMs(ctx, web01ID); return err },
				KindNotFound, 404, ""},
			{"unknown vApp failover", emsim.Config{}, nil,
				func(c *Client, ctx context.Context) error {
					_, err := c.StartVAppFailover(ctx, "00000000-0000-0000-0000-000000000000", RestoreIntent{Kind: IntentLatest})
					return err
				}, KindNotFound, 404, ""},
			{"unknown task", emsim.Config{}, nil,
				func(c *Client, ctx context.Context) error { _, err := c.Task(ctx, "task-42"); return err },
				KindNotFound, 404, "task-42"},
			{"unknown restore session", emsim.Config{}, nil,
				func(c *Client, ctx context.Context) error {
					_, err := c.RestoreSession(ctx, "00000000-0000-0000-0000-000000000000")
					return err
				},
				KindNotFound, 404, ""},
			{"wrong password", emsim.Config{Username: simUser, Password: "other"}, nil,
				func(c *Client, ctx context.Context) error { _, err := c.Replicas(ctx); return err },
				KindUnauthorized, 401, ""},
			{"503 beyond retries", emsim.Config{}, func(env *simEnv) { env.sim.Fail503(100) },
				func(c *Client, ctx context.Context) error { _, err := c.Replicas(ctx); return err },
				KindUnavailable, 503, ""},
			{"failover rejected with 500", emsim.Config{}, func(env *simEnv) {
				env.sim.SetScript(finDB01ID, emsim.Script{RejectStart: 500, RejectMessage: "CDP policy is disabled"})
			}, func(c *Client, ctx context.Context) error {
				_, err := c.StartVMFailover(ctx, finReplicaID, finDB01ID, RestoreIntent{Kind: IntentLatest})
				return err
			}, KindServer, 500, "CDP policy is disabled"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				env := newEMSimulator(t, f, tt.simCfg, nil)
				if tt.setup != nil {
					tt.setup(env)
				}
				err := tt.call(env.client, t.Context())
				var e *Error
				if !errors.As(err, &e) {
					t.Fatalf("got %v, want *Error", err)
				}
				if e.Kind != tt.wantKind || e.StatusCode != tt.wantCode || !strings.Contains(e.Message, tt.wantMsg) || e.Message == "" {
					t.Errorf("got %+v, want kind %v, status %d, message containing %q", e, tt.wantKind, tt.wantCode, tt.wantMsg)
				}
				if strings.Contains(err.Error(), simPassword) {
					t.Errorf("error %q contains the password", err)
				}
			})
		}
	})
}

// TestSimFailoverNeverRepeated: every failure after which EM may have acted leaves exactly one
// failover POST on the wire.
func TestSimFailoverNeverRepeated(t *testing.T) {
	tests := []struct {
		name          string
		fault         func(env *simEnv)
		wantKind      ErrorKind
		wantFailovers int // what the simulator actually started
	}{
		{"500", func(env *simEnv) { env.sim.SetScript(finDB01ID, emsim.Script{RejectStart: 500}) }, KindServer, 0},
		{"503", func(env *simEnv) { env.sim.Fail503(1) }, KindUnavailable, 0},
		{"dropped connection", func(env *simEnv) { env.sim.DropConnections(1) }, KindTransport, 0},
		{"answer lost after the failover started", func(env *simEnv) { env.sim.DropResponses(1) }, KindTransport, 1},
		{"timeout", func(env *simEnv) { env.sim.SetLatency(time.Second) }, KindTimeout, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newEMSimulator(t, FormatXML, emsim.Config{}, nil, func(cfg *Config) { cfg.Timeout = 100 * time.Millisecond })
			if _, err := env.client.Replicas(t.Context()); err != nil { // logged on before the fault
				t.Fatal(err)
			}
			tt.fault(env)
			_, err := env.client.StartVMFailover(t.Context(), finReplicaID, finDB01ID, RestoreIntent{Kind: IntentLatest})
			if KindOf(err) != tt.wantKind {
				t.Fatalf("got %v, want kind %v", err, tt.wantKind)
			}
			if got := env.sim.Count(http.MethodPost, "action=failover"); got != 1 {
				t.Errorf("failover POSTs = %d, want exactly 1", got)
			}
			if got := len(env.sim.Failovers()); got != tt.wantFailovers {
				t.Errorf("failovers started = %d, want %d", got, tt.wantFailovers)
			}
			env.sim.SetLatency(0)
			if tt.wantFailovers > 0 { // the way back to the outcome without a task ID
				found, err := env.client.QueryRestoreSessions(t.Context(), env.clock.Now(), []string{"fin-db01"})
				if err != nil || len(found) != 1 {
					t.Errorf("QueryRestoreSessions = %+v, %v; want the session", found, err)
				}
			}
		})
	}
}

func TestSimRetriesReads(t *testing.T) {
	env := newEMSimulator(t, FormatJSON, emsim.Config{}, nil, func(cfg *Config) { cfg.HTTPClient = noKeepAlive(t) })
	env.sim.Fail503(2)
	if _, err := env.client.Replicas(t.Context()); err != nil { // 503s hit the logon, then the GET
		t.Fatalf("Replicas: %v", err)
	}
	env.sim.DropConnections(2)
	if _, err := env.client.ReplicaVMs(t.Context(), finReplicaID); err != nil {
		t.Fatalf("ReplicaVMs: %v", err)
	}
	if got := env.sim.Count(http.MethodGet, "/cdpReplicas/"+finReplicaID+"/vms"); got != 3 {
		t.Errorf("GET vms attempts = %d, want 3 (two dropped)", got)
	}
}

func TestSimSessionExpiry(t *testing.T) {
	t.Run("forced expiry, 20 concurrent callers, one re-logon", func(t *testing.T) {
		env := newEMSimulator(t, FormatXML, emsim.Config{}, nil)
		if _, err := env.client.Replicas(t.Context()); err != nil {
			t.Fatal(err)
		}
		env.sim.ExpireSessions()
		var wg sync.WaitGroup
		errs := make(chan error, 20)
		for range 20 {
			wg.Go(func() {
				if _, err := env.client.ReplicaVMs(t.Context(), finReplicaID); err != nil {
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("caller: %v", err)
		}
		if got := env.sim.Logons(); got != 2 {
			t.Errorf("logons = %d, want 2", got)
		}
	})
	t.Run("idle expiry after 15 minutes", func(t *testing.T) {
		env := newEMSimulator(t, FormatJSON, emsim.Config{}, nil)
		if _, err := env.client.Replicas(t.Context()); err != nil {
			t.Fatal(err)
		}
		env.clock.Advance(14 * time.Minute)
		if _, err := env.client.Replicas(t.Context()); err != nil {
			t.Fatal(err)
		}
		if got := env.sim.Logons(); got != 1 {
			t.Errorf("logons after 14 idle minutes = %d, want 1", got)
		}
		env.clock.Advance(16 * time.Minute)
		if _, err := env.client.Replicas(t.Context()); err != nil {
			t.Fatal(err)
		}
		if got := env.sim.Logons(); got != 2 {
			t.Errorf("logons after 16 idle minutes = %d, want 2", got)
		}
	})
	t.Run("failover after expiry is sent again once", func(t *testing.T) {
		env := newEMSimulator(t, FormatXML, emsim.Config{}, nil)
		if _, err := env.client.Replicas(t.Context()); err != nil {
			t.Fatal(err)
		}
		env.sim.ExpireSessions()
		if _, err := env.client.StartVMFailover(t.Context(), finReplicaID, finDB01ID, RestoreIntent{Kind: IntentLatest}); err != nil {
			t.Fatal(err)
		}
		if got := env.sim.Count(http.MethodPost, "action=failover"); got != 2 {
			t.Errorf("failover POSTs = %d, want 2 (401, then after re-logon)", got)
		}
		if got := len(env.sim.Failovers()); got != 1 {
			t.Errorf("failovers started = %d, want 1", got)
		}
	})
	t.Run("task-scoped: task lost after re-logon, outcome found via restore sessions", func(t *testing.T) {
		env := newEMSimulator(t, FormatXML, emsim.Config{}, nil)
		env.sim.SetDefaultScript(emsim.Script{Running: 10 * time.Second})
		start := env.clock.Now()
		task, err := env.client.StartVMFailover(t.Context(), finReplicaID, finDB01ID, RestoreIntent{Kind: IntentLatest})
		if err != nil {
			t.Fatal(err)
		}
		env.sim.ExpireSessions()
		env.clock.Advance(time.Minute)
		if _, err := env.client.Task(t.Context(), task.ID); KindOf(err) != KindNotFound {
			t.Fatalf("Task after re-logon = %v, want KindNotFound (tasks belong to their session)", err)
		}
		found, err := env.client.QueryRestoreSessions(t.Context(), start, []string{"fin-db01"})
		if err != nil || len(found) != 1 || found[0].Result != "Success" {
			t.Errorf("QueryRestoreSessions = %+v, %v; want one successful session", found, err)
		}
	})
	t.Run("EM restart forgets tasks", func(t *testing.T) {
		env := newEMSimulator(t, FormatJSON, emsim.Config{}, nil)
		task, err := env.client.StartVAppFailover(t.Context(), erpVAppID, RestoreIntent{Kind: IntentLatestVSS})
		if err != nil {
			t.Fatal(err)
		}
		env.sim.Forget()
		if _, err := env.client.Task(t.Context(), task.ID); KindOf(err) != KindNotFound {
			t.Errorf("Task after Forget = %v, want KindNotFound", err)
		}
	})
}

func TestSimResolve(t *testing.T) {
	inv := emsim.Inventory{
		Replicas: []emsim.Replica{
			{ID: "11111111-1111-4111-8111-111111111111", Name: "Finance", PolicyName: "P1", VMs: []emsim.VM{
				{ID: "aaaaaaaa-0000-4000-8000-000000000001", Name: "db"},
				{ID: "aaaaaaaa-0000-4000-8000-000000000002", Name: "DB"},
				{ID: "aaaaaaaa-0000-4000-8000-000000000003", Name: "app"},
			}},
			{ID: "22222222-2222-4222-8222-222222222222", Name: "finance", PolicyName: "P2", VMs: []emsim.VM{
				{ID: "bbbbbbbb-0000-4000-8000-000000000001", Name: "web"},
			}},
			{ID: "33333333-3333-4333-8333-333333333333", Name: "Web", PolicyName: "P3"},
		},
		VApps: []emsim.VApp{{ID: "cccccccc-0000-4000-8000-000000000001", Name: "erp"}},
	}
	forEachFormat(t, func(t *testing.T, f Format) {
		env := newEMSimulator(t, f, emsim.Config{}, &inv)
		c, ctx := env.client, t.Context()
		tests := []struct {
			name      string
			resolve   func() (Ref, error)
			wantID    string
			ambiguous bool
			cands     int
			what      string
		}{
			{"replica by name", func() (Ref, error) { return c.ResolveReplica(ctx, "WEB") }, "33333333-3333-4333-8333-333333333333", false, 0, ""},
			{"replica by GUID", func() (Ref, error) { return c.ResolveReplica(ctx, "22222222-2222-4222-8222-222222222222") }, "22222222-2222-4222-8222-222222222222", false, 0, ""},
			{"replica ambiguous", func() (Ref, error) { return c.ResolveReplica(ctx, "FINANCE") }, "", true, 2, "CDP replica"},
			{"replica unknown", func() (Ref, error) { return c.ResolveReplica(ctx, "HR") }, "", false, 3, "CDP replica"},
			{"VM by name", func() (Ref, error) { return c.ResolveVM(ctx, "11111111-1111-4111-8111-111111111111", "App") }, "aaaaaaaa-0000-4000-8000-000000000003", false, 0, ""},
			{"VM by GUID", func() (Ref, error) {
				return c.ResolveVM(ctx, "11111111-1111-4111-8111-111111111111", "aaaaaaaa-0000-4000-8000-000000000002")
			}, "aaaaaaaa-0000-4000-8000-000000000002", false, 0, ""},
			{"VM ambiguous", func() (Ref, error) { return c.ResolveVM(ctx, "11111111-1111-4111-8111-111111111111", "db") }, "", true, 2, "VM"},
			{"VM of another replica is unknown", func() (Ref, error) { return c.ResolveVM(ctx, "11111111-1111-4111-8111-111111111111", "web") }, "", false, 3, "VM"},
			{"vApp by name", func() (Ref, error) { return c.ResolveVApp(ctx, "ERP") }, "cccccccc-0000-4000-8000-000000000001", false, 0, ""},
			{"vApp unknown", func() (Ref, error) { return c.ResolveVApp(ctx, "crm") }, "", false, 1, "vApp"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				ref, err := tt.resolve()
				if tt.wantID != "" {
					if err != nil || ref.ID != tt.wantID {
						t.Fatalf("got %+v, %v; want ID %s", ref, err, tt.wantID)
					}
					return
				}
				var re *ResolveError
				if !errors.As(err, &re) {
					t.Fatalf("got %v, want *ResolveError", err)
				}
				if re.Ambiguous != tt.ambiguous || len(re.Candidates) != tt.cands || re.What != tt.what {
					t.Errorf("got %+v, want %s ambiguous=%v with %d candidates", re, tt.what, tt.ambiguous, tt.cands)
				}
			})
		}
		if _, err := c.ResolveVM(ctx, "99999999-9999-4999-8999-999999999999", "db"); KindOf(err) != KindNotFound {
			t.Errorf("ResolveVM on unknown replica = %v, want KindNotFound", err)
		}
	})
}

// BenchmarkFailoverPollRoundTrip measures one failover start plus polls to Finished over HTTP
// against the simulator: the script runs 10s, collects 5s, and each poll moves the fake clock 5s,
// so every iteration is one POST and three GETs (Running, OperationFinished, Finished) on a
// logged-on client. Allocations include the in-process simulator's.
func BenchmarkFailoverPollRoundTrip(b *testing.B) {
	for _, f := range []Format{FormatXML, FormatJSON} {
		b.Run(f.String(), func(b *testing.B) {
			env := newEMSimulator(b, f, emsim.Config{AllowRepeatFailover: true}, nil) // the same VM, again and again
			env.sim.SetDefaultScript(emsim.Script{Running: 10 * time.Second, Collect: 5 * time.Second})
			ctx := context.Background()
			if _, err := env.client.Replicas(ctx); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				task, err := env.client.StartVMFailover(ctx, finReplicaID, finDB01ID, RestoreIntent{Kind: IntentLatest})
				if err != nil {
					b.Fatal(err)
				}
				for !task.Done {
					env.clock.Advance(5 * time.Second)
					if task, err = env.client.Task(ctx, task.ID); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
