package emapi

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Fuzz targets: decoders see whatever EM or a proxy in front of it sends, so they must never
// panic. Each is seeded with the testdata documents in both formats; the format is a fuzz input.

// seedCorpus adds every testdata file whose name starts with prefix (and the error pages), in both
// formats, plus a few hand-picked shapes.
func seedCorpus(f *testing.F, prefix string, extra ...string) {
	f.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "*"))
	if err != nil {
		f.Fatal(err)
	}
	for _, p := range files {
		name := filepath.Base(p)
		if !strings.HasPrefix(name, prefix) && !strings.HasPrefix(name, "error") {
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, false)
		f.Add(b, true)
	}
	for _, s := range append(extra, "", "\xEF\xBB\xBF", "null", "[]", `{"Links":{"Link":{}}}`, "<a/>") {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
}

func formatOf(jsonFormat bool) Format {
	if jsonFormat {
		return FormatJSON
	}
	return FormatXML
}

func FuzzDecodeTask(f *testing.F) {
	seedCorpus(f, "task_", `{"TaskId":1,"Result":{"Success":"maybe"}}`, `<Task><Result Success="x"/></Task>`)
	f.Fuzz(func(t *testing.T, data []byte, jsonFormat bool) {
		task, err := DecodeTask(data, formatOf(jsonFormat))
		if err == nil && task.ID == "" {
			t.Errorf("decoded a task without ID: %+v", task)
		}
		if err == nil && task.Done != (task.State == TaskFinished) {
			t.Errorf("Done %v with State %q", task.Done, task.State)
		}
	})
}

func FuzzDecodeRestoreSession(f *testing.F) {
	seedCorpus(f, "restore_session", `{"UID":"a:b","Progress":"1e99"}`, `<RestoreSession UID=":"><EndTimeUTC>x</EndTimeUTC></RestoreSession>`)
	f.Fuzz(func(t *testing.T, data []byte, jsonFormat bool) {
		rs, err := DecodeRestoreSession(data, formatOf(jsonFormat))
		if err == nil && rs.ID == "" {
			t.Errorf("decoded a restore session without ID: %+v", rs)
		}
	})
}

func FuzzDecodeError(f *testing.F) {
	seedCorpus(f, "error", `{"Message":{"Name":"x"},"StatusCode":"NaN"}`, `<Error StatusCode="-1"/>`)
	f.Fuzz(func(t *testing.T, data []byte, jsonFormat bool) {
		e, err := DecodeError(data, formatOf(jsonFormat))
		if err != nil {
			return
		}
		if e.StatusCode < 0 || e.StatusCode > 999 {
			t.Errorf("status %d out of range", e.StatusCode)
		}
		if len(e.Message) > maxMessage+len("…") {
			t.Errorf("message of %d bytes, want at most %d", len(e.Message), maxMessage)
		}
		_ = e.Error()
	})
}

func FuzzDecodeEntityReferences(f *testing.F) {
	seedCorpus(f, "entity_references", `{"Refs":{"Ref":[{}]},"Ref":[{"UID":"::"}]}`)
	f.Fuzz(func(t *testing.T, data []byte, jsonFormat bool) {
		refs, err := DecodeEntityReferences(data, formatOf(jsonFormat))
		if err != nil {
			return
		}
		for _, r := range refs {
			if strings.Contains(r.ID, ":") {
				t.Errorf("ID %q still contains ':'", r.ID)
			}
		}
	})
}

func FuzzDecodeQueryResult(f *testing.F) {
	seedCorpus(f, "query", `{"Refs":{"Refs":[{"UID":"urn:x:1"}]}}`, `<QueryResult><PagingInfo PageNum="x"/></QueryResult>`)
	f.Fuzz(func(t *testing.T, data []byte, jsonFormat bool) {
		p, err := DecodeQueryResult(data, formatOf(jsonFormat))
		if err == nil && p == nil {
			t.Fatal("nil page without error")
		}
		if err == nil {
			for _, s := range p.Sessions {
				if s.ID == "" {
					t.Fatal("session without ID")
				}
			}
		}
	})
}
