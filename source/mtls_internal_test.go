package source

import (
	"encoding/base64"
	"testing"
)

// TestConfirmation: cnf.x5t#S256 from the reply wins; else from a JWT
// access token's payload, unverified; else none.
func TestConfirmation(t *testing.T) {
	jwt := func(payload string) string {
		return "e30." + base64.RawURLEncoding.EncodeToString([]byte(payload)) + ".sig"
	}
	for _, tc := range []struct {
		name string
		tok  *Token
		want string
	}{
		{"reply", &Token{AccessToken: jwt(`{"cnf":{"x5t#S256":"jwt"}}`), Extra: map[string]any{"cnf": map[string]any{"x5t#S256": "reply"}}}, "reply"},
		{"jwt payload", &Token{AccessToken: jwt(`{"cnf":{"x5t#S256":"jwt"}}`)}, "jwt"},
		{"opaque", &Token{AccessToken: "opaque-token"}, ""},
		{"bad payload", &Token{AccessToken: "a.!!!.c"}, ""},
		{"cnf not an object", &Token{AccessToken: jwt(`{"cnf":"x"}`)}, ""},
	} {
		if got := confirmation(tc.tok); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
}
