package emsim

import (
	"net/http"
	"testing"
)

const specIntervals = `<CdpIntervalsSpec xmlns="http://www.veeam.com/ent/v1.0"><StartDate>2021-02-17T13:00:00</StartDate><EndDate>2021-02-17T16:00:00</EndDate></CdpIntervalsSpec>`

func TestInventoryReads(t *testing.T) {
	const (
		fin  = "http://HOST/api/cdpReplicas/7665222c-2e99-4a3f-b892-1827ba8d1eee"
		web  = "http://HOST/api/cdpReplicas/24ae37ad-4d28-4568-8467-98d8770bb722"
		db01 = fin + "/vms/e809a086-2562-4a0f-a9a8-9c115ff8f0ba"
		erpH = "http://HOST/api/cdpReplica/vApps/5c4b3a29-1807-4f6e-9d5c-4b3a29180f7e"
	)
	tests := []struct {
		name, path, accept, want string
	}{
		{"replicas xml", "/api/cdpReplicas", "application/xml",
			`<EntityReferences xmlns="http://www.veeam.com/ent/v1.0">` +
				`<Ref Type="CdpReplicaReference" Href="` + fin + `" Name="CDP-Finance" UID="urn:veeam:CdpReplica:7665222c-2e99-4a3f-b892-1827ba8d1eee"><Links>` +
				`<Link Rel="Alternate" Href="` + fin + `?format=Entity" Name="CDP-Finance" Type="CdpReplica"></Link>` +
				`<Link Rel="Down" Href="` + fin + `/vms" Type="CdpReplicaVmReferenceList"></Link></Links></Ref>` +
				`<Ref Type="CdpReplicaReference" Href="` + web + `" Name="CDP-Web" UID="urn:veeam:CdpReplica:24ae37ad-4d28-4568-8467-98d8770bb722"><Links>` +
				`<Link Rel="Alternate" Href="` + web + `?format=Entity" Name="CDP-Web" Type="CdpReplica"></Link>` +
				`<Link Rel="Down" Href="` + web + `/vms" Type="CdpReplicaVmReferenceList"></Link></Links></Ref>` +
				`</EntityReferences>`},
		{"replicas json", "/api/cdpReplicas", "application/json",
			"\xEF\xBB\xBF" + `{"Refs":[` +
				`{"Type":"CdpReplicaReference","Href":"` + fin + `","Name":"CDP-Finance","UID":"urn:veeam:CdpReplica:7665222c-2e99-4a3f-b892-1827ba8d1eee","Links":[` +
				`{"Rel":"Alternate","Href":"` + fin + `?format=Entity","Name":"CDP-Finance","Type":"CdpReplica"},` +
				`{"Rel":"Down","Href":"` + fin + `/vms","Type":"CdpReplicaVmReferenceList"}]},` +
				`{"Type":"CdpReplicaReference","Href":"` + web + `","Name":"CDP-Web","UID":"urn:veeam:CdpReplica:24ae37ad-4d28-4568-8467-98d8770bb722","Links":[` +
				`{"Rel":"Alternate","Href":"` + web + `?format=Entity","Name":"CDP-Web","Type":"CdpReplica"},` +
				`{"Rel":"Down","Href":"` + web + `/vms","Type":"CdpReplicaVmReferenceList"}]}]}`},
		{"replica entity", "/api/cdpReplicas/" + finance + "?format=Entity", "",
			`<CdpReplica xmlns="http://www.veeam.com/ent/v1.0" Href="` + fin + `?format=Entity" Type="CdpReplica" Name="CDP-Finance" UID="urn:veeam:CdpReplica:7665222c-2e99-4a3f-b892-1827ba8d1eee"><Links>` +
				`<Link Rel="Alternate" Href="` + fin + `" Name="CDP-Finance" Type="CdpReplicaReference"></Link>` +
				`<Link Rel="Down" Href="` + fin + `/vms" Type="CdpReplicaVmReferenceList"></Link></Links>` +
				`<PolicyName>CDP Policy Finance</PolicyName><PolicyUid>57b7d0a7-aacd-5288-b12f-763742795e08</PolicyUid><BackupServer>vbr01.demo.local</BackupServer></CdpReplica>`},
		{"replica reference without format", "/api/cdpReplicas/" + finance, "",
			`<EntityRef xmlns="http://www.veeam.com/ent/v1.0" Type="CdpReplicaReference" Href="` + fin + `" Name="CDP-Finance" UID="urn:veeam:CdpReplica:7665222c-2e99-4a3f-b892-1827ba8d1eee"><Links>` +
				`<Link Rel="Alternate" Href="` + fin + `?format=Entity" Name="CDP-Finance" Type="CdpReplica"></Link>` +
				`<Link Rel="Down" Href="` + fin + `/vms" Type="CdpReplicaVmReferenceList"></Link></Links></EntityRef>`},
		{"vm entity", "/api/cdpReplicas/" + finance + "/vms/" + finDB + "?format=Entity", "",
			`<CdpReplicaVm xmlns="http://www.veeam.com/ent/v1.0" Href="` + db01 + `?format=Entity" Type="CdpReplicaVm" Name="fin-db01" UID="urn:veeam:CdpReplicaVm:e809a086-2562-4a0f-a9a8-9c115ff8f0ba"><Links>` +
				`<Link Rel="Intervals" Href="` + db01 + `?action=intervals" Type="CdpReplicaIntervals"></Link>` +
				`<Link Rel="Failover" Href="` + db01 + `?action=failover" Type="Task"></Link>` +
				`<Link Rel="Up" Href="` + fin + `" Name="CDP-Finance" Type="CdpReplicaReference"></Link></Links>` +
				`<VmRef>urn:VMware:Vm:27341a55-c20c-5047-b492-799c285bdad0.vm-2276</VmRef><ReplicaUid>7665222c-2e99-4a3f-b892-1827ba8d1eee</ReplicaUid>` +
				`<BackupServer>vbr01.demo.local</BackupServer><PolicyUid>57b7d0a7-aacd-5288-b12f-763742795e08</PolicyUid><PolicyName>CDP Policy Finance</PolicyName></CdpReplicaVm>`},
		{"vms of a replica json", "/api/cdpReplicas/" + webRep + "/vms", "application/json",
			"\xEF\xBB\xBF" + `{"Refs":[` +
				`{"Type":"CdpReplicaVmReference","Href":"` + web + `/vms/fc2d6425-e96d-44e7-9d96-b7af5991adb3","Name":"web01","UID":"urn:veeam:CdpReplicaVm:fc2d6425-e96d-44e7-9d96-b7af5991adb3","Links":[` +
				`{"Rel":"Alternate","Href":"` + web + `/vms/fc2d6425-e96d-44e7-9d96-b7af5991adb3?format=Entity","Name":"web01","Type":"CdpReplicaVm"},` +
				`{"Rel":"Up","Href":"` + web + `","Name":"CDP-Web","Type":"CdpReplicaReference"}]},` +
				`{"Type":"CdpReplicaVmReference","Href":"` + web + `/vms/0d9e8f7a-6b5c-4d3e-8f2a-1b0c9d8e7f6a","Name":"web02","UID":"urn:veeam:CdpReplicaVm:0d9e8f7a-6b5c-4d3e-8f2a-1b0c9d8e7f6a","Links":[` +
				`{"Rel":"Alternate","Href":"` + web + `/vms/0d9e8f7a-6b5c-4d3e-8f2a-1b0c9d8e7f6a?format=Entity","Name":"web02","Type":"CdpReplicaVm"},` +
				`{"Rel":"Up","Href":"` + web + `","Name":"CDP-Web","Type":"CdpReplicaReference"}]}]}`},
		{"vapps", "/api/cdpReplica/vApps", "",
			`<EntityReferences xmlns="http://www.veeam.com/ent/v1.0"><Ref Type="VAppCdpReplicaReference" Href="` + erpH + `" Name="erp-vapp" UID="urn:veeam:VAppCdpReplica:5c4b3a29-1807-4f6e-9d5c-4b3a29180f7e"><Links>` +
				`<Link Rel="Alternate" Href="` + erpH + `?format=Entity" Name="erp-vapp" Type="VAppCdpReplica"></Link></Links></Ref></EntityReferences>`},
		{"vapp entity json", "/api/cdpReplica/vApps/" + erp + "?format=Entity", "application/json",
			"\xEF\xBB\xBF" + `{"Href":"` + erpH + `?format=Entity","Type":"VAppCdpReplica","Name":"erp-vapp","UID":"urn:veeam:VAppCdpReplica:5c4b3a29-1807-4f6e-9d5c-4b3a29180f7e","Links":[` +
				`{"Rel":"Intervals","Href":"` + erpH + `?action=intervals","Type":"CdpReplicaIntervals"},` +
				`{"Rel":"Failover","Href":"` + erpH + `?action=failover","Type":"Task"},` +
				`{"Rel":"Alternate","Href":"` + erpH + `","Name":"erp-vapp","Type":"VAppCdpReplicaReference"}],"BackupServer":"vbr01.demo.local"}`},
		{"accept listing xml and json answers xml", "/api/cdpReplica/vApps", "application/xml, application/json",
			`<EntityReferences xmlns="http://www.veeam.com/ent/v1.0"><Ref Type="VAppCdpReplicaReference" Href="` + erpH + `" Name="erp-vapp" UID="urn:veeam:VAppCdpReplica:5c4b3a29-1807-4f6e-9d5c-4b3a29180f7e"><Links>` +
				`<Link Rel="Alternate" Href="` + erpH + `?format=Entity" Name="erp-vapp" Type="VAppCdpReplica"></Link></Links></Ref></EntityReferences>`},
	}
	m := newSim(t, Config{})
	tok, _ := m.logon()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := m.do(req{method: "GET", path: tt.path, token: tok, accept: tt.accept})
			wantStatus(t, r, http.StatusOK)
			wantBody(t, r, tt.want)
			wantCT := "application/xml; charset=utf-8"
			if tt.accept == "application/json" {
				wantCT = "application/json; charset=utf-8"
			}
			if got := r.header.Get("Content-Type"); got != wantCT {
				t.Errorf("Content-Type: got %q, want %q", got, wantCT)
			}
		})
	}
}

func TestIntervals(t *testing.T) {
	tests := []struct {
		name string
		r    req
		want string
	}{
		{"vm xml", req{path: "/api/cdpReplicas/" + finance + "/vms/" + finDB + "?action=intervals", body: specIntervals},
			`<CdpReplicaIntervals xmlns="http://www.veeam.com/ent/v1.0"><HasApplicationConsistentState>true</HasApplicationConsistentState>` +
				`<Intervals><Interval><StartDate>2021-02-17T13:00:00</StartDate><EndDate>2021-02-17T15:31:40</EndDate><Rpo>15</Rpo><IntervalType>RestoreAvailable</IntervalType></Interval></Intervals>` +
				`<RestorePoints>` +
				`<RestorePoint><Id>7965084b-23bd-5bfa-98f8-2dd458fa12cc</Id><Date>2021-02-17T13:00:00</Date><IsApplicationConsistent>true</IsApplicationConsistent></RestorePoint>` +
				`<RestorePoint><Id>9cccdfa1-e3b9-5561-a850-6f4564bde4a0</Id><Date>2021-02-17T14:00:00</Date><IsApplicationConsistent>true</IsApplicationConsistent></RestorePoint>` +
				`<RestorePoint><Id>78fa38aa-2750-5208-847a-008eb39a8117</Id><Date>2021-02-17T15:00:00</Date><IsApplicationConsistent>true</IsApplicationConsistent></RestorePoint>` +
				`</RestorePoints></CdpReplicaIntervals>`},
		{"vapp json", req{path: "/api/cdpReplica/vApps/" + erp + "?action=intervals", accept: "application/json", contentType: "application/json",
			body: `{"EndDate":"2021-02-17T14:00:00","StartDate":"2021-02-17T13:30:00"}`},
			"\xEF\xBB\xBF" + `{"HasApplicationConsistentState":true,"Intervals":[{"StartDate":"2021-02-17T13:30:00","EndDate":"2021-02-17T14:00:00","Rpo":15,"IntervalType":"RestoreAvailable"}],` +
				`"RestorePoints":[{"Id":"90e5c610-1c46-5943-9fb9-b3cfab634f60","Date":"2021-02-17T14:00:00","IsApplicationConsistent":true}]}`},
		{"window before the history", req{path: "/api/cdpReplica/vApps/" + erp + "?action=intervals",
			body: `<CdpIntervalsSpec xmlns="http://www.veeam.com/ent/v1.0"><StartDate>2020-01-01T00:00:00</StartDate><EndDate>2020-01-02T00:00:00</EndDate></CdpIntervalsSpec>`},
			`<CdpReplicaIntervals xmlns="http://www.veeam.com/ent/v1.0"><HasApplicationConsistentState>false</HasApplicationConsistentState><Intervals></Intervals><RestorePoints></RestorePoints></CdpReplicaIntervals>`},
	}
	m := newSim(t, Config{})
	tok, _ := m.logon()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.r.method, tt.r.token = "POST", tok
			r := m.do(tt.r)
			wantStatus(t, r, http.StatusOK)
			wantBody(t, r, tt.want)
		})
	}
}

func TestIntervalsSpecErrors(t *testing.T) {
	m := newSim(t, Config{})
	tok, _ := m.logon()
	tests := []struct{ name, body, want string }{
		{"end before start", `<CdpIntervalsSpec xmlns="http://www.veeam.com/ent/v1.0"><StartDate>2021-02-17T14:00:00</StartDate><EndDate>2021-02-17T13:00:00</EndDate></CdpIntervalsSpec>`,
			"StartDate must not be after EndDate"},
		{"missing end", `<CdpIntervalsSpec xmlns="http://www.veeam.com/ent/v1.0"><StartDate>2021-02-17T14:00:00</StartDate></CdpIntervalsSpec>`,
			"Required element &lt;EndDate&gt; is missing from &lt;CdpIntervalsSpec&gt;"},
		{"zone offset", `<CdpIntervalsSpec xmlns="http://www.veeam.com/ent/v1.0"><StartDate>2021-02-17T14:00:00+01:00</StartDate><EndDate>2021-02-17T15:00:00</EndDate></CdpIntervalsSpec>`,
			"&lt;StartDate&gt; must be a UTC DateTime (2021-02-17T15:31:40, 2021-02-17T15:31:40Z or 2021-02-17T15:31:40.123Z), got &#34;2021-02-17T14:00:00+01:00&#34;"},
		{"wrong root", specLatest, "Unexpected root element &lt;CdpFailoverStartSpec&gt;: expected &lt;CdpIntervalsSpec&gt;"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := m.do(req{method: "POST", path: "/api/cdpReplicas/" + finance + "/vms/" + finDB + "?action=intervals", token: tok, body: tt.body})
			wantStatus(t, r, http.StatusBadRequest)
			wantBody(t, r, `<Error xmlns="http://www.veeam.com/ent/v1.0" Message="`+tt.want+`" StatusCode="400"></Error>`)
		})
	}
}

func TestNotFoundAndMethods(t *testing.T) {
	const unknown = "11111111-2222-4333-8444-555555555555"
	m := newSim(t, Config{})
	tok, _ := m.logon()
	tests := []struct {
		name, method, path, body string
		want                     int
		wantMsg                  string
	}{
		{"unknown replica", "GET", "/api/cdpReplicas/" + unknown + "?format=Entity", "", 404, "CDP replica " + unknown + " was not found"},
		{"unknown replica vms", "GET", "/api/cdpReplicas/" + unknown + "/vms", "", 404, "CDP replica " + unknown + " was not found"},
		{"vm of another replica", "GET", "/api/cdpReplicas/" + webRep + "/vms/" + finDB + "?format=Entity", "", 404, "VM " + finDB + " was not found in CDP replica " + webRep},
		{"failover of unknown vm", "POST", "/api/cdpReplicas/" + finance + "/vms/" + unknown + "?action=failover", specLatest, 404, "VM " + unknown + " was not found in CDP replica " + finance},
		{"unknown vapp", "GET", "/api/cdpReplica/vApps/" + unknown + "?format=Entity", "", 404, "vApp CDP replica " + unknown + " was not found"},
		{"failover of unknown vapp", "POST", "/api/cdpReplica/vApps/" + unknown + "?action=failover", specLatest, 404, "vApp CDP replica " + unknown + " was not found"},
		{"misspelt vApps list", "GET", "/api/cdpReplicas/vApps", "", 404, "CDP replica vApps was not found"},
		{"misspelt vApp failover", "POST", "/api/cdpReplicas/vApps/" + erp + "?action=failover", specLatest, 404, "Resource not found: /api/cdpReplicas/vApps/" + erp},
		{"misspelt vApp entity", "GET", "/api/cdpReplicas/vApps/" + erp + "?format=Entity", "", 404, "Resource not found: /api/cdpReplicas/vApps/" + erp},
		{"singular task path", "GET", "/api/task/task-1", "", 404, "Resource not found: /api/task/task-1"},
		{"unknown task", "GET", "/api/tasks/task-9", "", 404, "Task task-9 was not found"},
		{"delete unknown task", "DELETE", "/api/tasks/task-9", "", 404, "Task task-9 was not found"},
		{"unknown restore session", "GET", "/api/restoreSessions/" + unknown + "?format=Entity", "", 404, "Restore session " + unknown + " was not found"},
		{"trailing slash", "GET", "/api/cdpReplicas/", "", 404, "Resource not found: /api/cdpReplicas/"},
		{"outside api", "GET", "/cdpReplicas", "", 404, "Resource not found: /cdpReplicas"},
		{"POST a list", "POST", "/api/cdpReplicas", "", 405, "Method POST is not allowed for this resource"},
		{"DELETE a replica", "DELETE", "/api/cdpReplicas/" + finance, "", 405, "Method DELETE is not allowed for this resource"},
		{"PUT a task", "PUT", "/api/tasks/task-1", "", 405, "Method PUT is not allowed for this resource"},
		{"POST without action", "POST", "/api/cdpReplicas/" + finance + "/vms/" + finDB, specLatest, 405, "POST needs an action (failover or intervals)"},
		{"unknown action", "POST", "/api/cdpReplica/vApps/" + erp + "?action=undo", specLatest, 400, "Unknown action: undo"},
		{"unknown format", "GET", "/api/cdpReplicas/" + finance + "?format=Full", "", 400, "Unknown format: Full"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := m.do(req{method: tt.method, path: tt.path, token: tok, body: tt.body})
			wantStatus(t, r, tt.want)
			wantBody(t, r, `<Error xmlns="http://www.veeam.com/ent/v1.0" Message="`+tt.wantMsg+`" StatusCode="`+itoa(tt.want)+`"></Error>`)
			if tt.want == 405 && r.header.Get("Allow") == "" {
				t.Errorf("405 without an Allow header")
			}
		})
	}
	if n := len(m.s.Failovers()); n != 0 {
		t.Errorf("failovers: got %d, want 0", n)
	}
}
