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
			body: `{"RestoreAtPointInTime":"2021-02-17T14:00:00","RestoreCurrentVss":false,"RestoreCurrent":false}`, want: Intent{Kind: IntentPointInTime, Time: at("2021-02-17T14:00:00")}},
		{name: "json interval", accept: jsonT, contentType: jsonT,
			body: `{"RestoreCurrent":false,"RestoreCurrentVss":false,"RestoreAtInterval":"2021-02-17T15:31:40"}`, want: Intent{Kind: IntentInterval, Time: at("2021-02-17T15:31:40")}},

		// restore intent
		{name: "seed example: true plus a date", body: xmlSpec(rcTrue + vssFalse + interval), wantErr: "Ambiguous restore point: exactly one of RestoreCurrent=true, RestoreCurrentVss=true, RestoreAtInterval, RestoreAtPointinTime may be given, got latest and interval"},
		{name: "two trues", body: xmlSpec(rcTrue + vssTrue), wantErr: "got latest and latest-vss"},
		{name: "two dates", body: xmlSpec(rcFalse + vssFalse + interval + pit), wantErr: "got interval and point-in-time"},
		{name: "json true plus date", accept: jsonT, contentType: jsonT, body: `{"RestoreCurrent":true,"RestoreCurrentVss":false,"RestoreAtPointInTime":"2021-02-17T15:31:40"}`, wantErr: "got latest and point-in-time"},
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
		{name: "json spelling in xml", body: xmlSpec(rcFalse + vssFalse + `<RestoreAtPointInTime>2021-02-17T14:00:00</RestoreAtPointInTime>`), wantErr: "Unexpected element <RestoreAtPointInTime> in <CdpFailoverStartSpec>: allowed, in this order: RestoreCurrent, RestoreCurrentVss, RestoreAtInterval, RestoreAtPointinTime"},
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
		{name: "date with Z", body: xmlSpec(rcFalse + vssFalse + `<RestoreAtInterval>2021-02-17T15:31:40Z</RestoreAtInterval>`), wantErr: `<RestoreAtInterval> must be a UTC DateTime in the form 2006-01-02T15:04:05 without zone, got "2021-02-17T15:31:40Z"`},
		{name: "date with offset", body: xmlSpec(rcFalse + vssFalse + `<RestoreAtInterval>2021-02-17T15:31:40+01:00</RestoreAtInterval>`), wantErr: "must be a UTC DateTime"},
		{name: "date with fraction", body: xmlSpec(rcFalse + vssFalse + `<RestoreAtPointinTime>2021-02-17T15:31:40.5</RestoreAtPointinTime>`), wantErr: "must be a UTC DateTime"},
		{name: "date without seconds", body: xmlSpec(rcFalse + vssFalse + `<RestoreAtPointinTime>2021-02-17T15:31</RestoreAtPointinTime>`), wantErr: "must be a UTC DateTime"},
		{name: "date with space", body: xmlSpec(rcFalse + vssFalse + `<RestoreAtPointinTime>2021-02-17 15:31:40</RestoreAtPointinTime>`), wantErr: "must be a UTC DateTime"},
		{name: "impossible date", body: xmlSpec(rcFalse + vssFalse + `<RestoreAtPointinTime>2021-02-30T15:31:40</RestoreAtPointinTime>`), wantErr: "must be a UTC DateTime"},

		// formats
		{name: "accept lists xml and json", accept: "application/xml, application/json", contentType: xmlCT, body: xmlSpec(rcTrue + vssFalse), wantErr: "Node [root] does not exist"},
		{name: "accept json with an xml body", accept: jsonT, contentType: xmlCT, body: xmlSpec(rcTrue + vssFalse), wantErr: "Node [root] does not exist"},
		{name: "json body without accept json", contentType: jsonT, body: `{"RestoreCurrent":true,"RestoreCurrentVss":false}`, wantErr: "Data at the root level is invalid."},
		{name: "json xml spelling", accept: jsonT, contentType: jsonT, body: `{"RestoreCurrent":false,"RestoreCurrentVss":false,"RestoreAtPointinTime":"2021-02-17T14:00:00"}`, wantErr: `Unexpected property "RestoreAtPointinTime"`},
		{name: "json key case", accept: jsonT, contentType: jsonT, body: `{"restoreCurrent":true,"RestoreCurrentVss":false}`, wantErr: `Unexpected property "restoreCurrent"`},
		{name: "json duplicate key", accept: jsonT, contentType: jsonT, body: `{"RestoreCurrent":false,"RestoreCurrent":true,"RestoreCurrentVss":false}`, wantErr: `Property "RestoreCurrent" occurs more than once`},
		{name: "json string boolean", accept: jsonT, contentType: jsonT, body: `{"RestoreCurrent":"true","RestoreCurrentVss":false}`, wantErr: `Property "RestoreCurrent" must be a JSON boolean, got "true"`},
		{name: "json null date", accept: jsonT, contentType: jsonT, body: `{"RestoreCurrent":false,"RestoreCurrentVss":false,"RestoreAtInterval":null}`, wantErr: "must be a UTC DateTime"},
		{name: "json missing vss", accept: jsonT, contentType: jsonT, body: `{"RestoreCurrent":true}`, wantErr: `Required property "RestoreCurrentVss" is missing`},
		{name: "json array", accept: jsonT, contentType: jsonT, body: `[true,false]`, wantErr: "not a JSON object"},
		{name: "json trailing data", accept: jsonT, contentType: jsonT, body: `{"RestoreCurrent":true,"RestoreCurrentVss":false}{}`, wantErr: "Unexpected data after the JSON object"},
		{name: "json date with Z", accept: jsonT, contentType: jsonT, body: `{"RestoreCurrent":false,"RestoreCurrentVss":false,"RestoreAtInterval":"2021-02-17T15:31:40Z"}`, wantErr: "must be a UTC DateTime"},
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
				if got := fo[len(fo)-1].Intent; got != tt.want {
					t.Fatalf("intent: got %+v, want %+v", got, tt.want)
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
			Intent: Intent{Kind: IntentLatest}, RestoreSessionID: "00000000-0000-4000-8000-000000000003", At: t0},
		{TaskID: "task-2", LogonSessionID: sid, Kind: TargetVApp, TargetID: erp, TargetName: "erp-vapp",
			Intent: Intent{Kind: IntentLatest}, RestoreSessionID: "00000000-0000-4000-8000-000000000004", At: t0},
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
