package emsim

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// xmlSpec wraps elements in a CdpFailoverStartSpec root like the seeds' example.
func xmlSpec(inner string) string {
	return `<?xml version="1.0" encoding="utf-8"?>` + "\n" +
		`<CdpFailoverStartSpec xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns="http://www.veeam.com/ent/v1.0">` +
		inner + `</CdpFailoverStartSpec>`
}

func TestFailoverSpec(t *testing.T) {
	const (
		rcTrue   = `<RestoreCurrent>true</RestoreCurrent>`
		rcFalse  = `<RestoreCurrent>false</RestoreCurrent>`
		vssTrue  = `<RestoreCurrentVss>true</RestoreCurrentVss>`
		vssFalse = `<RestoreCurrentVss>false</RestoreCurrentVss>`
		interval = `<RestoreAtInterval>2021-02-17T15:31:40</RestoreAtInterval>`
		pit      = `<RestoreAtPointinTime>2021-02-17T14:00:00</RestoreAtPointinTime>`
		xmlCT    = "application/xml"
		jsonT    = "application/json"
	)
	at := func(s string) time.Time { tm, _ := time.Parse(specTimeLayout, s); return tm }
	tests := []struct {
		name                string
		accept, contentType string
		body                string
		want                Intent // when wantErr == ""
		wantErr             string // substring of the 400 message
	}{
		// accepted shapes
		{name: "latest", contentType: xmlCT, body: xmlSpec(rcTrue + vssFalse), want: Intent{Kind: IntentLatest}},
		{name: "latest vss", contentType: xmlCT, body: xmlSpec(rcFalse + vssTrue), want: Intent{Kind: IntentLatestVSS}},
		{name: "interval", contentType: xmlCT, body: xmlSpec(rcFalse + vssFalse + interval), want: Intent{Kind: IntentInterval, Time: at("2021-02-17T15:31:40")}},
		{name: "point in time", contentType: xmlCT, body: xmlSpec(rcFalse + vssFalse + pit), want: Intent{Kind: IntentPointInTime, Time: at("2021-02-17T14:00:00")}},
		{name: "no content type reads xml", body: xmlSpec(rcTrue + vssFalse), want: Intent{Kind: IntentLatest}},
		{name: "xsd boolean digits and white space", body: xmlSpec("<RestoreCurrent> 0 </RestoreCurrent><RestoreCurrentVss>1</RestoreCurrentVss>"), want: Intent{Kind: IntentLatestVSS}},
		{name: "prefixed namespace", body: `<v:CdpFailoverStartSpec xmlns:v="http://www.veeam.com/ent/v1.0"><v:RestoreCurrent>true</v:RestoreCurrent><v:RestoreCurrentVss>false</v:RestoreCurrentVss></v:CdpFailoverStartSpec>`, want: Intent{Kind: IntentLatest}},
		{name: "json latest", accept: jsonT, contentType: jsonT, body: `{"RestoreCurrent":true,"RestoreCurrentVss":false}`, want: Intent{Kind: IntentLatest}},
		{name: "json point in time, any key order", accept: jsonT, contentType: jsonT + "; charset=utf-8",
			body: `{"RestoreAtPointinTime":"2021-02-17T14:00:00","RestoreCurrentVss":false,"RestoreCurrent":false}`, want: Intent{Kind: IntentPointInTime, Time: at("2021-02-17T14:00:00")}},
		{name: "json interval", accept: jsonT, contentType: jsonT,
			body: `{"RestoreCurrent":false,"RestoreCurrentVss":false,"RestoreAtInterval":"2021-02-17T15:31:40"}`, want: Intent{Kind: IntentInterval, Time: at("2021-02-17T15:31:40")}},
		{name: "date with Z", body: xmlSpec(rcFalse + vssFalse + `<RestoreAtInterval>2021-02-17T15:31:40Z</RestoreAtInterval>`), want: Intent{Kind: IntentInterval, Time: at("2021-02-17T15:31:40")}},
		{name: "date with fraction and Z", body: xmlSpec(rcFalse + vssFalse + `<RestoreAtPointinTime>2021-02-17T15:31:40.123Z</RestoreAtPointinTime>`),
			want: Intent{Kind: IntentPointInTime, Time: at("2021-02-17T15:31:40").Add(123 * time.Millisecond)}},
		{name: "date with seven fractional digits", body: xmlSpec(rcFalse + vssFalse + `<RestoreAtPointinTime>2021-02-17T15:31:40.1234567Z</RestoreAtPointinTime>`),
			want: Intent{Kind: IntentPointInTime, Time: at("2021-02-17T15:31:40").Add(123456700 * time.Nanosecond)}},
		{name: "json date with Z", accept: jsonT, contentType: jsonT, body: `{"RestoreCurrent":false,"RestoreCurrentVss":false,"RestoreAtInterval":"2021-02-17T15:31:40Z"}`,
			want: Intent{Kind: IntentInterval, Time: at("2021-02-17T15:31:40")}},
		{name: "json date with fraction and Z", accept: jsonT, contentType: jsonT, body: `{"RestoreCurrent":false,"RestoreCurrentVss":false,"RestoreAtPointinTime":"2021-02-17T15:31:40.5Z"}`,
			want: Intent{Kind: IntentPointInTime, Time: at("2021-02-17T15:31:40").Add(500 * time.Millisecond)}},

		// restore intent
		{name: "seed example: true plus a date", body: xmlSpec(rcTrue + vssFalse + interval), wantErr: "Ambiguous restore point: exactly one of RestoreCurrent=true, RestoreCurrentVss=true, RestoreAtInterval, RestoreAtPointinTime may be given, got latest and interval"},
		{name: "two trues", body: xmlSpec(rcTrue + vssTrue), wantErr: "got latest and latest-vss"},
		{name: "two dates", body: xmlSpec(rcFalse + vssFalse + interval + pit), wantErr: "got interval and point-in-time"},
		{name: "json true plus date", accept: jsonT, contentType: jsonT, body: `{"RestoreCurrent":true,"RestoreCurrentVss":false,"RestoreAtPointinTime":"2021-02-17T15:31:40"}`, wantErr: "got latest and point-in-time"},
		{name: "no intent", body: xmlSpec(rcFalse + vssFalse), wantErr: "No restore point selected"},

		// structure
		{name: "wrong root", body: `<CdpIntervalsSpec xmlns="http://www.veeam.com/ent/v1.0">` + rcTrue + vssFalse + `</CdpIntervalsSpec>`, wantErr: "Unexpected root element <CdpIntervalsSpec>: expected <CdpFailoverStartSpec>"},
		{name: "no namespace", body: `<CdpFailoverStartSpec>` + rcTrue + vssFalse + `</CdpFailoverStartSpec>`, wantErr: `Root element <CdpFailoverStartSpec> must be in namespace "http://www.veeam.com/ent/v1.0", got ""`},
		{name: "wrong namespace", body: `<CdpFailoverStartSpec xmlns="http://www.veeam.com/ent/v1.1">` + rcTrue + vssFalse + `</CdpFailoverStartSpec>`, wantErr: `must be in namespace "http://www.veeam.com/ent/v1.0", got "http://www.veeam.com/ent/v1.1"`},
		{name: "child in another namespace", body: xmlSpec(`<RestoreCurrent xmlns="urn:x">true</RestoreCurrent>` + vssFalse), wantErr: "Unexpected element <RestoreCurrent>"},
		{name: "wrong order", body: xmlSpec(vssFalse + rcTrue), wantErr: "Element <RestoreCurrent> is out of order: it must come before <RestoreCurrentVss> (order: RestoreCurrent, RestoreCurrentVss, RestoreAtInterval, RestoreAtPointinTime)"},
		{name: "dates in wrong order", body: xmlSpec(rcFalse + vssFalse + pit + interval), wantErr: "Element <RestoreAtInterval> is out of order"},
		{name: "date before booleans", body: xmlSpec(interval + rcFalse + vssFalse), wantErr: "Element <RestoreCurrent> is out of order"},
		{name: "duplicate element", body: xmlSpec(rcTrue + rcTrue + vssFalse), wantErr: "Element <RestoreCurrent> occurs more than once"},
		{name: "missing RestoreCurrent", body: xmlSpec(vssTrue), wantErr: "Required element <RestoreCurrent> is missing from <CdpFailoverStartSpec>"},
		{name: "missing RestoreCurrentVss", body: xmlSpec(rcTrue), wantErr: "Required element <RestoreCurrentVss> is missing from <CdpFailoverStartSpec>"},
		{name: "example spelling in xml", body: xmlSpec(rcFalse + vssFalse + `<RestoreAtPointInTime>2021-02-17T14:00:00</RestoreAtPointInTime>`), wantErr: "Unexpected element <RestoreAtPointInTime> in <CdpFailoverStartSpec>: allowed, in this order: RestoreCurrent, RestoreCurrentVss, RestoreAtInterval, RestoreAtPointinTime"},
		{name: "unknown element", body: xmlSpec(rcTrue + vssFalse + `<Reason>test</Reason>`), wantErr: "Unexpected element <Reason>"},
		{name: "nested element", body: xmlSpec(`<RestoreCurrent><b>true</b></RestoreCurrent>` + vssFalse), wantErr: "Unexpected element <b> inside <RestoreCurrent>"},
		{name: "attribute on root", body: `<CdpFailoverStartSpec xmlns="http://www.veeam.com/ent/v1.0" Force="true">` + rcTrue + vssFalse + `</CdpFailoverStartSpec>`, wantErr: `Unexpected attribute "Force" on <CdpFailoverStartSpec>`},
		{name: "stray text", body: xmlSpec("latest" + rcTrue + vssFalse), wantErr: `Unexpected text "latest" in <CdpFailoverStartSpec>`},
		{name: "two roots", body: xmlSpec(rcTrue+vssFalse) + xmlSpec(rcTrue + vssFalse)[38:], wantErr: "There are multiple root elements."},
		{name: "empty body", body: "", wantErr: "Root element is missing."},
		{name: "not xml", body: "RestoreCurrent=true", wantErr: "Data at the root level is invalid."},
		{name: "truncated xml", body: xmlSpec(rcTrue + vssFalse)[:60], wantErr: "not well-formed XML"},
		{name: "doctype", body: `<!DOCTYPE x [<!ENTITY a "b">]>` + xmlSpec(rcTrue+vssFalse), wantErr: "DTDs are not allowed"},

		// values
		{name: "capitalised boolean", body: xmlSpec(`<RestoreCurrent>True</RestoreCurrent>` + vssFalse), wantErr: `<RestoreCurrent> must be a boolean (true or false), got "True"`},
		{name: "empty boolean", body: xmlSpec(`<RestoreCurrent/>` + vssFalse), wantErr: `<RestoreCurrent> must be a boolean (true or false), got ""`},
		{name: "date with offset", body: xmlSpec(rcFalse + vssFalse + `<RestoreAtInterval>2021-02-17T15:31:40+01:00</RestoreAtInterval>`), wantErr: "must be a UTC DateTime"},
		{name: "date with fraction", body: xmlSpec(rcFalse + vssFalse + `<RestoreAtPointinTime>2021-02-17T15:31:40.5</RestoreAtPointinTime>`),
			wantErr: `<RestoreAtPointinTime> must be a UTC DateTime (2021-02-17T15:31:40, 2021-02-17T15:31:40Z or 2021-02-17T15:31:40.123Z), got "2021-02-17T15:31:40.5"`},
		{name: "date with eight fractional digits", body: xmlSpec(rcFalse + vssFalse + `<RestoreAtPointinTime>2021-02-17T15:31:40.12345678Z</RestoreAtPointinTime>`), wantErr: "must be a UTC DateTime"},
		{name: "date with an empty fraction", body: xmlSpec(rcFalse + vssFalse + `<RestoreAtPointinTime>2021-02-17T15:31:40.Z</RestoreAtPointinTime>`), wantErr: "must be a UTC DateTime"},
		{name: "date with lower-case z", body: xmlSpec(rcFalse + vssFalse + `<RestoreAtPointinTime>2021-02-17T15:31:40z</RestoreAtPointinTime>`), wantErr: "must be a UTC DateTime"},
		{name: "date without seconds", body: xmlSpec(rcFalse + vssFalse + `<RestoreAtPointinTime>2021-02-17T15:31</RestoreAtPointinTime>`), wantErr: "must be a UTC DateTime"},
		{name: "date with space", body: xmlSpec(rcFalse + vssFalse + `<RestoreAtPointinTime>2021-02-17 15:31:40</RestoreAtPointinTime>`), wantErr: "must be a UTC DateTime"},
		{name: "impossible date", body: xmlSpec(rcFalse + vssFalse + `<RestoreAtPointinTime>2021-02-30T15:31:40</RestoreAtPointinTime>`), wantErr: "must be a UTC DateTime"},

		// formats
		{name: "accept lists xml and json", accept: "application/xml, application/json", contentType: xmlCT, body: xmlSpec(rcTrue + vssFalse), wantErr: "Node [root] does not exist"},
		{name: "accept json with an xml body", accept: jsonT, contentType: xmlCT, body: xmlSpec(rcTrue + vssFalse), wantErr: "Node [root] does not exist"},
		{name: "json body without accept json", contentType: jsonT, body: `{"RestoreCurrent":true,"RestoreCurrentVss":false}`, wantErr: "Data at the root level is invalid."},
		{name: "json example spelling", accept: jsonT, contentType: jsonT, body: `{"RestoreCurrent":false,"RestoreCurrentVss":false,"RestoreAtPointInTime":"2021-02-17T14:00:00"}`,
			wantErr: `Unexpected property "RestoreAtPointInTime": allowed: RestoreCurrent, RestoreCurrentVss, RestoreAtInterval, RestoreAtPointinTime`},
		{name: "json key case", accept: jsonT, contentType: jsonT, body: `{"restoreCurrent":true,"RestoreCurrentVss":false}`, wantErr: `Unexpected property "restoreCurrent"`},
		{name: "json duplicate key", accept: jsonT, contentType: jsonT, body: `{"RestoreCurrent":false,"RestoreCurrent":true,"RestoreCurrentVss":false}`, wantErr: `Property "RestoreCurrent" occurs more than once`},
		{name: "json string boolean", accept: jsonT, contentType: jsonT, body: `{"RestoreCurrent":"true","RestoreCurrentVss":false}`, wantErr: `Property "RestoreCurrent" must be a JSON boolean, got "true"`},
		{name: "json null date", accept: jsonT, contentType: jsonT, body: `{"RestoreCurrent":false,"RestoreCurrentVss":false,"RestoreAtInterval":null}`, wantErr: "must be a UTC DateTime"},
		{name: "json missing vss", accept: jsonT, contentType: jsonT, body: `{"RestoreCurrent":true}`, wantErr: `Required property "RestoreCurrentVss" is missing`},
		{name: "json array", accept: jsonT, contentType: jsonT, body: `[true,false]`, wantErr: "not a JSON object"},
		{name: "json trailing data", accept: jsonT, contentType: jsonT, body: `{"RestoreCurrent":true,"RestoreCurrentVss":false}{}`, wantErr: "Unexpected data after the JSON object"},
		{name: "json date with offset", accept: jsonT, contentType: jsonT, body: `{"RestoreCurrent":false,"RestoreCurrentVss":false,"RestoreAtInterval":"2021-02-17T15:31:40+00:00"}`, wantErr: "must be a UTC DateTime"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newSim(t, Config{})
			tok, _ := m.logon()
			for _, path := range []string{vmFailover, "/api/cdpReplica/vApps/" + erp + "?action=failover"} {
				r := m.do(req{method: "POST", path: path, token: tok, accept: tt.accept, contentType: tt.contentType, body: tt.body})
				fo := m.s.Failovers()
				if tt.wantErr != "" {
					wantStatus(t, r, http.StatusBadRequest)
					if msg := errorMessage(t, r); !strings.Contains(msg, tt.wantErr) {
						t.Fatalf("message: got %q, want it to contain %q", msg, tt.wantErr)
					}
					if len(fo) != 0 {
						t.Fatalf("a rejected spec created %d failovers", len(fo))
					}
					continue
				}
				wantStatus(t, r, http.StatusAccepted)
				if got := fo[len(fo)-1]; got.Intent != tt.want || got.Used != tt.want {
					t.Fatalf("intent, used: got %+v, %+v, want %+v for both (strict mode uses what it reads)", got.Intent, got.Used, tt.want)
				}
			}
		})
	}
}

// errorMessage extracts Message from an <Error> (XML or JSON) answer, unescaped.
func errorMessage(t *testing.T, r resp) string {
	t.Helper()
	var e errorDoc
	if err := decodeAnswer(r.body, &e); err != nil {
		t.Fatalf("error body %q: %v", r.body, err)
	}
	return e.Message
}

func TestFailoverTargets(t *testing.T) {
	m := newSim(t, Config{})
	tok, sid := m.logon()
	m.failover(tok, vmFailover)
	m.failover(tok, "/api/cdpReplica/vApps/"+erp+"?action=failover")
	got := m.s.Failovers()
	want := []Failover{
		{TaskID: "task-1", LogonSessionID: sid, Kind: TargetVM, ReplicaID: finance, TargetID: finDB, TargetName: "fin-db01",
			Intent: Intent{Kind: IntentLatest}, Used: Intent{Kind: IntentLatest}, RestoreSessionID: "00000000-0000-4000-8000-000000000003", At: t0},
		{TaskID: "task-2", LogonSessionID: sid, Kind: TargetVApp, TargetID: erp, TargetName: "erp-vapp",
			Intent: Intent{Kind: IntentLatest}, Used: Intent{Kind: IntentLatest}, RestoreSessionID: "00000000-0000-4000-8000-000000000004", At: t0},
	}
	if len(got) != len(want) {
		t.Fatalf("failovers: got %d, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("failover %d:\ngot  %+v\nwant %+v", i, got[i], want[i])
		}
	}
}

// TestLenientSpec: in lenient mode the body is read like EM's data-contract reader does:
// unknown, repeated and out-of-order elements are skipped, absent members keep their default, and
// a body that selects nothing after that still starts a failover with the latest restore point.
func TestLenientSpec(t *testing.T) {
	const (
		rcTrue   = `<RestoreCurrent>true</RestoreCurrent>`
		rcFalse  = `<RestoreCurrent>false</RestoreCurrent>`
		vssTrue  = `<RestoreCurrentVss>true</RestoreCurrentVss>`
		vssFalse = `<RestoreCurrentVss>false</RestoreCurrentVss>`
		pit      = `<RestoreAtPointinTime>2021-02-17T14:00:00</RestoreAtPointinTime>`
		jsonT    = "application/json"
	)
	at := func(s string) time.Time { tm, _ := time.Parse(specTimeLayout, s); return tm }
	none, latest := Intent{}, Intent{Kind: IntentLatest}
	tests := []struct {
		name       string
		json       bool
		body       string
		wantIntent Intent // what the body selected
		wantUsed   Intent // what the server used
		wantErr    string // a 400 even in lenient mode
	}{
		{name: "strict shapes still work", body: xmlSpec(rcFalse + vssTrue), wantIntent: Intent{Kind: IntentLatestVSS}, wantUsed: Intent{Kind: IntentLatestVSS}},
		{name: "unknown element skipped", body: xmlSpec(rcTrue + `<Reason>dc <b>down</b></Reason>` + vssFalse), wantIntent: latest, wantUsed: latest},
		{name: "element in another namespace skipped", body: xmlSpec(`<RestoreCurrent xmlns="urn:x">true</RestoreCurrent>` + rcFalse + vssTrue), wantIntent: Intent{Kind: IntentLatestVSS}, wantUsed: Intent{Kind: IntentLatestVSS}},
		{name: "example spelling skipped: runs with the latest", body: xmlSpec(rcFalse + vssFalse + `<RestoreAtPointInTime>2021-02-17T14:00:00</RestoreAtPointInTime>`), wantIntent: none, wantUsed: latest},
		{name: "out-of-order element skipped", body: xmlSpec(rcFalse + vssFalse + pit + `<RestoreAtInterval>2021-02-17T15:31:40</RestoreAtInterval>`),
			wantIntent: Intent{Kind: IntentPointInTime, Time: at("2021-02-17T14:00:00")}, wantUsed: Intent{Kind: IntentPointInTime, Time: at("2021-02-17T14:00:00")}},
		{name: "out-of-order RestoreCurrent skipped, so false", body: xmlSpec(vssFalse + rcTrue), wantIntent: none, wantUsed: latest},
		{name: "date first: the booleans after it are out of order", body: xmlSpec(pit + rcTrue + vssFalse),
			wantIntent: Intent{Kind: IntentPointInTime, Time: at("2021-02-17T14:00:00")}, wantUsed: Intent{Kind: IntentPointInTime, Time: at("2021-02-17T14:00:00")}},
		{name: "repeat skipped: the first counts", body: xmlSpec(rcFalse + rcTrue + vssTrue), wantIntent: Intent{Kind: IntentLatestVSS}, wantUsed: Intent{Kind: IntentLatestVSS}},
		{name: "absent booleans are false", body: xmlSpec(pit), wantIntent: Intent{Kind: IntentPointInTime, Time: at("2021-02-17T14:00:00")}, wantUsed: Intent{Kind: IntentPointInTime, Time: at("2021-02-17T14:00:00")}},
		{name: "empty spec runs with the latest", body: xmlSpec(""), wantIntent: none, wantUsed: latest},
		{name: "attributes ignored", body: `<CdpFailoverStartSpec xmlns="http://www.veeam.com/ent/v1.0" Force="true"><RestoreCurrent x="1">true</RestoreCurrent>` + vssFalse + `</CdpFailoverStartSpec>`, wantIntent: latest, wantUsed: latest},
		{name: "json unknown key skipped", json: true, body: `{"RestoreCurrent":false,"RestoreCurrentVss":true,"Reason":{"a":[1,2]}}`, wantIntent: Intent{Kind: IntentLatestVSS}, wantUsed: Intent{Kind: IntentLatestVSS}},
		{name: "json example spelling skipped: runs with the latest", json: true, body: `{"RestoreCurrent":false,"RestoreCurrentVss":false,"RestoreAtPointInTime":"2021-02-17T14:00:00"}`, wantIntent: none, wantUsed: latest},
		{name: "json key case skipped", json: true, body: `{"restoreCurrent":true,"RestoreCurrentVss":false}`, wantIntent: none, wantUsed: latest},
		{name: "json repeat skipped: the first counts", json: true, body: `{"RestoreCurrent":false,"RestoreCurrent":true,"RestoreCurrentVss":false}`, wantIntent: none, wantUsed: latest},

		{name: "malformed xml", body: xmlSpec(rcTrue + vssFalse)[:60], wantErr: "not well-formed XML"},
		{name: "malformed inside a skipped element", body: xmlSpec(rcTrue + `<Reason><a></Reason>` + vssFalse), wantErr: "not well-formed XML"},
		{name: "wrong root", body: `<CdpIntervalsSpec xmlns="http://www.veeam.com/ent/v1.0">` + rcTrue + `</CdpIntervalsSpec>`, wantErr: "Unexpected root element <CdpIntervalsSpec>"},
		{name: "root without namespace", body: `<CdpFailoverStartSpec>` + rcTrue + `</CdpFailoverStartSpec>`, wantErr: "must be in namespace"},
		{name: "bad boolean", body: xmlSpec(`<RestoreCurrent>yes</RestoreCurrent>`), wantErr: `<RestoreCurrent> must be a boolean`},
		{name: "bad date", body: xmlSpec(rcFalse + vssFalse + `<RestoreAtPointinTime>17.02.2021</RestoreAtPointinTime>`), wantErr: "must be a UTC DateTime"},
		{name: "two intents", body: xmlSpec(rcTrue + vssTrue), wantErr: "Ambiguous restore point"},
		{name: "stray text", body: xmlSpec("latest" + rcTrue), wantErr: `Unexpected text "latest"`},
		{name: "empty body", body: "", wantErr: "Root element is missing."},
		{name: "json not an object", json: true, body: `[true]`, wantErr: "not a JSON object"},
		{name: "json malformed", json: true, body: `{"RestoreCurrent":true,`, wantErr: "not valid JSON"},
		{name: "json wrong type", json: true, body: `{"RestoreCurrent":"true"}`, wantErr: "must be a JSON boolean"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newSim(t, Config{Lenient: true})
			tok, _ := m.logon()
			rq := req{method: "POST", path: vmFailover, token: tok, contentType: "application/xml", body: tt.body}
			if tt.json {
				rq.accept, rq.contentType = jsonT, jsonT
			}
			r := m.do(rq)
			fo := m.s.Failovers()
			if tt.wantErr != "" {
				wantStatus(t, r, http.StatusBadRequest)
				if msg := errorMessage(t, r); !strings.Contains(msg, tt.wantErr) {
					t.Fatalf("message: got %q, want it to contain %q", msg, tt.wantErr)
				}
				if len(fo) != 0 {
					t.Fatalf("a rejected spec created %d failovers", len(fo))
				}
				return
			}
			wantStatus(t, r, http.StatusAccepted)
			if got := fo[0]; got.Intent != tt.wantIntent || got.Used != tt.wantUsed {
				t.Fatalf("intent, used: got %+v, %+v, want %+v, %+v", got.Intent, got.Used, tt.wantIntent, tt.wantUsed)
			}
		})
	}
}

// TestLenientIntervalsSpec: the intervals body is read the same way; absent dates are the zero
// DateTime, so a body that lost its StartDate asks from 0001-01-01.
func TestLenientIntervalsSpec(t *testing.T) {
	const path = "/api/cdpReplicas/" + finance + "/vms/" + finDB + "?action=intervals"
	tests := []struct {
		name, body string
		want       int
		wantStart  string // StartDate of the one interval, for a 200
	}{
		{"unknown element skipped", `<CdpIntervalsSpec xmlns="http://www.veeam.com/ent/v1.0"><Scope>all</Scope><StartDate>2021-02-17T14:00:00</StartDate><EndDate>2021-02-17T15:00:00Z</EndDate></CdpIntervalsSpec>`, 200, "2021-02-17T14:00:00"},
		{"out-of-order StartDate skipped: from the start of history", `<CdpIntervalsSpec xmlns="http://www.veeam.com/ent/v1.0"><EndDate>2021-02-17T15:00:00</EndDate><StartDate>2021-02-17T14:00:00</StartDate></CdpIntervalsSpec>`, 200, "2021-02-16T15:31:40"},
		{"absent EndDate is the zero time: StartDate after EndDate", `<CdpIntervalsSpec xmlns="http://www.veeam.com/ent/v1.0"><StartDate>2021-02-17T14:00:00</StartDate></CdpIntervalsSpec>`, 400, ""},
		{"malformed", `<CdpIntervalsSpec xmlns="http://www.veeam.com/ent/v1.0"><StartDate>`, 400, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newSim(t, Config{Lenient: true})
			tok, _ := m.logon()
			r := m.do(req{method: "POST", path: path, token: tok, body: tt.body})
			wantStatus(t, r, tt.want)
			if tt.want != 200 {
				return
			}
			var doc struct {
				Intervals []struct{ StartDate string } `xml:"Intervals>Interval"`
			}
			if err := decodeAnswer(r.body, &doc); err != nil || len(doc.Intervals) != 1 || doc.Intervals[0].StartDate != tt.wantStart {
				t.Fatalf("intervals: got %+v (%v), want one from %s", doc, err, tt.wantStart)
			}
		})
	}
	// Strict mode refuses the same bodies.
	m := newSim(t, Config{})
	tok, _ := m.logon()
	for _, tt := range tests[:2] {
		wantStatus(t, m.do(req{method: "POST", path: path, token: tok, body: tt.body}), http.StatusBadRequest)
	}
}

// TestPointInTimeElement: the configured spelling is the one understood, in XML and JSON alike;
// the other spelling is an unknown element (400 strict, skipped lenient).
func TestPointInTimeElement(t *testing.T) {
	pit := time.Date(2021, 2, 17, 14, 0, 0, 0, time.UTC)
	const jsonT = "application/json"
	tests := []struct {
		name     string
		cfg      Config
		json     bool
		elem     string
		want     int
		wantUsed IntentKind
	}{
		{"default understands the table spelling in xml", Config{}, false, PointInTimeTableSpelling, 202, IntentPointInTime},
		{"default understands the table spelling in json", Config{}, true, PointInTimeTableSpelling, 202, IntentPointInTime},
		{"default refuses the example spelling in xml", Config{}, false, PointInTimeExampleSpelling, 400, ""},
		{"default refuses the example spelling in json", Config{}, true, PointInTimeExampleSpelling, 400, ""},
		{"example setting understands it in xml", Config{PointInTimeElement: PointInTimeExampleSpelling}, false, PointInTimeExampleSpelling, 202, IntentPointInTime},
		{"example setting understands it in json", Config{PointInTimeElement: PointInTimeExampleSpelling}, true, PointInTimeExampleSpelling, 202, IntentPointInTime},
		{"example setting refuses the table spelling in xml", Config{PointInTimeElement: PointInTimeExampleSpelling}, false, PointInTimeTableSpelling, 400, ""},
		{"example setting refuses the table spelling in json", Config{PointInTimeElement: PointInTimeExampleSpelling}, true, PointInTimeTableSpelling, 400, ""},
		{"lenient skips the other spelling in xml", Config{Lenient: true}, false, PointInTimeExampleSpelling, 202, IntentLatest},
		{"lenient skips the other spelling in json", Config{Lenient: true, PointInTimeElement: PointInTimeExampleSpelling}, true, PointInTimeTableSpelling, 202, IntentLatest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newSim(t, tt.cfg)
			tok, _ := m.logon()
			rq := req{method: "POST", path: "/api/cdpReplica/vApps/" + erp + "?action=failover", token: tok, contentType: "application/xml",
				body: xmlSpec(`<RestoreCurrent>false</RestoreCurrent><RestoreCurrentVss>false</RestoreCurrentVss><` + tt.elem + `>2021-02-17T14:00:00</` + tt.elem + `>`)}
			if tt.json {
				rq.accept, rq.contentType = jsonT, jsonT
				rq.body = `{"RestoreCurrent":false,"RestoreCurrentVss":false,"` + tt.elem + `":"2021-02-17T14:00:00"}`
			}
			r := m.do(rq)
			wantStatus(t, r, tt.want)
			if tt.want == 400 {
				if msg := errorMessage(t, r); !strings.Contains(msg, tt.elem) || !strings.Contains(msg, "Unexpected") {
					t.Errorf("message: got %q, want an unexpected %s", msg, tt.elem)
				}
				return
			}
			used := m.s.Failovers()[0].Used
			if used.Kind != tt.wantUsed || (tt.wantUsed == IntentPointInTime && !used.Time.Equal(pit)) {
				t.Errorf("used: got %+v, want %s", used, tt.wantUsed)
			}
		})
	}
}

func TestPointInTimeElementValidation(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error(`New with PointInTimeElement "RestoreAtPointintime" did not panic`)
		}
	}()
	New(Config{PointInTimeElement: "RestoreAtPointintime"}, DemoInventory())
}
