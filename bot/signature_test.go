package bot

import (
	"bufio"
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

type signingExample struct {
	secret, timestamp, signature string
	body                         []byte
	at                           time.Time
}

// loadSigningExample reads Slack's published example from testdata.
func loadSigningExample(t *testing.T) signingExample {
	t.Helper()
	body, err := os.ReadFile("testdata/slack-signing-example.body")
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open("testdata/slack-signing-example.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	kv := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, _ := strings.Cut(line, "=")
		kv[k] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	sec, err := strconv.ParseInt(kv["timestamp"], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return signingExample{secret: kv["secret"], timestamp: kv["timestamp"], signature: kv["signature"], body: body, at: time.Unix(sec, 0)}
}

func slackHeader(ts, sig string) http.Header {
	h := http.Header{}
	if ts != "" {
		h.Set(HeaderSlackTimestamp, ts)
	}
	if sig != "" {
		h.Set(HeaderSlackSignature, sig)
	}
	return h
}

func TestVerifySignatureSlackExample(t *testing.T) {
	ex := loadSigningExample(t)
	if err := VerifySignature(ex.secret, slackHeader(ex.timestamp, ex.signature), ex.body, ex.at); err != nil {
		t.Fatalf("Slack's published example does not verify: %v", err)
	}
	ts, sig := Sign(ex.secret, ex.at, ex.body)
	if ts != ex.timestamp || sig != ex.signature {
		t.Errorf("Sign = %s %s, want %s %s", ts, sig, ex.timestamp, ex.signature)
	}
}

func TestVerifySignature(t *testing.T) {
	ex := loadSigningExample(t)
	flip := func(s string) string { // change the last hex digit
		b := []byte(s)
		if b[len(b)-1] == '0' {
			b[len(b)-1] = '1'
		} else {
			b[len(b)-1] = '0'
		}
		return string(b)
	}
	tests := []struct {
		name   string
		secret string
		header http.Header
		body   []byte
		now    time.Time
		want   error // nil: valid
	}{
		{"example", ex.secret, slackHeader(ex.timestamp, ex.signature), ex.body, ex.at, nil},
		{"4m59s later", ex.secret, slackHeader(ex.timestamp, ex.signature), ex.body, ex.at.Add(4*time.Minute + 59*time.Second), nil},
		{"exactly 5m later", ex.secret, slackHeader(ex.timestamp, ex.signature), ex.body, ex.at.Add(5 * time.Minute), nil},
		{"4m59s earlier (clock skew)", ex.secret, slackHeader(ex.timestamp, ex.signature), ex.body, ex.at.Add(-4*time.Minute - 59*time.Second), nil},
		{"old timestamp", ex.secret, slackHeader(ex.timestamp, ex.signature), ex.body, ex.at.Add(5*time.Minute + time.Second), ErrStaleTimestamp},
		{"future timestamp", ex.secret, slackHeader(ex.timestamp, ex.signature), ex.body, ex.at.Add(-5*time.Minute - time.Second), ErrStaleTimestamp},
		{"far future timestamp", ex.secret, slackHeader("99999999999999", ex.signature), ex.body, ex.at, ErrStaleTimestamp},
		{"tampered body", ex.secret, slackHeader(ex.timestamp, ex.signature), bytes.Replace(ex.body, []byte("text="), []byte("text=vm"), 1), ex.at, ErrBadSignature},
		{"body with trailing newline", ex.secret, slackHeader(ex.timestamp, ex.signature), append(append([]byte{}, ex.body...), '\n'), ex.at, ErrBadSignature},
		{"tampered signature", ex.secret, slackHeader(ex.timestamp, flip(ex.signature)), ex.body, ex.at, ErrBadSignature},
		{"signature without version", ex.secret, slackHeader(ex.timestamp, strings.TrimPrefix(ex.signature, "v0=")), ex.body, ex.at, ErrBadSignature},
		{"upper-case signature", ex.secret, slackHeader(ex.timestamp, "v0="+strings.ToUpper(strings.TrimPrefix(ex.signature, "v0="))), ex.body, ex.at, ErrBadSignature},
		{"timestamp changed", ex.secret, slackHeader(strconv.FormatInt(ex.at.Unix()+1, 10), ex.signature), ex.body, ex.at, ErrBadSignature},
		{"wrong secret", ex.secret + "x", slackHeader(ex.timestamp, ex.signature), ex.body, ex.at, ErrBadSignature},
		{"empty secret", "", slackHeader(ex.timestamp, ex.signature), ex.body, ex.at, ErrNoSecret},
		{"missing timestamp", ex.secret, slackHeader("", ex.signature), ex.body, ex.at, ErrMissingSignature},
		{"missing signature", ex.secret, slackHeader(ex.timestamp, ""), ex.body, ex.at, ErrMissingSignature},
		{"no headers", ex.secret, http.Header{}, ex.body, ex.at, ErrMissingSignature},
		{"malformed timestamp", ex.secret, slackHeader("15314206l8", ex.signature), ex.body, ex.at, ErrBadTimestamp},
		{"negative timestamp", ex.secret, slackHeader("-1531420618", ex.signature), ex.body, ex.at, ErrBadTimestamp},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := VerifySignature(tt.secret, tt.header, tt.body, tt.now)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("VerifySignature: %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("VerifySignature: %v, want %v", err, tt.want)
			}
			if tt.secret != "" && strings.Contains(err.Error(), tt.secret) {
				t.Errorf("error %q contains the secret", err)
			}
			if strings.Contains(err.Error(), strings.TrimPrefix(ex.signature, "v0=")[:16]) {
				t.Errorf("error %q contains signature material", err)
			}
		})
	}
}

func TestSignRoundTrip(t *testing.T) {
	now := time.Date(2024, 5, 1, 14, 0, 0, 0, time.UTC)
	body := []byte("command=%2Ffailover&text=help")
	ts, sig := Sign("s3cret", now, body)
	if err := VerifySignature("s3cret", slackHeader(ts, sig), body, now.Add(time.Minute)); err != nil {
		t.Fatalf("a request signed with Sign does not verify: %v", err)
	}
}

func TestReadVerified(t *testing.T) {
	ex := loadSigningExample(t)
	newReq := func(body []byte, ts, sig string) *http.Request {
		r := httptest.NewRequest(http.MethodPost, "/slack/commands", bytes.NewReader(body))
		r.Header = slackHeader(ts, sig)
		return r
	}
	bigBody := bytes.Repeat([]byte("a"), 2048)
	bigTS, bigSig := Sign(ex.secret, ex.at, bigBody)
	tests := []struct {
		name     string
		req      *http.Request
		maxBytes int64
		want     error
	}{
		{"valid", newReq(ex.body, ex.timestamp, ex.signature), 1 << 16, nil},
		{"valid at exactly the limit", newReq(ex.body, ex.timestamp, ex.signature), int64(len(ex.body)), nil},
		{"one byte over the limit", newReq(ex.body, ex.timestamp, ex.signature), int64(len(ex.body)) - 1, ErrBodyTooLarge},
		{"oversized even when signed", newReq(bigBody, bigTS, bigSig), 1024, ErrBodyTooLarge},
		{"forged", newReq(ex.body, ex.timestamp, "v0=deadbeef"), 1 << 16, ErrBadSignature},
		{"unsigned", newReq(ex.body, "", ""), 1 << 16, ErrMissingSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body, err := ReadVerified(tt.req, ex.secret, ex.at, tt.maxBytes)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("ReadVerified: %v", err)
				}
				if !bytes.Equal(body, ex.body) {
					t.Errorf("body = %q, want %q", body, ex.body)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("ReadVerified: %v, want %v", err, tt.want)
			}
			if body != nil {
				t.Errorf("body = %q, want nil on error", body)
			}
		})
	}
}

func TestReadVerifiedHonoursMaxBytesReader(t *testing.T) {
	ex := loadSigningExample(t)
	rec := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodPost, "/slack/commands", bytes.NewReader(ex.body))
	r.Header = slackHeader(ex.timestamp, ex.signature)
	r.Body = http.MaxBytesReader(rec, r.Body, 10)
	if _, err := ReadVerified(r, ex.secret, ex.at, 1<<16); !errors.Is(err, ErrBodyTooLarge) {
		t.Fatalf("ReadVerified behind MaxBytesReader: %v, want ErrBodyTooLarge", err)
	}
}
