package source_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tokenhttp/tokenhttp/retry"
	"github.com/tokenhttp/tokenhttp/source"
	"github.com/tokenhttp/tokenhttp/source/sourcetest"
)

func newGrantSource(t *testing.T, cfg source.Config) *source.CachedSource {
	t.Helper()
	opt := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, opt) })
	src, err := source.New(cfg)
	if err != nil {
		t.Fatalf("source.New: %v", err)
	}
	t.Cleanup(func() { src.Close() })
	return src
}

// TestRefreshBootstrapRotates: a source started from a refresh token
// obtained elsewhere renews with it, keeps the rotated one, never sends a
// refresh token twice, and Persist sees every rotated token before the
// access token is served.
func TestRefreshBootstrapRotates(t *testing.T) {
	srv := sourcetest.NewStandard(sourcetest.Options{RefreshTokens: true})
	defer srv.Close()
	srv.RevokeOnRefreshReuse(true)
	rt := srv.MintRefreshToken("")
	var persisted []string
	src := newGrantSource(t, source.Config{
		TokenURL: srv.TokenURL, GrantType: source.RefreshToken, RefreshToken: rt,
		ClientID: sourcetest.DefaultClientID, ClientSecret: sourcetest.DefaultClientSecret, HTTPClient: srv.Client(),
		Hook: source.TokenHook{Persist: func(_ context.Context, ev source.TokenEvent) error {
			persisted = append(persisted, ev.RefreshToken)
			return nil
		}},
	})
	sent := map[string]bool{}
	for i := range 3 {
		tok, err := src.Token(context.Background())
		if err != nil {
			t.Fatalf("fetch %d: %v", i, err)
		}
		got := lastFormValue(t, srv, "refresh_token")
		if sent[got] {
			t.Fatalf("fetch %d sent a refresh token twice", i)
		}
		sent[got] = true
		if len(persisted) != i+1 || persisted[i] != tok.RefreshToken {
			t.Fatalf("fetch %d: persisted %d tokens, want the new one before it was served", i, len(persisted))
		}
		src.Invalidate(tok)
	}
	if !sent[rt] {
		t.Error("the configured refresh token was never sent")
	}
}

// TestRefreshBootstrapPublicClient: without a ClientSecret, client_id is
// sent in the body and no client_secret, no Authorization.
func TestRefreshBootstrapPublicClient(t *testing.T) {
	srv := sourcetest.NewStandard(sourcetest.Options{})
	defer srv.Close()
	srv.AllowPublicClients(true)
	src := newGrantSource(t, source.Config{TokenURL: srv.TokenURL, GrantType: source.RefreshToken,
		RefreshToken: srv.MintRefreshToken(""), ClientID: sourcetest.DefaultClientID, HTTPClient: srv.Client()})
	if _, err := src.Token(context.Background()); err != nil {
		t.Fatal(err)
	}
	f, h := lastForm(t, srv)
	if f.Get("client_id") != sourcetest.DefaultClientID || f.Has("client_secret") || h.Get("Authorization") != "" {
		t.Errorf("public client request: form %v, Authorization %q", f, h.Get("Authorization"))
	}
}

// TestRefreshBootstrapRefused: a refused refresh token ends the source:
// Token returns that invalid_grant *Error, which says a new refresh token
// is needed, and later calls fail fast with it without a request.
func TestRefreshBootstrapRefused(t *testing.T) {
	srv := sourcetest.NewStandard(sourcetest.Options{})
	defer srv.Close()
	src := newGrantSource(t, source.Config{TokenURL: srv.TokenURL, GrantType: source.RefreshToken, RefreshToken: "not-a-known-token",
		ClientID: sourcetest.DefaultClientID, ClientSecret: sourcetest.DefaultClientSecret, HTTPClient: srv.Client()})
	_, err := src.Token(context.Background())
	var te *source.Error
	if !errors.As(err, &te) || te.Code != source.CodeInvalidGrant || !te.NeedsNewRefreshToken() || !strings.Contains(te.Hint(), "new refresh token") ||
		!strings.Contains(err.Error(), "a new refresh token is needed") {
		t.Fatalf("Token: %v, want an invalid_grant *Error that says a new refresh token is needed", err)
	}
	n := srv.TokenRequests()
	_, err2 := src.Token(context.Background())
	if !errors.Is(err2, te) && (!errors.As(err2, &te) || !te.NeedsNewRefreshToken()) {
		t.Fatalf("second Token: %v, want the same error", err2)
	}
	if srv.TokenRequests() != n {
		t.Error("the dead refresh token was sent again")
	}
	if strings.Contains(fmt.Sprint(err), "not-a-known-token") {
		t.Error("the refresh token is in the error")
	}
}

// TestRefreshBootstrapStoreWins: a refresh token in the Store wins over
// Config.RefreshToken.
func TestRefreshBootstrapStoreWins(t *testing.T) {
	srv := sourcetest.NewStandard(sourcetest.Options{})
	defer srv.Close()
	srv.RevokeOnRefreshReuse(true)
	first := srv.MintRefreshToken("")
	store := source.NewMemoryStore()
	cfg := source.Config{TokenURL: srv.TokenURL, GrantType: source.RefreshToken, RefreshToken: first,
		ClientID: sourcetest.DefaultClientID, ClientSecret: sourcetest.DefaultClientSecret, HTTPClient: srv.Client(),
		Store: store}
	a := newGrantSource(t, cfg)
	if _, err := a.Token(context.Background()); err != nil {
		t.Fatal(err)
	}
	a.Close()                   // waits for the save
	b := newGrantSource(t, cfg) // restarts with the stale Config.RefreshToken
	tok, err := b.Token(context.Background())
	if err != nil || srv.TokenRequests() != 1 {
		t.Fatalf("a second source sharing the store: %v, %d requests", err, srv.TokenRequests())
	}
	b.Invalidate(tok)
	if _, err := b.Token(context.Background()); err != nil {
		t.Fatalf("renewing with the stored refresh token: %v", err)
	}
	if got := lastFormValue(t, srv, "refresh_token"); got == first {
		t.Error("Config.RefreshToken was sent although the store held a newer refresh token")
	}
}

// TestPersistErrorFailsFetch: a Persist error fails the fetch and the new
// token is not served; the next fetch uses the rotated refresh token.
func TestPersistErrorFailsFetch(t *testing.T) {
	srv := sourcetest.NewStandard(sourcetest.Options{})
	defer srv.Close()
	srv.RevokeOnRefreshReuse(true)
	fail := atomic.Bool{}
	fail.Store(true)
	src := newGrantSource(t, source.Config{TokenURL: srv.TokenURL, GrantType: source.RefreshToken, RefreshToken: srv.MintRefreshToken(""),
		ClientID: sourcetest.DefaultClientID, ClientSecret: sourcetest.DefaultClientSecret, HTTPClient: srv.Client(),
		Hook: source.TokenHook{Persist: func(context.Context, source.TokenEvent) error {
			if fail.Load() {
				return errors.New("disk full")
			}
			return nil
		}}})
	tok, err := src.Token(context.Background())
	var he *source.HookError
	if tok != nil || !errors.As(err, &he) || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("Token = %v, %v; want no token and the hook's error", tok, err)
	}
	fail.Store(false)
	if _, err := src.Token(context.Background()); err != nil {
		t.Fatalf("after the hook recovered: %v (the rotated refresh token was lost)", err)
	}
}

// TestJWTBearerAssertionPerAttempt: Assertion is called once per attempt,
// a retry included, and each attempt carries a fresh assertion.
func TestJWTBearerAssertionPerAttempt(t *testing.T) {
	srv := sourcetest.NewStandard(sourcetest.Options{})
	defer srv.Close()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	srv.TrustIssuer("workload", key.Public())
	sign := source.SignedAssertion(key, map[string]any{"iss": "workload", "sub": "svc-a", "aud": srv.TokenURL}, source.AssertionOptions{})
	var calls atomic.Int32
	var seen []string
	src := newGrantSource(t, source.Config{TokenURL: srv.TokenURL, GrantType: source.JWTBearer,
		ClientID: sourcetest.DefaultClientID, ClientSecret: sourcetest.DefaultClientSecret, HTTPClient: srv.Client(),
		Retry: retry.Policy{MinWait: time.Millisecond, MaxWait: 5 * time.Millisecond},
		Assertion: func(ctx context.Context) (string, error) {
			calls.Add(1)
			a, err := sign(ctx)
			seen = append(seen, a)
			return a, err
		}})
	srv.FailNext(1, 503, "0")
	if _, err := src.Token(context.Background()); err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 2 || seen[0] == seen[1] {
		t.Fatalf("Assertion called %d times for 2 attempts", calls.Load())
	}
	if got := lastFormValue(t, srv, "assertion"); got != seen[1] {
		t.Error("the retry did not carry the new assertion")
	}
}

// TestJWTBearerExpiredAssertion: the emulator refuses an expired
// assertion with invalid_grant, and the assertion is not in the error.
func TestJWTBearerExpiredAssertion(t *testing.T) {
	srv := sourcetest.NewStandard(sourcetest.Options{})
	defer srv.Close()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	srv.TrustIssuer("workload", key.Public())
	past := time.Now().Add(-time.Hour).Unix()
	sign := source.SignedAssertion(key, map[string]any{"iss": "workload", "sub": "svc", "aud": srv.TokenURL, "iat": past, "exp": past + 60}, source.AssertionOptions{})
	a, _ := sign(context.Background())
	src := newGrantSource(t, source.Config{TokenURL: srv.TokenURL, GrantType: source.JWTBearer,
		ClientID: sourcetest.DefaultClientID, ClientSecret: sourcetest.DefaultClientSecret, HTTPClient: srv.Client(), Assertion: sign})
	_, err := src.Token(context.Background())
	var te *source.Error
	if !errors.As(err, &te) || te.Code != source.CodeInvalidGrant || !strings.Contains(te.Description, "expired") {
		t.Fatalf("Token: %v, want invalid_grant (assertion expired)", err)
	}
	if strings.Contains(fmt.Sprintf("%v %+v", err, err), a) {
		t.Error("the assertion is in the error")
	}
}

// TestAssertionFile reads the file at each call (a rotated projected
// token is picked up) and its errors hold no content.
func TestAssertionFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "token")
	f := source.AssertionFile(p)
	if _, err := f(context.Background()); err == nil {
		t.Fatal("no error for a missing file")
	}
	os.WriteFile(p, []byte("first\n"), 0o600)
	if v, _ := f(context.Background()); v != "first" {
		t.Fatalf("got %q", v)
	}
	os.WriteFile(p, []byte("second"), 0o600)
	if v, _ := f(context.Background()); v != "second" {
		t.Fatalf("after rotation got %q", v)
	}
	os.WriteFile(p, []byte(" \n"), 0o600)
	if _, err := f(context.Background()); err == nil {
		t.Fatal("no error for an empty file")
	}
}

// TestTokenExchangeChain: one source's token is the subject of another's
// exchange; audience, resource (repeated), requested_token_type and the
// subject_token_type default reach the server; issued_token_type is kept
// in Extra.
func TestTokenExchangeChain(t *testing.T) {
	srv := sourcetest.NewStandard(sourcetest.Options{})
	defer srv.Close()
	base := newGrantSource(t, source.Config{TokenURL: srv.TokenURL, ClientID: sourcetest.DefaultClientID,
		ClientSecret: sourcetest.DefaultClientSecret, HTTPClient: srv.Client()})
	down := newGrantSource(t, source.Config{TokenURL: srv.TokenURL, GrantType: source.TokenExchange,
		ClientID: sourcetest.DefaultClientID, ClientSecret: sourcetest.DefaultClientSecret, HTTPClient: srv.Client(),
		SubjectToken: source.SubjectFrom(base),
		Exchange: source.ExchangeParams{Audience: []string{"orders"}, Resource: []string{"https://a.example/", "https://b.example/"},
			RequestedTokenType: source.TokenTypeAccessToken}})
	tok, err := down.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if tok.TokenType != "Bearer" || tok.Extra["issued_token_type"] != source.TokenTypeAccessToken {
		t.Errorf("token type %q, Extra %v", tok.TokenType, tok.Extra)
	}
	x := srv.LastExchange()
	if strings.Join(x["resource"], " ") != "https://a.example/ https://b.example/" || x["audience"][0] != "orders" ||
		x["subject_token_type"][0] != source.TokenTypeAccessToken || x["requested_token_type"][0] != source.TokenTypeAccessToken {
		t.Errorf("exchange parameters: %v", x)
	}
}

// TestTokenExchangeNA: token_type N_A is sent as Bearer for an access
// token, and is an error that says why for another issued type.
func TestTokenExchangeNA(t *testing.T) {
	srv := sourcetest.NewStandard(sourcetest.Options{})
	defer srv.Close()
	srv.AddSubjectToken("subject-secret-value")
	cfg := source.Config{TokenURL: srv.TokenURL, GrantType: source.TokenExchange,
		ClientID: sourcetest.DefaultClientID, ClientSecret: sourcetest.DefaultClientSecret, HTTPClient: srv.Client(),
		SubjectToken: func(context.Context) (string, error) { return "subject-secret-value", nil }}
	srv.SetExchangeReply(sourcetest.ExchangeReply{TokenType: "N_A"})
	tok, err := newGrantSource(t, cfg).Token(context.Background())
	if err != nil || tok.TokenType != "Bearer" {
		t.Fatalf("N_A access token: %v, %v", tok, err)
	}
	srv.SetExchangeReply(sourcetest.ExchangeReply{TokenType: "N_A", IssuedTokenType: sourcetest.JWTTokenType})
	_, err = newGrantSource(t, cfg).Token(context.Background())
	if err == nil || !strings.Contains(err.Error(), "N_A") || !strings.Contains(err.Error(), "not an access token") {
		t.Fatalf("N_A jwt: %v, want an error that says why", err)
	}
	if te := (*source.Error)(nil); !errors.As(err, &te) || te.Temporary() {
		t.Errorf("N_A non-access token: %v, want a final (not temporary) *source.Error: it says nothing of the endpoint's health", err)
	}
}

// TestGrantSecretsRedacted: Config's String shows no refresh token, and
// errors of every attempt are scrubbed of the assertion and subject token.
func TestGrantSecretsRedacted(t *testing.T) {
	cfg := source.Config{GrantType: source.RefreshToken, RefreshToken: "rt-very-secret", ClientID: "c"}
	for _, s := range []string{cfg.String(), fmt.Sprintf("%v %+v %#v", cfg, cfg, cfg)} {
		if strings.Contains(s, "rt-very-secret") {
			t.Errorf("refresh token shown: %s", s)
		}
	}
	srv := sourcetest.NewStandard(sourcetest.Options{})
	defer srv.Close()
	var n atomic.Int32
	src := newGrantSource(t, source.Config{TokenURL: srv.TokenURL, GrantType: source.TokenExchange,
		ClientID: sourcetest.DefaultClientID, ClientSecret: sourcetest.DefaultClientSecret, HTTPClient: srv.Client(),
		SubjectToken: func(context.Context) (string, error) { return fmt.Sprintf("subject-%d-secret", n.Add(1)), nil },
		Retry:        retry.Policy{MinWait: time.Millisecond, MaxWait: 5 * time.Millisecond}})
	srv.FailNext(1, 503, "0")
	_, err := src.Token(context.Background())
	if err == nil {
		t.Fatal("an unknown subject token was accepted")
	}
	if n.Load() != 2 || strings.Contains(err.Error(), "secret") {
		t.Errorf("calls %d, error %v", n.Load(), err)
	}
}

// TestGrantSecretsScrubbedPerAttempt: an endpoint that echoes the request
// in its error description: each attempt's assertion (learned per
// attempt) is scrubbed from the error, as is the refresh token.
func TestGrantSecretsScrubbedPerAttempt(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		w.Header().Set("Content-Type", "application/json")
		status := http.StatusBadRequest
		if n.Add(1) == 1 {
			status = http.StatusServiceUnavailable
		}
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(map[string]string{"error": "invalid_grant", "error_description": "bad " + r.Form.Encode()})
	}))
	defer srv.Close()
	var calls atomic.Int32
	src := newGrantSource(t, source.Config{TokenURL: srv.URL, GrantType: source.JWTBearer, ClientID: "c", ClientSecret: "client-secret-x",
		Retry: retry.Policy{MinWait: time.Millisecond, MaxWait: 5 * time.Millisecond},
		Assertion: func(context.Context) (string, error) {
			return fmt.Sprintf("eyJ.assertion-%d-secret.sig", calls.Add(1)), nil
		}})
	_, err := src.Token(context.Background())
	if err == nil || calls.Load() != 2 {
		t.Fatalf("Token: %v after %d assertions", err, calls.Load())
	}
	if s := fmt.Sprintf("%v %+v", err, err); strings.Contains(s, "secret") || !strings.Contains(s, "assertion=") {
		t.Errorf("a secret is in the error: %s", s)
	}

	n.Store(1) // every reply is a 400 now
	rsrc := newGrantSource(t, source.Config{TokenURL: srv.URL, GrantType: source.RefreshToken, ClientID: "c", RefreshToken: "refresh-secret-value"})
	_, err = rsrc.Token(context.Background())
	if err == nil || strings.Contains(err.Error(), "refresh-secret-value") {
		t.Errorf("refresh grant error: %v", err)
	}
}

// heldStore is a store whose lock another sharer always holds.
type heldStore struct{ source.Store }

func (heldStore) Lock(context.Context, string, time.Duration) (func(), bool, error) {
	return func() {}, false, nil
}

// TestRefreshGrantNeverSentWithoutLock: a sharer that gives up waiting on
// the lock holder does not send the refresh token (the holder may be
// sending it), and says why.
func TestRefreshGrantNeverSentWithoutLock(t *testing.T) {
	srv := sourcetest.NewStandard(sourcetest.Options{})
	defer srv.Close()
	src := newGrantSource(t, source.Config{TokenURL: srv.TokenURL, GrantType: source.RefreshToken, RefreshToken: srv.MintRefreshToken(""),
		ClientID: sourcetest.DefaultClientID, ClientSecret: sourcetest.DefaultClientSecret, HTTPClient: srv.Client(),
		Store: heldStore{source.NewMemoryStore()}, FetchTimeout: 300 * time.Millisecond})
	_, err := src.Token(context.Background())
	if err == nil || !strings.Contains(err.Error(), "lock") || srv.TokenRequests() != 0 {
		t.Fatalf("Token: %v after %d requests; want no request and an error about the lock", err, srv.TokenRequests())
	}
}

// TestRefreshTokenKeptWhenNothingWasSent: a fetch that fails while the
// request is built (here an empty client assertion) sent nothing, so the
// refresh token is not spent: the next fetch sends it. (It was taken as
// possibly rotated, and the source was dead for good.)
func TestRefreshTokenKeptWhenNothingWasSent(t *testing.T) {
	leakCheck(t)
	var requests atomic.Int64
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		_ = r.ParseForm()
		if got := r.PostForm.Get("refresh_token"); got != "rt-1" {
			t.Errorf("refresh_token = %q, want rt-1", got)
		}
		writeJSON(w, 200, tokenJSON("tok-1", 3600, ""))
	})
	var calls atomic.Int64
	src := newSource(t, source.Config{
		TokenURL: srv.URL, ClientID: "c", GrantType: source.RefreshToken, RefreshToken: "rt-1",
		ClientAssertion: func(context.Context) (string, error) {
			if calls.Add(1) == 1 {
				return "", nil // refused before anything is sent
			}
			return "a.b.c", nil
		},
	})
	if _, err := src.Token(context.Background()); err == nil || requests.Load() != 0 {
		t.Fatalf("Token with an empty assertion = %v with %d requests, want an error and none", err, requests.Load())
	}
	tok, err := src.Token(context.Background())
	if err != nil || tok.AccessToken != "tok-1" {
		t.Errorf("Token after a fetch that sent nothing = %v, %v, want tok-1 from the refresh token", tok, err)
	}
}
