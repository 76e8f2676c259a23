package emsim

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/failover-bot/failover-bot/store/failover/fakeclock"
)

// t0 is the fake clock's start: the seeds' example date.
var t0 = time.Date(2021, 2, 17, 15, 31, 40, 0, time.UTC)

// sim is a simulator behind a real HTTP listener, with a fake clock and predictable GUIDs.
type sim struct {
	t     *testing.T
	s     *Server
	ts    *httptest.Server
	clock *fakeclock.Clock
	tok   string // a token for tests that keep one on the sim
}

const (
	testUser = "DEMO\\admin"
	testPass = "pa:ss w0rd"
	// finDB and friends are DemoInventory IDs.
	finance = "7665222c-2e99-4a3f-b892-1827ba8d1eee"
	finDB   = "e809a086-2562-4a0f-a9a8-9c115ff8f0ba"
	webRep  = "24ae37ad-4d28-4568-8467-98d8770bb722"
	erp     = "5c4b3a29-1807-4f6e-9d5c-4b3a29180f7e"
)

// newSim starts a simulator with DemoInventory. GUIDs from newID are 00000000-0000-4000-8000-00000000000N.
func newSim(t *testing.T, cfg Config) *sim {
	t.Helper()
	clock := fakeclock.New(t0)
	if cfg.Username == "" {
		cfg.Username, cfg.Password = testUser, testPass
	}
	cfg.Now = clock.Now
	s := New(cfg, DemoInventory())
	var mu sync.Mutex
	n := 0
	s.newID = func() string {
		mu.Lock()
		defer mu.Unlock()
		n++
		return fmt.Sprintf("00000000-0000-4000-8000-%012d", n)
	}
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return &sim{t: t, s: s, ts: ts, clock: clock}
}

// req describes one raw HTTP request.
type req struct {
	method, path string // path includes the query
	token        string
	accept       string
	contentType  string
	body         string
	user, pass   string // Basic auth when user != ""
}

type resp struct {
	status int
	header http.Header
	body   string // with the listener address replaced by HOST
}

func (m *sim) do(r req) resp {
	m.t.Helper()
	hr, err := http.NewRequest(r.method, m.ts.URL+r.path, strings.NewReader(r.body))
	if err != nil {
		m.t.Fatalf("new request: %v", err)
	}
	if r.token != "" {
		hr.Header.Set(tokenHeader, r.token)
	}
	if r.accept != "" {
		hr.Header.Set("Accept", r.accept)
	}
	if r.contentType != "" {
		hr.Header.Set("Content-Type", r.contentType)
	}
	if r.user != "" {
		hr.SetBasicAuth(r.user, r.pass)
	}
	res, err := m.ts.Client().Do(hr)
	if err != nil {
		m.t.Fatalf("%s %s: %v", r.method, r.path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		m.t.Fatalf("read body: %v", err)
	}
	return resp{status: res.StatusCode, header: res.Header, body: strings.ReplaceAll(string(b), m.ts.Listener.Addr().String(), "HOST")}
}

// logon returns a fresh token and SessionId.
func (m *sim) logon() (token, sessionID string) {
	m.t.Helper()
	r := m.do(req{method: "POST", path: "/api/sessionMngr/?v=latest", user: testUser, pass: testPass})
	if r.status != http.StatusCreated {
		m.t.Fatalf("logon: got %d %s, want 201", r.status, r.body)
	}
	_, rest, _ := strings.Cut(r.body, "<SessionId>")
	sessionID, _, _ = strings.Cut(rest, "</SessionId>")
	return r.header.Get(tokenHeader), sessionID
}

func (m *sim) get(token, path string) resp {
	m.t.Helper()
	return m.do(req{method: "GET", path: path, token: token})
}

// failover starts a failover of fin-db01 with the latest intent and returns the 202 answer.
func (m *sim) failover(token, path string) resp {
	m.t.Helper()
	r := m.do(req{method: "POST", path: path, token: token, contentType: "application/xml", body: specLatest})
	if r.status != http.StatusAccepted {
		m.t.Fatalf("failover: got %d %s, want 202", r.status, r.body)
	}
	return r
}

const specLatest = `<?xml version="1.0" encoding="utf-8"?>
<CdpFailoverStartSpec xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns="http://www.veeam.com/ent/v1.0">
 <RestoreCurrent>true</RestoreCurrent>
 <RestoreCurrentVss>false</RestoreCurrentVss>
</CdpFailoverStartSpec>`

const vmFailover = "/api/cdpReplicas/" + finance + "/vms/" + finDB + "?action=failover"

func wantStatus(t *testing.T, r resp, want int) {
	t.Helper()
	if r.status != want {
		t.Fatalf("status: got %d, want %d; body %s", r.status, want, r.body)
	}
}

func wantBody(t *testing.T, r resp, want string) {
	t.Helper()
	if r.body != want {
		t.Fatalf("body:\ngot  %s\nwant %s", r.body, want)
	}
}

func itoa(n int) string { return fmt.Sprint(n) }

// decodeAnswer decodes an XML or (BOM-prefixed) JSON answer into v.
func decodeAnswer(body string, v any) error {
	if b, ok := strings.CutPrefix(body, "\xEF\xBB\xBF"); ok {
		return json.Unmarshal([]byte(b), v)
	}
	return xml.Unmarshal([]byte(body), v)
}
