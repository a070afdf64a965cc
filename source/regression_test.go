package source_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tokenhttp/tokenhttp/retry"
	"github.com/tokenhttp/tokenhttp/source"
	"github.com/tokenhttp/tokenhttp/source/sourcetest"
)

// Configs that differ in what decides the token (here an audience) never
// share a token through a store.
func TestStoreKeySeparatesConfigs(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	emu := sourcetest.NewStandard(sourcetest.Options{})
	defer emu.Close()
	store := source.NewMemoryStore()
	orders := stNew(t, emu, store, func(c *source.Config) { c.EndpointParams = url.Values{"audience": {"orders"}} })
	billing := stNew(t, emu, store, func(c *source.Config) { c.EndpointParams = url.Values{"audience": {"billing"}} })
	a, err := orders.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	b, err := billing.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if a.AccessToken == b.AccessToken {
		t.Error("the billing source got the orders source's token")
	}
	if got, want := emu.TokenRequests(), 2; got != want {
		t.Errorf("token requests = %d, want %d", got, want)
	}
}

// Sharing a store, a source renews only with the fleet's refresh token,
// never with its own, which another sharer may have rotated already: with
// reuse detection on, resending it would revoke the whole family.
func TestStoreNeverResendsARotatedRefreshToken(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	emu := sourcetest.NewGestaoPlus(sourcetest.Options{})
	defer emu.Close()
	emu.RevokeOnRefreshReuse(true)
	store := source.NewMemoryStore()
	cfg := func(c *source.Config) {
		c.Provider, c.ClientID, c.ClientSecret = source.GestaoPlus, "", ""
		c.Username, c.Password = sourcetest.DefaultUsername, sourcetest.DefaultPassword
	}
	ctx := context.Background()
	b := stNew(t, emu, store, cfg)
	t0, err := b.Token(ctx) // b holds RT0
	if err != nil {
		t.Fatal(err)
	}
	a := stNew(t, emu, store, cfg)
	if got, _ := a.Token(ctx); got.AccessToken != t0.AccessToken {
		t.Fatal("a did not take the stored token")
	}
	// a renews with the fleet's RT0 (after the API rejects T0) and stores T1/RT1.
	emu.Revoke(t0.AccessToken)
	a.Invalidate(t0)
	t1, err := a.Token(ctx)
	if err != nil || t1.AccessToken == t0.AccessToken {
		t.Fatalf("a's renewal: %v", err)
	}
	// The stored token disappears (expired from Redis, say); b, which still
	// holds RT0 of its own, must not send it.
	if err := store.Delete(ctx, mustKey(t, store, t1), t1); err != nil {
		t.Fatal(err)
	}
	b.Invalidate(t0)
	if _, err := b.Token(ctx); err != nil {
		t.Fatalf("b's renewal: %v", err)
	}
	if got := emu.Requests("refresh_token"); got != 1 {
		t.Errorf("refresh_token requests = %d, want 1 (RT0 sent once, by a)", got)
	}
	// T1 is still good: no reuse was detected.
	req, _ := http.NewRequest(http.MethodGet, emu.ResourceURL, nil)
	req.Header.Set("Authorization", t1.HeaderValue())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	http.DefaultClient.CloseIdleConnections()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("T1 at the API: %d, want 200 (the token family was revoked)", resp.StatusCode)
	}
}

func mustKey(t *testing.T, m *source.MemoryStore, tok *source.Token) string {
	t.Helper()
	return findKey(t, m, tok)
}

// A password from PasswordFunc may be one-time: the password grant is not
// retried with it, whatever the provider.
func TestPasswordFuncNotRetried(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	emu := sourcetest.NewStandard(sourcetest.Options{})
	defer emu.Close()
	emu.FailNext(2, http.StatusServiceUnavailable, "")
	var asked atomic.Int32
	src := stNew(t, emu, nil, func(c *source.Config) {
		c.GrantType, c.Username = source.Password, sourcetest.DefaultUsername
		c.PasswordFunc = func(context.Context) (string, error) { asked.Add(1); return sourcetest.DefaultPassword, nil }
	})
	if _, err := src.Token(context.Background()); err == nil {
		t.Fatal("Token: got a token, want the 503")
	}
	if got, want := emu.Requests("password"), 1; got != want {
		t.Errorf("password requests = %d, want %d", got, want)
	}
	if got, want := asked.Load(), int32(1); got != want {
		t.Errorf("PasswordFunc calls = %d, want %d", got, want)
	}
}

// A failing user hook says nothing about the endpoint: it never opens the
// breaker, and a 4xx never does either, whatever its body says.
func TestBreakerIgnoresHooksAnd4xx(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	t.Run("empty one-time password", func(t *testing.T) {
		emu := sourcetest.NewStandard(sourcetest.Options{})
		defer emu.Close()
		src := stNew(t, emu, nil, func(c *source.Config) {
			c.GrantType, c.Username = source.Password, sourcetest.DefaultUsername
			c.PasswordFunc = func(context.Context) (string, error) { return "", nil }
			c.Breaker = retry.BreakerSettings{Failures: 2, OpenFor: time.Minute}
		})
		for range 5 {
			_, err := src.Token(context.Background())
			var he *source.HookError
			if !errors.As(err, &he) {
				t.Fatalf("Token: %v, want a *source.HookError", err)
			}
		}
	})
	t.Run("400 temporarily_unavailable", func(t *testing.T) {
		emu := sourcetest.NewStandard(sourcetest.Options{})
		defer emu.Close()
		src := stNew(t, emu, nil, func(c *source.Config) {
			c.Breaker = retry.BreakerSettings{Failures: 2, OpenFor: time.Minute}
			c.ClientSecret = "wrong"
		})
		for i := range 5 {
			_, err := src.Token(context.Background())
			if errors.Is(err, source.ErrBreakerOpen) {
				t.Fatalf("call %d: the breaker opened on a 4xx", i)
			}
		}
		te := &source.Error{StatusCode: 400, Code: source.CodeTemporarilyUnavailable}
		if te.Temporary() {
			t.Error("a 400 with temporarily_unavailable is Temporary")
		}
		if got, want := emu.TokenRequests(), 5; got != want {
			t.Errorf("token requests = %d, want %d", got, want)
		}
	})
}
