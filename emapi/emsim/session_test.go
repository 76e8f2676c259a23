package emsim

import (
	"net/http"
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
		{"cookie is ignored", 0, func(m *sim, tok string) string { return "" }, 401, missing},
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
			hr.AddCookie(&http.Cookie{Name: tokenHeader, Value: tok})
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

func TestNonAdminIsForbidden(t *testing.T) {
	m := newSim(t, Config{NonAdmin: true})
	wantStatus(t, m.do(req{method: "GET", path: "/api/"}), http.StatusOK)
	tok, id := m.logon()
	calls := []struct{ method, path, body string }{
		{"GET", "/api/cdpReplicas", ""},
		{"GET", "/api/cdpReplicas/" + finance + "?format=Entity", ""},
		{"GET", "/api/cdpReplicas/" + finance + "/vms", ""},
		{"GET", "/api/cdpReplicas/" + finance + "/vms/" + finDB + "?format=Entity", ""},
		{"POST", "/api/cdpReplicas/" + finance + "/vms/" + finDB + "?action=intervals", specIntervals},
		{"POST", vmFailover, specLatest},
		{"GET", "/api/cdpReplica/vApps", ""},
		{"GET", "/api/cdpReplica/vApps/" + erp + "?format=Entity", ""},
		{"POST", "/api/cdpReplica/vApps/" + erp + "?action=intervals", specIntervals},
		{"POST", "/api/cdpReplica/vApps/" + erp + "?action=failover", specLatest},
		{"GET", "/api/tasks", ""},
		{"GET", "/api/tasks/task-1", ""},
		{"DELETE", "/api/tasks/task-1", ""},
		{"GET", "/api/restoreSessions", ""},
		{"GET", "/api/restoreSessions/00000000-0000-4000-8000-000000000009?format=Entity", ""},
	}
	for _, c := range calls {
		t.Run(c.method+" "+c.path, func(t *testing.T) {
			r := m.do(req{method: c.method, path: c.path, token: tok, body: c.body})
			wantStatus(t, r, http.StatusForbidden)
			wantBody(t, r, `<Error xmlns="http://www.veeam.com/ent/v1.0" Message="Access denied" StatusCode="403"></Error>`)
		})
	}
	if n := len(m.s.Failovers()); n != 0 {
		t.Errorf("failovers: got %d, want 0", n)
	}
	wantStatus(t, m.do(req{method: "DELETE", path: "/api/logonSessions/" + id, token: tok}), http.StatusNoContent)
}
