package source_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tokenhttp/tokenhttp/retry"
	"github.com/tokenhttp/tokenhttp/source"
	"github.com/tokenhttp/tokenhttp/source/sourcetest"
	"github.com/tokenhttp/tokenhttp/telemetry"
)

// TestTelemetryRefusalHeld: a Token call that gets the held refusal
// sends nothing, so its fetch span carries EventRefusalHeld and
// MetricFetches counts only the refusal that was sent.
func TestTelemetryRefusalHeld(t *testing.T) {
	leakCheck(t)
	emu := newEmulator(t, sourcetest.NewStandard, sourcetest.Options{})
	sdk := newTelSDK(t)
	cfg := standardConfig(emu.TokenURL)
	cfg.ClientSecret, cfg.Telemetry, cfg.Name = "wrong-secret-Hb61", sdk.Providers(), "held"
	src := newSource(t, cfg)
	for range 3 {
		if _, err := src.Token(context.Background()); err == nil {
			t.Fatal("Token with a wrong secret: no error")
		}
	}
	if got, want := emu.TokenRequests(), 1; got != want {
		t.Fatalf("token requests = %d, want %d", got, want)
	}
	spans := sdk.fetchSpans()
	if got, want := len(spans), 3; got != want {
		t.Fatalf("fetch spans = %d, want %d", got, want)
	}
	for i, sp := range spans {
		held := false
		for _, ev := range sp.Events() {
			held = held || ev.Name == telemetry.EventRefusalHeld
		}
		if want := i > 0; held != want {
			t.Errorf("span %d: %s event = %v, want %v", i, telemetry.EventRefusalHeld, held, want)
		}
	}
	fetches := telMetricValues(sdk.collect(t), telemetry.MetricFetches)
	if len(fetches) != 1 {
		t.Errorf("%s = %v, want one data point", telemetry.MetricFetches, fetches)
	}
	for k, v := range fetches {
		if v != "1" {
			t.Errorf("%s{%s} = %s, want 1: a held refusal is not a fetch", telemetry.MetricFetches, k, v)
		}
	}
}

// TestRefusalHeldInARow: the hold doubles only for refusals in a row: a
// 5xx between two refusals, or a minute past the last hold, starts it
// again at 1 s; with a credential from a function (a rotated assertion
// file) it stays at 1 s. On fake time.
func TestRefusalHeldInARow(t *testing.T) {
	leakCheck(t)
	emu := newEmulator(t, sourcetest.NewStandard, sourcetest.Options{})
	newSrc := func(t *testing.T, mod func(*source.Config)) *source.CachedSource {
		cfg := standardConfig(emu.TokenURL)
		cfg.HTTPClient, cfg.Retry = memClient(emu.Config.Handler), retry.Policy{MaxAttempts: 1}
		if mod != nil {
			mod(&cfg)
		}
		return newSource(t, cfg)
	}
	// heldFor calls Token every 100 ms until a call sends a token request,
	// and returns how long that took.
	heldFor := func(t *testing.T, src *source.CachedSource) time.Duration {
		start, before := time.Now(), emu.TokenRequests()
		for emu.TokenRequests() == before {
			if time.Since(start) > 2*time.Minute {
				t.Fatal("no token request in 2 minutes")
			}
			time.Sleep(100 * time.Millisecond)
			_, _ = src.Token(context.Background())
		}
		return time.Since(start)
	}
	refuse := func(t *testing.T, src *source.CachedSource) {
		emu.FailNext(1, http.StatusBadRequest, "")
		if _, err := src.Token(context.Background()); !errors.As(err, new(*source.Error)) {
			t.Fatalf("Token with a refusal due: %v, want a *source.Error", err)
		}
	}
	atOneSecond := func(t *testing.T, what string, d time.Duration) {
		if d < time.Second || d > 1100*time.Millisecond {
			t.Errorf("%s: the next token request went %v after the refusal, want after the 1 s hold", what, d)
		}
	}

	t.Run("a 5xx between", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			src := newSrc(t, nil)
			refuse(t, src)
			emu.FailNext(1, http.StatusServiceUnavailable, "")
			heldFor(t, src) // the 503
			refuse(t, src)
			atOneSecond(t, "400, 503, 400", heldFor(t, src))
		})
	})
	t.Run("a minute apart", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			src := newSrc(t, nil)
			refuse(t, src)
			time.Sleep(70 * time.Second)
			refuse(t, src)
			atOneSecond(t, "400, 70 s, 400", heldFor(t, src))
		})
	})
	t.Run("an assertion from a function", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			src := newSrc(t, func(c *source.Config) {
				c.ClientSecret = ""
				c.ClientAssertion = func(context.Context) (string, error) { return "a.b.c", nil }
			})
			emu.FailNext(1<<20, http.StatusBadRequest, "")
			defer emu.FailNext(0, 0, "")
			_, _ = src.Token(context.Background())
			for i := range 5 {
				atOneSecond(t, fmt.Sprintf("the hold after refusal %d in a row", i+1), heldFor(t, src))
			}
		})
	})
}
