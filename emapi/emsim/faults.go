package emsim

import (
	"bytes"
	"net/http"
	"slices"
	"strings"
	"time"
)

// Recorded is one request the server received, whatever happened to it.
type Recorded struct {
	Method, Path, RawQuery, Accept, ContentType string
	Body                                        []byte
	// Status is the answer's status code; 0 when the connection was dropped or the client went
	// away before an answer.
	Status int
	At     time.Time // Config.Now at arrival
}

// maxRecorded bounds the request log so a long-running console demo does not grow without end;
// when it is full the oldest tenth is discarded. Tests never come near it.
const maxRecorded = 100_000

// record logs a request at arrival and returns its sequence number for setStatus.
func (s *Server) record(r *http.Request, body []byte) int {
	rec := Recorded{
		Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery,
		Accept: r.Header.Get("Accept"), ContentType: r.Header.Get("Content-Type"),
		Body: body, At: s.cfg.Now(),
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.requests) >= maxRecorded {
		n := maxRecorded / 10
		s.requests = append(s.requests[:0], s.requests[n:]...)
		s.recBase += n
	}
	s.requests = append(s.requests, rec)
	return s.recBase + len(s.requests) - 1
}

func (s *Server) setStatus(seq, status int) {
	s.mu.Lock()
	if i := seq - s.recBase; i >= 0 && i < len(s.requests) {
		s.requests[i].Status = status
	}
	s.mu.Unlock()
}

// Requests returns every request received so far (the last 90,000 to 100,000 in a very long run),
// in arrival order.
func (s *Server) Requests() []Recorded {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// Count returns how many requests had the method (any method when "") and a path-plus-query
// ("/api/...?..." ) containing pathSubstring, e.g. Count("POST", "action=failover"). Every
// received request counts, including dropped and 503-answered ones: the point is what reached
// the server.
func (s *Server) Count(method, pathSubstring string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, r := range s.requests {
		u := r.Path
		if r.RawQuery != "" {
			u += "?" + r.RawQuery
		}
		if (method == "" || r.Method == method) && strings.Contains(u, pathSubstring) {
			n++
		}
	}
	return n
}

// Logons returns the number of successful logons (201 answers from /sessionMngr).
func (s *Server) Logons() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logons
}

// SetNoHistory makes ?action=intervals of targetID (a VM or vApp ID) list no interval and no
// restore point, as EM does for a replica whose initial synchronisation has not finished: there
// is nothing to fail over to. false restores the synthesised history.
func (s *Server) SetNoHistory(targetID string, none bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.noHistory == nil {
		s.noHistory = map[string]bool{}
	}
	s.noHistory[targetID] = none
}

// SetLatency makes every request wait d (wall-clock) before it is served; a request whose client
// goes away meanwhile is abandoned at once, so a cancelled client never holds the server.
func (s *Server) SetLatency(d time.Duration) {
	s.mu.Lock()
	s.latency = d
	s.mu.Unlock()
}

// Fail503 makes the next n requests answer 503 with an <Error> (EM overloaded or in maintenance).
func (s *Server) Fail503(n int) {
	s.mu.Lock()
	s.fail503 = n
	s.mu.Unlock()
}

// DropConnections makes the next n requests lose their connection with no answer at all.
func (s *Server) DropConnections(n int) {
	s.mu.Lock()
	s.drop = n
	s.mu.Unlock()
}

// DropResponses makes the next n requests be served in full (a failover POST does create its
// task) and then lose their connection before the answer: the ambiguous failure after which a
// client must not blindly repeat a failover but reconcile, e.g. via GET /restoreSessions.
// (An addition to the shared contract.)
func (s *Server) DropResponses(n int) {
	s.mu.Lock()
	s.dropAfter = n
	s.mu.Unlock()
}

// DelayResponses makes the next n requests be served in full (a failover POST does create its
// task) and then wait d before the answer goes out: the window in which a client that dies
// has started a failover without learning its task.
func (s *Server) DelayResponses(n int, d time.Duration) {
	s.mu.Lock()
	s.delayAfter, s.delayAfterFor = n, d
	s.mu.Unlock()
}

// FailAfterServe makes the next n requests be served in full (a failover POST does start) and
// then answered with status (500, 502, 504) and an <Error>, as a proxy in front of EM or EM
// itself may after the work was done.
func (s *Server) FailAfterServe(n, status int) {
	s.mu.Lock()
	s.failAfter, s.failAfterStatus = n, status
	s.mu.Unlock()
}

// ExpireSessions invalidates every current token: the next call with any of them gets 401.
// Tasks stay stored under their (now dead) logon sessions.
func (s *Server) ExpireSessions() {
	s.mu.Lock()
	s.sessions = map[string]*logonSession{}
	s.sessionsByID = map[string]*logonSession{}
	s.mu.Unlock()
}

// applyFaults runs the injected faults for one request and reports whether to serve it. Counters
// are taken at arrival, so with concurrent requests exactly n of them are affected.
func (s *Server) applyFaults(w *statusWriter, r *http.Request, body []byte) bool {
	s.mu.Lock()
	latency := s.latency
	drop := s.drop > 0
	if drop {
		s.drop--
	}
	unavailable := !drop && s.fail503 > 0
	if unavailable {
		s.fail503--
	}
	dropAfter := !drop && !unavailable && s.dropAfter > 0
	if dropAfter {
		s.dropAfter--
	}
	failAfter := 0
	if !drop && !unavailable && !dropAfter && s.failAfter > 0 {
		s.failAfter--
		failAfter = s.failAfterStatus
	}
	delayAfter := time.Duration(0)
	if !drop && !unavailable && !dropAfter && s.delayAfter > 0 {
		s.delayAfter--
		delayAfter = s.delayAfterFor
	}
	s.mu.Unlock()

	if latency > 0 && !wait(r.Context(), latency) {
		return false
	}
	if drop {
		hangUp(w)
		return false
	}
	if unavailable {
		writeError(w, http.StatusServiceUnavailable, "The service is temporarily unavailable", acceptJSON(r.Header.Get("Accept")))
		return false
	}
	if dropAfter {
		s.serve(&discardWriter{header: http.Header{}}, r, body)
		hangUp(w)
		return false
	}
	if failAfter > 0 {
		s.serve(&discardWriter{header: http.Header{}}, r, body)
		writeError(w, failAfter, http.StatusText(failAfter), acceptJSON(r.Header.Get("Accept")))
		return false
	}
	if delayAfter > 0 {
		rec := &recordingWriter{header: http.Header{}}
		s.serve(rec, r, body)
		if !wait(r.Context(), delayAfter) {
			return false
		}
		for k, v := range rec.header {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.status)
		_, _ = w.Write(rec.body.Bytes())
		return false
	}
	return true
}

// recordingWriter keeps an answer that DelayResponses sends late.
type recordingWriter struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recordingWriter) Header() http.Header { return r.header }
func (r *recordingWriter) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.body.Write(b)
}
func (r *recordingWriter) WriteHeader(code int) { r.status = code }

// hangUp closes the request's connection without an answer.
func hangUp(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		// HTTP/2 or a recorder: abort the stream instead; net/http recovers this panic.
		panic(http.ErrAbortHandler)
	}
	_ = conn.Close()
}

// discardWriter swallows an answer that DropResponses will never deliver.
type discardWriter struct{ header http.Header }

func (d *discardWriter) Header() http.Header         { return d.header }
func (d *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (d *discardWriter) WriteHeader(int)             {}

// trackFailover counts a failover POST as in flight until the returned func runs.
func (s *Server) trackFailover() func() {
	s.mu.Lock()
	s.failoversInFlight++
	s.maxFailoversInFlight = max(s.maxFailoversInFlight, s.failoversInFlight)
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		s.failoversInFlight--
		s.mu.Unlock()
	}
}

// MaxConcurrentFailovers is the most failover POSTs the server was handling at once, latency
// included: what a cap on concurrent submissions must bound.
func (s *Server) MaxConcurrentFailovers() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.maxFailoversInFlight
}
