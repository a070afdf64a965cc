package source

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/tokenhttp/tokenhttp/internal/oauth2code"
	"github.com/tokenhttp/tokenhttp/internal/safehttp"
)

// The secrets every fuzz target plants; none may come out in an error.
const (
	fuzzSecret   = "fz-client-Secret-9q"
	fuzzPassword = "fz-Passw0rd-77"
	// fuzzSpecial holds every character HTML, URL and JSON escapers change.
	fuzzSpecial = `fz<&"'>%+/\ Spc-42`
)

// documentedReplies are the example replies of the providers'
// documentation, and the error shapes of each dialect.
var documentedReplies = []string{
	`{"access_token":"41442a8c2bb0609d248cc467342c4f1b0a51c92c","expires_in":604800,"token_type":"bearer","scope":"signature_session service_2fa","provider":"SOLUTIHOM","Authorization":"VCSchema U09MVVRJSE9NLXw0MTQ0MmE4YzJiYjA2MDlkMjQ4Y2M0NjczNDJjNGYxYjBhNTFjOTJj"}`,
	`{"access_token":"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJVU0VSMSJ9.GeMf9voddvEdgStH2GJqHIKIWXXYYbhLEKVz-kq_Cp8","token_type":"Bearer","expires_in":3600,"scope":"https://your-domain/directlink/v1"}`,
	`{"token_type":"Bearer","expires_in":3600,"access_token":"eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.e30.QANc10VO27ZzQsbJAOsttWtHXwlQ0I75Q30veL8dB2"}`,
	`{"access_token":"SEU TOKEN","expires_in":"43200","token_type":"Bearer","scope":"","refresh_token":"SEU REFRESH TOKEN"}`,
	`{"access_token":"<token_de_acesso_de_aplicacao>","token_type":"Bearer","expires_in":3600}`,
	`{"error":400,"error_description":"Bad Request","error_uri":"https://your-domain/directlink/v1"}`,
	`{"type":"http://www.w3.org/Protocols/rfc2616/rfc2616-sec10.html","title":"invalid_grant","status":401,"detail":"Invalid username and password combination"}`,
	`{"code":"AUTENTICACAO_INVALIDA_CLIENT_OAUTH","msg":"Falha na autenticidade do client_id e client_secret.","debug":""}`,
	`{"error":"invalid_client","error_description":"Client authentication failed","message":"Client authentication failed"}`,
	`{"error":"invalid_grant","error_description":"bad ` + fuzzPassword + `"}`,
	`<html><body>502 Bad Gateway ` + fuzzSecret + `</body></html>`,
	"invalid_grant: OTP already used",
	`{"access_token":"a\r\nX-Injected: 1","expires_in":1}`,
	`{"access_token":"ok","expires_in":1e400}`,
	`{"access_token":"ok","expires_in":"junk"}`,
	`{"access_token":"ok","access_token":"dup"}`,
	"\xff\xfe{}",
}

func fuzzEndpoint(p *Provider) *endpoint {
	r, err := Config{Provider: p, TokenURL: "https://auth.example.com/token", GrantType: p.GrantType,
		ClientID: "fz-client", ClientSecret: fuzzSecret, Username: "12345678901", Password: fuzzPassword,
		PasswordFunc: func(context.Context) (string, error) { return fuzzPassword, nil }, Cloud: "C"}.validate()
	if err != nil {
		panic(err)
	}
	return newEndpoint(r)
}

// FuzzTokenReply feeds any reply to every dialect's decoder: no panic, a
// token only if it can be sent as a header, and no planted secret in an
// error.
func FuzzTokenReply(f *testing.F) {
	for _, s := range documentedReplies {
		for _, status := range []int{200, 400, 401, 412, 500} {
			f.Add(status, "application/json", []byte(s))
		}
	}
	f.Add(200, "application/x-www-form-urlencoded", []byte("access_token=abc&token_type=bearer&expires_in=10"))
	f.Add(400, "text/html", []byte("<h1>oops</h1>"))
	eps := []*endpoint{fuzzEndpoint(Standard), fuzzEndpoint(VaultID), fuzzEndpoint(DirectLink),
		fuzzEndpoint(ScorePositivo), fuzzEndpoint(GestaoPlus), fuzzEndpoint(SerproID)}
	scrub := scrubber{}.with(fuzzSecret, fuzzPassword)
	f.Fuzz(func(t *testing.T, status int, contentType string, body []byte) {
		if status < 100 || status > 999 {
			return
		}
		for _, e := range eps {
			resp := &http.Response{StatusCode: status, Header: http.Header{"Content-Type": {contentType}},
				Body: io.NopCloser(bytes.NewReader(body))}
			tok, err := e.decode(resp, body, time.Now(), scrub)
			if err != nil {
				checkNoSecret(t, err)
				continue
			}
			if status < 200 || status > 299 {
				t.Fatalf("%s: status %d gave a token", e.r.p.Name, status)
			}
			if err := safehttp.CheckHeaderToken(tok.AccessToken, tok.Authorization); err != nil {
				t.Fatalf("%s: accepted a token that cannot be a header: %v", e.r.p.Name, err)
			}
			if strings.ContainsAny(tok.HeaderValue(), "\r\n\x00") {
				t.Fatalf("%s: header value with a line break", e.r.p.Name)
			}
		}
	})
}

// FuzzErrorBody checks the generic error decoder on any body: no panic,
// and after scrubbing and bounding, no planted secret and a bounded
// description.
func FuzzErrorBody(f *testing.F) {
	for _, s := range documentedReplies {
		f.Add("application/json", s)
	}
	f.Add("application/problem+json", `{"title":"x","status":400}`)
	f.Add("application/x-www-form-urlencoded", "error=invalid_grant&error_description="+fuzzPassword)
	f.Add("text/html", "<html><body>"+fuzzSpecial+"</body></html>")
	f.Add("text/html", "<p>"+html.EscapeString(fuzzSpecial)+"</p>")
	f.Add("application/json", `{"error":"invalid_grant","error_description":"`+jsonEscape(html.EscapeString(fuzzSpecial), false)+`"}`)
	f.Add("text/plain", "bad "+strings.ToLower(url.QueryEscape(fuzzSpecial)))
	f.Add("text/plain", "bad fz&#60;&amp;&quot;&#x27;&gt;%+/\\ Spc-42")
	scrub := scrubber{}.with(fuzzSecret, fuzzPassword, fuzzSpecial)
	f.Fuzz(func(t *testing.T, contentType, body string) {
		// As the endpoint does: secrets go before the body is decoded.
		info, _ := decodeErrorBody(contentType, []byte(scrub.scrub(body)))
		for _, s := range []string{info.Code, info.Description, info.URI} {
			c := scrub.clean(s)
			if len(c) > maxDescription+len("…") {
				t.Fatalf("clean gave %d bytes, over the bound", len(c))
			}
			if !utf8.ValidString(c) {
				t.Fatalf("clean gave invalid UTF-8: %q", c)
			}
			if strings.Contains(c, fuzzSecret) || strings.Contains(c, fuzzPassword) || strings.Contains(c, fuzzSpecial) {
				t.Fatalf("secret survived scrubbing: %q", c)
			}
		}
		_ = oauth2code.Normalize(400, info.Code)
	})
}

// FuzzExpiresIn: any JSON value: no panic, never negative, never past the
// cap.
func FuzzExpiresIn(f *testing.F) {
	for _, s := range []string{`3600`, `"43200"`, `3600.5`, `-1`, `0`, `1e400`, `"junk"`, `null`, `true`, `[]`, `"  7 "`, `1e18`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		dec := json.NewDecoder(strings.NewReader(raw))
		dec.UseNumber()
		var v any
		if dec.Decode(&v) != nil {
			v = raw // a string
		}
		d, err := ParseExpiresIn(v)
		if err == nil && (d < 0 || d > maxLifetime) {
			t.Fatalf("ParseExpiresIn(%q) = %v, out of range", raw, d)
		}
	})
}

// FuzzHeaderToken: whatever CheckHeaderToken accepts is a valid header
// value to net/http and contains no line break.
func FuzzHeaderToken(f *testing.F) {
	f.Add("abc", "")
	f.Add("", "VCSchema abc")
	f.Add("a\r\nb", "")
	f.Add("", "Bearer a\nb")
	f.Add("tok", "Bearer ok")
	f.Fuzz(func(t *testing.T, access, auth string) {
		if safehttp.CheckHeaderToken(access, auth) != nil {
			return
		}
		tok := &Token{AccessToken: access, Authorization: auth}
		hv := tok.HeaderValue()
		if strings.ContainsAny(hv, "\r\n\x00") {
			t.Fatalf("accepted %q", hv)
		}
		req, _ := http.NewRequest("GET", "http://127.0.0.1/", nil)
		req.Header.Set("Authorization", hv)
		var b bytes.Buffer
		if err := req.Header.Write(&b); err != nil {
			t.Fatalf("net/http cannot write %q: %v", hv, err)
		}
		if strings.Count(b.String(), "\r\n") != 1 {
			t.Fatalf("header %q wrote more than one line", hv)
		}
	})
}

func checkNoSecret(t *testing.T, err error) {
	t.Helper()
	var te *Error
	texts := []string{err.Error()}
	if errors.As(err, &te) {
		texts = append(texts, te.Description, te.ProviderCode, te.URI, te.Code)
	}
	for _, s := range texts {
		if strings.Contains(s, fuzzSecret) || strings.Contains(s, fuzzPassword) {
			t.Fatalf("error shows a secret: %q", s)
		}
	}
}

// FuzzScrub plants a secret in any text, in each encoding a server may
// echo it in: whatever the secret and the text around it, clean shows no
// secret of at least minSecretLen bytes.
func FuzzScrub(f *testing.F) {
	f.Add(fuzzSpecial, "error: ", " rejected", uint8(0))
	f.Add(`a<b&c"d`, "<p>", "</p>", uint8(5))
	f.Add("pass word", "x", "y", uint8(6))
	f.Add("ab", "password ", " wrong", uint8(0))
	encodings := []func(string) string{
		func(v string) string { return v },
		url.QueryEscape, url.PathEscape,
		func(v string) string { return strings.ToLower(url.QueryEscape(v)) },
		func(v string) string { return jsonEscape(v, true) },
		html.EscapeString,
		func(v string) string { return htmlEscapeNamed(v) },
		func(v string) string { // every byte a decimal entity
			var b strings.Builder
			for _, r := range v {
				fmt.Fprintf(&b, "&#%d;", r)
			}
			return b.String()
		},
	}
	f.Fuzz(func(t *testing.T, secret, before, after string, enc uint8) {
		if len(secret) < minSecretLen || !utf8.ValidString(secret) || strings.TrimSpace(secret) != secret ||
			strings.ContainsFunc(secret, func(r rune) bool { return unicode.IsControl(r) || unicode.IsSpace(r) && r != ' ' }) ||
			strings.Contains(secret, "  ") {
			return // clean folds white space: such a secret is not shown as it is anyway
		}
		s := scrubber{}.with(secret)
		text := before + encodings[int(enc)%len(encodings)](secret) + after
		if out := s.clean(text); strings.Contains(out, secret) {
			t.Fatalf("clean(%q) = %q shows the secret %q", text, out, secret)
		}
	})
}

// TestCleanShrinksBelowTheBound: a text cut at the bound that the second
// scrub makes shorter than maxDescription (entities decoded around a
// secret) is returned whole, not cut past its end (it panicked).
func TestCleanShrinksBelowTheBound(t *testing.T) {
	s := scrubber{}.with("xx yy")
	text := strings.Repeat("&lt;", 60) + "xx\t&#121;y" + strings.Repeat("&lt;", 60)
	out := s.clean(text)
	if strings.Contains(out, "xx yy") || len(out) > maxDescription+len("…") {
		t.Errorf("clean(%q) = %q, want at most %d bytes without the secret", text, out, maxDescription)
	}
}
