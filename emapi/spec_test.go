package emapi

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"flag"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

// specTime is 16:31:40.75 in UTC+1, i.e. 15:31:40 UTC once converted and cut to whole seconds,
// the seeds' example time.
var specTime = time.Date(2021, 2, 17, 16, 31, 40, 750_000_000, time.FixedZone("CET", 3600))

var specCases = []struct {
	name   string
	intent RestoreIntent
	// wantXML lists the XML child elements in order, checked independently of the golden bytes.
	wantXML []string
	// wantJSON is the decoded JSON object.
	wantJSON map[string]any
}{
	{"latest", RestoreIntent{Kind: IntentLatest},
		[]string{"RestoreCurrent=true", "RestoreCurrentVss=false"},
		map[string]any{"RestoreCurrent": true, "RestoreCurrentVss": false}},
	{"latest_vss", RestoreIntent{Kind: IntentLatestVSS},
		[]string{"RestoreCurrent=false", "RestoreCurrentVss=true"},
		map[string]any{"RestoreCurrent": false, "RestoreCurrentVss": true}},
	{"point_in_time", RestoreIntent{Kind: IntentPointInTime, Time: specTime},
		[]string{"RestoreCurrent=false", "RestoreCurrentVss=false", "RestoreAtPointinTime=2021-02-17T15:31:40"},
		map[string]any{"RestoreCurrent": false, "RestoreCurrentVss": false, "RestoreAtPointinTime": "2021-02-17T15:31:40"}},
	{"interval", RestoreIntent{Kind: IntentInterval, Time: specTime},
		[]string{"RestoreCurrent=false", "RestoreCurrentVss=false", "RestoreAtInterval=2021-02-17T15:31:40"},
		map[string]any{"RestoreCurrent": false, "RestoreCurrentVss": false, "RestoreAtInterval": "2021-02-17T15:31:40"}},
}

// TestEncodeFailoverSpecGolden pins the exact bytes of every body. Rewrite with -update only after
// reading the diff: these bytes are what EM receives for a failover.
func TestEncodeFailoverSpecGolden(t *testing.T) {
	for _, tc := range specCases {
		for _, f := range formats {
			t.Run(tc.name+"/"+f.f.String(), func(t *testing.T) {
				got, err := EncodeFailoverSpec(tc.intent, f.f)
				if err != nil {
					t.Fatalf("EncodeFailoverSpec: %v", err)
				}
				path := filepath.Join("testdata", "failover_spec_"+tc.name+f.ext)
				if *update {
					if err := os.WriteFile(path, got, 0o644); err != nil {
						t.Fatal(err)
					}
				}
				want, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, want) {
					t.Errorf("body differs from %s\ngot:\n%s\nwant:\n%s", path, got, want)
				}
				again, _ := EncodeFailoverSpec(tc.intent, f.f)
				if !bytes.Equal(again, got) {
					t.Error("two encodings of the same intent differ")
				}
			})
		}
	}
}

// TestEncodeFailoverSpecStructure checks the schema facts independently of the golden files: root
// CdpFailoverStartSpec in EM's namespace, the elements in schema order, exactly one intent.
func TestEncodeFailoverSpecStructure(t *testing.T) {
	for _, tc := range specCases {
		t.Run(tc.name+"/xml", func(t *testing.T) {
			body, err := EncodeFailoverSpec(tc.intent, FormatXML)
			if err != nil {
				t.Fatal(err)
			}
			d := xml.NewDecoder(bytes.NewReader(body))
			var got []string
			depth := 0
			var name string
			for {
				tok, err := d.Token()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("not well-formed: %v", err)
				}
				switch tok := tok.(type) {
				case xml.StartElement:
					depth++
					if depth == 1 && (tok.Name.Local != "CdpFailoverStartSpec" || tok.Name.Space != "http://www.veeam.com/ent/v1.0") {
						t.Fatalf("root %v, want CdpFailoverStartSpec in http://www.veeam.com/ent/v1.0", tok.Name)
					}
					if depth == 2 {
						if tok.Name.Space != "http://www.veeam.com/ent/v1.0" {
							t.Errorf("element %s in namespace %q", tok.Name.Local, tok.Name.Space)
						}
						name = tok.Name.Local
					}
				case xml.CharData:
					if depth == 2 {
						got = append(got, name+"="+string(tok))
					}
				case xml.EndElement:
					depth--
				}
			}
			if !reflect.DeepEqual(got, tc.wantXML) {
				t.Errorf("elements %v, want %v", got, tc.wantXML)
			}
		})
		t.Run(tc.name+"/json", func(t *testing.T) {
			body, err := EncodeFailoverSpec(tc.intent, FormatJSON)
			if err != nil {
				t.Fatal(err)
			}
			var got map[string]any
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.wantJSON) {
				t.Errorf("got %v, want %v", got, tc.wantJSON)
			}
		})
	}
}

func TestRestoreIntentValidate(t *testing.T) {
	tests := []struct {
		name    string
		intent  RestoreIntent
		wantErr bool
	}{
		{"latest", RestoreIntent{Kind: IntentLatest}, false},
		{"latest VSS", RestoreIntent{Kind: IntentLatestVSS}, false},
		{"point in time", RestoreIntent{Kind: IntentPointInTime, Time: specTime}, false},
		{"interval", RestoreIntent{Kind: IntentInterval, Time: specTime}, false},
		{"latest with a time", RestoreIntent{Kind: IntentLatest, Time: specTime}, true},
		{"latest VSS with a time", RestoreIntent{Kind: IntentLatestVSS, Time: specTime}, true},
		{"point in time without time", RestoreIntent{Kind: IntentPointInTime}, true},
		{"interval without time", RestoreIntent{Kind: IntentInterval}, true},
		{"year out of range", RestoreIntent{Kind: IntentInterval, Time: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}, true},
		{"unknown kind", RestoreIntent{Kind: IntentKind(9)}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.intent.Validate()
			if (err != nil) != tt.wantErr {
				t.Fatalf("Validate() = %v, want error %v", err, tt.wantErr)
			}
			if _, encErr := EncodeFailoverSpec(tt.intent, FormatXML); (encErr != nil) != tt.wantErr {
				t.Errorf("EncodeFailoverSpec error %v, want error %v", encErr, tt.wantErr)
			}
		})
	}
	if _, err := EncodeFailoverSpec(RestoreIntent{}, Format(7)); err == nil {
		t.Error("unknown format: got nil, want an error")
	}
}

func TestEncodeIntervalsSpec(t *testing.T) {
	from := time.Date(2021, 2, 17, 11, 0, 0, 0, time.FixedZone("CET", 3600))
	to := from.Add(6 * time.Hour)
	tests := []struct {
		f    Format
		want string
	}{
		{FormatXML, "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<CdpIntervalsSpec xmlns=\"http://www.veeam.com/ent/v1.0\">\n <StartDate>2021-02-17T10:00:00</StartDate>\n <EndDate>2021-02-17T16:00:00</EndDate>\n</CdpIntervalsSpec>"},
		{FormatJSON, `{"StartDate":"2021-02-17T10:00:00","EndDate":"2021-02-17T16:00:00"}`},
	}
	for _, tt := range tests {
		got, err := encodeIntervalsSpec(from, to, tt.f)
		if err != nil || string(got) != tt.want {
			t.Errorf("%v: got %q, %v; want %q", tt.f, got, err, tt.want)
		}
	}
	if _, err := encodeIntervalsSpec(to, from, FormatXML); err == nil {
		t.Error("end before start: got nil, want an error")
	}
}

// TestPointInTimeElementSetting: the configured spelling is the one element the body carries, in
// both formats, and a setting that is not an element name is refused before anything is sent.
func TestPointInTimeElementSetting(t *testing.T) {
	at := time.Date(2021, 2, 17, 15, 31, 40, 0, time.UTC)
	for _, pit := range []string{PointInTimeTable, PointInTimeExample} {
		for _, f := range []Format{FormatXML, FormatJSON} {
			body, err := EncodeFailoverSpecWith(RestoreIntent{Kind: IntentPointInTime, Time: at}, f, pit)
			if err != nil {
				t.Fatal(err)
			}
			other := PointInTimeExample
			if pit == PointInTimeExample {
				other = PointInTimeTable
			}
			if !bytes.Contains(body, []byte(pit)) || bytes.Contains(body, []byte(other)) {
				t.Errorf("%s %s: body %s", pit, f, body)
			}
		}
	}
	for _, bad := range []string{"", "PointInTime", "RestoreAt<x>", "RestoreAt Point"} {
		if _, err := EncodeFailoverSpecWith(RestoreIntent{Kind: IntentPointInTime, Time: at}, FormatXML, bad); err == nil {
			t.Errorf("EncodeFailoverSpecWith(%q) accepted", bad)
		}
		if bad == "" {
			continue // empty means the default in Config
		}
		if _, err := New(Config{BaseURL: "https://em:9398/api/", Username: "u", Password: "p", PointInTimeElement: bad}); err == nil {
			t.Errorf("New accepted PointInTimeElement %q", bad)
		}
	}
}
