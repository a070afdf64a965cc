package sourcetest

import (
	"io"
	"net/http"
	"strings"
	"time"
)

// tokenFor finds the valid token that Authorization value auth carries, or
// says why there is none. s.mu must be held.
func (s *Server) tokenFor(auth string, now time.Time) (reason string) {
	if auth == "" {
		return "missing access token"
	}
	var t *issued
	if scheme, tok, ok := strings.Cut(auth, " "); ok && strings.EqualFold(scheme, "Bearer") {
		if c := s.tokens[tok]; c != nil && c.header == "" {
			t = c
		}
	} else {
		t = s.headers[auth]
	}
	switch {
	case t == nil:
		return "unknown access token"
	case t.revoked:
		return "access token revoked"
	case !now.Before(t.expiry):
		return "access token expired"
	}
	return ""
}

// maxResourceBody is the most the resource reads of a request body.
const maxResourceBody = 1 << 20

// serveResource is the protected resource. It reports the method and the
// body size, never anything the request carried.
func (s *Server) serveResource(w http.ResponseWriter, r *http.Request) {
	n, _ := io.Copy(io.Discard, io.LimitReader(r.Body, maxResourceBody))
	s.mu.Lock()
	s.resourceRequests++
	reason := s.tokenFor(r.Header.Get("Authorization"), time.Now())
	s.mu.Unlock()
	writeResource(w, r.Method, n, reason)
}

// writeResource writes the protected resource's reply: 401 invalid_token
// saying reason, or, when reason is "", 200 with the method and the size
// of the body, never anything the request carried.
func writeResource(w http.ResponseWriter, method string, bodyBytes int64, reason string) {
	if reason != "" {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		writeJSON(w, http.StatusUnauthorized, jsonType, map[string]string{
			"error": "invalid_token", "error_description": reason})
		return
	}
	writeJSON(w, http.StatusOK, jsonType, struct {
		OK        bool   `json:"ok"`
		Method    string `json:"method"`
		BodyBytes int64  `json:"body_bytes"`
	}{true, method, bodyBytes})
}
