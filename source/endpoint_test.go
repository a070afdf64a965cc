package source_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/tokenhttp/tokenhttp/source"
	"github.com/tokenhttp/tokenhttp/source/sourcetest"
)

func writeReply(w http.ResponseWriter, status int, contentType, body string) {
	if contentType != "" {
		w.Header().Set("Content-Type", contentType)
	}
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

func writeJSON(w http.ResponseWriter, status int, body string) {
	writeReply(w, status, "application/json", body)
}

// tokenJSON is a token reply; refresh "" leaves refresh_token out.
func tokenJSON(access string, expiresIn int, refresh string) string {
	m := map[string]any{"access_token": access, "token_type": "bearer", "expires_in": expiresIn}
	if refresh != "" {
		m["refresh_token"] = refresh
	}
	b, _ := json.Marshal(m)
	return string(b)
}

const (
	testClientID     = "test-client"
	testClientSecret = "cs-Vb40nE6secret"
	testPassword     = "pw-Gf13yU8secret"
)

// clientConfig is a client_credentials Config for the test server at
// baseURL, whose token endpoint is /oauth/token.
func clientConfig(baseURL string) source.Config {
	return source.Config{TokenURL: baseURL + "/oauth/token", ClientID: testClientID, ClientSecret: testClientSecret}
}

// passwordConfig is a password grant Config for the test server at
// baseURL, whose token endpoint is /oauth/token.
func passwordConfig(baseURL string) source.Config {
	return source.Config{TokenURL: baseURL + "/oauth/token", GrantType: source.Password, ClientID: testClientID,
		ClientSecret: testClientSecret, Username: "alice", Password: testPassword}
}

// fetchToken makes one Token call on a new source for cfg.
func fetchToken(t *testing.T, cfg source.Config) (*source.Token, error) {
	t.Helper()
	return callToken(newSource(t, cfg))
}

// tokenError returns err as a *source.Error, failing the test if it is not.
func tokenError(t *testing.T, err error) *source.Error {
	t.Helper()
	var te *source.Error
	if !errors.As(err, &te) {
		t.Fatalf("error = %v (%T), want a *source.Error", err, err)
	}
	return te
}

func TestRedirectNotFollowed(t *testing.T) {
	for _, status := range []int{301, 302, 303, 307, 308} {
		for _, userClient := range []bool{false, true} {
			t.Run(fmt.Sprintf("%d user client %v", status, userClient), func(t *testing.T) {
				target := newEmulator(t, sourcetest.NewStandard, sourcetest.Options{})
				var hits atomic.Int64
				srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
					hits.Add(1)
					w.Header().Set("Location", target.TokenURL)
					w.WriteHeader(status)
				})
				cfg := standardConfig(srv.URL + "/oauth/token")
				var follow func(*http.Request, []*http.Request) error
				if userClient {
					follow = func(*http.Request, []*http.Request) error { return nil }
					cfg.HTTPClient = &http.Client{CheckRedirect: follow}
				}
				_, err := fetchToken(t, cfg)
				te := tokenError(t, err)
				if te.StatusCode != status {
					t.Errorf("StatusCode = %d, want %d", te.StatusCode, status)
				}
				if got := target.TokenRequests(); got != 0 {
					t.Errorf("the redirect target got %d requests, want 0", got)
				}
				if got := hits.Load(); got != 1 {
					t.Errorf("the token endpoint got %d requests, want 1", got)
				}
				if strings.Contains(err.Error(), cfg.ClientSecret) {
					t.Errorf("error shows the client secret: %v", err)
				}
				if userClient && (cfg.HTTPClient.CheckRedirect == nil || cfg.HTTPClient.CheckRedirect(nil, nil) != nil) {
					t.Errorf("New changed the caller's HTTPClient.CheckRedirect")
				}
			})
		}
	}
}

func TestUnreachableEndpoint(t *testing.T) {
	emu := newEmulator(t, sourcetest.NewStandard, sourcetest.Options{})
	cfg := standardConfig(emu.TokenURL)
	emu.Close() // nothing listens any more
	_, err := fetchToken(t, cfg)
	var fe *source.FetchError
	if !errors.As(err, &fe) {
		t.Fatalf("error = %v (%T), want a *source.FetchError", err, err)
	}
	if strings.Contains(err.Error(), cfg.ClientSecret) {
		t.Errorf("error %q shows the client secret", err)
	}
}
