package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/failover-bot/failover-bot/emapi/emsim"
)

// TestDoctor runs `failover-bot doctor` against the simulator over HTTP: one line per check,
// exit 0 only when every check passed, and nothing but reads sent to EM.
func TestDoctor(t *testing.T) {
	cases := []struct {
		name     string
		cfg      emsim.Config
		skew     time.Duration
		args     []string
		password string
		code     int
		want     []string
	}{
		{name: "healthy", code: exitOK, want: []string{
			"ok   config", "ok   clock", "ok   logon           logged on as svc", "ok   role", "ok   inventory       2 CDP replicas, 5 VMs, 1 vApps",
			"ok   intervals       CDP-Finance/fin-db01", "ok   restore query"}},
		{name: "chosen VM", args: []string{"--vm", "CDP-Web/web01"}, code: exitOK, want: []string{"ok   intervals       CDP-Web/web01"}},
		{name: "unknown VM", args: []string{"--vm", "CDP-Web/nope"}, code: exitFail, want: []string{"FAIL intervals", "nope"}},
		{name: "not a Portal Administrator", cfg: emsim.Config{Role: emsim.RolePortalUser}, code: exitFail,
			want: []string{"ok   logon", "FAIL role", "lacks the Portal Administrator role"}},
		{name: "wrong password", password: "wrong", code: exitFail, want: []string{"FAIL logon", "check EM_USERNAME and EM_PASSWORD"}},
		{name: "EM's clock five minutes ahead", skew: 5 * time.Minute, code: exitFail, want: []string{"FAIL clock", "from ours", "more than 1m0s apart", "fix NTP"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			simCfg := tc.cfg
			simCfg.Username, simCfg.Password = "svc", "pw"
			simCfg.Now = func() time.Time { return time.Now().Add(tc.skew) }
			sim := emsim.New(simCfg, emsim.DemoInventory())
			srv := httptest.NewServer(sim)
			defer srv.Close()
			pw := "pw"
			if tc.password != "" {
				pw = tc.password
			}
			env := with(validEnv(), "EM_URL", srv.URL+"/api/", "EM_USERNAME", "svc", "EM_PASSWORD", pw)
			var stdout, stderr bytes.Buffer
			code := run(append([]string{"doctor"}, tc.args...), strings.NewReader(""), &stdout, &stderr, lookupFrom(env))
			out := stdout.String()
			if code != tc.code {
				t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr: %s", code, tc.code, out, stderr.String())
			}
			mustContain(t, "doctor output", out, tc.want...)
			if code != exitOK && strings.Count(stderr.String(), "\n") != 1 {
				t.Errorf("stderr should be one line: %q", stderr.String())
			}
			for _, secret := range []string{pw, testBotToken, testSigning} {
				if strings.Contains(out+stderr.String(), secret) {
					t.Errorf("output contains a secret")
				}
			}
			for _, r := range sim.Requests() {
				readOnly := r.Method == http.MethodGet || strings.Contains(r.RawQuery, "action=intervals") ||
					strings.HasPrefix(r.Path, "/api/sessionMngr") || strings.HasPrefix(r.Path, "/api/logonSessions")
				if !readOnly {
					t.Errorf("doctor sent %s %s?%s: it must only read", r.Method, r.Path, r.RawQuery)
				}
			}
		})
	}
}
