package emsim

import (
	"net/http"
	"net/http/httptest"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/failover-bot/failover-bot/store/failover/fakeclock"
)

var guidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// TestDemoSiteIDsAreUniqueAndStable: every replica, VM and vApp of the site has its own GUID,
// names are unambiguous, and the IDs are the same on every call (the README's transcript shows them).
func TestDemoSiteIDsAreUniqueAndStable(t *testing.T) {
	site := DemoSite()
	ids := map[string]string{}
	add := func(id, what string) {
		t.Helper()
		if !guidRE.MatchString(id) {
			t.Errorf("%s: ID %q is not a lower-case GUID", what, id)
		}
		if prev, dup := ids[id]; dup {
			t.Errorf("%s: ID %s is also %s's", what, id, prev)
		}
		ids[id] = what
	}
	names := map[string]bool{}
	vms := 0
	for _, r := range site.Replicas {
		add(r.ID, "replica "+r.Name)
		if names[strings.ToLower(r.Name)] || r.PolicyName == "" {
			t.Errorf("replica %q: duplicated name or no policy", r.Name)
		}
		names[strings.ToLower(r.Name)] = true
		vmNames := map[string]bool{}
		for _, vm := range r.VMs {
			add(vm.ID, "VM "+vm.Name+" of "+r.Name)
			if vmNames[strings.ToLower(vm.Name)] {
				t.Errorf("replica %s has two VMs named %q", r.Name, vm.Name)
			}
			vmNames[strings.ToLower(vm.Name)] = true
			vms++
		}
	}
	for _, va := range site.VApps {
		add(va.ID, "vApp "+va.Name)
	}
	if len(site.Replicas) < 3 || vms < 12 || len(site.VApps) != 2 {
		t.Errorf("DemoSite has %d replicas, %d VMs, %d vApps; want a small site (3+, 12+, 2)", len(site.Replicas), vms, len(site.VApps))
	}
	if !reflect.DeepEqual(DemoSite(), site) {
		t.Error("DemoSite differs between calls")
	}
	// One derived ID pinned: a change to the derivation would silently change the docs.
	if got := site.Replicas[1].VMs[3]; got != (VM{ID: "8b4af321-6ea0-5a34-912e-2d7a20825d87", Name: "web04"}) {
		t.Errorf("CDP-Web's fourth VM = %+v, want web04 8b4af321-6ea0-5a34-912e-2d7a20825d87", got)
	}
}

// TestDemoSiteExtendsDemoInventory: CDP-Finance, web01 and web02 of CDP-Web and erp-vapp are
// DemoInventory's, IDs and all, so text written about one is true of the other.
func TestDemoSiteExtendsDemoInventory(t *testing.T) {
	site, demo := DemoSite(), DemoInventory()
	if !reflect.DeepEqual(site.Replicas[0], demo.Replicas[0]) {
		t.Errorf("DemoSite's first replica = %+v, want DemoInventory's %+v", site.Replicas[0], demo.Replicas[0])
	}
	web, dweb := site.Replicas[1], demo.Replicas[1]
	if web.ID != dweb.ID || web.Name != dweb.Name || web.PolicyName != dweb.PolicyName || !reflect.DeepEqual(web.VMs[:len(dweb.VMs)], dweb.VMs) {
		t.Errorf("DemoSite's CDP-Web = %+v, want it to start as DemoInventory's %+v", web, dweb)
	}
	if !reflect.DeepEqual(site.VApps[0], demo.VApps[0]) {
		t.Errorf("DemoSite's first vApp = %+v, want DemoInventory's %+v", site.VApps[0], demo.VApps[0])
	}
	// A caller changing the site does not change DemoInventory.
	site.Replicas[1].VMs[0].Name = "changed"
	if DemoInventory().Replicas[1].VMs[0].Name != "web01" {
		t.Error("DemoSite shares its slices with DemoInventory")
	}
}

// TestDemoSiteServed: the simulator accepts the site (no duplicate IDs) and lists all of it.
func TestDemoSiteServed(t *testing.T) {
	s := New(Config{Username: testUser, Password: testPass, Now: fakeclock.New(t0).Now}, DemoSite())
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	m := &sim{t: t, s: s, ts: ts}
	tok, _ := m.logon()
	r := m.get(tok, "/api/cdpReplicas")
	if r.status != http.StatusOK || strings.Count(r.body, `Type="CdpReplicaReference"`) != len(DemoSite().Replicas) {
		t.Fatalf("GET /cdpReplicas = %d %s, want every replica of the site", r.status, r.body)
	}
	web := DemoSite().Replicas[1]
	r = m.get(tok, "/api/cdpReplicas/"+web.ID+"/vms")
	for _, vm := range web.VMs {
		if !strings.Contains(r.body, `Name="`+vm.Name+`"`) {
			t.Errorf("GET the VMs of CDP-Web lacks %s: %d %s", vm.Name, r.status, r.body)
		}
	}
	r = m.get(tok, "/api/cdpReplica/vApps")
	if !strings.Contains(r.body, `Name="erp-vapp"`) || !strings.Contains(r.body, `Name="hr-vapp"`) {
		t.Errorf("GET /cdpReplica/vApps = %d %s, want erp-vapp and hr-vapp", r.status, r.body)
	}
}
