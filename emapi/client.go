// Package emapi speaks the Veeam Backup Enterprise Manager REST API (v1.6+, CDP replicas) and
// nothing else. It logs on lazily, shares one session token among concurrent callers, re-logs on
// once per expired token, retries only what is safe to repeat, and reports every failure as an
// *Error whose Kind the bot maps to one sentence. Nothing it returns or logs contains the password
// or the session token.
package emapi

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"
)

// Config configures a Client. Zero values take the documented defaults.
type Config struct {
	BaseURL            string // "https://em:9398/api/" (http:// allowed); trailing slash optional; "/api/" when no path
	Username, Password string
	CAFile             string        // PEM roots added to a fresh pool (not the system pool) when set
	InsecureSkipVerify bool          // logged as a WARN at New
	Timeout            time.Duration // per HTTP attempt; default 30s
	Format             Format        // default XML
	MaxRetries         int           // GET retries on 503/connection errors (incl. per-attempt timeouts); default 4, negative = none
	RetryBase          time.Duration // first backoff delay, default 250ms; doubles per retry, with jitter
	RetryMax           time.Duration // backoff cap, default 5s
	Logger             *slog.Logger  // default slog.Default()
	HTTPClient         *http.Client  // optional (tests); else built from the TLS settings
	// Observe, when set, is called once per HTTP attempt for metrics. endpoint is a low-cardinality
	// template such as "POST /cdpReplicas/{id}/vms/{id}?action=failover"; status 0 = transport error.
	// It is called from concurrent callers' goroutines and must be safe for that.
	Observe func(endpoint string, status int, d time.Duration)
	// PointInTimeElement names the point-in-time element of failover bodies (XML and JSON);
	// default PointInTimeTable. See the constants' comment for why it is a setting.
	PointInTimeElement string
}

// Defaults applied by New.
const (
	defaultTimeout    = 30 * time.Second
	defaultMaxRetries = 4
	defaultRetryBase  = 250 * time.Millisecond
	defaultRetryMax   = 5 * time.Second
)

// maxBody bounds how much of an answer is read; EM's largest answers (30 days of restore session
// references) are far below this.
const maxBody = 8 << 20

// sessionHeader carries the logon token. EM also sets it as a cookie and prefers the cookie when
// both are present, so the client never keeps a cookie jar.
const sessionHeader = "X-RestSvcSessionId"

// Client is an EM REST client, safe for concurrent use. Create it with New.
type Client struct {
	base       string // absolute, ends in "/"
	user, pass string
	format     Format
	timeout    time.Duration
	maxRetries int
	retryBase  time.Duration
	retryMax   time.Duration
	log        *slog.Logger
	hc         *http.Client
	observe    func(string, int, time.Duration)
	pit        string // point-in-time element name

	// logonSem (capacity 1) makes logon single-flight and lets a waiter give up with its context.
	logonSem chan struct{}

	mu        sync.Mutex
	token     string // X-RestSvcSessionId; "" when not logged on
	sessionID string // LogonSession/SessionId, names the session for logout
	gen       uint64 // incremented per logon, so a 401 re-logs on only if nobody else already did
}

// New validates cfg and returns a Client. It does not touch the network: the first call logs on.
func New(cfg Config) (*Client, error) {
	base, err := normalizeBaseURL(cfg.BaseURL)
	if err != nil {
		return nil, err
	}
	if cfg.Username == "" {
		return nil, errors.New("emapi: Username is required")
	}
	if cfg.Password == "" {
		return nil, errors.New("emapi: Password is required")
	}
	if cfg.Format != FormatXML && cfg.Format != FormatJSON {
		return nil, fmt.Errorf("emapi: unknown Format %d", int(cfg.Format))
	}
	c := &Client{
		base:       base,
		user:       cfg.Username,
		pass:       cfg.Password,
		format:     cfg.Format,
		timeout:    cfg.Timeout,
		maxRetries: cfg.MaxRetries,
		retryBase:  cfg.RetryBase,
		retryMax:   cfg.RetryMax,
		log:        cfg.Logger,
		observe:    cfg.Observe,
		logonSem:   make(chan struct{}, 1),
		pit:        cfg.PointInTimeElement,
	}
	if c.pit == "" {
		c.pit = PointInTimeTable
	}
	if err := ValidPointInTimeElement(c.pit); err != nil {
		return nil, fmt.Errorf("emapi: %w", err)
	}
	if c.timeout <= 0 {
		c.timeout = defaultTimeout
	}
	switch {
	case c.maxRetries == 0:
		c.maxRetries = defaultMaxRetries
	case c.maxRetries < 0:
		c.maxRetries = 0
	}
	if c.retryBase <= 0 {
		c.retryBase = defaultRetryBase
	}
	if c.retryMax <= 0 {
		c.retryMax = defaultRetryMax
	}
	if c.retryMax < c.retryBase {
		c.retryMax = c.retryBase
	}
	if c.log == nil {
		c.log = slog.Default()
	}
	c.log = c.log.With("component", "emapi")

	var hc http.Client
	if cfg.HTTPClient != nil {
		hc = *cfg.HTTPClient
	} else {
		tr, err := newTransport(cfg.CAFile, cfg.InsecureSkipVerify)
		if err != nil {
			return nil, err
		}
		hc.Transport = tr
	}
	// A shallow copy so the caller's client keeps its own settings: no cookie jar (see
	// sessionHeader), and no redirects, which would carry the token header to another URL and turn
	// a failover POST into a GET.
	hc.Jar = nil
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	c.hc = &hc
	if cfg.InsecureSkipVerify {
		c.log.Warn("TLS certificate verification of Enterprise Manager is DISABLED (InsecureSkipVerify); use CAFile instead",
			"base_url", base)
	}
	return c, nil
}

func normalizeBaseURL(raw string) (string, error) {
	if raw == "" {
		return "", errors.New("emapi: BaseURL is required")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("emapi: BaseURL: %w", err)
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return "", fmt.Errorf("emapi: BaseURL %q: scheme must be https (or http for tests)", raw)
	}
	if u.Host == "" {
		return "", fmt.Errorf("emapi: BaseURL %q has no host", raw)
	}
	if u.User != nil {
		return "", errors.New("emapi: BaseURL must not contain credentials; use Username and Password")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("emapi: BaseURL %q must not have a query or fragment", raw)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/api/"
	}
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
	}
	u.RawPath = ""
	return u.String(), nil
}

// maxIdleConnsPerHost matches the bot's poll concurrency, so a poll cycle reuses its connections.
const maxIdleConnsPerHost = 64

// maxConnsPerHost bounds the connections open to EM at once (busy and idle together).
const maxConnsPerHost = 64

func newTransport(caFile string, insecure bool) (*http.Transport, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("emapi: CAFile: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("emapi: CAFile %s holds no PEM certificate", caFile)
		}
		tc.RootCAs = pool
	}
	tc.InsecureSkipVerify = insecure //nolint:gosec // explicit operator choice, logged at New
	tr.TLSClientConfig = tc
	tr.ResponseHeaderTimeout = 0 // the per-attempt context bounds the whole exchange
	// The bot polls with up to 64 concurrent calls, all to one EM host. Go's default keeps two
	// idle connections per host, so most calls would pay a new TCP and TLS handshake.
	tr.MaxIdleConnsPerHost = maxIdleConnsPerHost
	// And never more than that many connections at all: EM answers 503 when overloaded, and a
	// DR event must not open a connection per approval (calls beyond the cap wait for one).
	tr.MaxConnsPerHost = maxConnsPerHost
	return tr, nil
}

// request describes one logical EM call; do turns it into one or more HTTP attempts.
type request struct {
	op         string // human readable, for errors: "get task task-1"
	endpoint   string // low-cardinality template for Observe and logs
	method     string
	path       string // relative to base, with query
	body       []byte
	idempotent bool // may be repeated on 503 and connection errors
	noAuth     bool // no token (Ping)
	basicAuth  bool // logon
	token      string
	noRelogon  bool // logout: a 401 means the session is already gone
	// pin, when set, is the logon SessionId the call must run in (a task read or delete). The call
	// is not sent in any other session, and after a 401 it is not repeated in the new one: task
	// IDs are numbered per session, so task-1 there is a different failover.
	pin string
}

type response struct {
	status  int
	header  http.Header
	body    []byte
	session string // SessionId of the logon session the answered attempt ran in
}

// do runs r: lazy logon, one re-logon and repeat on 401, backoff retries for idempotent calls.
// Anything else is returned as *Error. A non-idempotent call (the failover POST) is sent a second
// time only after a 401, when EM has provably not run it.
func (c *Client) do(ctx context.Context, r request) (*response, error) {
	relogged, retries := false, 0
	for {
		tok, sid, gen := r.token, "", uint64(0)
		if !r.noAuth && !r.basicAuth && tok == "" {
			var err error
			if tok, sid, gen, err = c.session(ctx, r.op); err != nil {
				return nil, err
			}
			if r.pin != "" && sid != r.pin {
				return nil, otherSession(r.op, r.pin, sid)
			}
		}
		resp, err := c.attempt(ctx, r, tok)
		if err != nil {
			if r.idempotent && retries < c.maxRetries && ctx.Err() == nil && !permanent(err) {
				retries++
				d := c.backoff(retries)
				c.log.Warn("EM call failed; retrying", "endpoint", r.endpoint, "retry", retries,
					"kind", err.Kind.String(), "delay", d)
				if werr := sleepCtx(ctx, d); werr != nil {
					return nil, c.transportError(r.op, werr)
				}
				continue
			}
			return nil, err
		}
		resp.session = sid
		switch {
		case resp.status >= 200 && resp.status < 300:
			return resp, nil
		case resp.status == http.StatusUnauthorized && !r.noAuth && !r.basicAuth && !r.noRelogon && !relogged:
			relogged = true
			c.log.Info("EM session rejected; logging on again", "endpoint", r.endpoint)
			if _, _, err := c.logonIfStale(ctx, gen, r.op); err != nil {
				return nil, err
			}
			if r.pin != "" {
				// The pinned session is gone, and with it the task: never ask the new session.
				return nil, otherSession(r.op, r.pin, c.LogonSession())
			}
			continue
		case resp.status == http.StatusServiceUnavailable && r.idempotent && retries < c.maxRetries:
			retries++
			d := c.backoff(retries)
			c.log.Warn("EM unavailable; retrying", "endpoint", r.endpoint, "retry", retries, "status", resp.status, "delay", d)
			if werr := sleepCtx(ctx, d); werr != nil {
				return nil, c.transportError(r.op, werr)
			}
			continue
		}
		e := errorFromBody(r.op, resp.status, resp.body, c.format)
		e.Message = c.redact(e.Message, r.token)
		return nil, e
	}
}

// attempt sends one HTTP request under its own Timeout and reads the whole answer.
func (c *Client) attempt(ctx context.Context, r request, tok string) (*response, *Error) {
	actx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(actx, r.method, c.base+r.path, body)
	if err != nil {
		return nil, &Error{Kind: KindBadRequest, Op: r.op, Err: err}
	}
	req.Header.Set("Accept", c.format.mediaType())
	if r.method == http.MethodPost {
		req.Header.Set("Content-Type", c.format.mediaType())
	}
	if r.basicAuth {
		req.SetBasicAuth(c.user, c.pass)
	} else if tok != "" {
		req.Header.Set(sessionHeader, tok)
	}
	start := time.Now()
	res, err := c.hc.Do(req)
	if err != nil {
		c.observeAttempt(r.endpoint, 0, time.Since(start))
		return nil, c.transportError(r.op, err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(io.LimitReader(res.Body, maxBody+1))
	if err != nil {
		c.observeAttempt(r.endpoint, 0, time.Since(start))
		return nil, c.transportError(r.op, fmt.Errorf("reading answer to HTTP %d: %w", res.StatusCode, err))
	}
	c.observeAttempt(r.endpoint, res.StatusCode, time.Since(start))
	if len(data) > maxBody {
		return nil, &Error{Kind: KindUnknown, Op: r.op, StatusCode: res.StatusCode,
			Message: fmt.Sprintf("answer larger than %d bytes", maxBody)}
	}
	return &response{status: res.StatusCode, header: res.Header, body: data}, nil
}

func (c *Client) observeAttempt(endpoint string, status int, d time.Duration) {
	if c.observe != nil {
		c.observe(endpoint, status, d)
	}
}

// transportError classifies a failure without an HTTP answer. A deadline (the caller's or the
// per-attempt Timeout) is KindTimeout; everything else, including cancellation, is KindTransport.
func (c *Client) transportError(op string, err error) *Error {
	kind := KindTransport
	var ne interface{ Timeout() bool }
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		kind = KindTimeout
	}
	return &Error{Kind: kind, Op: op, Err: err}
}

// permanent reports transport failures that a retry cannot fix: an untrusted EM certificate.
func permanent(err error) bool {
	var cv *tls.CertificateVerificationError
	return errors.As(err, &cv)
}

// redact removes the password and the current token from text that came from the server, in
// case an error page echoes the request.
func (c *Client) redact(s string, extra ...string) string {
	c.mu.Lock()
	tok := c.token
	c.mu.Unlock()
	for _, secret := range append([]string{c.pass, tok}, extra...) {
		if secret != "" && strings.Contains(s, secret) {
			s = strings.ReplaceAll(s, secret, "[redacted]")
		}
	}
	return s
}

// decodeError wraps a decoding failure of a 2xx answer.
func (c *Client) decodeError(op string, status int, err error) *Error {
	return &Error{Kind: KindUnknown, Op: op, StatusCode: status, Message: "unexpected answer",
		Err: errors.New(c.redact(err.Error()))}
}

// Ping checks that EM answers GET /api/, which needs no logon.
func (c *Client) Ping(ctx context.Context) error {
	_, err := c.do(ctx, request{op: "ping", endpoint: "GET /", method: http.MethodGet, idempotent: true, noAuth: true})
	return err
}

// ServerTime returns EM's clock as its Date header says (GET /api/, no logon needed), to compare
// with ours: failover times are sent as zone-less UTC, so a skewed EM clock shifts them.
func (c *Client) ServerTime(ctx context.Context) (time.Time, error) {
	resp, err := c.do(ctx, request{op: "read EM's clock", endpoint: "GET /", method: http.MethodGet, idempotent: true, noAuth: true})
	if err != nil {
		return time.Time{}, err
	}
	d := resp.header.Get("Date")
	t, perr := http.ParseTime(d)
	if perr != nil {
		return time.Time{}, &Error{Kind: KindUnknown, Op: "read EM's clock", StatusCode: resp.status, Message: "no readable Date header: " + quoteShort(d)}
	}
	return t.UTC(), nil
}
