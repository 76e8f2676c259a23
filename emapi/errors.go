package emapi

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
)

// ErrorKind classifies a failed EM call so the bot can map it to one human sentence without
// looking at message text.
type ErrorKind int

// Error kinds. KindForbidden means the EM account lacks the Portal Administrator role, which every
// CDP call requires.
const (
	KindUnknown ErrorKind = iota
	KindUnauthorized
	KindForbidden
	KindNotFound
	KindBadRequest
	KindServer
	KindUnavailable
	KindTransport
	KindTimeout
)

var kindNames = [...]string{
	KindUnknown:      "unknown",
	KindUnauthorized: "unauthorized",
	KindForbidden:    "forbidden",
	KindNotFound:     "not found",
	KindBadRequest:   "bad request",
	KindServer:       "server error",
	KindUnavailable:  "unavailable",
	KindTransport:    "transport error",
	KindTimeout:      "timeout",
}

// String names the kind in lower case, for logs and metrics labels.
func (k ErrorKind) String() string {
	if k >= 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Error is the one error type emapi returns for a failed EM call. Its text names the operation,
// the HTTP status and EM's message; it never carries the password or the session token (messages
// echoed by the server are redacted before they are stored here).
type Error struct {
	Kind       ErrorKind
	Op         string // what the client tried, e.g. "get task task-1"
	StatusCode int    // 0 when no HTTP answer arrived
	Message    string // EM's Error/@Message, or the status text when the body had none
	Err        error  // underlying transport or decoding error, if any
}

// Error renders "emapi: <op>: HTTP <status>: <message>" or, without an answer, the cause.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("emapi: ")
	if e.Op != "" {
		b.WriteString(e.Op)
		b.WriteString(": ")
	}
	if e.StatusCode != 0 {
		fmt.Fprintf(&b, "HTTP %d", e.StatusCode)
	} else {
		b.WriteString(e.Kind.String())
	}
	for _, part := range []string{e.Message, errText(e.Err)} {
		if part != "" {
			b.WriteString(": ")
			b.WriteString(part)
		}
	}
	return b.String()
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// Unwrap returns the underlying cause so errors.Is(err, context.DeadlineExceeded) works.
func (e *Error) Unwrap() error { return e.Err }

// KindOf returns the kind of the first *Error in err's chain, KindUnknown when there is none.
func KindOf(err error) ErrorKind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return KindUnknown
}

// kindForStatus maps an HTTP status to a kind. Only 503 is "unavailable" in EM's documentation;
// 502 and 504 come from proxies in front of EM and mean the same to an operator.
func kindForStatus(status int) ErrorKind {
	switch {
	case status == http.StatusUnauthorized:
		return KindUnauthorized
	case status == http.StatusForbidden:
		return KindForbidden
	case status == http.StatusNotFound:
		return KindNotFound
	case status == http.StatusBadGateway, status == http.StatusServiceUnavailable, status == http.StatusGatewayTimeout:
		return KindUnavailable
	case status >= 500:
		return KindServer
	case status == http.StatusBadRequest, status == http.StatusMethodNotAllowed,
		status == http.StatusNotAcceptable, status == http.StatusConflict,
		status == http.StatusUnsupportedMediaType, status == http.StatusUnprocessableEntity:
		return KindBadRequest
	}
	return KindUnknown
}

// ResolveError reports that a name or ID matched no entity, or more than one. Candidates lists the
// matches when ambiguous and the available entities when unknown, so the operator can pick.
type ResolveError struct {
	What       string // "CDP replica", "VM", "vApp"
	Query      string
	Ambiguous  bool
	Candidates []Ref
}

// maxCandidatesInText bounds the error text; the full list stays in Candidates.
const maxCandidatesInText = 10

// Error names the query and lists up to ten candidates as "name (id)".
func (e *ResolveError) Error() string {
	var b strings.Builder
	if e.Ambiguous {
		fmt.Fprintf(&b, "emapi: %s %q is ambiguous: %d match", e.What, e.Query, len(e.Candidates))
	} else {
		fmt.Fprintf(&b, "emapi: no %s named or with ID %q", e.What, e.Query)
	}
	if len(e.Candidates) > 0 {
		if e.Ambiguous {
			b.WriteString(": ")
		} else {
			b.WriteString("; available: ")
		}
		for i, c := range e.Candidates {
			if i == maxCandidatesInText {
				fmt.Fprintf(&b, ", and %d more", len(e.Candidates)-i)
				break
			}
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%s (%s)", c.Name, c.ID)
		}
	}
	return b.String()
}

// opLogon is the Op of errors from the logon that precedes a call.
const opLogon = "log on"

// NotSent reports whether err proves that the call never reached its endpoint, so EM cannot
// have acted on it: the connection was refused or the name did not resolve, the TLS handshake
// failed (nothing was written), or the logon that must precede the call failed. Anything else
// without an answer (a timeout, a reset after the request was written, a 5xx) may have been
// acted on.
func NotSent(err error) bool {
	var e *Error
	if !errors.As(err, &e) {
		return false
	}
	if e.Op == opLogon {
		return true
	}
	if e.StatusCode != 0 || e.Err == nil {
		return false
	}
	var op *net.OpError
	if errors.As(e.Err, &op) && op.Op == "dial" {
		return true
	}
	var dns *net.DNSError
	var cv *tls.CertificateVerificationError
	var rh tls.RecordHeaderError
	var ua x509.UnknownAuthorityError
	var hn x509.HostnameError
	var ci x509.CertificateInvalidError
	return errors.As(e.Err, &dns) || errors.As(e.Err, &cv) || errors.As(e.Err, &rh) ||
		errors.As(e.Err, &ua) || errors.As(e.Err, &hn) || errors.As(e.Err, &ci)
}

// ErrOtherSession marks a task call that was not sent because the task belongs to another EM
// logon session than the client's current one (after a re-logon or a restart). Its Error has
// KindNotFound: in this session the task does not exist. Follow the restore session instead.
var ErrOtherSession = errors.New("the task belongs to another EM logon session")

func otherSession(op, pin, current string) *Error {
	if current == "" {
		current = "none"
	}
	return &Error{Kind: KindNotFound, Op: op, Err: ErrOtherSession,
		Message: "the task was created in EM logon session " + pin + ", and this client is in session " + current +
			"; EM numbers tasks per session, so it is not asked"}
}
