package emsim

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// queryPath builds /api/query with its parameters in order; the filter is percent-encoded the
// way url.Values would encode it.
func queryPath(params ...string) string {
	var b strings.Builder
	b.WriteString("/api/query")
	for i := 0; i+1 < len(params); i += 2 {
		b.WriteString(map[bool]string{true: "?", false: "&"}[i == 0])
		b.WriteString(params[i] + "=" + url.QueryEscape(params[i+1]))
	}
	return b.String()
}

// queryView is what a test reads from a /query answer (XML or JSON).
type queryView struct {
	Refs struct {
		Refs []struct {
			Type string `xml:"Type,attr"`
			Name string `xml:"Name,attr"`
			UID  string `xml:"UID,attr"`
		} `xml:"Ref" json:"Refs"`
	} `xml:"Refs"`
	Entities struct {
		RestoreSessions struct {
			RestoreSessions []struct {
				Name          string `xml:"Name,attr"`
				UID           string `xml:"UID,attr"`
				VmDisplayName string `xml:"VmDisplayName,attr"`
			} `xml:"RestoreSession" json:"RestoreSessions"`
		} `xml:"RestoreSessions"`
		CdpReplicas struct {
			CdpReplicas []struct {
				Name string `xml:"Name,attr"`
			} `xml:"CdpReplica" json:"CdpReplicas"`
		} `xml:"CdpReplicas"`
	} `xml:"Entities"`
	PagingInfo struct {
		PageNum    int `xml:"PageNum,attr"`
		PageSize   int `xml:"PageSize,attr"`
		PagesCount int `xml:"PagesCount,attr"`
		Links      []struct {
			Rel  string `xml:"Rel,attr"`
			Href string `xml:"Href,attr"`
		} `xml:"Links>Link"`
	}
}

// names lists the Names of the answer's references or entities, in order.
func (v queryView) names() []string {
	var out []string
	for _, r := range v.Refs.Refs {
		out = append(out, r.Name)
	}
	for _, e := range v.Entities.RestoreSessions.RestoreSessions {
		out = append(out, e.Name)
	}
	for _, e := range v.Entities.CdpReplicas.CdpReplicas {
		out = append(out, e.Name)
	}
	return out
}

func (v queryView) links() string {
	var out []string
	for _, l := range v.PagingInfo.Links {
		_, page, _ := strings.Cut(l.Href, "&page=")
		out = append(out, l.Rel+":"+page)
	}
	return strings.Join(out, " ")
}

func (m *sim) query(tok, accept, path string) queryView {
	m.t.Helper()
	r := m.do(req{method: "GET", path: path, token: tok, accept: accept})
	wantStatus(m.t, r, http.StatusOK)
	var v queryView
	if err := decodeAnswer(r.body, &v); err != nil {
		m.t.Fatalf("query answer %s: %v", r.body, err)
	}
	return v
}

// TestQueryShapes pins the XML and JSON answer documents of /query.
func TestQueryShapes(t *testing.T) {
	const (
		rs3    = "00000000-0000-4000-8000-000000000003"
		rs4    = "00000000-0000-4000-8000-000000000004"
		filter = `CreationTime>="2021-02-17T15:00:00"`
		fq     = "CreationTime%3E%3D%222021-02-17T15%3A00%3A00%22"
		bom    = "\xEF\xBB\xBF"
		web    = "http://HOST/api/cdpReplicas/24ae37ad-4d28-4568-8467-98d8770bb722"
	)
	m := newSim(t, Config{})
	tok, _ := m.logon()
	m.failover(tok, vmFailover)
	m.failover(tok, "/api/cdpReplica/vApps/"+erp+"?action=failover")
	tests := []struct {
		name, path, accept, want string
	}{
		{"restore session entities xml, page 1 of 2", queryPath("type", "RestoreSession", "format", "Entities", "filter", filter, "pageSize", "1"), "",
			`<QueryResult xmlns="http://www.veeam.com/ent/v1.0"><Entities><RestoreSessions>` +
				`<RestoreSession Href="http://HOST/api/restoreSessions/` + rs3 + `?format=Entity" Type="RestoreSession" Name="CDP failover fin-db01" UID="urn:veeam:RestoreSession:` + rs3 + `" VmDisplayName="fin-db01"><Links>` +
				`<Link Rel="Alternate" Href="http://HOST/api/restoreSessions/` + rs3 + `" Name="CDP failover fin-db01" Type="RestoreSessionReference"></Link></Links>` +
				`<JobType>CdpFailover</JobType><CreationTimeUTC>2021-02-17T15:31:40</CreationTimeUTC><State>Starting</State><Result>None</Result><Progress>0</Progress></RestoreSession>` +
				`</RestoreSessions></Entities><PagingInfo PageNum="1" PageSize="1" PagesCount="2"><Links>` +
				`<Link Rel="First" Href="http://HOST/api/query?type=RestoreSession&amp;format=Entities&amp;filter=` + fq + `&amp;pageSize=1&amp;page=1" Type="QueryResult"></Link>` +
				`<Link Rel="Next" Href="http://HOST/api/query?type=RestoreSession&amp;format=Entities&amp;filter=` + fq + `&amp;pageSize=1&amp;page=2" Type="QueryResult"></Link>` +
				`<Link Rel="Last" Href="http://HOST/api/query?type=RestoreSession&amp;format=Entities&amp;filter=` + fq + `&amp;pageSize=1&amp;page=2" Type="QueryResult"></Link>` +
				`</Links></PagingInfo></QueryResult>`},
		{"restore session entities json, page 2 of 2", queryPath("type", "RestoreSession", "format", "Entities", "filter", filter, "pageSize", "1", "page", "2"), "application/json",
			bom + `{"Entities":{"RestoreSessions":{"RestoreSessions":[` +
				`{"Href":"http://HOST/api/restoreSessions/` + rs4 + `?format=Entity","Type":"RestoreSession","Name":"CDP failover erp-vapp","UID":"urn:veeam:RestoreSession:` + rs4 + `","VmDisplayName":"erp-vapp",` +
				`"Links":[{"Rel":"Alternate","Href":"http://HOST/api/restoreSessions/` + rs4 + `","Name":"CDP failover erp-vapp","Type":"RestoreSessionReference"}],` +
				`"JobType":"CdpFailover","CreationTimeUTC":"2021-02-17T15:31:40","State":"Starting","Result":"None","Progress":0}]}},` +
				`"PagingInfo":{"PageNum":2,"PageSize":1,"PagesCount":2,"Links":[` +
				`{"Rel":"First","Href":"http://HOST/api/query?type=RestoreSession&format=Entities&filter=` + fq + `&pageSize=1&page=1","Type":"QueryResult"},` +
				`{"Rel":"Previous","Href":"http://HOST/api/query?type=RestoreSession&format=Entities&filter=` + fq + `&pageSize=1&page=1","Type":"QueryResult"},` +
				`{"Rel":"Last","Href":"http://HOST/api/query?type=RestoreSession&format=Entities&filter=` + fq + `&pageSize=1&page=2","Type":"QueryResult"}]}}`},
		{"references xml by default", queryPath("type", "RestoreSession", "filter", `VmDisplayName=="FIN-DB01"`), "",
			`<QueryResult xmlns="http://www.veeam.com/ent/v1.0"><Refs>` +
				`<Ref Type="RestoreSessionReference" Href="http://HOST/api/restoreSessions/` + rs3 + `" Name="CDP failover fin-db01" UID="urn:veeam:RestoreSession:` + rs3 + `"><Links>` +
				`<Link Rel="Alternate" Href="http://HOST/api/restoreSessions/` + rs3 + `?format=Entity" Name="CDP failover fin-db01" Type="RestoreSession"></Link></Links></Ref>` +
				`</Refs><PagingInfo PageNum="1" PageSize="100" PagesCount="1"><Links>` +
				`<Link Rel="First" Href="http://HOST/api/query?type=RestoreSession&amp;format=References&amp;filter=VmDisplayName%3D%3D%22FIN-DB01%22&amp;pageSize=100&amp;page=1" Type="QueryResult"></Link>` +
				`<Link Rel="Last" Href="http://HOST/api/query?type=RestoreSession&amp;format=References&amp;filter=VmDisplayName%3D%3D%22FIN-DB01%22&amp;pageSize=100&amp;page=1" Type="QueryResult"></Link>` +
				`</Links></PagingInfo></QueryResult>`},
		{"references json", queryPath("type", "RestoreSession", "format", "References", "filter", `VmDisplayName=="erp-vapp"`), "application/json",
			bom + `{"Refs":{"Refs":[` +
				`{"Type":"RestoreSessionReference","Href":"http://HOST/api/restoreSessions/` + rs4 + `","Name":"CDP failover erp-vapp","UID":"urn:veeam:RestoreSession:` + rs4 + `",` +
				`"Links":[{"Rel":"Alternate","Href":"http://HOST/api/restoreSessions/` + rs4 + `?format=Entity","Name":"CDP failover erp-vapp","Type":"RestoreSession"}]}]},` +
				`"PagingInfo":{"PageNum":1,"PageSize":100,"PagesCount":1,"Links":[` +
				`{"Rel":"First","Href":"http://HOST/api/query?type=RestoreSession&format=References&filter=VmDisplayName%3D%3D%22erp-vapp%22&pageSize=100&page=1","Type":"QueryResult"},` +
				`{"Rel":"Last","Href":"http://HOST/api/query?type=RestoreSession&format=References&filter=VmDisplayName%3D%3D%22erp-vapp%22&pageSize=100&page=1","Type":"QueryResult"}]}}`},
		{"empty references json", queryPath("type", "RestoreSession", "filter", "JobType==FileLevelRestore"), "application/json",
			bom + `{"Refs":{"Refs":[]},"PagingInfo":{"PageNum":1,"PageSize":100,"PagesCount":1,"Links":[` +
				`{"Rel":"First","Href":"http://HOST/api/query?type=RestoreSession&format=References&filter=JobType%3D%3DFileLevelRestore&pageSize=100&page=1","Type":"QueryResult"},` +
				`{"Rel":"Last","Href":"http://HOST/api/query?type=RestoreSession&format=References&filter=JobType%3D%3DFileLevelRestore&pageSize=100&page=1","Type":"QueryResult"}]}}`},
		{"cdp replica entities xml", queryPath("type", "CdpReplica", "format", "Entities", "filter", "Name==cdp-web"), "",
			`<QueryResult xmlns="http://www.veeam.com/ent/v1.0"><Entities><CdpReplicas>` +
				`<CdpReplica Href="` + web + `?format=Entity" Type="CdpReplica" Name="CDP-Web" UID="urn:veeam:CdpReplica:24ae37ad-4d28-4568-8467-98d8770bb722"><Links>` +
				`<Link Rel="Alternate" Href="` + web + `" Name="CDP-Web" Type="CdpReplicaReference"></Link>` +
				`<Link Rel="Down" Href="` + web + `/vms" Type="CdpReplicaVmReferenceList"></Link></Links>` +
				`<PolicyName>CDP Policy Web</PolicyName><PolicyUid>beda39f1-f42c-5562-a52c-9a933932ace9</PolicyUid><BackupServer>vbr01.demo.local</BackupServer></CdpReplica>` +
				`</CdpReplicas></Entities><PagingInfo PageNum="1" PageSize="100" PagesCount="1"><Links>` +
				`<Link Rel="First" Href="http://HOST/api/query?type=CdpReplica&amp;format=Entities&amp;filter=Name%3D%3Dcdp-web&amp;pageSize=100&amp;page=1" Type="QueryResult"></Link>` +
				`<Link Rel="Last" Href="http://HOST/api/query?type=CdpReplica&amp;format=Entities&amp;filter=Name%3D%3Dcdp-web&amp;pageSize=100&amp;page=1" Type="QueryResult"></Link>` +
				`</Links></PagingInfo></QueryResult>`},
		{"cdp replica entities json", queryPath("type", "CdpReplica", "format", "Entities", "filter", `Name=="CDP-Web"`), "application/json",
			bom + `{"Entities":{"CdpReplicas":{"CdpReplicas":[` +
				`{"Href":"` + web + `?format=Entity","Type":"CdpReplica","Name":"CDP-Web","UID":"urn:veeam:CdpReplica:24ae37ad-4d28-4568-8467-98d8770bb722",` +
				`"Links":[{"Rel":"Alternate","Href":"` + web + `","Name":"CDP-Web","Type":"CdpReplicaReference"},{"Rel":"Down","Href":"` + web + `/vms","Type":"CdpReplicaVmReferenceList"}],` +
				`"PolicyName":"CDP Policy Web","PolicyUid":"beda39f1-f42c-5562-a52c-9a933932ace9","BackupServer":"vbr01.demo.local"}]}},` +
				`"PagingInfo":{"PageNum":1,"PageSize":100,"PagesCount":1,"Links":[` +
				`{"Rel":"First","Href":"http://HOST/api/query?type=CdpReplica&format=Entities&filter=Name%3D%3D%22CDP-Web%22&pageSize=100&page=1","Type":"QueryResult"},` +
				`{"Rel":"Last","Href":"http://HOST/api/query?type=CdpReplica&format=Entities&filter=Name%3D%3D%22CDP-Web%22&pageSize=100&page=1","Type":"QueryResult"}]}}`},
		{"cdp replica references xml", queryPath("type", "CdpReplica", "filter", "UID==urn:veeam:CdpReplica:24AE37AD-4D28-4568-8467-98D8770BB722"), "",
			`<QueryResult xmlns="http://www.veeam.com/ent/v1.0"><Refs>` +
				`<Ref Type="CdpReplicaReference" Href="` + web + `" Name="CDP-Web" UID="urn:veeam:CdpReplica:24ae37ad-4d28-4568-8467-98d8770bb722"><Links>` +
				`<Link Rel="Alternate" Href="` + web + `?format=Entity" Name="CDP-Web" Type="CdpReplica"></Link>` +
				`<Link Rel="Down" Href="` + web + `/vms" Type="CdpReplicaVmReferenceList"></Link></Links></Ref>` +
				`</Refs><PagingInfo PageNum="1" PageSize="100" PagesCount="1"><Links>` +
				`<Link Rel="First" Href="http://HOST/api/query?type=CdpReplica&amp;format=References&amp;filter=UID%3D%3Durn%3Aveeam%3ACdpReplica%3A24AE37AD-4D28-4568-8467-98D8770BB722&amp;pageSize=100&amp;page=1" Type="QueryResult"></Link>` +
				`<Link Rel="Last" Href="http://HOST/api/query?type=CdpReplica&amp;format=References&amp;filter=UID%3D%3Durn%3Aveeam%3ACdpReplica%3A24AE37AD-4D28-4568-8467-98D8770BB722&amp;pageSize=100&amp;page=1" Type="QueryResult"></Link>` +
				`</Links></PagingInfo></QueryResult>`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := m.do(req{method: "GET", path: tt.path, token: tok, accept: tt.accept})
			wantStatus(t, r, http.StatusOK)
			wantBody(t, r, tt.want)
		})
	}
}

// TestQueryFilter: the filter language over restore sessions and CDP replicas.
func TestQueryFilter(t *testing.T) {
	m := newSim(t, Config{SessionIdle: 1000 * time.Hour, AllowRepeatFailover: true})
	m.s.SetDefaultScript(Script{Running: time.Minute})
	// Planted: oldest first by creation time, whatever the order of the calls.
	m.s.AddRestoreSession(RestoreSessionSeed{VMName: "fin-db01", JobType: "FileLevelRestore", Name: "flr", Created: t0.Add(-2 * time.Hour), Ended: t0.Add(-2*time.Hour + 10*time.Minute)})
	m.s.AddRestoreSession(RestoreSessionSeed{VMName: `a "quoted" vm`, JobType: "InstantRecovery", Name: "quoted", Created: t0.Add(-3 * time.Hour), Ended: t0.Add(-3*time.Hour + time.Minute), Result: ResultFailed})
	m.s.AddRestoreSession(RestoreSessionSeed{VMName: "x;y,z", JobType: "InstantRecovery", Name: "separators", Created: t0.Add(-time.Hour), State: "Working", Result: ResultNone})
	m.s.AddRestoreSession(RestoreSessionSeed{VMName: "fin-db01", JobType: "FileLevelRestore", Name: "too old", Created: t0.Add(-31 * 24 * time.Hour)})
	tok, _ := m.logon()
	m.failover(tok, vmFailover) // "CDP failover fin-db01" at t0, rs GUID 7
	m.clock.Advance(90 * time.Second)
	m.s.SetScript(finDB, Script{AsyncFailure: "no restore session"})
	m.failover(tok, vmFailover)                                      // no restore session: never in a query
	m.failover(tok, "/api/cdpReplica/vApps/"+erp+"?action=failover") // "CDP failover erp-vapp" at t0+90s, running
	all := "quoted flr separators CDP failover fin-db01 CDP failover erp-vapp"

	tests := []struct {
		name, typ, filter, want string // want: names, space-joined
	}{
		{"no filter: 30 days, oldest first", "RestoreSession", "", all},
		{"== is case-insensitive", "RestoreSession", `VmDisplayName=="FIN-db01"`, "flr CDP failover fin-db01"},
		{"bare value", "RestoreSession", `VmDisplayName==fin-db01`, "flr CDP failover fin-db01"},
		{"!=", "RestoreSession", `VmDisplayName!="fin-db01"`, "quoted separators CDP failover erp-vapp"},
		{"quoted value with a space", "RestoreSession", `Name=="CDP failover erp-vapp"`, "CDP failover erp-vapp"},
		{"doubled quotes", "RestoreSession", `VmDisplayName=="a ""quoted"" vm"`, "quoted"},
		{"separators inside quotes", "RestoreSession", `VmDisplayName=="x;y,z"`, "separators"},
		{"AND", "RestoreSession", `VmDisplayName=="fin-db01";JobType=="CdpFailover"`, "CDP failover fin-db01"},
		{"OR", "RestoreSession", `JobType==InstantRecovery,VmDisplayName==erp-vapp`, "quoted separators CDP failover erp-vapp"},
		{"AND binds tighter than OR", "RestoreSession", `JobType==InstantRecovery;Result==Failed,VmDisplayName==erp-vapp`, "quoted CDP failover erp-vapp"},
		{"OR then AND", "RestoreSession", `VmDisplayName==erp-vapp,JobType==InstantRecovery;State==Working`, "separators CDP failover erp-vapp"},
		{"CreationTime >= zone-less", "RestoreSession", `CreationTime>="2021-02-17T15:31:40"`, "CDP failover fin-db01 CDP failover erp-vapp"},
		{"CreationTime > with Z", "RestoreSession", `CreationTime>2021-02-17T15:31:40Z`, "CDP failover erp-vapp"},
		{"CreationTime < with fraction", "RestoreSession", `CreationTime<"2021-02-17T14:31:39.999Z"`, "quoted flr"},
		{"CreationTime <=", "RestoreSession", `CreationTime<=2021-02-17T13:31:40`, "quoted flr"},
		{"CreationTime ==", "RestoreSession", `CreationTime==2021-02-17T15:31:40`, "CDP failover fin-db01"},
		{"CreationTime !=", "RestoreSession", `CreationTime!=2021-02-17T15:31:40`, "quoted flr separators CDP failover erp-vapp"},
		{"EndTime: sessions without one never match", "RestoreSession", `EndTime>2000-01-01T00:00:00`, "quoted flr CDP failover fin-db01"},
		{"EndTime != also skips running ones", "RestoreSession", `EndTime!=2000-01-01T00:00:00`, "quoted flr CDP failover fin-db01"},
		{"State and Result", "RestoreSession", `State==Stopped;Result==success`, "flr CDP failover fin-db01"},
		{"UID", "RestoreSession", `UID==urn:veeam:RestoreSession:00000000-0000-4000-8000-000000000007`, "CDP failover fin-db01"},
		{"the bot's reconciliation query", "RestoreSession", `VmDisplayName=="fin-db01";CreationTime>="2021-02-17T15:31:40";JobType=="CdpFailover"`, "CDP failover fin-db01"},
		{"nothing matches", "RestoreSession", `VmDisplayName==web01`, ""},
		{"replicas: no filter, inventory order", "CdpReplica", "", "CDP-Finance CDP-Web"},
		{"replicas by name", "CdpReplica", `Name=="cdp-finance"`, "CDP-Finance"},
		{"replicas by name or UID", "CdpReplica", `Name==nope,UID==urn:veeam:CdpReplica:24ae37ad-4d28-4568-8467-98d8770bb722`, "CDP-Web"},
		{"replicas !=", "CdpReplica", `Name!=CDP-Finance`, "CDP-Web"},
	}
	for _, tt := range tests {
		for _, format := range []string{"References", "Entities"} {
			for _, accept := range []string{"", "application/json"} {
				t.Run(tt.name+" "+format+" "+accept, func(t *testing.T) {
					v := m.query(tok, accept, queryPath("type", tt.typ, "format", format, "filter", tt.filter))
					if got := strings.Join(v.names(), " "); got != tt.want {
						t.Errorf("got %q, want %q", got, tt.want)
					}
				})
			}
		}
	}

	// EM reads a raw ";" in the query string as part of the filter, not as a separator.
	t.Run("raw semicolon", func(t *testing.T) {
		v := m.query(tok, "", `/api/query?type=RestoreSession&filter=VmDisplayName==fin-db01;JobType==CdpFailover`)
		if got := strings.Join(v.names(), " "); got != "CDP failover fin-db01" {
			t.Errorf("got %q, want the failover", got)
		}
	})
}

func TestQueryPaging(t *testing.T) {
	m := newSim(t, Config{})
	for i := range 5 {
		m.s.AddRestoreSession(RestoreSessionSeed{VMName: "vm", JobType: "FileLevelRestore", Name: "rs" + itoa(i+1), Created: t0.Add(time.Duration(i) * time.Minute)})
	}
	tok, _ := m.logon()
	tests := []struct {
		name             string
		params           []string
		want             string // names
		num, size, pages int
		links            string // Rel:page
	}{
		{"defaults", nil, "rs1 rs2 rs3 rs4 rs5", 1, 100, 1, "First:1 Last:1"},
		{"first page", []string{"pageSize", "2"}, "rs1 rs2", 1, 2, 3, "First:1 Next:2 Last:3"},
		{"middle page", []string{"pageSize", "2", "page", "2"}, "rs3 rs4", 2, 2, 3, "First:1 Next:3 Previous:1 Last:3"},
		{"last page", []string{"pageSize", "2", "page", "3"}, "rs5", 3, 2, 3, "First:1 Previous:2 Last:3"},
		{"beyond the last page is empty", []string{"pageSize", "2", "page", "4"}, "", 4, 2, 3, "First:1 Previous:3 Last:3"},
		{"far beyond", []string{"pageSize", "1000", "page", "9223372036854775807"}, "", 9223372036854775807, 1000, 1, "First:1 Previous:9223372036854775806 Last:1"},
		{"exact fit", []string{"pageSize", "5"}, "rs1 rs2 rs3 rs4 rs5", 1, 5, 1, "First:1 Last:1"},
		{"page size 1000", []string{"pageSize", "1000"}, "rs1 rs2 rs3 rs4 rs5", 1, 1000, 1, "First:1 Last:1"},
		{"filter and paging", []string{"filter", "CreationTime>=2021-02-17T15:33:40", "pageSize", "2", "page", "2"}, "rs5", 2, 2, 2, "First:1 Previous:1 Last:2"},
	}
	for _, tt := range tests {
		for _, accept := range []string{"", "application/json"} {
			t.Run(tt.name+" "+accept, func(t *testing.T) {
				v := m.query(tok, accept, queryPath(append([]string{"type", "RestoreSession"}, tt.params...)...))
				if got := strings.Join(v.names(), " "); got != tt.want {
					t.Errorf("names: got %q, want %q", got, tt.want)
				}
				if p := v.PagingInfo; p.PageNum != tt.num || p.PageSize != tt.size || p.PagesCount != tt.pages {
					t.Errorf("paging: got %d/%d/%d, want %d/%d/%d", p.PageNum, p.PageSize, p.PagesCount, tt.num, tt.size, tt.pages)
				}
				if got := v.links(); got != tt.links {
					t.Errorf("links: got %q, want %q", got, tt.links)
				}
				// Following a link gives that page.
				for _, l := range v.PagingInfo.Links {
					href := strings.TrimPrefix(l.Href, "http://HOST")
					if next := m.query(tok, accept, href); next.PagingInfo.PageSize != tt.size {
						t.Errorf("%s link %s: page size %d, want %d", l.Rel, href, next.PagingInfo.PageSize, tt.size)
					}
				}
			})
		}
	}
}

func TestQueryErrors(t *testing.T) {
	m := newSim(t, Config{})
	tok, _ := m.logon()
	rs := func(filter string) string { return queryPath("type", "RestoreSession", "filter", filter) }
	tests := []struct {
		name, path string
		want       int
		wantMsg    string
	}{
		{"no type", "/api/query?filter=Name==x", 400, "Query type is missing: use type=RestoreSession or type=CdpReplica"},
		{"unknown type", "/api/query?type=Task", 400, `Unknown query type "Task": use RestoreSession or CdpReplica`},
		{"type is case-sensitive", "/api/query?type=restoresession", 400, `Unknown query type "restoresession"`},
		{"unknown format", "/api/query?type=RestoreSession&format=Entity", 400, `Unknown query format "Entity": use References or Entities`},
		{"page size 0", "/api/query?type=RestoreSession&pageSize=0", 400, `Invalid pageSize "0": want a whole number from 1 to 1000`},
		{"page size 1001", "/api/query?type=RestoreSession&pageSize=1001", 400, `Invalid pageSize "1001": want a whole number from 1 to 1000`},
		{"page size not a number", "/api/query?type=RestoreSession&pageSize=ten", 400, `Invalid pageSize "ten"`},
		{"page 0", "/api/query?type=RestoreSession&page=0", 400, `Invalid page "0": want a whole number from 1`},
		{"negative page", "/api/query?type=RestoreSession&page=-1", 400, `Invalid page "-1"`},
		{"bad escape", "/api/query?type=RestoreSession&filter=%zz", 400, "Malformed query string"},
		{"unknown field", rs(`VmName=="fin-db01"`), 400, `Invalid filter "VmName==\"fin-db01\"": unknown field "VmName" for type RestoreSession (fields: CreationTime, EndTime, JobType, Name, Result, State, UID, VmDisplayName)`},
		{"field of the other type", queryPath("type", "CdpReplica", "filter", "VmDisplayName==x"), 400, `unknown field "VmDisplayName" for type CdpReplica (fields: Name, UID)`},
		{"field names are case-sensitive", rs("vmdisplayname==x"), 400, `unknown field "vmdisplayname"`},
		{"single =", rs(`Name="x"`), 400, `bad operator "=" after Name (operators: ==, !=, <, <=, >, >=)`},
		{"=~", rs(`Name=~x`), 400, `bad operator "=~" after Name`},
		{"===", rs(`Name===x`), 400, `bad operator "===" after Name`},
		{"no operator", rs(`Name`), 400, "expected an operator after Name"},
		{"ordering a text field", rs(`Name<x`), 400, "operator < cannot compare the text field Name: use == or !="},
		{"bad time", rs(`CreationTime>=yesterday`), 400, `bad time "yesterday" for CreationTime: use 2021-02-17T15:31:40, 2021-02-17T15:31:40Z or 2021-02-17T15:31:40.123Z (UTC)`},
		{"time with an offset", rs(`EndTime<"2021-02-17T15:31:40+01:00"`), 400, `bad time "2021-02-17T15:31:40+01:00" for EndTime`},
		{"empty value", rs(`Name==`), 400, "missing value at position 7"},
		{"empty clause", rs(`Name==x;;State==Working`), 400, "expected a field name at position 9"},
		{"trailing ;", rs(`Name==x;`), 400, `it ends with ";"`},
		{"trailing ,", rs(`Name==x,`), 400, `it ends with ","`},
		{"unterminated quote", rs(`Name=="x;State==Working`), 400, "unterminated quoted value at position 7"},
		{"text after a quoted value", rs(`Name=="x"y`), 400, `unexpected "y" after a quoted value at position 10`},
		{"quote inside a bare value", rs(`Name==a"b"`), 400, "a quote inside an unquoted value at position 8"},
		{"parentheses", rs(`(Name==x)`), 400, "expected a field name at position 1"},
		{"space before the field", rs(` Name==x`), 400, "expected a field name at position 1"},
		{"POST", "", 405, "Method POST is not allowed for this resource"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method := "GET"
			if tt.name == "POST" {
				method, tt.path = "POST", "/api/query?type=RestoreSession"
			}
			r := m.do(req{method: method, path: tt.path, token: tok})
			wantStatus(t, r, tt.want)
			if msg := errorMessage(t, r); !strings.Contains(msg, tt.wantMsg) {
				t.Errorf("message: got %q, want it to contain %q", msg, tt.wantMsg)
			}
		})
	}
	t.Run("no token", func(t *testing.T) {
		wantStatus(t, m.get("", "/api/query?type=RestoreSession"), http.StatusUnauthorized)
	})
}

// TestQueryRoles: restore session queries are open to every role, CDP replica queries need the
// Portal Administrator.
func TestQueryRoles(t *testing.T) {
	tests := []struct {
		role                string
		wantRS, wantReplica int
	}{
		{"", 200, 200},
		{RolePortalAdministrator, 200, 200},
		{RolePortalUser, 200, 403},
		{RoleRestoreOperator, 200, 403},
	}
	for _, tt := range tests {
		t.Run("role "+tt.role, func(t *testing.T) {
			m := newSim(t, Config{Role: tt.role})
			tok, _ := m.logon()
			wantStatus(t, m.get(tok, "/api/query?type=RestoreSession&format=Entities"), tt.wantRS)
			r := m.get(tok, "/api/query?type=CdpReplica&filter=Name==CDP-Web")
			wantStatus(t, r, tt.wantReplica)
			if tt.wantReplica == 403 {
				wantBody(t, r, `<Error xmlns="http://www.veeam.com/ent/v1.0" Message="Access denied" StatusCode="403"></Error>`)
			}
		})
	}
}
