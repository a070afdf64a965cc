package source_test

import (
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/tokenhttp/tokenhttp/source"
)

// numericEntities HTML-escapes every character of s that is not a letter
// or a digit as a decimal entity ("&#60;").
func numericEntities(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r < 128 && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			b.WriteRune(r)
		} else {
			fmt.Fprintf(&b, "&#%d;", r)
		}
	}
	return b.String()
}

func jsonText(s string) string {
	b, _ := json.Marshal(s)
	return strings.Trim(string(b), `"`)
}

// TestErrorScrubsEchoedSecretsEveryEncoding: a token endpoint that echoes
// a secret HTML-escaped (named, decimal or hex entities), inside an HTML
// page (a secret holding '<' would be cut by tag stripping), or echoes an
// EndpointParams value or a token URL query value, leaks no part of it.
// Each secret is two distinctive halves around characters that escapers
// change; neither half may show.
func TestErrorScrubsEchoedSecretsEveryEncoding(t *testing.T) {
	const (
		pass      = `pwAq71Lm<b&c"d'eZt93Kp`
		secret    = `csWv62Nb>f&g<h'iYr84Jd`
		assertion = `eyJasrt55Hg.x<y&zQk21Pw`
		apiKey    = `akFd38Mn&o<pUe47Ws`
	)
	halves := []string{"pwAq71Lm", "eZt93Kp", "csWv62Nb", "iYr84Jd", "eyJasrt55Hg", "zQk21Pw", "akFd38Mn", "pUe47Ws"}
	hexEntities := strings.NewReplacer("<", "&#x3C;", "&", "&#x26;", `"`, "&#x22;", "'", "&#x27;", ">", "&#x3e;").Replace
	tests := []struct {
		name  string
		reply func(w http.ResponseWriter, r *http.Request)
	}{
		{"Go HTML escaping in JSON", func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, 400, `{"error":"invalid_grant","error_description":"password `+jsonText(html.EscapeString(pass))+` wrong"}`)
		}},
		{"named entities in a plain text body", func(w http.ResponseWriter, r *http.Request) {
			named := strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;", "'", "&apos;").Replace
			writeReply(w, 400, "text/plain", "invalid_grant: "+named(pass)+" / "+named(secret))
		}},
		{"decimal entities", func(w http.ResponseWriter, r *http.Request) {
			writeReply(w, 401, "text/plain", "bad "+numericEntities(secret)+" "+numericEntities(pass))
		}},
		{"hex entities", func(w http.ResponseWriter, r *http.Request) {
			writeReply(w, 401, "text/plain", "bad "+hexEntities(secret)+" "+hexEntities(pass))
		}},
		{"raw in an HTML page", func(w http.ResponseWriter, r *http.Request) {
			writeReply(w, 500, "text/html", "<html><body><p>password="+pass+"</p><p>secret="+secret+"</p></body></html>")
		}},
		{"escaped in an HTML page", func(w http.ResponseWriter, r *http.Request) {
			writeReply(w, 500, "text/html", "<html><body><p>"+html.EscapeString(pass)+" "+hexEntities(secret)+"</p></body></html>")
		}},
		{"request body echoed in an HTML page", func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			writeReply(w, 400, "text/html", "<html><body>cannot parse "+string(b)+"</body></html>")
		}},
		{"EndpointParams value echoed", func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, 400, `{"error":"invalid_client","error_description":"assertion `+jsonText(assertion)+` expired; form `+url.QueryEscape(assertion)+`"}`)
		}},
		{"token URL query value echoed", func(w http.ResponseWriter, r *http.Request) {
			writeReply(w, 401, "text/plain", "unknown api_key "+apiKey+" ("+url.QueryEscape(apiKey)+", "+html.EscapeString(apiKey)+")")
		}},
		{"query-escaped with lower-case hex", func(w http.ResponseWriter, r *http.Request) {
			writeReply(w, 401, "text/plain", "bad "+strings.ToLower(url.PathEscape(secret)))
		}},
		{"secret past the bound", func(w http.ResponseWriter, r *http.Request) {
			writeReply(w, 400, "text/html", "<p>"+strings.Repeat("x", 250)+" "+pass+"</p>")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newServer(t, tt.reply)
			cfg := passwordConfig(ts.URL)
			cfg.TokenURL += "?api_key=" + url.QueryEscape(apiKey)
			cfg.ClientSecret, cfg.Password = secret, pass
			cfg.AuthStyle = source.AuthInBody
			cfg.EndpointParams = url.Values{"client_assertion": {assertion}}
			_, err := fetchToken(t, cfg)
			te := tokenError(t, err)
			for what, out := range map[string]string{
				"Error()": err.Error(), "Description": te.Description, "ProviderCode": te.ProviderCode,
				"URI": te.URI, "%+v": fmt.Sprintf("%+v", err),
			} {
				for _, h := range halves {
					if strings.Contains(out, h) {
						t.Errorf("%s shows %q, part of a secret: %s", what, h, out)
					}
				}
			}
		})
	}
}

// TestErrorScrubsShortSecrets: a secret shorter than the scrubber's
// minimum is removed where it stands as a word of its own, and ordinary
// words that merely contain it stay readable.
func TestErrorScrubsShortSecrets(t *testing.T) {
	const pass = "q7z"
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 400, `{"error":"invalid_grant","error_description":"password q7z rejected for user alice (ref aq7zb); password=q7z"}`)
	})
	cfg := source.Config{TokenURL: srv.URL + "/oauth/token", GrantType: source.Password, ClientID: testClientID,
		ClientSecret: testClientSecret, Username: "alice", Password: pass}
	_, err := fetchToken(t, cfg)
	te := tokenError(t, err)
	if want := "password [REDACTED] rejected for user alice (ref aq7zb); password=[REDACTED]"; te.Description != want {
		t.Errorf("Description = %q, want %q", te.Description, want)
	}
}
