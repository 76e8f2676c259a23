package emsim

import (
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"time"
)

// tokenHeader carries the session token on every authenticated call (and in the logon answer).
// The logon answer also sets it as a cookie of the same name (Path=/api), and a request that
// carries that cookie is served in the cookie's session even when the header names another, as
// EM does: a client with a cookie jar that holds an old session's cookie acts in the wrong
// session (or gets a 401 for an expired one).
const tokenHeader = "X-RestSvcSessionId"

// requestToken is the session token of r: the X-RestSvcSessionId cookie when present and
// non-empty, else the header.
func requestToken(r *http.Request) string {
	if ck, err := r.Cookie(tokenHeader); err == nil && ck.Value != "" {
		return ck.Value
	}
	return r.Header.Get(tokenHeader)
}

// supportedVersions are the API versions GET /api/ advertises and /sessionMngr/?v= accepts
// (besides "latest").
var supportedVersions = []string{"v1_5", "v1_6", "v1_7"}

// logonSession is one successful logon. The token (header) and the SessionId (body GUID, used to
// log out) are different values, as on EM.
type logonSession struct {
	id       string // SessionId GUID
	token    string
	user     string
	lastUsed time.Time
	nextTask int // task numbering is per logon session: task-1, task-2, ...
}

func (s *Server) getEnterpriseManager(c *call) {
	doc := enterpriseManagerDoc{Links: []link{{Rel: "Create", Href: c.base + "/sessionMngr/?v=latest", Type: "LogonSession"}}}
	for _, v := range supportedVersions {
		doc.Versions = append(doc.Versions, supportedVersion{
			Name:  v,
			Links: []link{{Rel: "Create", Href: c.base + "/sessionMngr/?v=" + v, Type: "LogonSession"}},
		})
	}
	c.ok(http.StatusOK, doc)
}

// logon is POST /sessionMngr/?v=latest with Basic auth. The version parameter is required: a
// client that forgets it would silently get an older API on some EM releases.
func (s *Server) logon(c *call) {
	v := c.r.URL.Query().Get("v")
	known := v == "latest"
	for _, sv := range supportedVersions {
		known = known || v == sv
	}
	if !known {
		c.fail(http.StatusBadRequest, "Unsupported or missing API version (query parameter v): "+v)
		return
	}
	user, pass, ok := c.r.BasicAuth()
	if !ok || subtle.ConstantTimeCompare([]byte(user), []byte(s.cfg.Username)) != 1 ||
		subtle.ConstantTimeCompare([]byte(pass), []byte(s.cfg.Password)) != 1 {
		c.w.Header().Set("WWW-Authenticate", "Basic Realm=RestSvc")
		c.fail(http.StatusUnauthorized, "Authentication failed: invalid user name or password")
		return
	}
	sess := &logonSession{
		id:       s.newID(),
		token:    base64.StdEncoding.EncodeToString([]byte(s.newID())),
		user:     user,
		lastUsed: c.now,
	}
	s.mu.Lock()
	s.sessions[sess.token] = sess
	s.sessionsByID[sess.id] = sess
	s.logons++
	s.mu.Unlock()

	href := c.base + "/logonSessions/" + sess.id
	c.w.Header().Set(tokenHeader, sess.token)
	http.SetCookie(c.w, &http.Cookie{Name: tokenHeader, Value: sess.token, Path: "/api"})
	c.ok(http.StatusCreated, logonSessionDoc{
		Href: href,
		Type: "LogonSession",
		Links: []link{
			{Rel: "Up", Href: c.base + "/", Type: "EnterpriseManager"},
			{Rel: "Delete", Href: href, Type: "LogonSession"},
		},
		UserName:  user,
		SessionID: sess.id,
	})
}

// logout is DELETE /logonSessions/{SessionId}; the token used must belong to that session.
func (s *Server) logout(c *call) {
	s.mu.Lock()
	sess, ok := s.sessionsByID[c.params[0]]
	if ok && sess == c.sess {
		delete(s.sessions, sess.token)
		delete(s.sessionsByID, sess.id)
	}
	s.mu.Unlock()
	if !ok || sess != c.sess {
		c.fail(http.StatusNotFound, "Logon session "+c.params[0]+" was not found")
		return
	}
	c.w.WriteHeader(http.StatusNoContent)
}

// authenticate returns the live session for token and marks it used at now, or nil and the 401
// message. A session idle for longer than SessionIdle is removed.
func (s *Server) authenticate(token string, now time.Time) (*logonSession, string) {
	if token == "" {
		return nil, "Authentication required: the " + tokenHeader + " header is missing"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.sessions[token]
	if !ok {
		return nil, "Logon session has expired or does not exist"
	}
	if now.Sub(sess.lastUsed) > s.cfg.SessionIdle {
		delete(s.sessions, sess.token)
		delete(s.sessionsByID, sess.id)
		return nil, "Logon session has expired or does not exist"
	}
	if now.After(sess.lastUsed) {
		sess.lastUsed = now
	}
	return sess, ""
}
