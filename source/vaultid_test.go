package source_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/tokenhttp/tokenhttp/source"
)

func TestVaultIDRequest(t *testing.T) {
	ts := newTokenServer(t, func(w http.ResponseWriter, r *seen) {
		writeJSON(w, 200, `{"Authorization":"VCSchema vc-abc.def","token_type":"bearer","expires_in":3600,"scope":"authentication_session"}`)
	})
	cfg := source.Config{Provider: source.VaultID, TokenURL: ts.tokenURL(), ClientID: testClientID,
		ClientSecret: testClientSecret, Username: "123.456.789-09", Lifetime: 2 * time.Hour, Cloud: "cloud-a",
		PasswordFunc: func(context.Context) (string, error) { return "654321", nil }}
	tok, err := fetchToken(t, cfg)
	if err != nil {
		t.Fatalf("Token: %v", err)
	}
	if got, want := tok.HeaderValue(), "VCSchema vc-abc.def"; got != want {
		t.Errorf("HeaderValue() = %q, want %q", got, want)
	}
	r := ts.requests()[0]
	if r.json == nil {
		t.Fatalf("body %q is not JSON", r.body)
	}
	want := map[string]string{"grant_type": "password", "client_id": testClientID, "client_secret": testClientSecret,
		"username": "12345678909", "password": "654321", "lifetime": "7200", "provider": "cloud-a"}
	for k, v := range want {
		if got := r.form.Get(k); got != v {
			t.Errorf("body field %q = %q, want %q", k, got, v)
		}
	}
}
