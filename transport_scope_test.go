package tokenhttp_test

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"go.uber.org/goleak"

	"github.com/tokenhttp/tokenhttp"
	"github.com/tokenhttp/tokenhttp/source"
	"github.com/tokenhttp/tokenhttp/source/sourcetest"
)

// A 401 whose Bearer challenge says the scope is insufficient (or the
// request is malformed) is not fixed by a new token: no refresh, no retry.
func TestTransport401ChallengeDecidesRefresh(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	tests := []struct {
		challenge     string
		wantAPIHits   int32
		wantTokenReqs int
	}{
		{`Bearer realm="api", error="insufficient_scope", scope="orders:write"`, 1, 1},
		{`Bearer error="invalid_request"`, 1, 1},
		{`Bearer realm="api", error="invalid_token"`, 2, 2},
		{``, 2, 2},
	}
	for _, tt := range tests {
		t.Run(tt.challenge, func(t *testing.T) {
			idp := sourcetest.NewStandard(sourcetest.Options{})
			defer idp.Close()
			var hits atomic.Int32
			api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				hits.Add(1)
				if tt.challenge != "" {
					w.Header().Set("WWW-Authenticate", tt.challenge)
				}
				w.WriteHeader(http.StatusUnauthorized)
			}))
			defer api.Close()
			src, err := source.New(source.Config{TokenURL: idp.TokenURL,
				ClientID: sourcetest.DefaultClientID, ClientSecret: sourcetest.DefaultClientSecret})
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			resp, err := tokenhttp.NewClient(src).Get(api.URL)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if got, want := resp.StatusCode, http.StatusUnauthorized; got != want {
				t.Errorf("status = %d, want %d", got, want)
			}
			if got := hits.Load(); got != tt.wantAPIHits {
				t.Errorf("API hits = %d, want %d", got, tt.wantAPIHits)
			}
			if got := idp.TokenRequests(); got != tt.wantTokenReqs {
				t.Errorf("token requests = %d, want %d", got, tt.wantTokenReqs)
			}
			api.CloseClientConnections()
			http.DefaultClient.CloseIdleConnections()
		})
	}
}
