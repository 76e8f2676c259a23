package store

import (
	"bytes"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/failover-bot/failover-bot/store/failover"
)

func sampleRequest() *Request {
	r := &Request{Seq: 7, ID: "FO-7", Kind: KindVM,
		Items: []Item{{Target: Target{ReplicaID: "5a1c", ReplicaName: "cdp-web", ID: "vm-1", Name: "web-01"},
			Point: t0.Add(-time.Hour), RPO: 15, State: Running, StateAt: t0, Version: 4, TaskID: "task-1", EMProgress: 40}},
		Excluded: []Exclusion{{Target: Target{ReplicaID: "5a1c", ID: "vm-2", Name: "web-02"}, Reason: "no restore point"}},
		Scope:    "replica cdp-web except web-02", DigestV: failover.DigestVersion,
		Intent: IntentPointInTime, RestoreTime: t0.Add(-time.Hour), Reason: "DC1 lost power",
		Requester: "U100", Channel: "C1", MessageTS: "1.2", ApprovalsRequired: 2,
		Approvals: []Approval{{User: "U200", At: t0}}, Rejection: &Rejection{User: "U3", Reason: "x", At: t0},
		State: Running, StateBy: "bot", StateAt: t0, Version: 9,
		CreatedAt: t0, ExpiresAt: t0.Add(time.Minute), UpdatedAt: t0}
	r.Digest = r.ComputeDigest()
	return r
}

// FuzzDecodeRequest: the request decoder never panics, and whatever it accepts encodes
// to a form it decodes back to the same encoding.
func FuzzDecodeRequest(f *testing.F) {
	good, _ := encodeRequest(sampleRequest())
	f.Add(good)
	f.Add([]byte(`{}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"seq":1,"id":"FO-1","kind":"vapp","state":"pending","version":1,"approvals":null,"rejection":null}`))
	f.Add([]byte(`{"seq":1,"id":"FO-1","kind":"vm","state":"pending","version":1,"created_at":"2025-03-14T15:02:00+01:00"}`))
	f.Add([]byte(`{"seq":18446744073709551615,"id":"FO-18446744073709551615","kind":"vm","state":"unknown","version":1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := decodeRequest(data)
		if err != nil {
			return
		}
		enc, err := encodeRequest(r)
		if err != nil {
			t.Fatalf("decoded request does not encode: %v", err)
		}
		r2, err := decodeRequest(enc)
		if err != nil {
			t.Fatalf("re-encoded request does not decode: %v\n%s", err, enc)
		}
		enc2, _ := encodeRequest(r2)
		if !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding is not stable:\n%s\n%s", enc, enc2)
		}
	})
}

// FuzzDecodeEvent: the event decoder never panics, and what it accepts is canonical: the
// event re-encodes to exactly the stored bytes, so the hash covers one meaning only.
func FuzzDecodeEvent(f *testing.F) {
	ev := Event{Seq: 3, Time: t0, Actor: "U200", RequestID: "FO-1", Action: "approved", From: Pending,
		To: Approved, Details: "1 of 1 approvals", Prev: "ab"}
	body := encodeEventBody(&ev)
	sum := sha256.Sum256(body)
	f.Add(append(body, sum[:]...))
	ev.ActorName = "Alex Approver" // format 2
	named := encodeEventBody(&ev)
	namedSum := sha256.Sum256(named)
	f.Add(append(named, namedSum[:]...))
	f.Add(body)
	f.Add([]byte{})
	f.Add(make([]byte, 53))
	f.Fuzz(func(t *testing.T, data []byte) {
		ev, err := decodeEvent(data)
		if err != nil {
			return
		}
		body := data[:len(data)-sha256.Size]
		if got := encodeEventBody(&ev); !bytes.Equal(got, body) {
			t.Fatalf("decoded event re-encodes differently:\n%x\n%x", got, body)
		}
	})
}
