package source_test

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenhttp/tokenhttp/retry"
	"github.com/tokenhttp/tokenhttp/source"
	"github.com/tokenhttp/tokenhttp/source/sourcetest"
	"github.com/tokenhttp/tokenhttp/source/storetest"
)

// A password from PasswordFunc may be one-time: the password grant is not
// retried with it, whatever the provider.
func TestPasswordFuncNotRetried(t *testing.T) {
	leakCheck(t)
	emu := newEmulator(t, sourcetest.NewStandard, sourcetest.Options{})
	emu.FailNext(2, http.StatusServiceUnavailable, "")
	var asked atomic.Int32
	src := storetest.NewSource(t, emu, nil, func(c *source.Config) {
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
	leakCheck(t)
	t.Run("empty one-time password", func(t *testing.T) {
		emu := newEmulator(t, sourcetest.NewStandard, sourcetest.Options{})
		src := storetest.NewSource(t, emu, nil, func(c *source.Config) {
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
		emu := newEmulator(t, sourcetest.NewStandard, sourcetest.Options{})
		src := storetest.NewSource(t, emu, nil, func(c *source.Config) {
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
