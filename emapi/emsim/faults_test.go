package emsim

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestFail503(t *testing.T) {
	m := newSim(t, Config{})
	m.s.Fail503(2)
	const unavailable = `<Error xmlns="http://www.veeam.com/ent/v1.0" Message="The service is temporarily unavailable" StatusCode="503"></Error>`
	for i, want := range []int{503, 503, 200, 200} {
		r := m.do(req{method: "GET", path: "/api/"})
		wantStatus(t, r, want)
		if want == 503 {
			wantBody(t, r, unavailable)
		}
		if got := m.s.Requests()[i].Status; got != want {
			t.Errorf("recorded status %d: got %d, want %d", i, got, want)
		}
	}
	// A 503 answers before anything is done: the failover POST it hit created nothing.
	tok, _ := m.logon()
	m.s.Fail503(1)
	r := m.do(req{method: "POST", path: vmFailover, token: tok, accept: "application/json", contentType: "application/json", body: `{"RestoreCurrent":true,"RestoreCurrentVss":false}`})
	wantStatus(t, r, 503)
	wantBody(t, r, "\xEF\xBB\xBF"+`{"Message":"The service is temporarily unavailable","StatusCode":503}`)
	if n := len(m.s.Failovers()); n != 0 {
		t.Errorf("failovers: got %d, want 0", n)
	}
}

// freshClient never reuses a connection, so net/http cannot transparently retry a request
// whose connection was dropped and the test sees exactly what a client would.
func freshClient() *http.Client {
	return &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
}

func TestDropConnections(t *testing.T) {
	tests := []struct {
		name          string
		drop          func(s *Server)
		wantFailovers int // created by the dropped POST
	}{
		{"dropped before serving", func(s *Server) { s.DropConnections(1) }, 0},
		{"dropped after serving", func(s *Server) { s.DropResponses(1) }, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newSim(t, Config{})
			tok, _ := m.logon()
			tt.drop(m.s)
			hr, _ := http.NewRequest("POST", m.ts.URL+vmFailover, strings.NewReader(specLatest))
			hr.Header.Set(tokenHeader, tok)
			res, err := freshClient().Do(hr)
			if err == nil {
				res.Body.Close()
				t.Fatalf("got an answer %d, want a dropped connection", res.StatusCode)
			}
			if n := len(m.s.Failovers()); n != tt.wantFailovers {
				t.Errorf("failovers: got %d, want %d", n, tt.wantFailovers)
			}
			reqs := m.s.Requests()
			if last := reqs[len(reqs)-1]; last.Status != 0 || last.Method != "POST" || last.Body == nil {
				t.Errorf("recorded: got %s status %d, want the POST with status 0", last.Method, last.Status)
			}
			if n := m.s.Count("POST", "action=failover"); n != 1 {
				t.Errorf("Count: got %d, want 1", n)
			}
			// Only n requests are dropped.
			wantStatus(t, m.get(tok, "/api/cdpReplicas"), http.StatusOK)
		})
	}
}

func TestLatency(t *testing.T) {
	m := newSim(t, Config{})
	m.s.SetLatency(30 * time.Millisecond)
	start := time.Now()
	wantStatus(t, m.do(req{method: "GET", path: "/api/"}), http.StatusOK)
	if d := time.Since(start); d < 30*time.Millisecond {
		t.Errorf("answer after %v, want at least 30ms", d)
	}

	// A client that gives up must not leave the handler waiting: with an hour of latency, the
	// server still shuts down promptly once the client has cancelled.
	m.s.SetLatency(time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	hr, _ := http.NewRequestWithContext(ctx, "GET", m.ts.URL+"/api/", nil)
	if _, err := freshClient().Do(hr); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want a deadline error", err)
	}
	closed := make(chan struct{})
	go func() { m.ts.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("server did not shut down: a handler is still waiting out the latency")
	}
}

func TestCountAndRequests(t *testing.T) {
	m := newSim(t, Config{})
	tok, _ := m.logon()
	m.failover(tok, vmFailover)
	m.failover(tok, "/api/cdpReplica/vApps/"+erp+"?action=failover")
	m.get(tok, "/api/tasks/task-1")
	m.do(req{method: "POST", path: "/api/cdpReplicas/" + finance + "/vms/" + finDB + "?action=intervals", token: tok, body: specIntervals})
	tests := []struct {
		method, substr string
		want           int
	}{
		{"POST", "action=failover", 2},
		{"POST", "/cdpReplica/vApps/", 1},
		{"POST", "/vms/" + finDB + "?action=failover", 1},
		{"POST", "", 4}, // logon, two failovers, intervals
		{"GET", "/tasks/", 1},
		{"", "", 5},
		{"DELETE", "", 0},
	}
	for _, tt := range tests {
		if got := m.s.Count(tt.method, tt.substr); got != tt.want {
			t.Errorf("Count(%q, %q): got %d, want %d", tt.method, tt.substr, got, tt.want)
		}
	}
	reqs := m.s.Requests()
	got := reqs[1]
	want := Recorded{Method: "POST", Path: "/api/cdpReplicas/" + finance + "/vms/" + finDB, RawQuery: "action=failover",
		ContentType: "application/xml", Body: []byte(specLatest), Status: 202, At: t0}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("recorded:\ngot  %+v\nwant %+v", got, want)
	}
	if m.s.Logons() != 1 {
		t.Errorf("Logons: got %d, want 1", m.s.Logons())
	}
}

// TestConcurrentTasks starts 1,000 failovers from several goroutines and polls them all at once;
// run with -race it checks the locking, and the task numbering stays gap-free per session.
func TestConcurrentTasks(t *testing.T) {
	const workers, each = 8, 125
	m := newSim(t, Config{AllowRepeatFailover: true})
	tok, _ := m.logon()
	client := m.ts.Client()
	post := func() error {
		hr, _ := http.NewRequest("POST", m.ts.URL+vmFailover, strings.NewReader(specLatest))
		hr.Header.Set(tokenHeader, tok)
		res, err := client.Do(hr)
		if err != nil {
			return err
		}
		res.Body.Close()
		if res.StatusCode != http.StatusAccepted {
			return fmt.Errorf("status %d", res.StatusCode)
		}
		return nil
	}
	poll := func(id string) error {
		hr, _ := http.NewRequest("GET", m.ts.URL+"/api/tasks/"+id, nil)
		hr.Header.Set(tokenHeader, tok)
		res, err := client.Do(hr)
		if err != nil {
			return err
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: status %d", id, res.StatusCode)
		}
		return nil
	}
	run := func(job func(i int) error) {
		t.Helper()
		var wg sync.WaitGroup
		errs := make(chan error, workers)
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range each {
					if err := job(w*each + i + 1); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
	}
	run(func(int) error { return post() })
	m.clock.Advance(10 * time.Second)
	run(func(i int) error { return poll("task-" + itoa(i)) })
	if n := len(m.s.Failovers()); n != workers*each {
		t.Fatalf("failovers: got %d, want %d", n, workers*each)
	}
}

func BenchmarkPollTask(b *testing.B) {
	s := New(Config{Username: "u", Password: "p", AllowRepeatFailover: true}, DemoInventory())
	rec := &discardWriter{header: http.Header{}}
	lr, _ := http.NewRequest("POST", "http://em/api/sessionMngr/?v=latest", nil)
	lr.SetBasicAuth("u", "p")
	hw := &headerWriter{header: http.Header{}}
	s.ServeHTTP(hw, lr)
	tok := hw.header.Get(tokenHeader)
	for range 1000 {
		r, _ := http.NewRequest("POST", "http://em"+vmFailover, strings.NewReader(specLatest))
		r.Header.Set(tokenHeader, tok)
		s.ServeHTTP(rec, r)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		r, _ := http.NewRequest("GET", "http://em/api/tasks/task-500", nil)
		r.Header.Set(tokenHeader, tok)
		for pb.Next() {
			s.ServeHTTP(rec, r)
		}
	})
}

type headerWriter struct{ header http.Header }

func (w *headerWriter) Header() http.Header         { return w.header }
func (w *headerWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *headerWriter) WriteHeader(int)             {}

// TestDelayResponses: the failover is created at once and its answer arrives later; a client
// that gives up meanwhile has started a failover without learning its task.
func TestDelayResponses(t *testing.T) {
	m := newSim(t, Config{})
	tok, _ := m.logon()
	m.s.DelayResponses(1, 150*time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	hr, _ := http.NewRequestWithContext(ctx, "POST", m.ts.URL+vmFailover, strings.NewReader(specLatest))
	hr.Header.Set(tokenHeader, tok)
	if _, err := freshClient().Do(hr); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want the client's deadline", err)
	}
	if n := len(m.s.Failovers()); n != 1 {
		t.Fatalf("failovers: got %d, want 1 (served before the late answer)", n)
	}
	m.s.DelayResponses(1, 20*time.Millisecond)
	start := time.Now()
	wantStatus(t, m.get(tok, "/api/cdpReplicas"), http.StatusOK)
	if d := time.Since(start); d < 20*time.Millisecond {
		t.Errorf("answer after %v, want at least 20ms", d)
	}
}
