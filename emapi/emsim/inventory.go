package emsim

import (
	"crypto/sha1"
	"fmt"
	"hash/crc32"
	"net/http"
	"time"
)

// Inventory is what the simulated EM knows: CDP replicas with their VMs, and vApp CDP replicas.
// IDs are bare GUIDs (the last segment of a UID such as urn:veeam:CdpReplica:<guid>).
type Inventory struct {
	Replicas []Replica
	VApps    []VApp
}

// Replica is one CDP replica (one CDP policy's replica set) and the VMs it protects.
type Replica struct {
	ID, Name, PolicyName string
	VMs                  []VM
}

// VM is one VM inside a CDP replica; a failover target.
type VM struct{ ID, Name string }

// VApp is one vApp CDP replica; a failover target.
type VApp struct{ ID, Name string }

// backupServer is the name every entity reports as its backup server.
const backupServer = "vbr01.demo.local"

// DemoInventory returns a small fixed inventory with stable GUIDs and names, for tests: two
// replicas with three and two VMs, one vApp. The console demo uses the larger DemoSite.
func DemoInventory() Inventory {
	return Inventory{
		Replicas: []Replica{
			{
				ID: "7665222c-2e99-4a3f-b892-1827ba8d1eee", Name: "CDP-Finance", PolicyName: "CDP Policy Finance",
				VMs: []VM{
					{ID: "e809a086-2562-4a0f-a9a8-9c115ff8f0ba", Name: "fin-db01"},
					{ID: "3f1c2d4e-5a6b-4c7d-8e9f-0a1b2c3d4e5f", Name: "fin-app01"},
					{ID: "9b8a7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d", Name: "fin-web01"},
				},
			},
			{
				ID: "24ae37ad-4d28-4568-8467-98d8770bb722", Name: "CDP-Web", PolicyName: "CDP Policy Web",
				VMs: []VM{
					{ID: "fc2d6425-e96d-44e7-9d96-b7af5991adb3", Name: "web01"},
					{ID: "0d9e8f7a-6b5c-4d3e-8f2a-1b0c9d8e7f6a", Name: "web02"},
				},
			},
		},
		VApps: []VApp{{ID: "5c4b3a29-1807-4f6e-9d5c-4b3a29180f7e", Name: "erp-vapp"}},
	}
}

// DemoSite returns a small site for the console demo: four replicas with fourteen VMs and two
// vApps. Its first replica (CDP-Finance, its VMs and their IDs), web01 and web02 of CDP-Web and
// erp-vapp are those of DemoInventory, so what is written about one holds for the other; the
// other IDs are derived from the names and never change.
func DemoSite() Inventory {
	demo := DemoInventory()
	web := demo.Replicas[1]
	web.VMs = append(web.VMs[:2:2], siteVMs("CDP-Web", "web03", "web04", "web05", "web06")...)
	return Inventory{
		Replicas: []Replica{
			demo.Replicas[0],
			web,
			{
				ID: siteGUID("replica", "CDP-Crm"), Name: "CDP-Crm", PolicyName: "CDP Policy Crm",
				VMs: siteVMs("CDP-Crm", "crm-app01", "crm-db01", "crm-web01"),
			},
			{
				ID: siteGUID("replica", "CDP-Mail"), Name: "CDP-Mail", PolicyName: "CDP Policy Mail",
				VMs: siteVMs("CDP-Mail", "mail01", "mail02"),
			},
		},
		VApps: []VApp{
			demo.VApps[0],
			{ID: siteGUID("vapp", "hr-vapp"), Name: "hr-vapp"},
		},
	}
}

// siteVMs returns VMs of the replica named replica with IDs derived from the names.
func siteVMs(replica string, names ...string) []VM {
	vms := make([]VM, len(names))
	for i, n := range names {
		vms[i] = VM{ID: siteGUID("vm", replica, n), Name: n}
	}
	return vms
}

// siteGUID is the stable ID of a DemoSite entity that DemoInventory does not have.
func siteGUID(parts ...string) string {
	return nameGUID(append([]string{"demo-site"}, parts...)...)
}

// inventory is the indexed copy the server serves; the caller's slices are not retained.
type inventory struct {
	replicas []Replica
	byID     map[string]*Replica
	vms      map[string]map[string]VM // replica ID -> VM ID -> VM
	vapps    []VApp
	vappByID map[string]VApp
}

func indexInventory(in Inventory) inventory {
	inv := inventory{
		byID:     map[string]*Replica{},
		vms:      map[string]map[string]VM{},
		vappByID: map[string]VApp{},
	}
	seen := map[string]bool{}
	check := func(id, what string) {
		if id == "" || seen[id] {
			panic(fmt.Sprintf("emsim: %s ID %q is empty or duplicated in the inventory", what, id))
		}
		seen[id] = true
	}
	for _, r := range in.Replicas {
		check(r.ID, "replica")
		r.VMs = append([]VM(nil), r.VMs...)
		inv.replicas = append(inv.replicas, r)
		inv.vms[r.ID] = map[string]VM{}
		for _, vm := range r.VMs {
			check(vm.ID, "VM")
			inv.vms[r.ID][vm.ID] = vm
		}
	}
	for i := range inv.replicas {
		inv.byID[inv.replicas[i].ID] = &inv.replicas[i]
	}
	for _, va := range in.VApps {
		check(va.ID, "vApp")
		inv.vapps = append(inv.vapps, va)
		inv.vappByID[va.ID] = va
	}
	return inv
}

// hasTarget reports whether id is a VM or vApp of the inventory.
func (inv *inventory) hasTarget(id string) bool {
	if _, ok := inv.vappByID[id]; ok {
		return true
	}
	for _, vms := range inv.vms {
		if _, ok := vms[id]; ok {
			return true
		}
	}
	return false
}

// nameGUID derives a stable GUID from a name, for IDs the inventory does not carry (policy IDs,
// restore point IDs, VM references).
func nameGUID(parts ...string) string {
	h := sha1.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	b := h.Sum(nil)
	b[6] = b[6]&0x0f | 0x50
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// wantEntity reads ?format=: "Entity" asks for the full entity, absent or "Ref" for the reference
// representation (EntityRef), as on EM. Anything else is a 400.
func wantEntity(c *call) (entity, ok bool) {
	switch f := c.r.URL.Query().Get("format"); f {
	case "Entity":
		return true, true
	case "", "Ref":
		return false, true
	default:
		c.fail(http.StatusBadRequest, "Unknown format: "+f)
		return false, false
	}
}

func (c *call) replicaRef(r *Replica) ref {
	href := c.base + "/cdpReplicas/" + r.ID
	return ref{
		Type: "CdpReplicaReference", Href: href, Name: r.Name, UID: "urn:veeam:CdpReplica:" + r.ID,
		Links: []link{
			{Rel: "Alternate", Href: href + "?format=Entity", Name: r.Name, Type: "CdpReplica"},
			{Rel: "Down", Href: href + "/vms", Type: "CdpReplicaVmReferenceList"},
		},
	}
}

func (c *call) vmRef(r *Replica, vm VM) ref {
	href := c.base + "/cdpReplicas/" + r.ID + "/vms/" + vm.ID
	return ref{
		Type: "CdpReplicaVmReference", Href: href, Name: vm.Name, UID: "urn:veeam:CdpReplicaVm:" + vm.ID,
		Links: []link{
			{Rel: "Alternate", Href: href + "?format=Entity", Name: vm.Name, Type: "CdpReplicaVm"},
			{Rel: "Up", Href: c.base + "/cdpReplicas/" + r.ID, Name: r.Name, Type: "CdpReplicaReference"},
		},
	}
}

func (c *call) vAppRef(va VApp) ref {
	href := c.base + "/cdpReplica/vApps/" + va.ID
	return ref{
		Type: "VAppCdpReplicaReference", Href: href, Name: va.Name, UID: "urn:veeam:VAppCdpReplica:" + va.ID,
		Links: []link{{Rel: "Alternate", Href: href + "?format=Entity", Name: va.Name, Type: "VAppCdpReplica"}},
	}
}

func (s *Server) listReplicas(c *call) {
	doc := entityReferencesDoc{Refs: []ref{}}
	for i := range s.inv.replicas {
		doc.Refs = append(doc.Refs, c.replicaRef(&s.inv.replicas[i]))
	}
	c.ok(http.StatusOK, doc)
}

func (s *Server) replica(c *call) *Replica {
	r, ok := s.inv.byID[c.params[0]]
	if !ok {
		c.fail(http.StatusNotFound, "CDP replica "+c.params[0]+" was not found")
		return nil
	}
	return r
}

func (s *Server) replicaVM(c *call) (*Replica, VM, bool) {
	r := s.replica(c)
	if r == nil {
		return nil, VM{}, false
	}
	vm, ok := s.inv.vms[r.ID][c.params[1]]
	if !ok {
		c.fail(http.StatusNotFound, "VM "+c.params[1]+" was not found in CDP replica "+r.ID)
		return nil, VM{}, false
	}
	return r, vm, true
}

func (s *Server) vApp(c *call) (VApp, bool) {
	va, ok := s.inv.vappByID[c.params[0]]
	if !ok {
		c.fail(http.StatusNotFound, "vApp CDP replica "+c.params[0]+" was not found")
	}
	return va, ok
}

func (s *Server) getReplica(c *call) {
	entity, ok := wantEntity(c)
	if !ok {
		return
	}
	r := s.replica(c)
	if r == nil {
		return
	}
	if !entity {
		c.ok(http.StatusOK, entityRefDoc{ref: c.replicaRef(r)})
		return
	}
	c.ok(http.StatusOK, cdpReplicaDoc{cdpReplicaBody: c.replicaBody(r)})
}

// replicaBody is the entity form of a CDP replica.
func (c *call) replicaBody(r *Replica) cdpReplicaBody {
	href := c.base + "/cdpReplicas/" + r.ID
	return cdpReplicaBody{
		Href: href + "?format=Entity", Type: "CdpReplica", Name: r.Name, UID: "urn:veeam:CdpReplica:" + r.ID,
		Links: []link{
			{Rel: "Alternate", Href: href, Name: r.Name, Type: "CdpReplicaReference"},
			{Rel: "Down", Href: href + "/vms", Type: "CdpReplicaVmReferenceList"},
		},
		PolicyName:   r.PolicyName,
		PolicyUID:    nameGUID("policy", r.PolicyName),
		BackupServer: backupServer,
	}
}

func (s *Server) listReplicaVMs(c *call) {
	r := s.replica(c)
	if r == nil {
		return
	}
	doc := entityReferencesDoc{Refs: []ref{}}
	for _, vm := range r.VMs {
		doc.Refs = append(doc.Refs, c.vmRef(r, vm))
	}
	c.ok(http.StatusOK, doc)
}

func (s *Server) getReplicaVM(c *call) {
	entity, ok := wantEntity(c)
	if !ok {
		return
	}
	r, vm, ok := s.replicaVM(c)
	if !ok {
		return
	}
	if !entity {
		c.ok(http.StatusOK, entityRefDoc{ref: c.vmRef(r, vm)})
		return
	}
	href := c.base + "/cdpReplicas/" + r.ID + "/vms/" + vm.ID
	c.ok(http.StatusOK, cdpReplicaVMDoc{
		Href: href + "?format=Entity", Type: "CdpReplicaVm", Name: vm.Name, UID: "urn:veeam:CdpReplicaVm:" + vm.ID,
		Links: []link{
			{Rel: "Intervals", Href: href + "?action=intervals", Type: "CdpReplicaIntervals"},
			{Rel: "Failover", Href: href + "?action=failover", Type: "Task"},
			{Rel: "Up", Href: c.base + "/cdpReplicas/" + r.ID, Name: r.Name, Type: "CdpReplicaReference"},
		},
		VMRef:        fmt.Sprintf("urn:VMware:Vm:%s.vm-%d", nameGUID("vcenter", backupServer), 1000+crc32.ChecksumIEEE([]byte(vm.ID))%90000),
		ReplicaUID:   r.ID,
		BackupServer: backupServer,
		PolicyUID:    nameGUID("policy", r.PolicyName),
		PolicyName:   r.PolicyName,
	})
}

func (s *Server) listVApps(c *call) {
	doc := entityReferencesDoc{Refs: []ref{}}
	for _, va := range s.inv.vapps {
		doc.Refs = append(doc.Refs, c.vAppRef(va))
	}
	c.ok(http.StatusOK, doc)
}

func (s *Server) getVApp(c *call) {
	entity, ok := wantEntity(c)
	if !ok {
		return
	}
	va, ok := s.vApp(c)
	if !ok {
		return
	}
	if !entity {
		c.ok(http.StatusOK, entityRefDoc{ref: c.vAppRef(va)})
		return
	}
	href := c.base + "/cdpReplica/vApps/" + va.ID
	c.ok(http.StatusOK, vAppCdpReplicaDoc{
		Href: href + "?format=Entity", Type: "VAppCdpReplica", Name: va.Name, UID: "urn:veeam:VAppCdpReplica:" + va.ID,
		Links: []link{
			{Rel: "Intervals", Href: href + "?action=intervals", Type: "CdpReplicaIntervals"},
			{Rel: "Failover", Href: href + "?action=failover", Type: "Task"},
			{Rel: "Alternate", Href: href, Name: va.Name, Type: "VAppCdpReplicaReference"},
		},
		BackupServer: backupServer,
	})
}

// postReplicaVM dispatches POST /cdpReplicas/{id}/vms/{id}?action=intervals|failover.
func (s *Server) postReplicaVM(c *call) {
	s.postAction(c, func() (target, bool) {
		r, vm, ok := s.replicaVM(c)
		if !ok {
			return target{}, false
		}
		return target{kind: TargetVM, replicaID: r.ID, id: vm.ID, name: vm.Name}, true
	})
}

// postVApp dispatches POST /cdpReplica/vApps/{id}?action=intervals|failover.
func (s *Server) postVApp(c *call) {
	s.postAction(c, func() (target, bool) {
		va, ok := s.vApp(c)
		if !ok {
			return target{}, false
		}
		return target{kind: TargetVApp, id: va.ID, name: va.Name}, true
	})
}

// target is what a failover or intervals call acts on.
type target struct {
	kind      TargetKind
	replicaID string // VM only
	id, name  string
}

func (s *Server) postAction(c *call, lookup func() (target, bool)) {
	switch a := c.r.URL.Query().Get("action"); a {
	case "failover":
		asked, used, ok := parseFailoverSpec(c)
		if !ok {
			return
		}
		t, ok := lookup()
		if !ok {
			return
		}
		s.startFailover(c, t, asked, used)
	case "intervals":
		from, to, ok := parseIntervalsSpec(c)
		if !ok {
			return
		}
		t, ok := lookup()
		if !ok {
			return
		}
		doc := intervals(t.id, c.now, from, to)
		s.mu.Lock()
		empty := s.noHistory[t.id]
		s.mu.Unlock()
		if empty {
			doc = intervalsDoc{Intervals: []intervalDoc{}, RestorePoints: []restorePtDoc{}}
		}
		c.ok(http.StatusOK, doc)
	case "":
		c.w.Header().Set("Allow", "GET")
		c.fail(http.StatusMethodNotAllowed, "POST needs an action (failover or intervals)")
	default:
		c.fail(http.StatusBadRequest, "Unknown action: "+a)
	}
}

// cdpHistory is how far back a simulated CDP replica can restore; rpoSeconds is its short-term
// RPO, written as an integer number of seconds like EM's Rpo.
const (
	cdpHistory = 24 * time.Hour
	rpoSeconds = 15
)

// restorePointIDLayout formats a restore point's time for deriving its ID, fixed so that IDs do
// not change with the answer's DateTime form.
const restorePointIDLayout = "2006-01-02T15:04:05Z"

// intervals synthesises the restore history of a target: one RestoreAvailable interval covering
// the last cdpHistory up to now, clipped to [from, to], with an application-consistent long-term
// restore point at every full hour inside it.
func intervals(targetID string, now, from, to time.Time) intervalsDoc {
	doc := intervalsDoc{Intervals: []intervalDoc{}, RestorePoints: []restorePtDoc{}}
	start, end := now.Add(-cdpHistory).Truncate(time.Second), now.Truncate(time.Second)
	if from.After(start) {
		start = from
	}
	if to.Before(end) {
		end = to
	}
	if end.Before(start) {
		return doc
	}
	doc.Intervals = append(doc.Intervals, intervalDoc{
		StartDate: fmtTime(start), EndDate: fmtTime(end), Rpo: rpoSeconds, IntervalType: "RestoreAvailable",
	})
	for p := start.Truncate(time.Hour); !p.After(end); p = p.Add(time.Hour) {
		if p.Before(start) {
			continue
		}
		doc.RestorePoints = append(doc.RestorePoints, restorePtDoc{
			ID: nameGUID("rp", targetID, p.UTC().Format(restorePointIDLayout)), Date: fmtTime(p), IsApplicationConsistent: true,
		})
	}
	doc.HasApplicationConsistentState = len(doc.RestorePoints) > 0
	return doc
}
