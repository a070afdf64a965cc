package proxy

import (
	"context"
	"encoding/pem"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tokenhttp/tokenhttp/source/sourcetest"
)

// TestCAFile: source.ca_file is trusted for the token endpoint and
// upstream_ca_file for the upstream, on top of the system roots, with the
// proxy's default transports (no test roots): a route to an mTLS
// emulator whose CA is no system root works.
func TestCAFile(t *testing.T) {
	emu := sourcetest.NewMTLS(sourcetest.Options{}, sourcetest.MTLSOptions{})
	defer emu.Close()
	dir := t.TempDir()
	both, ca := filepath.Join(dir, "both.pem"), filepath.Join(dir, "ca.pem")
	if err := sourcetest.WritePEM(both, both, emu.CA.ClientCertificate(sourcetest.DefaultClientID)); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: emu.CA.Certificate.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	text := "listen: 127.0.0.1:0\nadmin: 127.0.0.1:0\nroutes:\n  - prefix: /a\n    upstream: " + emu.URL + "\n    upstream_ca_file: " + ca +
		"\n    strip_prefix: true\n    source:\n      token_url: " + emu.TokenURL + "\n      client_id: " + sourcetest.DefaultClientID +
		"\n      client_certificate_files: " + both + "\n      ca_file: " + ca + "\n"
	cfg, err := ParseConfig([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	if err := Check(cfg, func(string) string { return "" }); err != nil {
		t.Fatalf("Check: %v", err)
	}
	logs := &syncBuffer{}
	p, err := New(context.Background(), cfg, Options{Logger: slog.New(slog.NewJSONHandler(logs, nil)), Getenv: func(string) string { return "" }})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: &http.Transport{}}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := p.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		client.CloseIdleConnections()
	}()
	resp, err := client.Get("http://" + p.Addr() + "/a/resource")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("through the proxy: HTTP %d %s, want 200\nlogs:\n%s", resp.StatusCode, body, logs)
	}

	// Without the CA files, the emulator's certificates are not trusted.
	for _, drop := range []string{"    upstream_ca_file: " + ca + "\n", "      ca_file: " + ca + "\n"} {
		p, _ := newProxy(t, strings.Replace(text, drop, "", 1), Options{})
		rec := httptest.NewRecorder()
		req, _ := http.NewRequest(http.MethodGet, "http://proxy/a/resource", nil)
		p.Handler().ServeHTTP(rec, req)
		if rec.Code == http.StatusOK {
			t.Errorf("without %q: HTTP 200, want a failure", strings.TrimSpace(drop))
		}
		if err := p.Shutdown(context.Background()); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	}
}

// TestCAFileErrors: a CA file that is missing or holds no certificate
// is refused naming the key and its line.
func TestCAFileErrors(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.pem")
	if err := os.WriteFile(empty, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.pem")
	for _, c := range []struct{ name, text, want string }{
		{"source.ca_file with no certificate", routeWith("      ca_file: " + empty + "\n"), "line 7: source.ca_file:"},
		{"source.ca_file missing", routeWith("      ca_file: " + missing + "\n"), "line 7: source.ca_file:"},
		{"source.ca_file empty", routeWith("      ca_file: \"\"\n"), "line 7: source.ca_file:"},
		{"upstream_ca_file with no certificate", strings.Replace(routeWith(""), "    source:\n", "    upstream_ca_file: "+empty+"\n    source:\n", 1), "line 4: upstream_ca_file:"},
		{"upstream_ca_file missing", strings.Replace(routeWith(""), "    source:\n", "    upstream_ca_file: "+missing+"\n    source:\n", 1), "line 4: upstream_ca_file:"},
		{"upstream_ca_file on http", strings.Replace(strings.Replace(routeWith(""), "https://a.example", "http://127.0.0.1:1", 1), "    source:\n", "    upstream_ca_file: "+empty+"\n    source:\n", 1), "line 4: upstream_ca_file:"},
	} {
		_, err := ParseConfig([]byte(c.text))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error containing %q", c.name, err, c.want)
		}
	}
}
