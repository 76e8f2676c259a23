package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const goodPlansFile = `plans:
  site-b:
    description: Site B, databases first
    groups:
      - name: databases
        concurrency: 2
        delay_after: 2m
        targets:
          - replica: CDP-Finance
      - name: apps
        targets:
          - vapp: erp-vapp
            criticality: optional
`

// writePlans writes a plans file into the test's directory and returns its path.
func writePlans(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestPlansCheckCommand: `failover-bot plans check [file]` validates offline, with one line
// naming file and line for a bad file and a usage line for a bad call.
func TestPlansCheckCommand(t *testing.T) {
	good := writePlans(t, "plans.yaml", goodPlansFile)
	unknownKey := writePlans(t, "unknown.yaml", strings.Replace(goodPlansFile, "concurrency: 2", "concurency: 2", 1))
	duplicate := writePlans(t, "dup.yaml", goodPlansFile+"          - replica: CDP-Finance\n")
	badDelay := writePlans(t, "delay.yaml", strings.Replace(goodPlansFile, "delay_after: 2m", "delay_after: soon", 1))
	tests := []struct {
		name       string
		env        []string
		args       []string
		code       int
		out, err   string
		stderrLine bool // the error is exactly one line
	}{
		{"good file", nil, []string{"plans", "check", good}, exitOK, good + ": OK, 1 plans\nsite-b: 2 groups (databases: 1 target, concurrency 2, then 2m; apps: 1 target)", "", false},
		{"from PLANS_FILE", []string{"PLANS_FILE", good}, []string{"plans", "check"}, exitOK, "OK, 1 plans", "", false},
		{"unknown key", nil, []string{"plans", "check", unknownKey}, exitFail, "", unknownKey + `:6: unknown key "concurency" in group "databases"`, true},
		{"duplicate target", nil, []string{"plans", "check", duplicate}, exitFail, "", duplicate + ":", true},
		{"bad duration", nil, []string{"plans", "check", badDelay}, exitFail, "", badDelay + `:7: delay_after "soon" is not a duration`, true},
		{"missing file", nil, []string{"plans", "check", filepath.Join(t.TempDir(), "nope.yaml")}, exitFail, "", "nope.yaml", true},
		{"no file, no env", nil, []string{"plans", "check"}, exitConfig, "", "no file given and PLANS_FILE is unset", true},
		{"unknown subcommand", nil, []string{"plans", "list"}, exitConfig, "", "usage: failover-bot plans check [file]", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runCLI(t, envOf(tt.env...), "", tt.args...)
			if code != tt.code || !strings.Contains(out, tt.out) || !strings.Contains(errOut, tt.err) {
				t.Fatalf("exit %d (want %d)\nstdout %q (want %q)\nstderr %q (want %q)", code, tt.code, out, tt.out, errOut, tt.err)
			}
			if tt.stderrLine && strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
				t.Fatalf("stderr is not one line: %q", errOut)
			}
		})
	}
}

// TestBadPlansFileStopsTheBot: a bot started with a bad PLANS_FILE exits at once, before it
// serves anything, with one line naming the variable, the file and the line.
func TestBadPlansFileStopsTheBot(t *testing.T) {
	bad := writePlans(t, "plans.yaml", strings.Replace(goodPlansFile, "- name: apps\n        targets:\n          - vapp: erp-vapp\n            criticality: optional\n", "- name: apps\n        targets: []\n", 1))
	m := validEnv()
	m["PLANS_FILE"] = bad
	m["LISTEN_ADDR"] = "127.0.0.1:0"
	code, out, errOut := runCLI(t, lookupFrom(m), "")
	if code != exitConfig || out != "" {
		t.Fatalf("exit %d, stdout %q", code, out)
	}
	line := strings.TrimSpace(errOut)
	if strings.Contains(line, "\n") || !strings.Contains(line, "PLANS_FILE: "+bad+`:11: group "apps" of plan "site-b" has no targets`) {
		t.Fatalf("stderr %q: want one line naming PLANS_FILE, %s and line 11", errOut, bad)
	}
	for _, s := range allSecrets {
		if strings.Contains(errOut, s) {
			t.Fatalf("a secret in the error: %q", errOut)
		}
	}
}
