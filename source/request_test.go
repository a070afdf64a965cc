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
)

func TestRequestEncoding(t *testing.T) {
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte(testClientID+":"+testClientSecret))
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
			ts := newTokenServer(t, replyToken(3600))
			cfg := clientConfig(ts)
			tt.mod(&cfg)
			if _, err := fetchToken(t, cfg); err != nil {
				t.Fatalf("Token: %v", err)
			}
			reqs := ts.requests()
			if len(reqs) != 1 {
				t.Fatalf("requests = %d, want 1", len(reqs))
			}
			r := reqs[0]
			if got, _, _ := mime.ParseMediaType(r.header.Get("Content-Type")); got != tt.wantCT {
				t.Errorf("Content-Type = %q, want %q", got, tt.wantCT)
			}
			if got := r.header.Get("Authorization"); got != tt.wantAuth {
				t.Errorf("Authorization = %q, want %q", got, tt.wantAuth)
			}
			if tt.wantJSONObj && r.json == nil {
				t.Errorf("body %q is not a JSON object", r.body)
			}
			if got, want := r.form.Get("grant_type"), "client_credentials"; got != want {
				t.Errorf("grant_type = %q, want %q", got, want)
			}
			gotID, gotSecret := r.form.Get("client_id"), r.form.Get("client_secret")
			if tt.wantInBody {
				if gotID != testClientID || gotSecret != testClientSecret {
					t.Errorf("body client_id, client_secret = %q, %q, want %q, %q", gotID, gotSecret, testClientID, testClientSecret)
				}
			} else if r.form.Has("client_id") || r.form.Has("client_secret") || bytes.Contains(r.body, []byte(testClientSecret)) {
				t.Errorf("body %q carries the client credentials, want them only in the header", r.body)
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
	ts := newTokenServer(t, replyToken(3600))
	cfg := source.Config{TokenURL: ts.tokenURL(), ClientID: id, ClientSecret: secret}
	if _, err := fetchToken(t, cfg); err != nil {
		t.Fatalf("Token: %v", err)
	}
	h := ts.requests()[0].header.Get("Authorization")
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

func TestRequestParams(t *testing.T) {
	ts := newTokenServer(t, replyToken(3600))
	cfg := passwordConfig(ts)
	cfg.Scopes = []string{"read", "write:all", "openid"}
	cfg.EndpointParams = url.Values{
		"audience":   {"https://api.example.com"},
		"grant_type": {"evil"},        // must not override the grant
		"username":   {"mallory"},     // nor the grant's own fields
		"resource":   {"urn:example"}, // a plain extra field
	}
	for _, enc := range []source.Encoding{source.FormEncoding, source.JSONEncoding} {
		t.Run(enc.String(), func(t *testing.T) {
			cfg.Encoding = enc
			n := ts.count()
			if _, err := fetchToken(t, cfg); err != nil {
				t.Fatalf("Token: %v", err)
			}
			r := ts.requests()[n]
			want := map[string]string{
				"grant_type": "password",
				"username":   "alice",
				"password":   testPassword,
				"scope":      "read write:all openid",
				"audience":   "https://api.example.com",
				"resource":   "urn:example",
			}
			for k, v := range want {
				if got := r.form.Get(k); got != v {
					t.Errorf("body field %q = %q, want %q (body %s)", k, got, v, r.body)
				}
			}
		})
	}
}

// A parameter with several values (RFC 8707 resource) is sent repeated in
// a form and as an array in JSON; none is dropped.
func TestRequestParamsRepeated(t *testing.T) {
	ts := newTokenServer(t, replyToken(3600))
	cfg := passwordConfig(ts)
	cfg.EndpointParams = url.Values{"resource": {"urn:a", "urn:b"}}
	for _, enc := range []source.Encoding{source.FormEncoding, source.JSONEncoding} {
		t.Run(enc.String(), func(t *testing.T) {
			cfg.Encoding = enc
			n := ts.count()
			if _, err := fetchToken(t, cfg); err != nil {
				t.Fatalf("Token: %v", err)
			}
			r := ts.requests()[n]
			var got []string
			if enc == source.JSONEncoding {
				arr, _ := r.json["resource"].([]any)
				for _, v := range arr {
					got = append(got, fmt.Sprint(v))
				}
			} else {
				got = r.form["resource"]
			}
			if want := []string{"urn:a", "urn:b"}; !slices.Equal(got, want) {
				t.Errorf("resource = %q, want %q (body %s)", got, want, r.body)
			}
		})
	}
}
