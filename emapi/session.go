package emapi

import (
	"context"
	"errors"
	"net/http"
)

// logonPath asks for the newest API version the server has; the CDP calls exist from v1.6 on.
const logonPath = "sessionMngr/?v=latest"

// session returns the current token, its logon SessionId and its generation, logging on first if
// there is none.
func (c *Client) session(ctx context.Context, op string) (string, string, uint64, error) {
	c.mu.Lock()
	tok, sid, gen := c.token, c.sessionID, c.gen
	c.mu.Unlock()
	if tok != "" {
		return tok, sid, gen, nil
	}
	tok, gen, err := c.logonIfStale(ctx, gen, op)
	if err != nil {
		return "", "", 0, err
	}
	c.mu.Lock()
	if c.gen == gen {
		sid = c.sessionID
	} else {
		sid = "" // a newer logon replaced it meanwhile; the caller's 401 handling copes
	}
	c.mu.Unlock()
	return tok, sid, gen, nil
}

// LogonSession returns the SessionId (the GUID of the LogonSession document, not the token) of
// the current EM logon session, or "" when not logged on. EM's task IDs mean something only
// within the logon session that created them (task-1 exists again in the next one), so a task ID
// is stored together with this value and read only through TaskIn, pinned to it.
func (c *Client) LogonSession() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sessionID
}

// logonIfStale logs on unless the token has changed since generation stale was handed out. It is
// single-flight: N callers that saw the same expired token queue on logonSem, the first logs on,
// the rest find a newer generation and reuse its token. So one expiry costs one logon.
func (c *Client) logonIfStale(ctx context.Context, stale uint64, op string) (string, uint64, error) {
	select {
	case c.logonSem <- struct{}{}:
	case <-ctx.Done():
		return "", 0, c.transportError(op, ctx.Err())
	}
	defer func() { <-c.logonSem }()

	c.mu.Lock()
	if c.token != "" && c.gen != stale {
		tok, gen := c.token, c.gen
		c.mu.Unlock()
		return tok, gen, nil
	}
	c.mu.Unlock()

	tok, sid, err := c.logon(ctx)
	if err != nil {
		return "", 0, err
	}
	c.mu.Lock()
	c.token, c.sessionID = tok, sid
	c.gen++
	gen := c.gen
	c.mu.Unlock()
	c.log.Info("logged on to Enterprise Manager", "user", c.user)
	return tok, gen, nil
}

// logon creates a logon session: POST with Basic auth, 201, token in the X-RestSvcSessionId header.
// The body's SessionId is kept only to log out.
func (c *Client) logon(ctx context.Context) (string, string, error) {
	const op = opLogon
	resp, err := c.do(ctx, request{op: op, endpoint: "POST /" + logonPath, method: http.MethodPost,
		path: logonPath, idempotent: true, basicAuth: true})
	if err != nil {
		return "", "", err
	}
	tok := resp.header.Get(sessionHeader)
	if tok == "" {
		return "", "", &Error{Kind: KindUnknown, Op: op, StatusCode: resp.status,
			Message: "answer has no " + sessionHeader + " header"}
	}
	sid, derr := decodeLogonSession(resp.body, sniffFormat(resp.body, c.format))
	if derr != nil || !validID(sid) {
		// Still usable; only logout needs the SessionId, and the session idles out on its own.
		c.log.Warn("EM logon answer has no usable SessionId; Close will not log out", "status", resp.status)
		sid = ""
	}
	return tok, sid, nil
}

// Close logs out (DELETE /logonSessions/{SessionId}) if logged on. A session EM already dropped
// (401, 404) counts as closed. The Client may be used again afterwards; it will log on anew.
func (c *Client) Close(ctx context.Context) error {
	c.mu.Lock()
	tok, sid := c.token, c.sessionID
	c.token, c.sessionID = "", ""
	c.gen++
	c.mu.Unlock()
	if tok == "" || sid == "" {
		return nil
	}
	_, err := c.do(ctx, request{op: "log off", endpoint: "DELETE /logonSessions/{id}", method: http.MethodDelete,
		path: "logonSessions/" + sid, token: tok, noRelogon: true})
	var e *Error
	if errors.As(err, &e) && (e.Kind == KindUnauthorized || e.Kind == KindNotFound) {
		return nil
	}
	return err
}

// Logon makes sure the client is logged on (logging on now if it is not) and returns the logon
// session's SessionId. Calls log on lazily by themselves; this is for checks such as doctor.
func (c *Client) Logon(ctx context.Context) (string, error) {
	if _, sid, _, err := c.session(ctx, opLogon); err != nil {
		return "", err
	} else if sid != "" {
		return sid, nil
	}
	return c.LogonSession(), nil
}
