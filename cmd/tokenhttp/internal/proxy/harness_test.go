package proxy

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tokenhttp/tokenhttp/internal/testsupport"
	"github.com/tokenhttp/tokenhttp/source/sourcetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer = testsupport.SyncBuffer

// harness is a proxy started in-process on loopback.
type harness struct {
	t          *testing.T
	p          *Proxy
	url, admin string // http://host:port of the listener and the admin
	dir        string // holds config.yaml and the secret files
	logs       *syncBuffer
	client     *http.Client
}

// secretFile writes a secret into dir and returns its path.
func secretFile(t *testing.T, dir, name, v string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(v+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// startProxy writes cfg (a YAML text; "{{dir}}" is replaced by the
// harness's directory) and starts a proxy on it. The proxy is shut down
// when t ends.
func startProxy(t *testing.T, dir, cfg string) *harness {
	t.Helper()
	return startProxyWith(t, dir, cfg, nil)
}

// startProxyWith is startProxy with roots, if not nil, trusted by the
// upstream and token transports.
func startProxyWith(t *testing.T, dir, cfg string, roots *x509.CertPool) *harness {
	t.Helper()
	h := &harness{t: t, dir: dir, logs: &syncBuffer{}}
	path := filepath.Join(dir, "config.yaml")
	h.write(cfg)
	c, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	up := &http.Transport{MaxIdleConnsPerHost: 100}
	tc := &http.Client{Transport: &http.Transport{}}
	if roots != nil {
		up.TLSClientConfig = &tls.Config{RootCAs: roots}
		tc.Transport.(*http.Transport).TLSClientConfig = &tls.Config{RootCAs: roots}
	}
	p, err := New(context.Background(), c, Options{
		ConfigPath: path, Logger: slog.New(slog.NewJSONHandler(h.logs, nil)),
		Upstream: up, TokenClient: tc, Getenv: func(string) string { return "" },
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	h.p = p
	h.url, h.admin = "http://"+p.Addr(), "http://"+p.AdminAddr()
	h.client = &http.Client{Transport: &http.Transport{}}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := p.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		h.client.CloseIdleConnections()
		up.CloseIdleConnections()
		tc.CloseIdleConnections()
	})
	return h
}

// write replaces the config file.
func (h *harness) write(cfg string) {
	h.t.Helper()
	cfg = strings.ReplaceAll(cfg, "{{dir}}", h.dir)
	if err := os.WriteFile(filepath.Join(h.dir, "config.yaml"), []byte(cfg), 0o600); err != nil {
		h.t.Fatal(err)
	}
}

// do sends a request to the proxy and returns the status, headers and body.
func (h *harness) do(method, path, auth string, body []byte) (int, http.Header, []byte) {
	h.t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, h.url+path, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

// ready fetches /readyz.
func (h *harness) ready() (int, Readiness) {
	h.t.Helper()
	resp, err := h.client.Get(h.admin + "/readyz")
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	var rd Readiness
	if err := json.NewDecoder(resp.Body).Decode(&rd); err != nil {
		h.t.Fatal(err)
	}
	return resp.StatusCode, rd
}

// waitReady waits until /readyz answers want.
func (h *harness) waitReady(want int) Readiness {
	h.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		code, rd := h.ready()
		if code == want {
			return rd
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("/readyz: %d %+v, want %d", code, rd, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// noSecret fails if the logs hold any of the secrets.
func (h *harness) noSecret(secrets ...string) {
	h.t.Helper()
	logs := h.logs.String()
	for _, s := range secrets {
		if s != "" && strings.Contains(logs, s) {
			h.t.Errorf("the logs hold the secret %q:\n%s", s, logs)
		}
	}
}

// echo is the test upstream's JSON reply.
type echo struct {
	Path string `json:"path"`
	Auth string `json:"auth"`
	Body int    `json:"body"`
}

// newUpstream starts an API that echoes the path, the Authorization and
// the body size it got, closed when t ends.
func newUpstream(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(echo{Path: r.URL.EscapedPath(), Auth: r.Header.Get("Authorization"), Body: int(n)})
	}))
	t.Cleanup(srv.Close)
	return srv
}

// newEmulator starts a Standard emulator whose tokens live lifetime (0:
// the default), closed when t ends.
func newEmulator(t *testing.T, o sourcetest.Options) *sourcetest.Server {
	srv := sourcetest.NewStandard(o)
	t.Cleanup(srv.Close)
	return srv
}

// routeYAML is a route to upstream with a Standard source on tokenURL.
func routeYAML(prefix, upstream, tokenURL, secretPath string, extra ...string) string {
	s := fmt.Sprintf(`  - prefix: %s
    upstream: %s
    source:
      token_url: %s
      client_id: %s
      client_secret_file: %s
`, prefix, upstream, tokenURL, sourcetest.DefaultClientID, secretPath)
	for _, e := range extra {
		s += "      " + e + "\n"
	}
	return s
}

func filepathJoin(dir, name string) string { return filepath.Join(dir, name) }

func writeSecret(tb testing.TB, name, v string) {
	tb.Helper()
	if err := os.WriteFile(name, []byte(v+"\n"), 0o600); err != nil {
		tb.Fatal(err)
	}
}

// authOf sends GET path and returns the status and the Authorization the
// upstream (newUpstream) got.
func (h *harness) authOf(path string) (int, string) {
	h.t.Helper()
	code, _, b := h.do("GET", path, "", nil)
	var e echo
	_ = json.Unmarshal(b, &e)
	return code, e.Auth
}

// waitNewToken waits up to 10 s for GET path to get 200 with an
// Authorization other than old.
func (h *harness) waitNewToken(path, old string) {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, got := h.authOf(path)
		if code == 200 && got != old {
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("GET %s after the endpoint came back = %d %q, want 200 with a new token\n%s", path, code, got, h.logs)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// newProxy parses text and builds a proxy on it, neither started nor shut
// down, that logs JSON to the returned buffer; o gives the other options,
// and an empty environment unless o.Getenv is set.
func newProxy(t *testing.T, text string, o Options) (*Proxy, *syncBuffer) {
	t.Helper()
	cfg, err := ParseConfig([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	o.Logger = slog.New(slog.NewJSONHandler(logs, nil))
	if o.Getenv == nil {
		o.Getenv = func(string) string { return "" }
	}
	p, err := New(context.Background(), cfg, o)
	if err != nil {
		t.Fatal(err)
	}
	return p, logs
}

// tokenReply is a token endpoint's JSON answer to r.
func tokenReply(r *http.Request, status int, body string) *http.Response {
	return &http.Response{StatusCode: status, Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(strings.NewReader(body)), ContentLength: int64(len(body)), Request: r}
}

// echoAuth is an upstream, without a network, that answers 200 with the
// request's Authorization as its body.
var echoAuth = roundTripperFunc(func(r *http.Request) (*http.Response, error) {
	b := r.Header.Get("Authorization")
	return &http.Response{StatusCode: 200, Header: http.Header{}, Body: io.NopCloser(strings.NewReader(b)),
		ContentLength: int64(len(b)), Request: r}, nil
})

// serve sends GET path to p's handler and returns the status and the body.
func serve(p *Proxy, path string) (int, string) {
	w := httptest.NewRecorder()
	p.Handler().ServeHTTP(w, httptest.NewRequest("GET", path, nil))
	return w.Code, w.Body.String()
}

// tokenRoutes are two routes to upstream over em, each with its secret
// file; extra goes to /a's source.
func tokenRoutes(upstream string, em *sourcetest.Server, secA, secB string, extra ...string) string {
	opts := []string{"retry_max_attempts: 1", "fetch_timeout: 2s"}
	return "listen: 127.0.0.1:0\nadmin: 127.0.0.1:0\nroutes:\n" +
		routeYAML("/a", upstream, em.TokenURL, secA, append(opts, extra...)...) +
		routeYAML("/b", upstream, em.TokenURL, secB, opts...)
}

// tokenRouteProxy is a proxy on tokenRoutes, /a and /b to one upstream
// over one emulator, each with its secret file.
type tokenRouteProxy struct {
	*harness
	em         *sourcetest.Server
	up         *httptest.Server
	secA, secB string
}

// startTokenRoutes starts a tokenRouteProxy and waits for it to be ready.
func startTokenRoutes(t *testing.T) *tokenRouteProxy {
	t.Helper()
	dir := t.TempDir()
	r := &tokenRouteProxy{
		secA: secretFile(t, dir, "secret-a", sourcetest.DefaultClientSecret),
		secB: secretFile(t, dir, "secret-b", sourcetest.DefaultClientSecret),
		em:   newEmulator(t, sourcetest.Options{}),
		up:   newUpstream(t),
	}
	r.harness = startProxy(t, dir, r.config())
	r.waitReady(200)
	return r
}

// config is the proxy's tokenRoutes, with extra in /a's source.
func (r *tokenRouteProxy) config(extra ...string) string {
	return tokenRoutes(r.up.URL, r.em, r.secA, r.secB, extra...)
}

// vaultRoute is a route /v to the VaultID emulator at url, its client
// secret in sec and its one-time password in otp; each of extra is one
// more line of its source.
func vaultRoute(url, sec, otp string, extra ...string) string {
	s := `  - prefix: /v
    upstream: ` + url + `/resource
    source:
      provider: vaultid
      token_url: ` + url + `/oauth
      client_id: ` + sourcetest.DefaultClientID + `
      client_secret_file: ` + sec + `
      username: "` + sourcetest.DefaultVaultIDUsername + `"
      password_file: ` + otp + `
`
	for _, e := range extra {
		s += "      " + e + "\n"
	}
	return s
}

// startVault starts a VaultID emulator, closed when t ends, and writes
// into a new directory its client secret, returned as sec, and the
// one-time password 123456, returned as otp.
func startVault(t *testing.T) (vault *sourcetest.Server, dir, sec, otp string) {
	t.Helper()
	dir = t.TempDir()
	sec = secretFile(t, dir, "secret", sourcetest.DefaultClientSecret)
	otp = secretFile(t, dir, "otp", "123456")
	vault = sourcetest.NewVaultID(sourcetest.Options{})
	t.Cleanup(vault.Close)
	return vault, dir, sec, otp
}
