package emapi

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestDecodeQueryResult reads one page of EM's query service in both formats: entities nested
// under Entities/RestoreSessions (twice in JSON), times with and without a zone, and the paging
// link with its "&amp;" unescaped.
func TestDecodeQueryResult(t *testing.T) {
	for _, tt := range []struct {
		file string
		f    Format
	}{{"query_restore_sessions.xml", FormatXML}, {"query_restore_sessions.json", FormatJSON}} {
		t.Run(tt.file, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("testdata", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			p, err := DecodeQueryResult(b, tt.f)
			if err != nil {
				t.Fatal(err)
			}
			if len(p.Sessions) != 2 {
				t.Fatalf("%d sessions, want 2: %+v", len(p.Sessions), p)
			}
			first, second := p.Sessions[0], p.Sessions[1]
			if first.ID != "2abbd1f7-647a-46b7-9f39-6e84ea31802b" || first.State != SessionWorking || first.Result != ResultNone ||
				first.Progress != 40 || !first.Created.Equal(time.Date(2021, 2, 17, 15, 31, 40, 0, time.UTC)) {
				t.Errorf("first session %+v", first)
			}
			if second.JobType != "FileLevelRestore" || IsFailoverJob(second.JobType) || !IsFailoverJob(first.JobType) {
				t.Errorf("job types %q %q", first.JobType, second.JobType)
			}
			if !second.Created.Equal(time.Date(2021, 2, 17, 15, 32, 0, 250e6, time.UTC)) || second.Ended.IsZero() {
				t.Errorf("second session times %v %v", second.Created, second.Ended)
			}
			if p.PageNum != 1 || p.PagesCount != 3 || p.Next != "type=RestoreSession&format=Entities&pageSize=2&page=2" {
				t.Errorf("paging %d/%d next %q", p.PageNum, p.PagesCount, p.Next)
			}
		})
	}
}

func TestQuoteFilter(t *testing.T) {
	for in, want := range map[string]string{
		`fin-db01`:        `"fin-db01"`,
		`SQL "prod" 01`:   `"SQL ""prod"" 01"`,
		`a;b,c==d`:        `"a;b,c==d"`,
		``:                `""`,
		`"`:               `""""`,
		`web 01 (copy)`:   `"web 01 (copy)"`,
		`trailing quote"`: `"trailing quote"""`,
	} {
		if got := QuoteFilter(in); got != want {
			t.Errorf("QuoteFilter(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestIsFailoverJob(t *testing.T) {
	for jt, want := range map[string]bool{"": true, "CdpFailover": true, "Failover": true, "cdp failover": true,
		"FileLevelRestore": false, "InstantRecovery": false, "FullRestore": false} {
		if got := IsFailoverJob(jt); got != want {
			t.Errorf("IsFailoverJob(%q) = %v", jt, got)
		}
	}
}
