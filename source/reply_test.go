package source_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tokenhttp/tokenhttp/source"
)

func TestExpiresIn(t *testing.T) {
	tests := []struct {
		name    string
		field   string // the expires_in member, with its leading comma; "" for none
		want    time.Duration
		wantErr bool
	}{
		{"number", `,"expires_in":3600`, 3600 * time.Second, false},
		{"string", `,"expires_in":"43200"`, 43200 * time.Second, false},
		{"string with spaces", `,"expires_in":" 60 "`, 60 * time.Second, false},
		{"float", `,"expires_in":3600.5`, 3600500 * time.Millisecond, false},
		{"exponent", `,"expires_in":1e3`, 1000 * time.Second, false},
		{"past float64 range", `,"expires_in":1e400`, 100 * 365 * 24 * time.Hour, false},
		{"past float64 range, string", `,"expires_in":"1e400"`, 100 * 365 * 24 * time.Hour, false},
		{"absent", ``, 0, false},
		{"null", `,"expires_in":null`, 0, false},
		{"junk string", `,"expires_in":"soon"`, 0, true},
		{"bool", `,"expires_in":true`, 0, true},
		{"object", `,"expires_in":{"s":1}`, 0, true},
		{"NaN", `,"expires_in":"NaN"`, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newServer(t, func(w http.ResponseWriter, r *http.Request) {
				writeJSON(w, 200, `{"access_token":"tok","token_type":"bearer"`+tt.field+`}`)
			})
			before := time.Now()
			tok, err := fetchToken(t, clientConfig(ts.URL))
			after := time.Now()
			if tt.wantErr {
				te := tokenError(t, err)
				if te.Code != source.CodeServerError {
					t.Errorf("Code = %q, want %q", te.Code, source.CodeServerError)
				}
				return
			}
			if err != nil {
				t.Fatalf("Token: %v", err)
			}
			if tt.want == 0 {
				if !tok.Expiry.IsZero() {
					t.Errorf("Expiry = %v, want zero", tok.Expiry)
				}
				return
			}
			if lo, hi := before.Add(tt.want), after.Add(tt.want); tok.Expiry.Before(lo) || tok.Expiry.After(hi) {
				t.Errorf("Expiry = %v, want between %v and %v", tok.Expiry, lo, hi)
			}
		})
	}
}

func TestParseExpiresIn(t *testing.T) {
	tests := []struct {
		in      any
		want    time.Duration
		wantErr bool
	}{
		{nil, 0, false},
		{json.Number("60"), time.Minute, false},
		{"60", time.Minute, false},
		{"", 0, false},
		{float64(1.5), 1500 * time.Millisecond, false},
		{json.Number("-5"), 0, false},
		{json.Number("1e300"), 100 * 365 * 24 * time.Hour, false},
		// Past float64's range: far future, capped, as a number, a string,
		// with or without an exponent. Below it: not given.
		{json.Number("1e400"), 100 * 365 * 24 * time.Hour, false},
		{json.Number("1E+400"), 100 * 365 * 24 * time.Hour, false},
		{"1e400", 100 * 365 * 24 * time.Hour, false},
		{" 1e999999 ", 100 * 365 * 24 * time.Hour, false},
		{json.Number("1" + strings.Repeat("0", 400)), 100 * 365 * 24 * time.Hour, false},
		{"1" + strings.Repeat("0", 400), 100 * 365 * 24 * time.Hour, false},
		{json.Number("-1e400"), 0, false},
		{"-1" + strings.Repeat("0", 400), 0, false},
		{json.Number("1e-400"), 0, false},
		{"Inf", 0, true},
		{"NaN", 0, true},
		{"-Infinity", 0, true},
		{"12s", 0, true},
		{true, 0, true},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%T %v", tt.in, tt.in), func(t *testing.T) {
			got, err := source.ParseExpiresIn(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParseExpiresIn(%#v) error = %v, want error %v", tt.in, err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("ParseExpiresIn(%#v) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestTokenType(t *testing.T) {
	tests := []struct {
		name, field, want string
	}{
		{"lowercase bearer", `,"token_type":"bearer"`, "Bearer"},
		{"uppercase", `,"token_type":"BEARER"`, "Bearer"},
		{"empty", `,"token_type":""`, "Bearer"},
		{"absent", ``, "Bearer"},
		{"other type kept", `,"token_type":"mac"`, "mac"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newServer(t, func(w http.ResponseWriter, r *http.Request) {
				writeJSON(w, 200, `{"access_token":"tok-abc"`+tt.field+`}`)
			})
			tok, err := fetchToken(t, clientConfig(ts.URL))
			if err != nil {
				t.Fatalf("Token: %v", err)
			}
			if tok.TokenType != tt.want {
				t.Errorf("TokenType = %q, want %q", tok.TokenType, tt.want)
			}
			if got, want := tok.HeaderValue(), "Bearer tok-abc"; got != want {
				t.Errorf("HeaderValue() = %q, want %q", got, want)
			}
		})
	}
}

// TestReplyFields decodes a JSON and a form-encoded token reply.
func TestReplyFields(t *testing.T) {
	tests := []struct {
		name, contentType, body string
		access, scope           string
		check                   func(t *testing.T, tok *source.Token, before time.Time)
	}{
		{
			name:        "JSON",
			contentType: "application/json",
			body: `{"access_token":"tok-1","token_type":"Bearer","expires_in":60,
			"refresh_token":"rt-1","scope":["read","write"],"id_token":"idt","ext_expires_in":3599}`,
			access: "tok-1",
			scope:  "read write",
			check: func(t *testing.T, tok *source.Token, _ time.Time) {
				if got, want := tok.RefreshToken, "rt-1"; got != want {
					t.Errorf("RefreshToken = %q, want %q", got, want)
				}
				if got, want := tok.Extra["id_token"], any("idt"); got != want {
					t.Errorf("Extra[id_token] = %#v, want %#v", got, want)
				}
				if got, want := tok.Extra["ext_expires_in"], any(json.Number("3599")); got != want {
					t.Errorf("Extra[ext_expires_in] = %#v, want %#v", got, want)
				}
				for _, k := range []string{"access_token", "refresh_token", "expires_in", "token_type", "scope"} {
					if _, ok := tok.Extra[k]; ok {
						t.Errorf("Extra has %q, want only the fields the Token does not hold", k)
					}
				}
			},
		},
		{
			name:        "form-encoded",
			contentType: "application/x-www-form-urlencoded; charset=utf-8",
			body:        "access_token=form-tok-1&token_type=bearer&expires_in=3600&scope=repo+gist",
			access:      "form-tok-1",
			scope:       "repo gist",
			check: func(t *testing.T, tok *source.Token, before time.Time) {
				if got, want := tok.TokenType, "Bearer"; got != want {
					t.Errorf("TokenType = %q, want %q", got, want)
				}
				if tok.Expiry.Before(before.Add(3600*time.Second)) || tok.Expiry.After(time.Now().Add(3600*time.Second)) {
					t.Errorf("Expiry = %v, want an hour from now", tok.Expiry)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newServer(t, func(w http.ResponseWriter, r *http.Request) {
				writeReply(w, 200, tt.contentType, tt.body)
			})
			before := time.Now()
			tok, err := fetchToken(t, clientConfig(ts.URL))
			if err != nil {
				t.Fatalf("Token: %v", err)
			}
			if got, want := tok.AccessToken, tt.access; got != want {
				t.Errorf("AccessToken = %q, want %q", got, want)
			}
			if got, want := tok.Scope, tt.scope; got != want {
				t.Errorf("Scope = %q, want %q", got, want)
			}
			tt.check(t, tok, before)
		})
	}
}

func TestReplySizeLimit(t *testing.T) {
	// body returns a valid token reply of exactly n bytes.
	body := func(n int) string {
		head := `{"access_token":"big-tok","token_type":"bearer","expires_in":3600,"pad":"`
		tail := `"}`
		return head + strings.Repeat("a", n-len(head)-len(tail)) + tail
	}
	tests := []struct {
		name    string
		size    int
		wantErr bool
	}{
		{"exactly 1 MiB", source.MaxReplyBytes, false},
		{"1 MiB + 1", source.MaxReplyBytes + 1, true},
		{"8 MiB", 8 << 20, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := body(tt.size)
			if len(b) != tt.size {
				t.Fatalf("test body is %d bytes, want %d", len(b), tt.size)
			}
			ts := newServer(t, func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, b) })
			tok, err := fetchToken(t, clientConfig(ts.URL))
			if !tt.wantErr {
				if err != nil {
					t.Fatalf("Token: %v", err)
				}
				if got, want := tok.AccessToken, "big-tok"; got != want {
					t.Errorf("AccessToken = %q, want %q", got, want)
				}
				return
			}
			te := tokenError(t, err)
			if te.Code != source.CodeServerError {
				t.Errorf("Code = %q, want %q", te.Code, source.CodeServerError)
			}
		})
	}
}

func TestRejectsUnsafeHeaderValues(t *testing.T) {
	header := &source.Provider{Name: "custom", Reply: source.ReplyFields{HeaderValue: "Authorization"}}
	tests := []struct {
		name     string
		provider *source.Provider
		body     string
		wantErr  bool
		want     string // HeaderValue when no error
	}{
		{"plain token", nil, `{"access_token":"abc.DEF-123_~+/="}`, false, "Bearer abc.DEF-123_~+/="},
		{"CR LF", nil, `{"access_token":"abc\r\nX-Evil: 1"}`, true, ""},
		{"LF", nil, `{"access_token":"abc\nX-Evil: 1"}`, true, ""},
		{"space", nil, `{"access_token":"abc def"}`, true, ""},
		{"tab", nil, `{"access_token":"abc\tdef"}`, true, ""},
		{"NUL", nil, `{"access_token":"abc\u0000def"}`, true, ""},
		{"DEL", nil, `{"access_token":"abc\u007fdef"}`, true, ""},
		{"non-ASCII", nil, `{"access_token":"abcé"}`, true, ""},
		{"empty", nil, `{"access_token":""}`, true, ""},
		{"header value verbatim", header, `{"Authorization":"VCSchema abc.def"}`, false, "VCSchema abc.def"},
		{"header value over access token", header, `{"access_token":"at","Authorization":"VCSchema abc"}`, false, "VCSchema abc"},
		{"header value CR LF", header, `{"Authorization":"VCSchema abc\r\nX-Evil: 1"}`, true, ""},
		{"header value LF", header, `{"Authorization":"VCSchema abc\nX-Evil: 1"}`, true, ""},
		{"header value CR", header, `{"Authorization":"VCSchema abc\rdef"}`, true, ""},
		{"header value non-ASCII", header, `{"Authorization":"VCSchema abcé"}`, true, ""},
		{"header value leading space", header, `{"Authorization":" VCSchema abc"}`, true, ""},
		{"header value not a string", header, `{"Authorization":42}`, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newServer(t, func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, tt.body) })
			cfg := clientConfig(ts.URL)
			cfg.Provider = tt.provider
			tok, err := fetchToken(t, cfg)
			if tt.wantErr {
				te := tokenError(t, err)
				if te.Code != source.CodeServerError {
					t.Errorf("Code = %q, want %q", te.Code, source.CodeServerError)
				}
				if strings.Contains(err.Error(), "abc") {
					t.Errorf("error shows the token: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Token: %v", err)
			}
			if got := tok.HeaderValue(); got != tt.want {
				t.Errorf("HeaderValue() = %q, want %q", got, tt.want)
			}
		})
	}
}
