package emsim

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// Config holds the simulated server's account and behaviour switches. The zero value of every
// switch is EM's documented (or most likely) behaviour.
type Config struct {
	// Username and Password are the Basic credentials /sessionMngr accepts.
	Username, Password string
	// Role is the account's EM role: "" or RolePortalAdministrator (full access),
	// RolePortalUser or RoleRestoreOperator. Per em-api.md's role table, /tasks, /tasks/{id} (GET
	// and DELETE), /restoreSessions, /restoreSessions/{id} and /query?type=RestoreSession are
	// open to every role; /cdpReplicas…, /cdpReplica/vApps… (the failover and intervals POSTs
	// included) and /query?type=CdpReplica need the Portal Administrator role and answer the
	// others 403 "Access denied". New panics on any other value.
	Role string
	// SessionIdle is how long a logon session may stay unused before its token is refused (401).
	// Default 15m, EM's default.
	SessionIdle time.Duration
	// TasksAcrossSessions turns off EM's task scoping: a task ID is then looked up across all
	// logon sessions, newest first, instead of only among the calling session's tasks. Task IDs
	// are numbered per logon session either way (a new session's first task is task-1 again), and
	// GET /tasks lists the calling session's tasks only.
	TasksAcrossSessions bool
	// Lenient reads CdpFailoverStartSpec and CdpIntervalsSpec bodies like EM's .NET data-contract
	// reader: unknown elements (JSON keys) and out-of-order XML elements are skipped silently
	// instead of answered 400, and what is left absent keeps its default; a malformed document is
	// still a 400. A failover body that selects nothing after skipping still starts a failover,
	// with the latest restore point (see Failover.Used).
	Lenient bool
	// PointInTimeElement is the point-in-time element name of CdpFailoverStartSpec the server
	// understands, in XML and JSON bodies alike: PointInTimeTableSpelling ("RestoreAtPointinTime",
	// the default) or PointInTimeExampleSpelling ("RestoreAtPointInTime"). The other spelling is
	// an unknown element: 400 in strict mode, skipped in lenient mode. New panics on another value.
	PointInTimeElement string
	// DeleteOnlyRemoves makes DELETE /tasks/{id} remove the task (204; a later GET of it is a 404
	// in that session) while the failover carries on to its scripted end: the v13 "Removes a task"
	// reading. By default DELETE stops a running failover: task Finished Success=false "Stopped by
	// user", restore session Stopped/Failed.
	DeleteOnlyRemoves bool
	// AllowRepeatFailover turns off the replica state check. By default a target whose failover
	// is running, collecting, or ended Success or Warning (or without a result) is in the Failover
	// state, not Ready, and a second failover POST of it answers 400; a failover that ended Failed,
	// was stopped by DELETE, or was a Script.AsyncFailure leaves it Ready. See Server.Failback.
	AllowRepeatFailover bool
	// Now is the clock for session idleness and task life; tests inject a fake clock. Default time.Now.
	Now func() time.Time
}

// EM roles for Config.Role.
const (
	RolePortalAdministrator = "PortalAdministrator"
	RolePortalUser          = "PortalUser"
	RoleRestoreOperator     = "RestoreOperator"
)

// Server is a strict, in-memory Veeam Backup Enterprise Manager REST API (the subset failover-bot
// uses). It implements http.Handler; all methods are safe for concurrent use. Task and restore
// session progress is computed from Config.Now whenever it is read, so no goroutines run behind
// the caller's back and a fake clock controls every state exactly.
type Server struct {
	cfg Config
	inv inventory

	// newID returns a fresh GUID; tests in this package replace it for literal expected bodies.
	newID func() string

	mu              sync.Mutex
	sessions        map[string]*logonSession // by token
	sessionsByID    map[string]*logonSession // by SessionId (the body GUID)
	tasks           map[taskKey]*task
	tasksByID       map[string][]*task // same task ID across sessions, in creation order
	restoreSessions map[string]*run
	runs            []*run            // restore sessions in creation order, for GET /restoreSessions
	byTarget        map[string][]*run // failovers per target ID, for the Ready/Failover state
	scripts         map[string]Script
	noHistory       map[string]bool // targets with no restorable state (SetNoHistory)
	defaultScript   *Script
	failovers       []Failover

	latency   time.Duration
	fail503   int
	drop      int
	dropAfter int
	// failoversInFlight and maxFailoversInFlight count concurrent failover POSTs.
	failoversInFlight, maxFailoversInFlight int
	// failAfter requests are served, then answered failAfterStatus.
	failAfter, failAfterStatus int
	// delayAfter requests are served, then answered delayAfterFor later.
	delayAfter    int
	delayAfterFor time.Duration
	requests      []Recorded
	recBase       int // sequence number of requests[0]
	logons        int
}

// New returns a Server for the given account and inventory. It panics on an inventory with empty
// or duplicate IDs, an unknown Role or PointInTimeElement: that is a broken test fixture, not a
// runtime condition.
func New(cfg Config, inv Inventory) *Server {
	switch cfg.Role {
	case "", RolePortalAdministrator, RolePortalUser, RoleRestoreOperator:
	default:
		panic(fmt.Sprintf("emsim: Config.Role %q: want %s, %s or %s", cfg.Role, RolePortalAdministrator, RolePortalUser, RoleRestoreOperator))
	}
	switch cfg.PointInTimeElement {
	case "":
		cfg.PointInTimeElement = PointInTimeTableSpelling
	case PointInTimeTableSpelling, PointInTimeExampleSpelling:
	default:
		panic(fmt.Sprintf("emsim: Config.PointInTimeElement %q: want %s or %s", cfg.PointInTimeElement, PointInTimeTableSpelling, PointInTimeExampleSpelling))
	}
	if cfg.SessionIdle <= 0 {
		cfg.SessionIdle = 15 * time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Server{
		cfg:             cfg,
		inv:             indexInventory(inv),
		newID:           randomGUID,
		sessions:        map[string]*logonSession{},
		sessionsByID:    map[string]*logonSession{},
		tasks:           map[taskKey]*task{},
		tasksByID:       map[string][]*task{},
		restoreSessions: map[string]*run{},
		byTarget:        map[string][]*run{},
		scripts:         map[string]Script{},
	}
}

// randomGUID returns a random (version 4) GUID in EM's lower-case form.
func randomGUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// maxBody bounds request bodies; EM specs are a few hundred bytes.
const maxBody = 1 << 20

// call is one request being served.
type call struct {
	s      *Server
	w      http.ResponseWriter
	r      *http.Request
	now    time.Time
	json   bool     // answer in JSON
	params []string // path IDs in order
	body   []byte
	sess   *logonSession
	base   string // "http://host/api"
}

func (c *call) fail(status int, msg string) { writeError(c.w, status, msg, c.json) }

func (c *call) ok(status int, v any) { write(c.w, status, v, c.json) }

// route is one resource: the handler per allowed method and whether it needs a session token and
// the Portal Administrator role (/query checks the role itself: it depends on the type).
type route struct {
	methods map[string]func(*call)
	auth    bool
	admin   bool
}

// match maps a path below /api/ to its route and path parameters. Paths are case-sensitive, so a
// misspelt resource (e.g. /cdpReplicas/vApps) is a 404 like on the real server.
func (s *Server) match(path string) (*route, []string) {
	if path == "/api/" {
		return &route{methods: map[string]func(*call){http.MethodGet: s.getEnterpriseManager}}, nil
	}
	rest, ok := strings.CutPrefix(path, "/api/")
	if !ok {
		return nil, nil
	}
	seg := strings.Split(rest, "/")
	for _, p := range seg[:len(seg)-1] {
		if p == "" {
			return nil, nil
		}
	}
	// Only /sessionMngr/ carries a trailing slash in EM's documented URLs.
	if seg[len(seg)-1] == "" {
		if len(seg) == 2 && seg[0] == "sessionMngr" {
			seg = seg[:1]
		} else {
			return nil, nil
		}
	}
	// get is a GET that needs the Portal Administrator role.
	get := func(h func(*call)) *route {
		return &route{methods: map[string]func(*call){http.MethodGet: h}, auth: true, admin: true}
	}
	// anyRole is a GET open to every role.
	anyRole := func(h func(*call)) *route {
		return &route{methods: map[string]func(*call){http.MethodGet: h}, auth: true}
	}
	switch {
	case len(seg) == 1 && seg[0] == "sessionMngr":
		return &route{methods: map[string]func(*call){http.MethodPost: s.logon}}, nil
	case len(seg) == 2 && seg[0] == "logonSessions":
		return &route{methods: map[string]func(*call){http.MethodDelete: s.logout}, auth: true}, seg[1:]
	case len(seg) == 1 && seg[0] == "cdpReplicas":
		return get(s.listReplicas), nil
	case len(seg) == 2 && seg[0] == "cdpReplicas":
		return get(s.getReplica), seg[1:]
	case len(seg) == 3 && seg[0] == "cdpReplicas" && seg[2] == "vms":
		return get(s.listReplicaVMs), seg[1:2]
	case len(seg) == 4 && seg[0] == "cdpReplicas" && seg[2] == "vms":
		return &route{methods: map[string]func(*call){http.MethodGet: s.getReplicaVM, http.MethodPost: s.postReplicaVM}, auth: true, admin: true}, []string{seg[1], seg[3]}
	case len(seg) == 2 && seg[0] == "cdpReplica" && seg[1] == "vApps":
		return get(s.listVApps), nil
	case len(seg) == 3 && seg[0] == "cdpReplica" && seg[1] == "vApps":
		return &route{methods: map[string]func(*call){http.MethodGet: s.getVApp, http.MethodPost: s.postVApp}, auth: true, admin: true}, seg[2:]
	case len(seg) == 1 && seg[0] == "tasks":
		return anyRole(s.listTasks), nil
	case len(seg) == 2 && seg[0] == "tasks":
		return &route{methods: map[string]func(*call){http.MethodGet: s.getTask, http.MethodDelete: s.deleteTask}, auth: true}, seg[1:]
	case len(seg) == 1 && seg[0] == "restoreSessions":
		return anyRole(s.listRestoreSessions), nil
	case len(seg) == 2 && seg[0] == "restoreSessions":
		return anyRole(s.getRestoreSession), seg[1:]
	case len(seg) == 1 && seg[0] == "query":
		return anyRole(s.query), nil
	}
	return nil, nil
}

// ServeHTTP records the request, applies injected faults, then serves it. Order of checks: unknown
// resource 404, wrong method 405, missing/expired token 401, missing role 403, then the handler's
// own body (400) and ID (404) checks.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body []byte
	if r.Body != nil {
		b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
		if err != nil {
			body = b
			idx := s.record(r, body)
			sw := &statusWriter{ResponseWriter: w}
			writeError(sw, http.StatusRequestEntityTooLarge, "Request body is too large", false)
			s.setStatus(idx, sw.status)
			return
		}
		body = b
	}
	idx := s.record(r, body)
	if r.Method == http.MethodPost && strings.Contains(r.URL.RawQuery, "action=failover") {
		done := s.trackFailover()
		defer done()
	}
	sw := &statusWriter{ResponseWriter: w}
	defer func() { s.setStatus(idx, sw.status) }()

	if !s.applyFaults(sw, r, body) {
		return
	}

	s.serve(sw, r, body)
}

// serve answers one request (after faults).
func (s *Server) serve(w http.ResponseWriter, r *http.Request, body []byte) {
	c := &call{s: s, w: w, r: r, now: s.cfg.Now(), body: body}
	// EM's Date header is EM's clock: Config.Now, so a test can skew it against the client's.
	w.Header().Set("Date", c.now.UTC().Format(http.TimeFormat))
	c.json = acceptJSON(r.Header.Get("Accept"))
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	c.base = scheme + "://" + r.Host + "/api"

	rt, params := s.match(r.URL.Path)
	if rt == nil {
		c.fail(http.StatusNotFound, "Resource not found: "+r.URL.Path)
		return
	}
	h, ok := rt.methods[r.Method]
	if !ok {
		allow := make([]string, 0, len(rt.methods))
		for m := range rt.methods {
			allow = append(allow, m)
		}
		slices.Sort(allow)
		w.Header().Set("Allow", strings.Join(allow, ", "))
		c.fail(http.StatusMethodNotAllowed, "Method "+r.Method+" is not allowed for this resource")
		return
	}
	c.params = params
	if rt.auth {
		sess, msg := s.authenticate(requestToken(r), c.now)
		if sess == nil {
			c.fail(http.StatusUnauthorized, msg)
			return
		}
		c.sess = sess
	}
	if rt.admin && !s.isAdmin() {
		c.forbidden()
		return
	}
	h(c)
}

// isAdmin reports whether the account has the Portal Administrator role.
func (s *Server) isAdmin() bool {
	return s.cfg.Role == "" || s.cfg.Role == RolePortalAdministrator
}

func (c *call) forbidden() { c.fail(http.StatusForbidden, "Access denied") }

// statusWriter remembers the status code for the request record.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// acceptJSON reports whether the answer should be JSON: only when Accept names exactly one media
// type and it is application/json. Anything else (absent, */*, XML, a list) gets XML, EM's default.
func acceptJSON(accept string) bool {
	types := mediaTypes(accept)
	return len(types) == 1 && types[0] == "application/json"
}

// mediaTypes lists the media types of an Accept or Content-Type value, lower-cased, without
// parameters.
func mediaTypes(v string) []string {
	var out []string
	for _, p := range strings.Split(v, ",") {
		mt, _, _ := strings.Cut(p, ";")
		mt = strings.ToLower(strings.TrimSpace(mt))
		if mt != "" {
			out = append(out, mt)
		}
	}
	return out
}

// wait blocks for d or until ctx is done, whichever comes first, so a cancelled client never
// leaves a handler sleeping.
func wait(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// Unwrap lets http.ResponseController reach the connection (for DropConnections).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
