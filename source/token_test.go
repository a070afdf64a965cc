package source_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/tokenhttp/tokenhttp/source"
)

// Secrets a Token carries in these tests. Each is distinctive enough that
// finding it in an output can only mean it leaked.
const (
	secretAccess  = "at-Zq81vM0secret"
	secretRefresh = "rt-Xp29wN7secret"
	secretAuthz   = "VCSchema az-Kd55uT3secret"
)

func TestTokenValid(t *testing.T) {
	future := time.Now().Add(time.Hour)
	past := time.Now().Add(-time.Second)
	tests := []struct {
		name string
		tok  *source.Token
		want bool
	}{
		{"nil", nil, false},
		{"empty", &source.Token{}, false},
		{"expiry but no credential", &source.Token{Expiry: future}, false},
		{"type but no credential", &source.Token{TokenType: "Bearer"}, false},
		{"zero expiry never expires", &source.Token{AccessToken: "a"}, true},
		{"future expiry", &source.Token{AccessToken: "a", Expiry: future}, true},
		{"expired", &source.Token{AccessToken: "a", Expiry: past}, false},
		{"authorization only", &source.Token{Authorization: "VCSchema x"}, true},
		{"authorization only, expired", &source.Token{Authorization: "VCSchema x", Expiry: past}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.tok.Valid(); got != tt.want {
				t.Errorf("Valid() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestTokenHeaderValue(t *testing.T) {
	tests := []struct {
		name string
		tok  *source.Token
		want string
	}{
		{"access token", &source.Token{AccessToken: "abc.def"}, "Bearer abc.def"},
		{"access token with type", &source.Token{AccessToken: "abc", TokenType: "Bearer"}, "Bearer abc"},
		{"authorization verbatim", &source.Token{AccessToken: "abc", Authorization: "VCSchema xyz"}, "VCSchema xyz"},
		{"authorization only", &source.Token{Authorization: "VCSchema  two  spaces"}, "VCSchema  two  spaces"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.tok.HeaderValue(); got != tt.want {
				t.Errorf("HeaderValue() = %q, want %q", got, tt.want)
			}
		})
	}
}

// secretToken returns a token that holds every kind of secret.
func secretToken() *source.Token {
	return &source.Token{
		AccessToken:   secretAccess,
		TokenType:     "Bearer",
		RefreshToken:  secretRefresh,
		Expiry:        time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC),
		Scope:         "read write",
		Authorization: secretAuthz,
		Extra:         map[string]any{"token_kind": "test"},
	}
}

// checkNoSecret fails if out holds any of secrets, or does not hold
// mustHave (the proof that out is a real rendering of the value).
func checkNoSecret(t *testing.T, out, mustHave string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if strings.Contains(out, s) {
			t.Errorf("output shows secret %q:\n%s", s, out)
		}
	}
	if !strings.Contains(out, mustHave) {
		t.Errorf("output does not show %q; got:\n%s", mustHave, out)
	}
}

func slogJSON(args ...any) string {
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("msg", args...)
	return buf.String()
}

func slogText(args ...any) string {
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("msg", args...)
	return buf.String()
}

func jsonString(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return "json error: " + err.Error()
	}
	return string(b)
}

func TestTokenRedaction(t *testing.T) {
	tok := secretToken()
	type withPtr struct{ Tok *source.Token }
	type withValue struct{ Tok source.Token }
	tests := []struct {
		name string
		out  func() string
	}{
		{"String", func() string { return tok.String() }},
		{"GoString", func() string { return tok.GoString() }},
		{"%v", func() string { return fmt.Sprintf("%v", tok) }},
		{"%+v", func() string { return fmt.Sprintf("%+v", tok) }},
		{"%#v", func() string { return fmt.Sprintf("%#v", tok) }},
		{"%s", func() string { return fmt.Sprintf("%s", tok) }},
		{"%q", func() string { return fmt.Sprintf("%q", tok) }},
		{"Sprint", func() string { return fmt.Sprint(tok) }},
		{"Sprintln", func() string { return fmt.Sprintln(tok) }},
		{"slice %v", func() string { return fmt.Sprintf("%v", []*source.Token{tok}) }},
		{"map %+v", func() string { return fmt.Sprintf("%+v", map[string]*source.Token{"k": tok}) }},
		{"field %+v", func() string { return fmt.Sprintf("%+v", withPtr{tok}) }},
		{"field %#v", func() string { return fmt.Sprintf("%#v", withPtr{tok}) }},
		{"slog JSON", func() string { return slogJSON("token", tok) }},
		{"slog text", func() string { return slogText("token", tok) }},
		{"slog JSON field", func() string { return slogJSON("holder", withPtr{tok}) }},
		{"json.Marshal", func() string { return jsonString(tok) }},
		{"json.Marshal field", func() string { return jsonString(withPtr{tok}) }},
		// A Token value (a dereferenced pointer, or a struct field that is
		// not a pointer) must not leak either: "never shows a secret".
		{"value %v", func() string { return fmt.Sprintf("%v", *tok) }},
		{"value %+v", func() string { return fmt.Sprintf("%+v", *tok) }},
		{"value %#v", func() string { return fmt.Sprintf("%#v", *tok) }},
		{"value field %+v", func() string { return fmt.Sprintf("%+v", withValue{*tok}) }},
		{"value slog JSON", func() string { return slogJSON("token", *tok) }},
		{"value json.Marshal", func() string { return jsonString(*tok) }},
		{"value field json.Marshal", func() string { return jsonString(withValue{*tok}) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkNoSecret(t, tt.out(), "Bearer", secretAccess, secretRefresh, secretAuthz, "az-Kd55uT3secret")
		})
	}
}

func TestTokenRedactionNil(t *testing.T) {
	var tok *source.Token
	for _, out := range []string{
		fmt.Sprintf("%v", tok), fmt.Sprintf("%+v", tok), fmt.Sprintf("%#v", tok),
		fmt.Sprintf("%s", tok), tok.String(), slogJSON("token", tok), jsonString(tok),
	} {
		if strings.Contains(out, "PANIC") || strings.Contains(out, "panicked") {
			t.Errorf("printing a nil *Token panicked: %s", out)
		}
	}
}
