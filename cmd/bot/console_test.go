package main

import (
	"strings"
	"testing"
)

// TestConsoleReplicaTable drives the README's demo of many: a replica less one VM under one
// approval, its card's item table following the failovers to the outcome in the demo site.
func TestConsoleReplicaTable(t *testing.T) {
	script := strings.Join([]string{
		`/failover replica CDP-Web --except web04 --reason "site A lost power"`,
		"/as bob",
		"approve FO-1",
	}, "\n")
	code, out, errs := runCLI(t, envOf(), script, "-console")
	if code != 0 {
		t.Fatalf("exit %d; stderr:\n%s\nstdout:\n%s", code, errs, out)
	}
	steps := []string{
		"Embedded Enterprise Manager simulator",
		"CDP-Web      web01, web02, web03, web04, web05, web06\n",
		"CDP-Crm      crm-app01, crm-db01, crm-web01\n",
		"vApps        erp-vapp, hr-vapp\n",
		"@alice> /failover replica CDP-Web --except web04",
		"Recorded FO-1: fail over 5 VMs of CDP-Web",
		"== Failover request FO-1 ==",
		"Asked for: replica CDP-Web except web04",
		"[Approve] [Reject]",
		"@bob> approve FO-1",
		"Items (5): 5 running\n",
		"\n        web06            running",
		"All 5 failovers succeeded\n      Items (5): 5 succeeded\n        web01            succeeded",
	}
	wantInOrder(t, "transcript", out, steps)
	if strings.Contains(out, "        web04 ") {
		t.Errorf("the item table lists web04, which the request leaves out:\n%s", out)
	}
	if n := strings.Count(out, "sending the failover to Enterprise Manager"); n != 5 {
		t.Errorf("%d failovers sent, want 5:\n%s", n, out)
	}
}
