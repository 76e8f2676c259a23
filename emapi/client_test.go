package emapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Unit tests use a tiny hand-written EM (fakeEM) where a test needs exact control over one
// answer; emsim_test.go runs the same client against the full simulator.

const (
	testUser     = "svc-failover"
	testPassword = "S3cret-Pa55word!"
	tokenMarker  = "TOKENSECRET" // part of every fake token, so leaks are easy to find
)

const taskRunningXML = `<Task xmlns="http://www.veeam.com/ent/v1.0" Type="Task" Href="http://em/api/tasks/task-1"><TaskId>task-1</TaskId><State>Running</State><Operation>StartFailover</Operation></Task>`

// fakeEM logs on with Basic auth (token in the header), checks the token on every other call and
// hands authenticated calls to handle.
type fakeEM struct {
	mu     sync.Mutex
	valid  string // the one token accepted
	logons int
	reqs   []recorded
	handle func(w http.ResponseWriter, r *http.Request)
	// onUnauthorized, if set, runs before answering 401 to a stale token.
	onUnauthorized func()
}

type recorded struct {
	method, path, query, accept, contentType, token, cookie string
	body                                                    []byte
}

func (f *fakeEM) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.reqs = append(f.reqs, recorded{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Get("Accept"),
		r.Header.Get("Content-Type"), r.Header.Get(sessionHeader), r.Header.Get("Cookie"), body})
	f.mu.Unlock()
	switch {
	case r.URL.Path == "/api/sessionMngr/" && r.Method == http.MethodPost:
		u, p, ok := r.BasicAuth()
		if !ok || u != testUser || p != testPassword {
			w.Header().Set("WWW-Authenticate", "Basic Realm=RestSvc")
			writeXML(w, http.StatusUnauthorized, `<Error Message="Authentication failed" StatusCode="401"/>`)
			return
		}
		f.mu.Lock()
		f.logons++
		n := f.logons
		f.valid = fmt.Sprintf("%s-%d", tokenMarker, n)
		tok := f.valid
		f.mu.Unlock()
		w.Header().Set(sessionHeader, tok)
		// EM also sets the token as a cookie; the client must not send it back.
		http.SetCookie(w, &http.Cookie{Name: sessionHeader, Value: tok, Path: "/"})
		writeXML(w, http.StatusCreated, fmt.Sprintf(`<LogonSession xmlns="http://www.veeam.com/ent/v1.0"><UserName>%s</UserName><SessionId>sess-%d</SessionId></LogonSession>`, testUser, n))
		return
	case r.URL.Path == "/api/" && r.Method == http.MethodGet:
		writeXML(w, http.StatusOK, `<EnterpriseManager xmlns="http://www.veeam.com/ent/v1.0"/>`)
		return
	}
	f.mu.Lock()
	ok := r.Header.Get(sessionHeader) == f.valid && f.valid != ""
	hook := f.onUnauthorized
	f.mu.Unlock()
	if !ok {
		if hook != nil {
			hook()
		}
		writeXML(w, http.StatusUnauthorized, `<Error Message="Logon session has expired" StatusCode="401"/>`)
		return
	}
	if r.Method == http.MethodDelete && strings.HasPrefix(r.URL.Path, "/api/logonSessions/") {
		f.mu.Lock()
		f.valid = ""
		f.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
		return
	}
	f.handle(w, r)
}

// expire invalidates the current token, as EM does after 15 idle minutes.
func (f *fakeEM) expire() {
	f.mu.Lock()
	f.valid = "expired"
	f.mu.Unlock()
}

func (f *fakeEM) logonCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.logons
}

// count returns how many requests matched method and a path (or query) substring.
func (f *fakeEM) count(method, sub string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, r := range f.reqs {
		if r.method == method && strings.Contains(r.path+"?"+r.query, sub) {
			n++
		}
	}
	return n
}

func (f *fakeEM) requests() []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recorded(nil), f.reqs...)
}

func writeXML(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/xml; charset=utf-8")
	if status != 0 {
		w.WriteHeader(status)
	}
	_, _ = io.WriteString(w, body)
}

// dropConnection closes the connection without an answer.
func dropConnection(t *testing.T, w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		t.Errorf("hijack: %v", err)
		return
	}
	_ = conn.Close()
}

// syncBuffer is a goroutine-safe log sink, so tests can assert what was logged.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// newFakeEM starts f over real HTTP and returns a client for it with fast retries and a
// debug-level log captured in the returned buffer.
func newFakeEM(t *testing.T, handle func(w http.ResponseWriter, r *http.Request), opts ...func(*Config)) (*fakeEM, *Client, *syncBuffer) {
	t.Helper()
	f := &fakeEM{handle: handle}
	if f.handle == nil {
		f.handle = func(w http.ResponseWriter, r *http.Request) {
			writeXML(w, http.StatusNotFound, `<Error Message="not found" StatusCode="404"/>`)
		}
	}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	logs := &syncBuffer{}
	cfg := Config{
		BaseURL:   srv.URL + "/api",
		Username:  testUser,
		Password:  testPassword,
		Timeout:   5 * time.Second,
		RetryBase: time.Millisecond,
		RetryMax:  4 * time.Millisecond,
		Logger:    slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	for _, o := range opts {
		o(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return f, c, logs
}

// noKeepAlive returns an HTTP client that opens a connection per request. net/http silently
// repeats an idempotent request once when a reused keep-alive connection turns out dead; tests that
// count attempts on dropped connections need every attempt to be the client's own.
func noKeepAlive(t *testing.T) *http.Client {
	t.Helper()
	tr := &http.Transport{DisableKeepAlives: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

func TestNewValidatesConfig(t *testing.T) {
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	ok := Config{BaseURL: "https://em:9398/api/", Username: "u", Password: "p"}
	tests := []struct {
		name    string
		mod     func(*Config)
		wantErr string // substring; "" = no error
	}{
		{"valid", func(*Config) {}, ""},
		{"http allowed", func(c *Config) { c.BaseURL = "http://127.0.0.1:9398/api" }, ""},
		{"no path gets /api/", func(c *Config) { c.BaseURL = "https://em:9398" }, ""},
		{"missing URL", func(c *Config) { c.BaseURL = "" }, "BaseURL is required"},
		{"bad scheme", func(c *Config) { c.BaseURL = "ftp://em/api/" }, "scheme"},
		{"no host", func(c *Config) { c.BaseURL = "https:///api/" }, "no host"},
		{"credentials in URL", func(c *Config) { c.BaseURL = "https://u:pw@em/api/" }, "must not contain credentials"},
		{"query", func(c *Config) { c.BaseURL = "https://em/api/?x=1" }, "query"},
		{"no user", func(c *Config) { c.Username = "" }, "Username"},
		{"no password", func(c *Config) { c.Password = "" }, "Password"},
		{"bad format", func(c *Config) { c.Format = Format(5) }, "Format"},
		{"missing CA file", func(c *Config) { c.CAFile = filepath.Join(t.TempDir(), "none.pem") }, "CAFile"},
		{"CA file without PEM", func(c *Config) { c.CAFile = caFile }, "no PEM"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := ok
			tt.mod(&cfg)
			_, err := New(cfg)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("New: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("New error %v, want one containing %q", err, tt.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), "pw@") {
				t.Errorf("error %q repeats the URL's password", err)
			}
		})
	}
}

func TestInsecureSkipVerifyIsLoggedAsWarning(t *testing.T) {
	logs := &syncBuffer{}
	_, err := New(Config{BaseURL: "https://em/api/", Username: "u", Password: "p", InsecureSkipVerify: true,
		Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "InsecureSkipVerify") {
		t.Errorf("log %q, want a WARN naming InsecureSkipVerify", logs.String())
	}
}

func TestLazyLogonHeaderTokenNoCookie(t *testing.T) {
	f, c, _ := newFakeEM(t, func(w http.ResponseWriter, r *http.Request) { writeXML(w, http.StatusOK, taskRunningXML) })
	if got := len(f.requests()); got != 0 {
		t.Fatalf("New sent %d requests, want 0", got)
	}
	for range 3 {
		if _, err := c.Task(t.Context(), "task-1"); err != nil {
			t.Fatal(err)
		}
	}
	if got := f.logonCount(); got != 1 {
		t.Errorf("logons = %d, want 1", got)
	}
	reqs := f.requests()
	if reqs[0].path != "/api/sessionMngr/" || reqs[0].query != "v=latest" || reqs[0].method != http.MethodPost {
		t.Errorf("first request %s %s?%s, want POST /api/sessionMngr/?v=latest", reqs[0].method, reqs[0].path, reqs[0].query)
	}
	for _, r := range reqs[1:] {
		if r.token != tokenMarker+"-1" {
			t.Errorf("%s %s: token header %q, want the logon token", r.method, r.path, r.token)
		}
		if r.cookie != "" {
			t.Errorf("%s %s: sent cookie %q; the client must not keep a cookie jar", r.method, r.path, r.cookie)
		}
	}
}

func TestAcceptHasExactlyOneMediaType(t *testing.T) {
	tests := []struct {
		format Format
		want   string
	}{{FormatXML, "application/xml"}, {FormatJSON, "application/json"}}
	for _, tt := range tests {
		t.Run(tt.format.String(), func(t *testing.T) {
			f, c, _ := newFakeEM(t, func(w http.ResponseWriter, r *http.Request) {
				if strings.Contains(r.URL.RawQuery, "action=failover") {
					w.WriteHeader(http.StatusAccepted)
				}
				writeXML(w, 0, taskRunningXML) // XML answer to a JSON request still decodes (sniffed)
			}, func(cfg *Config) { cfg.Format = tt.format })
			ctx := t.Context()
			if _, err := c.Task(ctx, "task-1"); err != nil {
				t.Fatal(err)
			}
			if _, err := c.StartVMFailover(ctx, "r1", "v1", RestoreIntent{Kind: IntentLatest}); err != nil {
				t.Fatal(err)
			}
			for _, r := range f.requests() {
				if r.accept != tt.want {
					t.Errorf("%s %s: Accept %q, want exactly %q", r.method, r.path, r.accept, tt.want)
				}
				if r.method == http.MethodPost && r.contentType != tt.want {
					t.Errorf("%s %s: Content-Type %q, want %q", r.method, r.path, r.contentType, tt.want)
				}
			}
			want, _ := EncodeFailoverSpec(RestoreIntent{Kind: IntentLatest}, tt.format)
			for _, r := range f.requests() {
				if strings.Contains(r.query, "action=failover") && !bytes.Equal(r.body, want) {
					t.Errorf("failover body %q, want %q", r.body, want)
				}
			}
		})
	}
}

func TestJSONAnswerWithBOM(t *testing.T) {
	_, c, _ := newFakeEM(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		_, _ = io.WriteString(w, "\xEF\xBB\xBF"+`{"TaskId":"task-1","State":"Finished","Result":{"Success":true,"Message":"Ok"}}`)
	}, func(cfg *Config) { cfg.Format = FormatJSON })
	got, err := c.Task(t.Context(), "task-1")
	if err != nil {
		t.Fatal(err)
	}
	if !got.Done || got.Success == nil || !*got.Success {
		t.Errorf("got %+v, want a finished, successful task", got)
	}
}

// TestConcurrentCallersReLogOnOnce: 20 callers all holding the same expired token get 401 at
// the same time; exactly one of them logs on again and the others reuse its token.
func TestConcurrentCallersReLogOnOnce(t *testing.T) {
	const callers = 20
	var stale atomic.Int32
	allStale := make(chan struct{})
	f, c, _ := newFakeEM(t, func(w http.ResponseWriter, r *http.Request) { writeXML(w, http.StatusOK, taskRunningXML) })
	// Hold every 401 until all callers have been refused, so they really overlap.
	f.onUnauthorized = func() {
		if stale.Add(1) == callers {
			close(allStale)
		}
		select {
		case <-allStale:
		case <-time.After(10 * time.Second):
		}
	}
	if _, err := c.Task(t.Context(), "task-1"); err != nil { // first logon
		t.Fatal(err)
	}
	f.expire()

	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for range callers {
		wg.Go(func() {
			if _, err := c.Task(t.Context(), "task-1"); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("caller failed: %v", err)
	}
	if got := stale.Load(); got != callers {
		t.Errorf("%d callers saw 401, want %d", got, callers)
	}
	if got := f.logonCount(); got != 2 {
		t.Errorf("logons = %d, want 2 (the first and exactly one re-logon)", got)
	}
}

// TestFailoverPOSTIsNeverRepeated: after a 5xx, a timeout or a dropped connection EM may have
// started the failover, so the client reports and never sends the POST again.
func TestFailoverPOSTIsNeverRepeated(t *testing.T) {
	tests := []struct {
		name     string
		answer   func(t *testing.T, w http.ResponseWriter, r *http.Request)
		wantKind ErrorKind
		wantMsg  string
	}{
		{"500", func(t *testing.T, w http.ResponseWriter, r *http.Request) {
			writeXML(w, http.StatusInternalServerError, `<Error Message="Failed to start failover" StatusCode="500"/>`)
		}, KindServer, "Failed to start failover"},
		{"503", func(t *testing.T, w http.ResponseWriter, r *http.Request) {
			writeXML(w, http.StatusServiceUnavailable, ``)
		}, KindUnavailable, "Service Unavailable"},
		{"timeout", func(t *testing.T, w http.ResponseWriter, r *http.Request) {
			<-r.Context().Done() // never answers; the client's Timeout ends the attempt
		}, KindTimeout, outcomeUnknown},
		{"dropped connection", func(t *testing.T, w http.ResponseWriter, r *http.Request) {
			dropConnection(t, w)
		}, KindTransport, outcomeUnknown},
	}
	for _, tt := range tests {
		for _, vapp := range []bool{false, true} {
			name := tt.name + "/vm"
			if vapp {
				name = tt.name + "/vapp"
			}
			t.Run(name, func(t *testing.T) {
				f, c, _ := newFakeEM(t, func(w http.ResponseWriter, r *http.Request) { tt.answer(t, w, r) },
					func(cfg *Config) { cfg.Timeout = 200 * time.Millisecond })
				var err error
				if vapp {
					_, err = c.StartVAppFailover(t.Context(), "va1", RestoreIntent{Kind: IntentLatest})
				} else {
					_, err = c.StartVMFailover(t.Context(), "r1", "v1", RestoreIntent{Kind: IntentLatest})
				}
				if err == nil {
					t.Fatal("got nil error")
				}
				var e *Error
				if !errors.As(err, &e) || e.Kind != tt.wantKind || e.Message != tt.wantMsg {
					t.Errorf("got %#v, want kind %v with message %q", err, tt.wantKind, tt.wantMsg)
				}
				if got := f.count(http.MethodPost, "action=failover"); got != 1 {
					t.Errorf("failover POSTs = %d, want exactly 1", got)
				}
			})
		}
	}
}

// TestFailoverPOSTRepeatedOnlyAfter401: a 401 proves EM did not run the POST, so it is sent once
// more after re-logon, and never a third time.
func TestFailoverPOSTRepeatedOnlyAfter401(t *testing.T) {
	t.Run("succeeds after re-logon", func(t *testing.T) {
		f, c, _ := newFakeEM(t, func(w http.ResponseWriter, r *http.Request) { writeXML(w, http.StatusAccepted, taskRunningXML) })
		if _, err := c.Task(t.Context(), "task-1"); err != nil {
			t.Fatal(err)
		}
		f.expire()
		task, err := c.StartVMFailover(t.Context(), "r1", "v1", RestoreIntent{Kind: IntentLatestVSS})
		if err != nil {
			t.Fatal(err)
		}
		if task.ID != "task-1" || task.State != TaskRunning {
			t.Errorf("got %+v, want task-1 Running", task)
		}
		if got := f.count(http.MethodPost, "action=failover"); got != 2 {
			t.Errorf("failover POSTs = %d, want 2 (401, then after re-logon)", got)
		}
		if got := f.logonCount(); got != 2 {
			t.Errorf("logons = %d, want 2", got)
		}
	})
	t.Run("second 401 is reported", func(t *testing.T) {
		// A server that refuses every session, even a fresh one.
		f, c, _ := newFakeEM(t, func(w http.ResponseWriter, r *http.Request) {
			writeXML(w, http.StatusUnauthorized, `<Error Message="Logon session has expired" StatusCode="401"/>`)
		})
		_, err := c.StartVMFailover(t.Context(), "r1", "v1", RestoreIntent{Kind: IntentLatest})
		if KindOf(err) != KindUnauthorized {
			t.Fatalf("got %v, want KindUnauthorized", err)
		}
		if got := f.count(http.MethodPost, "action=failover"); got != 2 {
			t.Errorf("failover POSTs = %d, want 2", got)
		}
		if got := f.logonCount(); got != 2 {
			t.Errorf("logons = %d, want 2", got)
		}
	})
}

func TestGETRetries(t *testing.T) {
	tests := []struct {
		name      string
		failures  int // answers before a good one
		fail      func(t *testing.T, w http.ResponseWriter)
		wantErr   ErrorKind // KindUnknown = success
		wantTries int
	}{
		{"503 twice then OK", 2, func(t *testing.T, w http.ResponseWriter) {
			writeXML(w, http.StatusServiceUnavailable, `<Error Message="Service is in maintenance" StatusCode="503"/>`)
		}, KindUnknown, 3},
		{"dropped connection then OK", 1, func(t *testing.T, w http.ResponseWriter) { dropConnection(t, w) }, KindUnknown, 2},
		{"503 beyond MaxRetries", 100, func(t *testing.T, w http.ResponseWriter) {
			writeXML(w, http.StatusServiceUnavailable, `<Error Message="Service is in maintenance" StatusCode="503"/>`)
		}, KindUnavailable, 4},
		{"connection errors beyond MaxRetries", 100, func(t *testing.T, w http.ResponseWriter) { dropConnection(t, w) }, KindTransport, 4},
		{"500 is not retried", 100, func(t *testing.T, w http.ResponseWriter) {
			writeXML(w, http.StatusInternalServerError, `<Error Message="boom" StatusCode="500"/>`)
		}, KindServer, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var n, attempts atomic.Int32
			f, c, _ := newFakeEM(t, func(w http.ResponseWriter, r *http.Request) {
				if int(n.Add(1)) <= tt.failures {
					tt.fail(t, w)
					return
				}
				writeXML(w, http.StatusOK, taskRunningXML)
			}, func(cfg *Config) {
				cfg.MaxRetries = 3
				cfg.HTTPClient = noKeepAlive(t)
				cfg.Observe = func(endpoint string, _ int, _ time.Duration) {
					if endpoint == "GET /tasks/{id}" {
						attempts.Add(1)
					}
				}
			})
			_, err := c.Task(t.Context(), "task-1")
			if got := KindOf(err); got != tt.wantErr || (tt.wantErr == KindUnknown && err != nil) {
				t.Fatalf("got %v (kind %v), want kind %v", err, got, tt.wantErr)
			}
			if got := attempts.Load(); int(got) != tt.wantTries {
				t.Errorf("GET attempts = %d, want %d", got, tt.wantTries)
			}
			if got := f.count(http.MethodGet, "/tasks/task-1"); got != tt.wantTries {
				t.Errorf("GETs received = %d, want %d", got, tt.wantTries)
			}
		})
	}
}

func TestErrorKindsAndMessages(t *testing.T) {
	tests := []struct {
		name     string
		status   int
		ctype    string
		body     string
		wantKind ErrorKind
		wantMsg  string
	}{
		{"403 XML", 403, "application/xml", `<Error Message="Access denied" StatusCode="403"/>`, KindForbidden, "Access denied"},
		{"403 JSON with BOM", 403, "application/json", "\xEF\xBB\xBF" + `{"Message":"Access denied","StatusCode":403}`, KindForbidden, "Access denied"},
		{"404", 404, "application/xml", `<Error Message="Task task-1 was not found" StatusCode="404"/>`, KindNotFound, "Task task-1 was not found"},
		{"400", 400, "application/xml", `<Error Message="Node [root] does not exist" StatusCode="400"/>`, KindBadRequest, "Node [root] does not exist"},
		{"405", 405, "application/xml", `<Error Message="Method not allowed" StatusCode="405"/>`, KindBadRequest, "Method not allowed"},
		{"501", 501, "application/xml", `<Error Message="Not implemented" StatusCode="501"/>`, KindServer, "Not implemented"},
		{"502 HTML from proxy", 502, "text/html", `<html><body><h1>Bad Gateway</h1></body></html>`, KindUnavailable, "Bad Gateway"},
		{"500 empty body", 500, "", ``, KindServer, "Internal Server Error"},
		{"418 unknown", 418, "text/plain", `short and stout`, KindUnknown, "I'm a teapot"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, c, _ := newFakeEM(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", tt.ctype)
				w.WriteHeader(tt.status)
				_, _ = io.WriteString(w, tt.body)
			})
			_, err := c.Task(t.Context(), "task-1")
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("got %v, want *Error", err)
			}
			if e.Kind != tt.wantKind || e.StatusCode != tt.status || e.Message != tt.wantMsg || e.Op != "get task task-1" {
				t.Errorf("got %+v, want kind %v, status %d, message %q, op %q", e, tt.wantKind, tt.status, tt.wantMsg, "get task task-1")
			}
			want := fmt.Sprintf("emapi: get task task-1: HTTP %d: %s", tt.status, tt.wantMsg)
			if e.Error() != want {
				t.Errorf("Error() = %q, want %q", e.Error(), want)
			}
		})
	}
}

// TestSecretsNeverInErrorsOrLogs: even when the server echoes the password and the token back,
// neither appears in an error's text or in the log.
func TestSecretsNeverInErrorsOrLogs(t *testing.T) {
	f, c, logs := newFakeEM(t, nil)
	var echoed atomic.Value
	f.handle = func(w http.ResponseWriter, r *http.Request) {
		msg := fmt.Sprintf("bad request from %s with password %s and session %s", testUser, testPassword, r.Header.Get(sessionHeader))
		echoed.Store(msg)
		writeXML(w, http.StatusBadRequest, `<Error Message="`+msg+`" StatusCode="400"/>`)
	}
	var errs []error
	_, err := c.Task(t.Context(), "task-1")
	errs = append(errs, err)
	f.expire()
	_, err = c.StartVMFailover(t.Context(), "r1", "v1", RestoreIntent{Kind: IntentLatest})
	errs = append(errs, err)
	if err := c.Close(t.Context()); err != nil {
		t.Fatal(err)
	}

	// Bad credentials at logon.
	_, bad, badLogs := newFakeEM(t, nil, func(cfg *Config) { cfg.Password = testPassword + "-wrong" })
	_, err = bad.Replicas(t.Context())
	if KindOf(err) != KindUnauthorized {
		t.Errorf("bad credentials: got %v, want KindUnauthorized", err)
	}
	errs = append(errs, err)

	if s, _ := echoed.Load().(string); !strings.Contains(s, tokenMarker) {
		t.Fatalf("fake did not echo the token (%q); the test proves nothing", s)
	}
	for _, err := range errs {
		if err == nil {
			t.Fatal("got nil error")
		}
		for _, secret := range []string{testPassword, tokenMarker} {
			if strings.Contains(err.Error(), secret) || strings.Contains(fmt.Sprintf("%+v", err), secret) {
				t.Errorf("error %q contains a secret", err)
			}
		}
	}
	if logs.String() == "" {
		t.Error("nothing logged; the test proves nothing")
	}
	for _, l := range []string{logs.String(), badLogs.String()} {
		for _, secret := range []string{testPassword, tokenMarker} {
			if strings.Contains(l, secret) {
				t.Errorf("log contains a secret:\n%s", l)
			}
		}
	}
}

func TestContextDeadlineIsKindTimeout(t *testing.T) {
	_, c, _ := newFakeEM(t, func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/api/tasks/") {
			writeXML(w, http.StatusOK, taskRunningXML)
			return
		}
		<-r.Context().Done() // EM hangs
	})
	if _, err := c.Task(t.Context(), "task-1"); err != nil { // log on first, outside the deadline
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	_, err := c.Replicas(ctx)
	if KindOf(err) != KindTimeout {
		t.Fatalf("got %v, want KindTimeout", err)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("errors.Is(err, context.DeadlineExceeded) = false for %v", err)
	}
}

func TestCloseLogsOut(t *testing.T) {
	f, c, _ := newFakeEM(t, func(w http.ResponseWriter, r *http.Request) { writeXML(w, http.StatusOK, taskRunningXML) })
	if err := c.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := len(f.requests()); got != 0 {
		t.Fatalf("Close before logon sent %d requests, want 0", got)
	}
	if _, err := c.Task(t.Context(), "task-1"); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	reqs := f.requests()
	last := reqs[len(reqs)-1]
	if last.method != http.MethodDelete || last.path != "/api/logonSessions/sess-1" || last.token != tokenMarker+"-1" {
		t.Errorf("last request %s %s (token %q), want DELETE /api/logonSessions/sess-1 with the token", last.method, last.path, last.token)
	}
	if err := c.Close(t.Context()); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if got := f.count(http.MethodDelete, "/logonSessions/"); got != 1 {
		t.Errorf("logouts = %d, want 1", got)
	}
	// Usable again: logs on anew.
	if _, err := c.Task(t.Context(), "task-1"); err != nil {
		t.Fatal(err)
	}
	if got := f.logonCount(); got != 2 {
		t.Errorf("logons = %d, want 2", got)
	}
}

func TestObserveEveryAttempt(t *testing.T) {
	type obs struct {
		endpoint string
		status   int
	}
	var mu sync.Mutex
	var got []obs
	var n atomic.Int32
	_, c, _ := newFakeEM(t, func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.RawQuery, "action=failover") {
			writeXML(w, http.StatusAccepted, taskRunningXML)
			return
		}
		if n.Add(1) == 1 {
			dropConnection(t, w)
			return
		}
		writeXML(w, http.StatusOK, taskRunningXML)
	}, func(cfg *Config) {
		cfg.HTTPClient = noKeepAlive(t)
		cfg.Observe = func(endpoint string, status int, d time.Duration) {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, obs{endpoint, status})
		}
	})
	if _, err := c.Task(t.Context(), "task-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.StartVMFailover(t.Context(), "r1", "v1", RestoreIntent{Kind: IntentLatest}); err != nil {
		t.Fatal(err)
	}
	if err := c.Ping(t.Context()); err != nil {
		t.Fatal(err)
	}
	want := []obs{
		{"POST /sessionMngr/?v=latest", 201},
		{"GET /tasks/{id}", 0},
		{"GET /tasks/{id}", 200},
		{"POST /cdpReplicas/{id}/vms/{id}?action=failover", 202},
		{"GET /", 200},
	}
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("observed %v, want %v", got, want)
	}
}

func TestInvalidIDsNeverReachTheNetwork(t *testing.T) {
	f, c, _ := newFakeEM(t, nil)
	ctx := t.Context()
	calls := map[string]func() error{
		"Replica":     func() error { _, err := c.Replica(ctx, "../x"); return err },
		"ReplicaVMs":  func() error { _, err := c.ReplicaVMs(ctx, ""); return err },
		"ReplicaVM":   func() error { _, err := c.ReplicaVM(ctx, "r1", "a/b"); return err },
		"VApp":        func() error { _, err := c.VApp(ctx, "x?y"); return err },
		"VMIntervals": func() error { _, err := c.VMIntervals(ctx, "r1", "..", time.Now(), time.Now()); return err },
		"Failover":    func() error { _, err := c.StartVMFailover(ctx, "r 1", "v1", RestoreIntent{}); return err },
		"VAppFailover": func() error {
			_, err := c.StartVAppFailover(ctx, "%2F", RestoreIntent{})
			return err
		},
		"Task":           func() error { _, err := c.Task(ctx, "task/1"); return err },
		"StopTask":       func() error { return c.StopTask(ctx, "") },
		"RestoreSession": func() error { _, err := c.RestoreSession(ctx, "#"); return err },
		"bad intent": func() error {
			_, err := c.StartVMFailover(ctx, "r1", "v1", RestoreIntent{Kind: IntentPointInTime})
			return err
		},
	}
	for name, call := range calls {
		if err := call(); KindOf(err) != KindBadRequest {
			t.Errorf("%s: got %v, want KindBadRequest", name, err)
		}
	}
	if got := len(f.requests()); got != 0 {
		t.Errorf("%d requests sent, want 0", got)
	}
}

func TestResolve(t *testing.T) {
	refs := []Ref{
		{Name: "sql01", ID: "aaaa-1", UID: "urn:veeam:CdpReplicaVm:aaaa-1"},
		{Name: "web", ID: "bbbb-2", UID: "urn:veeam:CdpReplicaVm:bbbb-2"},
		{Name: "WEB", ID: "cccc-3", UID: "urn:veeam:CdpReplicaVm:cccc-3"},
		{Name: "dddd-4", ID: "eeee-5", UID: "urn:veeam:CdpReplicaVm:eeee-5"},
		{Name: "odd", ID: "dddd-4", UID: "urn:veeam:CdpReplicaVm:dddd-4"},
	}
	tests := []struct {
		name          string
		query         string
		wantID        string
		wantAmbiguous bool
		wantCands     int
	}{
		{"by name, case-insensitive", "SQL01", "aaaa-1", false, 0},
		{"by GUID", "BBBB-2", "bbbb-2", false, 0},
		{"by full UID", "urn:veeam:CdpReplicaVm:cccc-3", "cccc-3", false, 0},
		{"GUID wins over a name that looks like one", "dddd-4", "dddd-4", false, 0},
		{"surrounding space", "  sql01 ", "aaaa-1", false, 0},
		{"ambiguous", "web", "", true, 2},
		{"unknown lists everything", "nope", "", false, 5},
		{"empty", "", "", false, 5},
		{"prefix is not a match", "sql", "", false, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := resolve("VM", tt.query, refs)
			if tt.wantID != "" {
				if err != nil || got.ID != tt.wantID {
					t.Fatalf("got %+v, %v; want ID %s", got, err, tt.wantID)
				}
				return
			}
			var re *ResolveError
			if !errors.As(err, &re) {
				t.Fatalf("got %v, want *ResolveError", err)
			}
			if re.Ambiguous != tt.wantAmbiguous || len(re.Candidates) != tt.wantCands || re.What != "VM" || re.Query != tt.query {
				t.Errorf("got %+v, want ambiguous %v with %d candidates", re, tt.wantAmbiguous, tt.wantCands)
			}
		})
	}
	t.Run("error text", func(t *testing.T) {
		_, err := resolve("CDP replica", "web", refs)
		want := `emapi: CDP replica "web" is ambiguous: 2 match: web (bbbb-2), WEB (cccc-3)`
		if err.Error() != want {
			t.Errorf("got %q, want %q", err.Error(), want)
		}
	})
}

func TestBackoffIsCappedExponentialWithJitter(t *testing.T) {
	c := &Client{retryBase: 100 * time.Millisecond, retryMax: time.Second}
	for n, wantMax := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 3: 400 * time.Millisecond, 4: 800 * time.Millisecond, 5: time.Second, 60: time.Second} {
		for range 50 {
			d := c.backoff(n)
			if d < wantMax/2 || d > wantMax {
				t.Fatalf("backoff(%d) = %v, want within [%v, %v]", n, d, wantMax/2, wantMax)
			}
		}
	}
}
