package emapi

import (
	"context"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestTLSVerification: verification is on by default (a self-signed EM fails), CAFile trusts
// exactly the given roots, and InsecureSkipVerify is the explicit, logged way around it.
func TestTLSVerification(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeXML(w, http.StatusOK, `<EnterpriseManager xmlns="http://www.veeam.com/ent/v1.0"/>`)
	}))
	t.Cleanup(srv.Close)
	caFile := filepath.Join(t.TempDir(), "em-ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(caFile, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		caFile   string
		insecure bool
		wantKind ErrorKind // KindUnknown = success
	}{
		{"self-signed without CA file fails", "", false, KindTransport},
		{"CA file", caFile, false, KindUnknown},
		{"insecure", "", true, KindUnknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			attempts := 0
			c, err := New(Config{Observe: func(string, int, time.Duration) { attempts++ }, BaseURL: srv.URL + "/api/", Username: "u", Password: "p", CAFile: tt.caFile,
				InsecureSkipVerify: tt.insecure, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
			if err != nil {
				t.Fatal(err)
			}
			err = c.Ping(t.Context())
			if tt.wantKind == KindUnknown {
				if err != nil {
					t.Fatalf("Ping: %v", err)
				}
				return
			}
			if KindOf(err) != tt.wantKind {
				t.Fatalf("Ping = %v, want kind %v", err, tt.wantKind)
			}
			if attempts != 1 {
				t.Errorf("%d attempts, want 1: a certificate error is not retried", attempts)
			}
		})
	}
}

// TestTransportBoundsConnections: the client never opens more than maxConnsPerHost connections
// to EM, however many callers there are (EM answers 503 when overloaded).
func TestTransportBoundsConnections(t *testing.T) {
	tr, err := newTransport("", false)
	if err != nil {
		t.Fatal(err)
	}
	if tr.MaxConnsPerHost != maxConnsPerHost || tr.MaxConnsPerHost <= 0 || tr.MaxIdleConnsPerHost > tr.MaxConnsPerHost {
		t.Fatalf("MaxConnsPerHost %d, MaxIdleConnsPerHost %d; want a bound of %d", tr.MaxConnsPerHost, tr.MaxIdleConnsPerHost, maxConnsPerHost)
	}
}

// TestNotSent: only failures that prove the request never reached EM count as not sent.
func TestNotSent(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String() + "/api/"
	l.Close()
	c, err := New(Config{BaseURL: closed, Username: "u", Password: "p", MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	_, refused := c.StartVMFailover(context.Background(), "r", "v", RestoreIntent{Kind: IntentLatest})
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"connection refused (at logon)", refused, true},
		{"dial error on the call itself", &Error{Kind: KindTransport, Op: "start failover", Err: &net.OpError{Op: "dial", Err: errors.New("connection refused")}}, true},
		{"reset after writing", &Error{Kind: KindTransport, Op: "start failover", Err: &net.OpError{Op: "read", Err: errors.New("connection reset")}}, false},
		{"timeout", &Error{Kind: KindTimeout, Op: "start failover", Err: context.DeadlineExceeded}, false},
		{"502 from a proxy", &Error{Kind: KindUnavailable, Op: "start failover", StatusCode: 502}, false},
		{"403", &Error{Kind: KindForbidden, Op: "start failover", StatusCode: 403}, false},
		{"logon refused with 401", &Error{Kind: KindUnauthorized, Op: opLogon, StatusCode: 401}, true},
		{"not an emapi error", errors.New("boom"), false},
	} {
		if got := NotSent(tc.err); got != tc.want {
			t.Errorf("%s: NotSent(%v) = %v, want %v", tc.name, tc.err, got, tc.want)
		}
	}
}
