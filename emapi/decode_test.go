package emapi

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func boolPtr(b bool) *bool { return &b }

// formats runs fn once per body format, with the format's file extension.
var formats = []struct {
	f   Format
	ext string
}{{FormatXML, ".xml"}, {FormatJSON, ".json"}}

// The two <Task> documents are the seed pages' examples, copied verbatim (the JSON files are
// their JSON form, with the BOM EM puts in front of JSON answers).
func TestDecodeTaskSeeds(t *testing.T) {
	tests := []struct {
		name string
		file string
		want Task
	}{
		{"running", "task_running", Task{
			ID: "task-1", Href: "https://localhost:9398/api/tasks/task-1", State: TaskRunning,
			Operation: "StartFailover",
		}},
		{"finished", "task_finished", Task{
			ID: "task-1", Href: "https://localhost:9398/api/tasks/task-1", State: TaskFinished,
			Operation: "StartFailover", Done: true, Success: boolPtr(true), Message: "Ok",
			RestoreSessionID: "2abbd1f7-647a-46b7-9f39-6e84ea31802b",
		}},
	}
	for _, tt := range tests {
		for _, f := range formats {
			t.Run(tt.name+"/"+f.f.String(), func(t *testing.T) {
				got, err := DecodeTask(readTestdata(t, tt.file+f.ext), f.f)
				if err != nil {
					t.Fatalf("DecodeTask: %v", err)
				}
				if !reflect.DeepEqual(*got, tt.want) {
					t.Errorf("got %+v (success %v), want %+v", *got, deref(got.Success), tt.want)
				}
			})
		}
	}
}

func deref(b *bool) any {
	if b == nil {
		return nil
	}
	return *b
}

func TestDecodeTaskVariants(t *testing.T) {
	tests := []struct {
		name    string
		f       Format
		doc     string
		want    Task
		wantErr bool
	}{
		{"failed result, string Success", FormatJSON,
			`{"TaskId":"task-7","State":"Finished","Result":{"Success":"false","Message":"Replica is locked"}}`,
			Task{ID: "task-7", State: TaskFinished, Done: true, Success: boolPtr(false), Message: "Replica is locked"}, false},
		{"links as wrapper object", FormatJSON,
			`{"TaskId":"task-2","State":"OperationFinished","Links":{"Link":[{"Rel":"Related","Type":"RestoreSession","Href":"/api/restoreSessions/abc?format=Entity"}]}}`,
			Task{ID: "task-2", State: TaskOperationFinished, RestoreSessionID: "abc"}, false},
		{"ID from Href when TaskId missing", FormatXML,
			`<Task Href="https://em/api/tasks/task-9"><State>Running</State></Task>`,
			Task{ID: "task-9", Href: "https://em/api/tasks/task-9", State: TaskRunning}, false},
		{"Result without Success attribute", FormatXML,
			`<Task><TaskId>t</TaskId><State>Finished</State><Result><Message>m</Message></Result></Task>`,
			Task{ID: "t", State: TaskFinished, Done: true, Message: "m"}, false},
		{"related link of another type is ignored", FormatXML,
			`<Task><TaskId>t</TaskId><Links><Link Rel="Related" Type="Job" Href="/api/restoreSessions/x"/></Links></Task>`,
			Task{ID: "t"}, false},
		{"wrong root", FormatXML, `<Error Message="x" StatusCode="500"/>`, Task{}, true},
		{"no ID", FormatJSON, `{"State":"Running"}`, Task{}, true},
		{"empty", FormatJSON, "\xEF\xBB\xBF  ", Task{}, true},
		{"not JSON", FormatJSON, `<Task/>`, Task{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeTask([]byte(tt.doc), tt.f)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("got %+v, want an error", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("DecodeTask: %v", err)
			}
			if !reflect.DeepEqual(*got, tt.want) {
				t.Errorf("got %+v (success %v), want %+v (success %v)", *got, deref(got.Success), tt.want, deref(tt.want.Success))
			}
		})
	}
}

func TestDecodeRestoreSession(t *testing.T) {
	want := RestoreSession{
		ID:             "2abbd1f7-647a-46b7-9f39-6e84ea31802b",
		UID:            "urn:veeam:RestoreSession:2abbd1f7-647a-46b7-9f39-6e84ea31802b",
		Name:           "CDP failover sql01",
		VMDisplayName:  "sql01",
		JobType:        "CdpFailover",
		Created:        time.Date(2021, 2, 17, 15, 31, 40, 0, time.UTC),
		Ended:          time.Date(2021, 2, 17, 15, 35, 2, 500_000_000, time.UTC),
		State:          "Stopped",
		Result:         "Warning",
		Progress:       100,
		FailureMessage: "Network adapter reconfigured",
	}
	for _, f := range formats {
		t.Run(f.f.String(), func(t *testing.T) {
			got, err := DecodeRestoreSession(readTestdata(t, "restore_session"+f.ext), f.f)
			if err != nil {
				t.Fatalf("DecodeRestoreSession: %v", err)
			}
			if !reflect.DeepEqual(*got, want) {
				t.Errorf("got %+v, want %+v", *got, want)
			}
		})
	}
	t.Run("running without end, zone-less time, string progress", func(t *testing.T) {
		got, err := DecodeRestoreSession([]byte(`{"UID":"urn:veeam:RestoreSession:g","CreationTimeUTC":"2021-02-17T15:31:40","State":"Working","Result":"None","Progress":"42"}`), FormatJSON)
		if err != nil {
			t.Fatal(err)
		}
		if got.ID != "g" || !got.Ended.IsZero() || got.Progress != 42 || !got.Created.Equal(time.Date(2021, 2, 17, 15, 31, 40, 0, time.UTC)) {
			t.Errorf("got %+v", *got)
		}
	})
	t.Run("bad time is an error", func(t *testing.T) {
		if _, err := DecodeRestoreSession([]byte(`<RestoreSession UID="a:b"><CreationTimeUTC>yesterday</CreationTimeUTC></RestoreSession>`), FormatXML); err == nil {
			t.Error("got nil, want an error")
		}
	})
}

func TestDecodeError(t *testing.T) {
	tests := []struct {
		name     string
		f        Format
		doc      []byte
		wantKind ErrorKind
		wantCode int
		wantMsg  string
		wantErr  bool
	}{
		{"xml file", FormatXML, readTestdata(t, "error.xml"), KindForbidden, 403, "Access denied", false},
		{"json file", FormatJSON, readTestdata(t, "error.json"), KindForbidden, 403, "Access denied", false},
		{"string status", FormatJSON, []byte(`{"Message":"busy","StatusCode":"503"}`), KindUnavailable, 503, "busy", false},
		{"element form", FormatXML, []byte(`<Error><Message>boom</Message><StatusCode>500</StatusCode></Error>`), KindServer, 500, "boom", false},
		{"not found", FormatXML, []byte(`<Error Message="Object not found" StatusCode="404"/>`), KindNotFound, 404, "Object not found", false},
		{"html", FormatXML, readTestdata(t, "error_proxy.html"), 0, 0, "", true},
		{"empty", FormatXML, nil, 0, 0, "", true},
		{"empty error", FormatJSON, []byte(`{}`), 0, 0, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeError(tt.doc, tt.f)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("got %+v, want an error", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Kind != tt.wantKind || got.StatusCode != tt.wantCode || got.Message != tt.wantMsg {
				t.Errorf("got kind %v, status %d, message %q; want %v, %d, %q", got.Kind, got.StatusCode, got.Message, tt.wantKind, tt.wantCode, tt.wantMsg)
			}
			if strings.Contains(got.Error(), "Veeam.Backup") {
				t.Errorf("error text %q leaks the stack trace", got.Error())
			}
		})
	}
}

func TestDecodeEntityReferences(t *testing.T) {
	want := []Ref{
		{Type: "CdpReplicaReference", Name: "CDP Policy 1", UID: "urn:veeam:CdpReplica:7665222c-2e99-4a3f-b892-1827ba8d1eee",
			ID: "7665222c-2e99-4a3f-b892-1827ba8d1eee", Href: "https://localhost:9398/api/cdpReplicas/7665222c-2e99-4a3f-b892-1827ba8d1eee"},
		{Type: "CdpReplicaReference", Name: "CDP Policy 2", UID: "urn:veeam:CdpReplica:0c2f3f1e-9d8a-4b4b-8f0e-2f1b5a9c7d11",
			ID: "0c2f3f1e-9d8a-4b4b-8f0e-2f1b5a9c7d11", Href: "https://localhost:9398/api/cdpReplicas/0c2f3f1e-9d8a-4b4b-8f0e-2f1b5a9c7d11"},
	}
	for _, f := range formats {
		t.Run(f.f.String(), func(t *testing.T) {
			got, err := DecodeEntityReferences(readTestdata(t, "entity_references"+f.ext), f.f)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got %+v, want %+v", got, want)
			}
		})
	}
	t.Run("empty list", func(t *testing.T) {
		got, err := DecodeEntityReferences([]byte(`<EntityReferences xmlns="http://www.veeam.com/ent/v1.0"/>`), FormatXML)
		if err != nil || len(got) != 0 {
			t.Errorf("got %v, %v; want empty, nil", got, err)
		}
	})
	t.Run("wrong root", func(t *testing.T) {
		if _, err := DecodeEntityReferences([]byte(`<Task/>`), FormatXML); err == nil {
			t.Error("got nil, want an error")
		}
	})
}

func TestDecodeEntities(t *testing.T) {
	t.Run("replica", func(t *testing.T) {
		got, err := decodeReplica([]byte(`{"Name":"P1","UID":"urn:veeam:CdpReplica:r1","PolicyName":"P1","PolicyUid":"urn:veeam:Job:j1","BackupServer":{"Name":"vbr01"}}`), FormatJSON)
		want := Replica{ID: "r1", UID: "urn:veeam:CdpReplica:r1", Name: "P1", PolicyName: "P1", PolicyUID: "urn:veeam:Job:j1", BackupServer: "vbr01"}
		if err != nil || *got != want {
			t.Errorf("got %+v, %v; want %+v", got, err, want)
		}
	})
	t.Run("replica VM under either root", func(t *testing.T) {
		for _, root := range []string{"CdpReplicaVm", "VmCdpReplica"} {
			got, err := decodeReplicaVM([]byte(`<`+root+` Name="sql01" UID="urn:veeam:CdpReplicaVm:v1"><ReplicaUid>urn:veeam:CdpReplica:r1</ReplicaUid><PolicyName>P1</PolicyName></`+root+`>`), FormatXML)
			want := ReplicaVM{ID: "v1", UID: "urn:veeam:CdpReplicaVm:v1", Name: "sql01", ReplicaUID: "urn:veeam:CdpReplica:r1", PolicyName: "P1"}
			if err != nil || *got != want {
				t.Errorf("%s: got %+v, %v; want %+v", root, got, err, want)
			}
		}
		if _, err := decodeReplicaVM([]byte(`<Task/>`), FormatXML); err == nil {
			t.Error("root <Task>: got nil, want an error")
		}
	})
	t.Run("intervals", func(t *testing.T) {
		doc := `<CdpReplicaIntervals xmlns="http://www.veeam.com/ent/v1.0"><HasApplicationConsistentState>true</HasApplicationConsistentState>` +
			`<Intervals><Interval><StartDate>2021-02-17T10:00:00Z</StartDate><EndDate>2021-02-17T15:00:00Z</EndDate><Rpo>15s</Rpo><IntervalType>RestoreAvailable</IntervalType></Interval></Intervals>` +
			`<RestorePoints><RestorePoint><Id>p1</Id><Date>2021-02-17T12:00:00Z</Date><IsApplicationConsistent>true</IsApplicationConsistent></RestorePoint></RestorePoints></CdpReplicaIntervals>`
		got, err := decodeIntervals([]byte(doc), FormatXML)
		want := &Intervals{
			HasApplicationConsistentState: true,
			Intervals: []Interval{{Start: time.Date(2021, 2, 17, 10, 0, 0, 0, time.UTC), End: time.Date(2021, 2, 17, 15, 0, 0, 0, time.UTC),
				RPO: "15s", Type: "RestoreAvailable"}},
			RestorePoints: []RestorePoint{{ID: "p1", Date: time.Date(2021, 2, 17, 12, 0, 0, 0, time.UTC), ApplicationConsistent: true}},
		}
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("got %+v, %v; want %+v", got, err, want)
		}
	})
	t.Run("logon session", func(t *testing.T) {
		for _, tt := range []struct {
			f   Format
			doc string
		}{
			{FormatXML, `<LogonSession><UserName>u</UserName><SessionId>s1</SessionId></LogonSession>`},
			{FormatJSON, "\xEF\xBB\xBF" + `{"UserName":"u","SessionId":"s1"}`},
			{FormatXML, `<LogonSession><Links><Link Rel="Delete" Href="https://em/api/logonSessions/s1"/></Links></LogonSession>`},
		} {
			if got, err := decodeLogonSession([]byte(tt.doc), tt.f); err != nil || got != "s1" {
				t.Errorf("%s: got %q, %v; want s1", tt.doc, got, err)
			}
		}
	})
}

func TestIDHelpers(t *testing.T) {
	tests := []struct{ name, got, want string }{
		{"uid", idOf("urn:veeam:CdpReplica:abc", "x"), "abc"},
		{"href fallback", idOf("", "https://em/api/cdpReplicas/abc?format=Entity"), "abc"},
		{"restore session href", restoreSessionIDFromHref("https://em:9398/api/restoreSessions/2abb?format=Entity"), "2abb"},
		{"restore session no query", restoreSessionIDFromHref("/api/restoreSessions/2abb"), "2abb"},
		{"not a restore session", restoreSessionIDFromHref("/api/tasks/task-1"), ""},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, tt.got, tt.want)
		}
	}
}
