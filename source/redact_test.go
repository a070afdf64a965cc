package source_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tokenhttp/tokenhttp/source"
	"github.com/tokenhttp/tokenhttp/source/sourcetest"
)

// printings returns v printed with every verb and logged with slog, as
// text and as JSON.
func printings(v any) map[string]string {
	out := map[string]string{}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%T %[1]v"} {
		out[verb] = fmt.Sprintf(verb, v)
	}
	out["Sprint"] = fmt.Sprint(v)
	out["Sprintln"] = fmt.Sprintln(v)
	var text, js bytes.Buffer
	slog.New(slog.NewTextHandler(&text, nil)).Info("m", "v", v)
	slog.New(slog.NewJSONHandler(&js, nil)).Info("m", "v", v)
	out["slog text"], out["slog json"] = text.String(), js.String()
	return out
}

func checkPrintings(t *testing.T, what string, v any, secrets ...string) {
	t.Helper()
	for how, got := range printings(v) {
		for _, s := range secrets {
			if s != "" && strings.Contains(got, s) {
				t.Errorf("%s printed with %s shows secret %q: %s", what, how, s, got)
			}
		}
	}
}

// TestRedactedPrinting prints every exported type that holds a secret,
// with a live token and refresh token in it, and searches the output for
// each secret. Under -race it also checks printing does not race with a
// fetch.
func TestRedactedPrinting(t *testing.T) {
	const clientSecret, password = "cs-Hh61pL2secret", "pw-Jj72qM3secret"
	emu := newEmulator(t, sourcetest.NewGestaoPlus, sourcetest.Options{ClientSecret: clientSecret, Password: password})
	store := source.NewMemoryStore()
	src := newSource(t, source.Config{Provider: source.GestaoPlus, TokenURL: emu.TokenURL + "?api_key=qk-Ll83rN4secret",
		ClientSecret: clientSecret, Username: sourcetest.DefaultUsername, Password: password, Store: store})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tok, err := src.Token(ctx)
	if err != nil {
		t.Fatalf("Token: %v", err)
	}
	if tok.RefreshToken == "" {
		t.Fatal("the emulator issued no refresh token; the test needs one")
	}
	secrets := []string{clientSecret, password, tok.AccessToken, tok.RefreshToken, "qk-Ll83rN4secret"}
	done := make(chan struct{})
	go func() { // a concurrent Invalidate and fetch, for -race
		defer close(done)
		src.Invalidate(tok)
		_, _ = src.Token(ctx)
	}()
	checkPrintings(t, "*CachedSource", src, secrets...)
	checkPrintings(t, "*MemoryStore", store, secrets...)
	st := source.StoredToken{Token: tok, Obtained: time.Now()}
	checkPrintings(t, "StoredToken", st, secrets...)
	checkPrintings(t, "*StoredToken", &st, secrets...)
	<-done
	if got := fmt.Sprint(src); !strings.Contains(got, "gestaoplus") {
		t.Errorf("Sprint(src) = %q, want the provider named", got)
	}
}

// TestTokenRequestRedacted: the TokenRequest a Provider.Prepare hook sees
// holds the request's secrets; no verb, slog or JSON shows them.
func TestTokenRequestRedacted(t *testing.T) {
	req := source.TokenRequest{Grant: source.Password,
		Params: map[string]any{"grant_type": "password", "username": "bob", "password": "PW-SECRET",
			"client_secret": "CS-SECRET", "client_assertion": "CA-SECRET", "refresh_token": "RT-SECRET"},
		Header: http.Header{"Authorization": {"Basic QkFTSUMtU0VDUkVU"}}}
	var logged bytes.Buffer
	slog.New(slog.NewTextHandler(&logged, nil)).Info("prepare", "req", req)
	js, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	out := fmt.Sprintf("%v %+v %#v %s %q", req, req, req, req, req) + fmt.Sprintf("%v", &req) + logged.String() + string(js)
	for _, secret := range []string{"PW-SECRET", "CS-SECRET", "CA-SECRET", "RT-SECRET", "QkFTSUMtU0VDUkVU"} {
		if strings.Contains(out, secret) {
			t.Errorf("a printed TokenRequest shows %q:\n%s", secret, out)
		}
	}
	for _, public := range []string{"bob", "password", "Authorization"} {
		if !strings.Contains(out, public) {
			t.Errorf("a printed TokenRequest lacks %q:\n%s", public, out)
		}
	}
}
