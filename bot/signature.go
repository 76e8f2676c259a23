package bot

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Slack request-signing headers and parameters (v0 scheme).
const (
	HeaderSlackTimestamp = "X-Slack-Request-Timestamp"
	HeaderSlackSignature = "X-Slack-Signature"

	// SignatureMaxAge is how far a request's timestamp may be from now, in either direction,
	// before it is refused as a replay (or a badly skewed clock). Slack documents 5 minutes.
	SignatureMaxAge = 5 * time.Minute

	signatureVersion = "v0"
)

// Errors of VerifySignature and ReadVerified. None of them (nor their wrappers) include the
// signing secret or the expected signature.
var (
	ErrMissingSignature = errors.New("slack signature: missing " + HeaderSlackTimestamp + " or " + HeaderSlackSignature + " header")
	ErrBadTimestamp     = errors.New("slack signature: malformed timestamp")
	ErrStaleTimestamp   = errors.New("slack signature: timestamp outside the 5-minute window")
	ErrBadSignature     = errors.New("slack signature: signature does not match")
	ErrNoSecret         = errors.New("slack signature: no signing secret configured")
	// ErrBodyTooLarge is returned by ReadVerified when the body exceeds its limit; handlers
	// answer 413 instead of 401 for it.
	ErrBodyTooLarge = errors.New("slack request body too large")
)

// VerifySignature checks Slack's v0 request signature over body with the signing secret:
// "v0=" + hex(HMAC-SHA256(secret, "v0:" + timestamp + ":" + body)), compared in constant
// time, with the timestamp within SignatureMaxAge of now. now is a parameter so Slack's
// published example can be verified at its own timestamp.
func VerifySignature(secret string, header http.Header, body []byte, now time.Time) error {
	if secret == "" {
		return ErrNoSecret
	}
	tsText := header.Get(HeaderSlackTimestamp)
	sig := header.Get(HeaderSlackSignature)
	if tsText == "" || sig == "" {
		return ErrMissingSignature
	}
	ts, err := strconv.ParseInt(tsText, 10, 64)
	if err != nil || ts <= 0 {
		return ErrBadTimestamp
	}
	// Compare in seconds to avoid overflowing time.Duration with absurd timestamps.
	if diff := now.Unix() - ts; diff > int64(SignatureMaxAge/time.Second) || diff < -int64(SignatureMaxAge/time.Second) {
		return fmt.Errorf("%w (request at %d, now %d)", ErrStaleTimestamp, ts, now.Unix())
	}
	want := computeSignature(secret, tsText, body)
	if !hmac.Equal([]byte(want), []byte(strings.TrimSpace(sig))) {
		return ErrBadSignature
	}
	return nil
}

func computeSignature(secret, timestamp string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(signatureVersion + ":" + timestamp + ":"))
	mac.Write(body)
	return signatureVersion + "=" + hex.EncodeToString(mac.Sum(nil))
}

// Sign returns the X-Slack-Request-Timestamp and X-Slack-Signature values Slack would send
// for body at ts. Tests use it to sign requests exactly as Slack does.
func Sign(secret string, ts time.Time, body []byte) (timestamp, signature string) {
	timestamp = strconv.FormatInt(ts.Unix(), 10)
	return timestamp, computeSignature(secret, timestamp, body)
}

// ReadVerified reads r's body, at most maxBytes of it, and verifies its Slack signature.
// The body is read once and returned, so the caller parses exactly the verified bytes. A
// larger body yields an error wrapping ErrBodyTooLarge; the body is never parsed before
// it is verified.
func ReadVerified(r *http.Request, secret string, now time.Time, maxBytes int64) ([]byte, error) {
	if r.Body == nil {
		return nil, VerifySignature(secret, r.Header, nil, now)
	}
	// One byte more than the limit tells "exactly at the limit" from "over it".
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBytes+1))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, fmt.Errorf("%w (limit %d bytes)", ErrBodyTooLarge, maxBytes)
		}
		return nil, fmt.Errorf("read slack request body: %w", err)
	}
	if int64(len(body)) > maxBytes {
		return nil, fmt.Errorf("%w (limit %d bytes)", ErrBodyTooLarge, maxBytes)
	}
	if err := VerifySignature(secret, r.Header, body, now); err != nil {
		return nil, err
	}
	return body, nil
}
