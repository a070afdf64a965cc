package source_test

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"mime"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/tokenhttp/tokenhttp/source"
	"github.com/tokenhttp/tokenhttp/source/sourcetest"
)

func TestRequestEncoding(t *testing.T) {
	const id, secret = sourcetest.DefaultClientID, sourcetest.DefaultClientSecret
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte(id+":"+secret))
	tests := []struct {
		name        string
		mod         func(*source.Config)
		wantCT      string
		wantAuth    string // the Authorization header; "" for none
		wantInBody  bool   // client_id and client_secret in the body
		wantJSONObj bool
	}{
		{"default: form and Basic", func(*source.Config) {}, "application/x-www-form-urlencoded", basic, false, false},
		{"JSON", func(c *source.Config) { c.Encoding = source.JSONEncoding }, "application/json", basic, false, true},
		{"auth in body", func(c *source.Config) { c.AuthStyle = source.AuthInBody }, "application/x-www-form-urlencoded", "", true, false},
		{"JSON, auth in body", func(c *source.Config) {
			c.Encoding = source.JSONEncoding
			c.AuthStyle = source.AuthInBody
		}, "application/json", "", true, true},
		{"auth in header, explicitly", func(c *source.Config) { c.AuthStyle = source.AuthInHeader }, "application/x-www-form-urlencoded", basic, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			emu := newEmulator(t, sourcetest.NewStandard, sourcetest.Options{})
			cfg := standardConfig(emu.TokenURL)
			tt.mod(&cfg)
			if _, err := fetchToken(t, cfg); err != nil {
				t.Fatalf("Token: %v", err)
			}
			if got := emu.TokenRequests(); got != 1 {
				t.Fatalf("requests = %d, want 1", got)
			}
			r := emu.LastTokenRequest()
			form, obj := requestFields(r.ContentType, r.Body)
			if got, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); got != tt.wantCT {
				t.Errorf("Content-Type = %q, want %q", got, tt.wantCT)
			}
			if got := r.Header.Get("Authorization"); got != tt.wantAuth {
				t.Errorf("Authorization = %q, want %q", got, tt.wantAuth)
			}
			if tt.wantJSONObj && obj == nil {
				t.Errorf("body %q is not a JSON object", r.Body)
			}
			if got, want := form.Get("grant_type"), "client_credentials"; got != want {
				t.Errorf("grant_type = %q, want %q", got, want)
			}
			gotID, gotSecret := form.Get("client_id"), form.Get("client_secret")
			if tt.wantInBody {
				if gotID != id || gotSecret != secret {
					t.Errorf("body client_id, client_secret = %q, %q, want %q, %q", gotID, gotSecret, id, secret)
				}
			} else if form.Has("client_id") || form.Has("client_secret") || bytes.Contains(r.Body, []byte(secret)) {
				t.Errorf("body %q carries the client credentials, want them only in the header", r.Body)
			}
		})
	}
}

// TestBasicAuthEncoding checks RFC 6749 §2.3.1: the client id and secret
// are form-encoded before they are joined by ':' and base64-encoded.
func TestBasicAuthEncoding(t *testing.T) {
	const (
		id     = "cl:ient+ id%"
		secret = "se:cr+et %41"
		// application/x-www-form-urlencoded of each, joined by ':'.
		want = "cl%3Aient%2B+id%25:se%3Acr%2Bet+%2541"
	)
	emu := newEmulator(t, sourcetest.NewStandard, sourcetest.Options{ClientID: id, ClientSecret: secret})
	cfg := source.Config{TokenURL: emu.TokenURL, ClientID: id, ClientSecret: secret}
	if _, err := fetchToken(t, cfg); err != nil {
		t.Fatalf("Token: %v", err)
	}
	h := emu.LastTokenRequest().Header.Get("Authorization")
	enc, ok := strings.CutPrefix(h, "Basic ")
	if !ok {
		t.Fatalf("Authorization = %q, want Basic", h)
	}
	raw, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		t.Fatalf("Authorization %q is not base64: %v", h, err)
	}
	if got := string(raw); got != want {
		t.Errorf("Basic credentials = %q, want %q", got, want)
	}
	gotID, gotSecret, _ := strings.Cut(string(raw), ":")
	if u, _ := url.QueryUnescape(gotID); u != id {
		t.Errorf("decoded id = %q, want %q", u, id)
	}
	if u, _ := url.QueryUnescape(gotSecret); u != secret {
		t.Errorf("decoded secret = %q, want %q", u, secret)
	}
}

// TestRequestParams: scopes and EndpointParams reach the body without
// overriding the grant's own fields, and a parameter with several values
// (RFC 8707 resource) is sent repeated in a form and as an array in JSON,
// none dropped.
func TestRequestParams(t *testing.T) {
	tests := []struct {
		name   string
		scopes []string
		params url.Values
		want   map[string][]string // body fields and their values
	}{
		{
			name:   "scopes and extra fields",
			scopes: []string{"read", "write:all", "openid"},
			params: url.Values{
				"audience":   {"https://api.example.com"},
				"grant_type": {"evil"},        // must not override the grant
				"username":   {"mallory"},     // nor the grant's own fields
				"resource":   {"urn:example"}, // a plain extra field
			},
			want: map[string][]string{
				"grant_type": {"password"},
				"username":   {"alice"},
				"password":   {testPassword},
				"scope":      {"read write:all openid"},
				"audience":   {"https://api.example.com"},
				"resource":   {"urn:example"},
			},
		},
		{
			name:   "repeated",
			params: url.Values{"resource": {"urn:a", "urn:b"}},
			want:   map[string][]string{"resource": {"urn:a", "urn:b"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			emu := newEmulator(t, sourcetest.NewStandard, sourcetest.Options{Username: "alice", Password: testPassword})
			cfg := standardConfig(emu.TokenURL)
			cfg.GrantType, cfg.Username, cfg.Password = source.Password, "alice", testPassword
			cfg.Scopes, cfg.EndpointParams = tt.scopes, tt.params
			for _, enc := range []source.Encoding{source.FormEncoding, source.JSONEncoding} {
				t.Run(enc.String(), func(t *testing.T) {
					cfg.Encoding = enc
					n := emu.TokenRequests()
					if _, err := fetchToken(t, cfg); err != nil {
						t.Fatalf("Token: %v", err)
					}
					if got := emu.TokenRequests(); got != n+1 {
						t.Fatalf("requests = %d, want %d", got, n+1)
					}
					r := emu.LastTokenRequest()
					form, obj := requestFields(r.ContentType, r.Body)
					for k, want := range tt.want {
						got := form[k]
						if arr, ok := obj[k].([]any); ok {
							got = nil
							for _, v := range arr {
								got = append(got, fmt.Sprint(v))
							}
						}
						if !slices.Equal(got, want) {
							t.Errorf("body field %q = %q, want %q (body %s)", k, got, want, r.Body)
						}
					}
				})
			}
		})
	}
}
