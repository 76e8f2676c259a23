package emsim

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"testing"
	"time"
)

func TestEnterpriseManager(t *testing.T) {
	m := newSim(t, Config{})
	tests := []struct {
		name, accept, want string
	}{
		{"xml by default", "", `<EnterpriseManager xmlns="http://www.veeam.com/ent/v1.0"><SupportedVersions>` +
			`<SupportedVersion Name="v1_5"><Links><Link Rel="Create" Href="http://HOST/api/sessionMngr/?v=v1_5" Type="LogonSession"></Link></Links></SupportedVersion>` +
			`<SupportedVersion Name="v1_6"><Links><Link Rel="Create" Href="http://HOST/api/sessionMngr/?v=v1_6" Type="LogonSession"></Link></Links></SupportedVersion>` +
			`<SupportedVersion Name="v1_7"><Links><Link Rel="Create" Href="http://HOST/api/sessionMngr/?v=v1_7" Type="LogonSession"></Link></Links></SupportedVersion>` +
			`</SupportedVersions><Links><Link Rel="Create" Href="http://HOST/api/sessionMngr/?v=latest" Type="LogonSession"></Link></Links></EnterpriseManager>`},
		{"json with BOM", "application/json", "\xEF\xBB\xBF" + `{"SupportedVersions":[` +
			`{"Name":"v1_5","Links":[{"Rel":"Create","Href":"http://HOST/api/sessionMngr/?v=v1_5","Type":"LogonSession"}]},` +
			`{"Name":"v1_6","Links":[{"Rel":"Create","Href":"http://HOST/api/sessionMngr/?v=v1_6","Type":"LogonSession"}]},` +
			`{"Name":"v1_7","Links":[{"Rel":"Create","Href":"http://HOST/api/sessionMngr/?v=v1_7","Type":"LogonSession"}]}],` +
			`"Links":[{"Rel":"Create","Href":"http://HOST/api/sessionMngr/?v=latest","Type":"LogonSession"}]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := m.do(req{method: "GET", path: "/api/", accept: tt.accept})
			wantStatus(t, r, http.StatusOK)
			wantBody(t, r, tt.want)
		})
	}
}

func TestLogon(t *testing.T) {
	tests := []struct {
		name       string
		r          req
		wantStatus int
		wantBody   string
		wantAuthn  string // WWW-Authenticate
		wantToken  bool
	}{
		{
			name: "latest", r: req{method: "POST", path: "/api/sessionMngr/?v=latest", user: testUser, pass: testPass},
			wantStatus: 201, wantToken: true,
			wantBody: `<LogonSession xmlns="http://www.veeam.com/ent/v1.0" Href="http://HOST/api/logonSessions/00000000-0000-4000-8000-000000000001" Type="LogonSession"><Links>` +
				`<Link Rel="Up" Href="http://HOST/api/" Type="EnterpriseManager"></Link>` +
				`<Link Rel="Delete" Href="http://HOST/api/logonSessions/00000000-0000-4000-8000-000000000001" Type="LogonSession"></Link>` +
				`</Links><UserName>DEMO\admin</UserName><SessionId>00000000-0000-4000-8000-000000000001</SessionId></LogonSession>`,
		},
		{
			name: "v1_7 in json", r: req{method: "POST", path: "/api/sessionMngr/?v=v1_7", user: testUser, pass: testPass, accept: "application/json"},
			wantStatus: 201, wantToken: true,
			wantBody: "\xEF\xBB\xBF" + `{"Href":"http://HOST/api/logonSessions/00000000-0000-4000-8000-000000000001","Type":"LogonSession","Links":[` +
				`{"Rel":"Up","Href":"http://HOST/api/","Type":"EnterpriseManager"},` +
				`{"Rel":"Delete","Href":"http://HOST/api/logonSessions/00000000-0000-4000-8000-000000000001","Type":"LogonSession"}],` +
				`"UserName":"DEMO\\admin","SessionId":"00000000-0000-4000-8000-000000000001"}`,
		},
		{
			name: "bad password", r: req{method: "POST", path: "/api/sessionMngr/?v=latest", user: testUser, pass: "wrong"},
			wantStatus: 401, wantAuthn: "Basic Realm=RestSvc",
			wantBody: `<Error xmlns="http://www.veeam.com/ent/v1.0" Message="Authentication failed: invalid user name or password" StatusCode="401"></Error>`,
		},
		{
			name: "bad user", r: req{method: "POST", path: "/api/sessionMngr/?v=latest", user: "admin", pass: testPass},
			wantStatus: 401, wantAuthn: "Basic Realm=RestSvc",
			wantBody: `<Error xmlns="http://www.veeam.com/ent/v1.0" Message="Authentication failed: invalid user name or password" StatusCode="401"></Error>`,
		},
		{
			name: "no credentials", r: req{method: "POST", path: "/api/sessionMngr/?v=latest"},
			wantStatus: 401, wantAuthn: "Basic Realm=RestSvc",
			wantBody: `<Error xmlns="http://www.veeam.com/ent/v1.0" Message="Authentication failed: invalid user name or password" StatusCode="401"></Error>`,
		},
		{
			name: "missing version", r: req{method: "POST", path: "/api/sessionMngr/", user: testUser, pass: testPass},
			wantStatus: 400,
			wantBody:   `<Error xmlns="http://www.veeam.com/ent/v1.0" Message="Unsupported or missing API version (query parameter v): " StatusCode="400"></Error>`,
		},
		{
			name: "unknown version", r: req{method: "POST", path: "/api/sessionMngr/?v=v2", user: testUser, pass: testPass},
			wantStatus: 400,
			wantBody:   `<Error xmlns="http://www.veeam.com/ent/v1.0" Message="Unsupported or missing API version (query parameter v): v2" StatusCode="400"></Error>`,
		},
		{
			name: "GET is not allowed", r: req{method: "GET", path: "/api/sessionMngr/?v=latest", user: testUser, pass: testPass},
			wantStatus: 405,
			wantBody:   `<Error xmlns="http://www.veeam.com/ent/v1.0" Message="Method GET is not allowed for this resource" StatusCode="405"></Error>`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newSim(t, Config{})
			r := m.do(tt.r)
			wantStatus(t, r, tt.wantStatus)
			wantBody(t, r, tt.wantBody)
			if got := r.header.Get("WWW-Authenticate"); got != tt.wantAuthn {
				t.Errorf("WWW-Authenticate: got %q, want %q", got, tt.wantAuthn)
			}
			tok := r.header.Get(tokenHeader)
			if tt.wantToken {
				// The token is not the SessionId: it is base64 of a different GUID.
				if tok == "" || strings.Contains(r.body, tok) || tok != "MDAwMDAwMDAtMDAwMC00MDAwLTgwMDAtMDAwMDAwMDAwMDAy" {
					t.Errorf("token: got %q, want base64 of the second GUID, absent from the body", tok)
				}
				if got := m.s.Logons(); got != 1 {
					t.Errorf("Logons: got %d, want 1", got)
				}
			} else if tok != "" || m.s.Logons() != 0 {
				t.Errorf("failed logon: got token %q and %d logons, want none", tok, m.s.Logons())
			}
		})
	}
}

func TestLogout(t *testing.T) {
	m := newSim(t, Config{})
	tokA, idA := m.logon()
	tokB, idB := m.logon()

	r := m.do(req{method: "DELETE", path: "/api/logonSessions/" + idB, token: tokA})
	wantStatus(t, r, http.StatusNotFound) // another session's ID
	r = m.do(req{method: "DELETE", path: "/api/logonSessions/" + idA})
	wantStatus(t, r, http.StatusUnauthorized)
	r = m.do(req{method: "DELETE", path: "/api/logonSessions/" + idA, token: tokA})
	wantStatus(t, r, http.StatusNoContent)
	wantBody(t, r, "")

	wantStatus(t, m.get(tokA, "/api/cdpReplicas"), http.StatusUnauthorized)
	wantStatus(t, m.get(tokB, "/api/cdpReplicas"), http.StatusOK)
}

func TestAuthentication(t *testing.T) {
	const (
		missing = `<Error xmlns="http://www.veeam.com/ent/v1.0" Message="Authentication required: the X-RestSvcSessionId header is missing" StatusCode="401"></Error>`
		expired = `<Error xmlns="http://www.veeam.com/ent/v1.0" Message="Logon session has expired or does not exist" StatusCode="401"></Error>`
	)
	tests := []struct {
		name     string
		idle     time.Duration                   // Config.SessionIdle, 0 = default 15m
		prepare  func(m *sim, tok string) string // returns the token to use
		want     int
		wantBody string
	}{
		{"valid token", 0, func(m *sim, tok string) string { return tok }, 200, ""},
		{"missing token", 0, func(m *sim, tok string) string { return "" }, 401, missing},
		{"unknown token", 0, func(m *sim, tok string) string { return "bm9wZQ==" }, 401, expired},
		{"idle exactly 15m is still valid", 0, func(m *sim, tok string) string {
			m.clock.Advance(15 * time.Minute)
			return tok
		}, 200, ""},
		{"idle past 15m expires", 0, func(m *sim, tok string) string {
			m.clock.Advance(15*time.Minute + time.Second)
			return tok
		}, 401, expired},
		{"use resets the idle timer", 0, func(m *sim, tok string) string {
			m.clock.Advance(14 * time.Minute)
			wantStatus(m.t, m.get(tok, "/api/cdpReplicas"), 200)
			m.clock.Advance(14 * time.Minute)
			return tok
		}, 200, ""},
		{"configured idle", time.Minute, func(m *sim, tok string) string {
			m.clock.Advance(61 * time.Second)
			return tok
		}, 401, expired},
		{"ExpireSessions", 0, func(m *sim, tok string) string {
			m.s.ExpireSessions()
			return tok
		}, 401, expired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newSim(t, Config{SessionIdle: tt.idle})
			tok, _ := m.logon()
			use := tt.prepare(m, tok)
			hr, _ := http.NewRequest("GET", m.ts.URL+"/api/cdpReplicas", nil)
			if use != "" {
				hr.Header.Set(tokenHeader, use)
			}
			res, err := m.ts.Client().Do(hr)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != tt.want {
				t.Fatalf("status: got %d, want %d", res.StatusCode, tt.want)
			}
			if tt.wantBody != "" {
				wantBody(t, m.get(use, "/api/cdpReplicas"), tt.wantBody)
			}
		})
	}
}

// TestRoles follows em-api.md's role table: tasks, restore sessions and restore session queries
// are open to every role, CDP resources and CDP replica queries need the Portal Administrator.
func TestRoles(t *testing.T) {
	calls := []struct {
		method, path, body string
		adminOnly          bool
		want               int // status for the Portal Administrator
	}{
		{"GET", "/api/cdpReplicas", "", true, 200},
		{"GET", "/api/cdpReplicas/" + finance + "?format=Entity", "", true, 200},
		{"GET", "/api/cdpReplicas/" + finance + "/vms", "", true, 200},
		{"GET", "/api/cdpReplicas/" + finance + "/vms/" + finDB + "?format=Entity", "", true, 200},
		{"POST", "/api/cdpReplicas/" + finance + "/vms/" + finDB + "?action=intervals", specIntervals, true, 200},
		{"POST", vmFailover, specLatest, true, 202},
		{"GET", "/api/cdpReplica/vApps", "", true, 200},
		{"GET", "/api/cdpReplica/vApps/" + erp + "?format=Entity", "", true, 200},
		{"POST", "/api/cdpReplica/vApps/" + erp + "?action=intervals", specIntervals, true, 200},
		{"POST", "/api/cdpReplica/vApps/" + erp + "?action=failover", specLatest, true, 202},
		{"GET", "/api/query?type=CdpReplica", "", true, 200},
		{"GET", "/api/tasks", "", false, 200},
		{"GET", "/api/tasks/task-9", "", false, 404},
		{"DELETE", "/api/tasks/task-9", "", false, 404},
		{"GET", "/api/restoreSessions", "", false, 200},
		{"GET", "/api/restoreSessions/00000000-0000-4000-8000-000000000009?format=Entity", "", false, 404},
		{"GET", "/api/query?type=RestoreSession", "", false, 200},
	}
	for _, role := range []string{"", RolePortalAdministrator, RolePortalUser, RoleRestoreOperator} {
		t.Run("role "+role, func(t *testing.T) {
			m := newSim(t, Config{Role: role})
			wantStatus(t, m.do(req{method: "GET", path: "/api/"}), http.StatusOK)
			tok, id := m.logon()
			admin := role == "" || role == RolePortalAdministrator
			for _, c := range calls {
				r := m.do(req{method: c.method, path: c.path, token: tok, body: c.body})
				if c.adminOnly && !admin {
					wantStatus(t, r, http.StatusForbidden)
					wantBody(t, r, `<Error xmlns="http://www.veeam.com/ent/v1.0" Message="Access denied" StatusCode="403"></Error>`)
					continue
				}
				if r.status != c.want {
					t.Errorf("%s %s: got %d %s, want %d", c.method, c.path, r.status, r.body, c.want)
				}
			}
			if n, want := len(m.s.Failovers()), map[bool]int{true: 2, false: 0}[admin]; n != want {
				t.Errorf("failovers: got %d, want %d", n, want)
			}
			wantStatus(t, m.do(req{method: "DELETE", path: "/api/logonSessions/" + id, token: tok}), http.StatusNoContent)
		})
	}
}

func TestRoleValidation(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error(`New with Role "Administrator" did not panic`)
		}
	}()
	New(Config{Role: "Administrator"}, DemoInventory())
}

// TestSessionCookie: the logon answer sets the token as a cookie too, and a request carrying the
// cookie is served in the cookie's session whatever the header says, as on EM.
func TestSessionCookie(t *testing.T) {
	m := newSim(t, Config{})
	r := m.do(req{method: "POST", path: "/api/sessionMngr/?v=latest", user: testUser, pass: testPass})
	wantStatus(t, r, http.StatusCreated)
	tokA := r.header.Get(tokenHeader)
	if got, want := r.header.Get("Set-Cookie"), tokenHeader+"="+tokA+"; Path=/api"; got != want {
		t.Fatalf("Set-Cookie: got %q, want %q", got, want)
	}
	m.failover(tokA, vmFailover) // A's task-1: fin-db01
	tokB, _ := m.logon()
	m.failover(tokB, "/api/cdpReplica/vApps/"+erp+"?action=failover") // B's task-1: erp-vapp
	tokC, _ := m.logon()
	m.s.ExpireSessions() // all three tokens dead
	tokD, _ := m.logon()
	m.failover(tokD, "/api/cdpReplicas/"+webRep+"/vms/fc2d6425-e96d-44e7-9d96-b7af5991adb3?action=failover") // D's task-1: web01
	tokE, _ := m.logon()

	tests := []struct {
		name           string
		header, cookie string
		want           int
		wantRS         string // Related restore session of task-1, for a 200
	}{
		{"header only", tokD, "", 200, "00000000-0000-4000-8000-000000000011"},
		{"cookie only", "", tokD, 200, "00000000-0000-4000-8000-000000000011"},
		{"cookie of another live session wins over the header", tokD, tokE, 404, ""},
		{"header of another live session loses to the cookie", tokE, tokD, 200, "00000000-0000-4000-8000-000000000011"},
		{"expired cookie wins over a live header", tokD, tokC, 401, ""},
		{"empty cookie falls back to the header", tokD, "", 200, "00000000-0000-4000-8000-000000000011"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hr, _ := http.NewRequest("GET", m.ts.URL+"/api/tasks/task-1", nil)
			if tt.header != "" {
				hr.Header.Set(tokenHeader, tt.header)
			}
			if tt.cookie != "" || tt.name == "empty cookie falls back to the header" {
				hr.AddCookie(&http.Cookie{Name: tokenHeader, Value: tt.cookie})
			}
			res, err := m.ts.Client().Do(hr)
			if err != nil {
				t.Fatal(err)
			}
			var v taskView
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != tt.want {
				t.Fatalf("status: got %d %s, want %d", res.StatusCode, b, tt.want)
			}
			if tt.want != 200 {
				return
			}
			if err := decodeAnswer(string(b), &v); err != nil {
				t.Fatal(err)
			}
			if want := m.ts.URL + "/api/restoreSessions/" + tt.wantRS + "?format=Entity"; v.related() != want {
				t.Errorf("Related: got %q, want %q", v.related(), want)
			}
		})
	}

	// A client with a cookie jar keeps the first session's cookie: after a re-logon it sends the
	// new token in the header, but EM serves it in the old session and DELETEs the wrong task-1.
	t.Run("cookie jar acts in the old session", func(t *testing.T) {
		m := newSim(t, Config{SessionIdle: time.Hour})
		jar, err := cookiejar.New(nil)
		if err != nil {
			t.Fatal(err)
		}
		client := &http.Client{Jar: jar}
		send := func(method, path, token, body string) int {
			t.Helper()
			hr, _ := http.NewRequest(method, m.ts.URL+path, strings.NewReader(body))
			if token != "" {
				hr.Header.Set(tokenHeader, token)
			} else {
				hr.SetBasicAuth(testUser, testPass)
			}
			res, err := client.Do(hr)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			return res.StatusCode
		}
		m.s.SetDefaultScript(Script{Running: time.Minute})
		send("POST", "/api/sessionMngr/?v=latest", "", "")                 // session A, cookie stored
		tokB, _ := m.logon()                                               // session B, no cookie (other client)
		if got := send("POST", vmFailover, tokB, specLatest); got != 202 { // meant for B, runs in A
			t.Fatalf("failover: got %d, want 202", got)
		}
		if fo := m.s.Failovers(); fo[0].LogonSessionID != "00000000-0000-4000-8000-000000000001" {
			t.Errorf("failover ran in session %s, want A (the cookie's)", fo[0].LogonSessionID)
		}
		wantStatus(t, m.get(tokB, "/api/tasks/task-1"), http.StatusNotFound) // B has no task
	})
}
