package source

import (
	"context"
	"time"

	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"

	"github.com/tokenhttp/tokenhttp/internal/instrument"

	"github.com/tokenhttp/tokenhttp/internal/certs"
)

// presented is the client certificate last presented and its SHA-256
// thumbprint (RFC 8705 §3.1, base64url), recorded at each handshake.
type presented struct {
	cert  *tls.Certificate
	thumb string
}

// clientCert wraps Config.ClientCertificate: it records what each
// handshake presents, so that the store key and a token's binding follow
// a rotated certificate.
type clientCert struct {
	get  func(*tls.CertificateRequestInfo) (*tls.Certificate, error)
	last atomic.Pointer[presented]
}

// getClientCertificate is the tls.Config.GetClientCertificate of the
// token requests and, with no WithBase, of API calls.
func (c *clientCert) getClientCertificate(cri *tls.CertificateRequestInfo) (*tls.Certificate, error) {
	cert, err := c.get(cri)
	if err != nil || cert == nil {
		return cert, err
	}
	c.note(cert)
	return cert, nil
}

// note records cert as the certificate now presented and returns its
// record; an unchanged certificate keeps its record (the same pointer).
func (c *clientCert) note(cert *tls.Certificate) *presented {
	if p := c.last.Load(); p != nil && p.cert == cert {
		return p
	}
	p := &presented{cert: cert, thumb: thumbprint(cert)}
	if old := c.last.Load(); old != nil && old.thumb == p.thumb {
		return old // the same certificate, reloaded
	}
	c.last.Store(p)
	return p
}

// current asks for the certificate that the next handshake presents and
// records it; nil if there is none or asking fails (the handshake will
// say why).
func (c *clientCert) current() *presented {
	cert, err := c.get(&tls.CertificateRequestInfo{Version: tls.VersionTLS13})
	if err != nil || cert == nil {
		return c.last.Load()
	}
	return c.note(cert)
}

// thumbprint is the base64url SHA-256 of cert's leaf, "" without one.
func thumbprint(cert *tls.Certificate) string {
	if cert == nil || len(cert.Certificate) == 0 {
		return ""
	}
	return certs.ThumbprintDER(cert.Certificate[0])
}

// mtlsClient returns the *http.Client for token requests of a Config
// with a ClientCertificate: HTTPClient's (or http.DefaultTransport's)
// transport cloned, presenting the certificate.
func mtlsClient(c *Config, cc *clientCert) (*http.Client, error) {
	hc := &http.Client{}
	var base http.RoundTripper
	if c.HTTPClient != nil {
		cp := *c.HTTPClient
		hc = &cp
		base = cp.Transport
	}
	t, err := certs.Transport(base, cc.getClientCertificate)
	if err != nil {
		return nil, configError("HTTPClient", "Config.HTTPClient: its Transport is a %T: a client certificate (Config.ClientCertificate) needs an *http.Transport, or a nil Transport", base)
	}
	hc.Transport = t
	return hc, nil
}

// TLSClientConfig returns a TLS configuration that presents the source's
// client certificate (Config.ClientCertificate, asked at each handshake),
// with the roots of Config.HTTPClient's transport (the system roots
// without one), or nil if the source has no client certificate.
// A tokenhttp.Transport over the source with no WithBase uses it on API
// calls, as certificate-bound tokens (RFC 8705 §3) require; with WithBase,
// set it on your *http.Transport (or copy its GetClientCertificate).
// Each call returns a new *tls.Config, the caller's to modify.
func (s *CachedSource) TLSClientConfig() *tls.Config {
	if s.r.cert == nil {
		return nil
	}
	if t, ok := s.ep.client.Transport.(*http.Transport); ok && t.TLSClientConfig != nil {
		return t.TLSClientConfig.Clone()
	}
	return &tls.Config{GetClientCertificate: s.r.cert.getClientCertificate}
}

// certKey is a store key for one presented certificate.
type certKey struct {
	p   *presented
	key string
}

// storeKeyNow is the store key: the Config's, with, for a source with a
// client certificate, the thumbprint of the certificate now presented, so
// a rotated certificate never gets a token bound to the old one.
func (s *CachedSource) storeKeyNow() string {
	if s.r.cert == nil {
		return s.key
	}
	p := s.r.cert.current()
	if p == nil {
		return s.key
	}
	if k := s.certKey.Load(); k != nil && k.p == p {
		return k.key
	}
	var b keyBuilder
	b.str(s.key)
	b.str("x5t#S256")
	b.str(p.thumb)
	k := &certKey{p: p, key: hex.EncodeToString(b.h.Sum(nil))}
	s.certKey.Store(k)
	return k.key
}

// boundTo returns the certificate record tok is bound to: the one now
// presented, unless tok's confirmation (cnf.x5t#S256, RFC 8705 §3.1, in
// the reply or in a JWT access token) names another certificate. Then
// the token is renewed at the next call, over a new connection.
func (s *CachedSource) boundTo(tok *Token) *presented {
	if s.r.cert == nil {
		return nil
	}
	p := s.r.cert.current()
	x5t := confirmation(tok)
	if x5t == "" || (p != nil && x5t == p.thumb) {
		return p
	}
	// Bound to another certificate: an idle connection opened with the
	// old one answered. The next fetch opens a new one.
	s.certChanged()
	return &presented{thumb: x5t}
}

// certChanged closes the idle token connections: they present the
// certificate they were opened with, and the next fetch must present the
// new one.
func (s *CachedSource) certChanged() { s.ep.client.CloseIdleConnections() }

// certBound reports whether e's token is bound to the certificate now
// presented; always true without a client certificate. It allocates
// nothing: it compares the record of the last handshake with e's.
func (s *CachedSource) certBound(e *entry) bool {
	return s.r.cert == nil || e.cert == s.r.cert.last.Load()
}

// confirmation returns tok's cnf.x5t#S256: the reply's, or else that of
// the access token's payload when it is a JWT (read, not verified).
func confirmation(tok *Token) string {
	if x := x5tOf(tok.Extra["cnf"]); x != "" {
		return x
	}
	parts := strings.Split(tok.AccessToken, ".")
	if len(parts) != 3 || len(parts[1]) > maxReplyBytes {
		return ""
	}
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return ""
	}
	var claims struct {
		Cnf any `json:"cnf"`
	}
	if json.Unmarshal(b, &claims) != nil {
		return ""
	}
	return x5tOf(claims.Cnf)
}

func x5tOf(cnf any) string {
	m, _ := cnf.(map[string]any)
	s, _ := m["x5t#S256"].(string)
	return s
}

// ClientCertificateFiles returns a Config.ClientCertificate that presents
// the PEM certificate chain (leaf first) in certFile with the PEM private
// key in keyFile (they may be the same file), reloaded when either file
// changes: each handshake looks at the files at most once per second, and
// a reload that fails (a certificate written before its key) keeps the
// certificate loaded before. New errors name the files and say what is
// wrong: a key that does not match, a certificate expired or not yet
// valid (and when). Errors never hold the key.
func ClientCertificateFiles(certFile, keyFile string) (func(*tls.CertificateRequestInfo) (*tls.Certificate, error), error) {
	f, err := certs.NewPEMFiles(certFile, keyFile, nil)
	if err != nil {
		return nil, fmt.Errorf("source: client certificate %s, key %s: %w", certFile, keyFile, err)
	}
	return f.GetClientCertificate, nil
}

// ClientCertificatePKCS12 is ClientCertificateFiles for a PKCS#12 file
// (.p12, .pfx) protected by password. A wrong password is an error that
// says so (and matches ErrIncorrectPassword); neither the password nor the
// key is ever in an error.
func ClientCertificatePKCS12(file, password string) (func(*tls.CertificateRequestInfo) (*tls.Certificate, error), error) {
	f, err := certs.NewPKCS12File(file, password, nil)
	if err != nil {
		return nil, fmt.Errorf("source: client certificate %s: %w", file, err)
	}
	return f.GetClientCertificate, nil
}

// noteExpiry records, on the fetch's span and metrics, a client
// certificate that expires within a week (certs.ExpiryWarning).
func (s *CachedSource) noteExpiry(ctx context.Context, rec *instrument.Fetch) {
	if s.r.cert == nil {
		return
	}
	p := s.r.cert.current()
	if p == nil || p.cert == nil {
		return
	}
	if notAfter, soon := certs.ExpiresSoon(p.cert, time.Now()); soon {
		rec.CertificateExpiring(ctx, notAfter)
	}
}
